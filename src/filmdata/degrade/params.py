"""The building blocks every degradation shares: the clip contract, the op registry, sampling
helpers (re-exported from `draw.py`) and the (de)serialisation of parameter dataclasses.

An op is three things (STYLE.md): a frozen parameter dataclass, a sampler that draws one window's
parameters from a preset's config with a `torch.Generator`, and a pure function on a batch of
clips `(B, T, C, H, W)` in [0, 1]. The pipeline stacks the parameters of windows that share an op
into one dataclass whose fields gain a leading `B` dimension (`stack_params`), so every op function
sees *batched* parameters: a float field becomes a `(B,)` tensor, a `(T,)` tensor `(B, T)`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from torch import Tensor

from ..errors import RefusedError

# The sampling helpers live in draw.py; re-exported here, where every op imports from.
from .draw import Draws, choice, noise, rand, randint, seed_of, uniform, walk  # noqa: F401

if TYPE_CHECKING:
    from .templates import TemplateBank

# --------------------------------------------------------------------------- the clip contract


def frames_to_planes(
    frames: np.ndarray, bgr: bool = False, out: np.ndarray | None = None
) -> np.ndarray:
    """(T, H, W, 3) uint8 frames (RGB, or BGR) to planar (T, 3, H, W) RGB float32 in [0, 1]
    (into `out` when given).

    Each value is `v / 255` as torch computes it (a table torch made), so the floats equal
    `torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255)`'s; OpenCV de-interleaves.
    """
    import cv2

    t, h, w, _ = frames.shape
    out = np.empty((t, 3, h, w), np.float32) if out is None else out
    planes = [np.empty((h, w), np.uint8) for _ in range(3)]
    for k in range(t):
        cv2.split(np.ascontiguousarray(frames[k]), planes)
        for c in range(3):
            cv2.LUT(planes[2 - c if bgr else c], _UNIT, dst=out[k, c])
    return out


def planes_to_frames(x: np.ndarray, bgr: bool = False) -> np.ndarray:
    """Planar (T, C, H, W) float in [0, 1] (C = 1 or 3) to (T, H, W, 3) uint8 RGB (or BGR),
    rounding to nearest as OpenCV's saturate_cast does; grey is repeated on the 3 channels."""
    import cv2

    t, c, h, w = x.shape
    out = np.empty((t, h, w, 3), np.uint8)
    for k in range(t):
        planes = [cv2.convertScaleAbs(x[k, i], alpha=255.0) for i in range(c)]
        cv2.merge(planes * 3 if c == 1 else planes[::-1] if bgr else planes, dst=out[k])
    return out


_UNIT = torch.arange(256, dtype=torch.uint8).float().div_(255).numpy()


def check_clip(x: Any, name: str = "x") -> Tensor:
    """Refuse anything but a float `(B, T, C, H, W)` tensor with C in {1, 3}."""
    if not isinstance(x, Tensor):
        raise RefusedError(
            f"{name}: expected a torch.Tensor (B, T, C, H, W), got {type(x).__name__}"
        )
    if x.dim() != 5:
        raise RefusedError(f"{name}: expected (B, T, C, H, W), got {tuple(x.shape)}")
    if x.shape[2] not in (1, 3):
        raise RefusedError(
            f"{name}: expected C in {{1, 3}} in (B, T, C, H, W), got {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise RefusedError(f"{name}: expected a float tensor in [0, 1], got {x.dtype}")
    return x


_OWNED = threading.local()


def owned(x: Tensor) -> bool:
    """Whether `x` is the pipeline's own working clip, handed to the op running now in this
    thread: the op may then write its result into `x` (one frame-sized allocation less per op;
    fresh allocations fragment the heap, whose new pages fault in). Ops stay pure for every
    other caller. The same arithmetic either way (elementwise kernels, same operands).
    Only a contiguous clip counts: ops write into its flat views (`reshape`), and a strided one
    could alias itself."""
    return getattr(_OWNED, "x", None) is x and x.is_contiguous()


@contextlib.contextmanager
def handing(x: Tensor) -> Iterator[None]:
    """`owned(x)` is True for this thread inside the block (the pipeline gives `x` up)."""
    _OWNED.x = x
    try:
        yield
    finally:
        _OWNED.x = None


def luma(x: Tensor) -> Tensor:
    """Rec. 601 luma `(..., 1, H, W)` of `(..., C, H, W)` (C = 1 passes through)."""
    if x.shape[-3] == 1:
        return x
    r, g, b = x.unbind(-3)
    return (r * 0.299).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze(-3)


def stack(items: Sequence[Tensor]) -> Tensor:
    """`torch.stack`, without the copy for a batch of one (the CPU path's usual case)."""
    return items[0].unsqueeze(0) if len(items) == 1 else torch.stack(list(items))


def bview(v: Tensor, x: Tensor) -> Tensor:
    """View a `(B,)` or `(B, T)` parameter so it broadcasts against `(B, T, C, H, W)`."""
    v = v.to(device=x.device, dtype=x.dtype)
    return v.reshape(*v.shape, *([1] * (x.dim() - v.dim())))


# --------------------------------------------------------------------------- preset configs

# An op function receives its parameter dataclass *batched* by `stack_params`: every float or
# int field is then a `(B,)` tensor and every tensor field gains a leading `B`. Python's types
# cannot say "this dataclass with its fields stacked", so op functions are typed with this alias.
Batched = Any


def span(default: tuple[float, float], lo: float, hi: float) -> Any:
    """A preset range field `[lo, hi]` with its default, checked to lie within `[lo, hi]`."""
    return Field(default, json_schema_extra={"bounds": [lo, hi]})


class OpConfig(BaseModel):
    """Base of every op's preset config: `p` (probability) and its ranges, extra fields forbidden.

    A field typed `tuple[float, float]` is a range `[lo, hi]`; `_check_ranges` refuses lo > hi
    and values outside the field's `bounds` (declared in `json_schema_extra={"bounds": (a, b)}`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    p: float = 1.0

    @field_validator("p")
    @classmethod
    def _prob(cls, v: float) -> float:
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"must be a probability in [0, 1], got {v}")
        return v

    @model_validator(mode="after")
    def _check_ranges(self) -> OpConfig:
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            bounds: Any = extra.get("bounds")
            if isinstance(value, tuple) and not value:  # a list of choices (kind: [...])
                raise ValueError(f"{name}: must list at least one choice, got []")
            if (
                isinstance(value, tuple)
                and len(value) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            ):
                lo, hi = value
                if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
                    raise ValueError(f"{name}: must be [lo, hi] with lo <= hi, got [{lo}, {hi}]")
                if bounds is not None and (lo < bounds[0] or hi > bounds[1]):
                    raise ValueError(
                        f"{name}: must lie within [{bounds[0]}, {bounds[1]}], got [{lo}, {hi}]"
                    )
        return self


# --------------------------------------------------------------------------- the op registry


@dataclass(frozen=True)
class Op:
    """One registered degradation.

    Attributes:
        name: the name presets use.
        params: its frozen parameter dataclass.
        config: its pydantic preset config (ranges and `p`).
        sample: `(g, cfg, t, h, w, bank) -> params` for one window.
        apply: `(x, batched params, bank) -> x` on `(B, T, C, H, W)`.
        batched: False when windows cannot share one call (variable-length parameters).
        bounded: True when the output stays in [0, 1] for inputs in [0, 1] (no clamp needed).
    """

    name: str
    params: type
    config: type[OpConfig]
    sample: Callable[..., Any]
    apply: Callable[..., Tensor]
    batched: bool = True
    doc: str = ""
    bounded: bool = False


OPS: dict[str, Op] = {}


# Ops whose output stays in [0, 1] for inputs in [0, 1] (convex filters, in-range blends,
# codecs): the pipeline skips their clamp.
BOUNDED = {
    "blur",
    "weave",
    "jpeg",
    "codec",
    "vignette",
    "monochrome",
    "contrast",
    "damage",
    "snow",
    "interlace",
}


def register(op: Op) -> Op:
    if op.name in BOUNDED:
        op = dataclasses.replace(op, bounded=True)
    OPS[op.name] = op
    return op


# ---------------------------------------------------------------- params <-> batches, JSON


def stack_params(items: Sequence[Any], device: torch.device | str = "cpu") -> Any:
    """Stack the parameters of `B` windows into one dataclass with a leading `B` on every field.

    Tensors are stacked (and moved to `device`), floats and ints become `(B,)` tensors, strings
    must agree (the pipeline groups by them) and tuples become a tuple of the `B` values.
    """
    first = items[0]
    out: dict[str, Any] = {}
    for f in dataclasses.fields(first):
        vals = [getattr(p, f.name) for p in items]
        v0 = vals[0]
        if isinstance(v0, Tensor):
            out[f.name] = torch.stack(vals).to(device)
        elif isinstance(v0, bool):
            out[f.name] = torch.tensor(vals, dtype=torch.bool, device=device)
        elif isinstance(v0, int):
            out[f.name] = torch.tensor(vals, dtype=torch.int64, device=device)
        elif isinstance(v0, float):
            out[f.name] = torch.tensor(vals, dtype=torch.float32, device=device)
        elif isinstance(v0, str):
            if any(v != v0 for v in vals):
                raise ValueError(f"{type(first).__name__}.{f.name}: windows disagree: {vals}")
            out[f.name] = v0
        else:
            out[f.name] = tuple(vals)
    return type(first)(**out)


def take(p: Any, i: int) -> Any:
    """Window `i` of batched parameters, still batched (a batch of one)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(p):
        v = getattr(p, f.name)
        out[f.name] = v[i : i + 1] if isinstance(v, (Tensor, tuple)) else v
    return type(p)(**out)


def group_key(p: Any) -> tuple[Any, ...]:
    """Windows whose parameters share this key can be stacked into one call."""
    key: list[Any] = []
    for f in dataclasses.fields(p):
        v = getattr(p, f.name)
        if isinstance(v, Tensor):
            key.append((tuple(v.shape), str(v.dtype)))
        elif isinstance(v, str):
            key.append(v)
        elif isinstance(v, (tuple, list)):
            key.append(len(v))
    return tuple(key)


def params_to_json(p: Any) -> dict[str, Any]:
    """A JSON-safe dict of one window's parameters (exact: float32 survives a trip through JSON)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(p):
        v = getattr(p, f.name)
        if isinstance(v, Tensor):
            out[f.name] = {"dtype": str(v.dtype).removeprefix("torch."), "data": v.tolist()}
        else:
            out[f.name] = _plain(v)
    return out


def params_from_json(cls: type, d: dict[str, Any]) -> Any:
    """The inverse of `params_to_json`."""
    kw: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise RefusedError(f"degradation: {cls.__name__}: unknown fields {sorted(unknown)}")
    for name in names:
        if name not in d:
            raise RefusedError(f"degradation: {cls.__name__}: missing field {name!r}")
        v = d[name]
        if isinstance(v, dict) and set(v) == {"dtype", "data"}:
            kw[name] = torch.tensor(v["data"], dtype=getattr(torch, v["dtype"]))
        else:
            kw[name] = _tuples(v)
    return cls(**kw)


def _plain(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    return v


def _tuples(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_tuples(x) for x in v)
    return v


def apply_op(op: Op, x: Tensor, params: Any, bank: TemplateBank | None = None) -> Tensor:
    """Run `op` on `x` with stacked `params` (used by tests and the pipeline)."""
    return op.apply(x, params, bank)
