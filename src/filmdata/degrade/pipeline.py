"""The pipeline: sample a window's degradation from a preset, apply a batch of them, replay one.

1. `sample_degradation(preset, seed, key, t, h, w, bank)` hashes `(seed, key)` into a fresh CPU
   `torch.Generator` (never one advanced across windows, so a window's LQ does not depend on which
   windows came before it) and, for each op of the preset in order, derives the op's own generator
   from `(seed, key, step)`, draws "is it applied" against its `p`, then its parameters.
2. `apply_degradation(gt, degs, bank)` runs the preset's steps in order over a batch of windows;
   at each step the windows that apply the op and whose parameters have equal shapes are stacked
   and run in one call.
3. `Degradation.to_json()` records the preset, the seed, the key and every sampled parameter;
   `replay(gt, record, bank)` redoes the LQ from the GT bit-exactly on the same device.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._memory import keep_freed_memory
from ..errors import RefusedError
from . import ops as _ops  # noqa: F401  (registers every op)
from .limits import check_params
from .params import (
    OPS,
    check_clip,
    frames_to_planes,
    group_key,
    handing,
    params_from_json,
    params_to_json,
    stack_params,
)
from .presets import Preset, preset_from_json
from .templates import TemplateBank

# The version of the ops' arithmetic: a record replays bit-exactly only under the version that
# made it (2: grain's unit-deviation factor folded into sigma, JPEG/codec passes through BGR
# planes, x264 "superfast"). Older records are refused, not replayed to other pixels.
FORMAT = 2


def _generator(*parts: Any) -> torch.Generator:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


@dataclass(frozen=True, eq=False)
class Degradation:
    """One window's sampled degradation: the ordered `(op name, params)` steps it applies.

    `preset` is the preset that made it (recorded whole), `seed` and `key` where its randomness
    came from, `(t, h, w)` the window shape it was sampled for.
    """

    preset: Preset
    seed: int
    key: str
    t: int
    h: int
    w: int
    steps: tuple[tuple[int, str, Any], ...]  # (index of the step in the preset, op name, params)
    templates: str = ""  # the bank's fingerprint, when the steps use one

    @property
    def ops(self) -> tuple[tuple[str, Any], ...]:
        """The ordered `(op name, params)` pairs."""
        return tuple((name, p) for _, name, p in self.steps)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe record: enough to redo the LQ exactly (see `replay`)."""
        return {
            "format": FORMAT,
            "preset": self.preset.to_json(),
            "seed": self.seed,
            "key": self.key,
            "shape": [self.t, self.h, self.w],
            "templates": self.templates,
            "ops": [
                {"step": i, "op": name, "params": params_to_json(p)} for i, name, p in self.steps
            ],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Degradation:
        """Read a record made by `to_json`; a malformed one is refused with the field named."""
        try:
            if d.get("format") != FORMAT:
                raise RefusedError(
                    f"degradation: format: expected {FORMAT}, got {d.get('format')!r}"
                )
            preset = preset_from_json(d["preset"])
            t, h, w = (int(v) for v in d["shape"])
            if not (1 <= t <= 4096 and 1 <= h <= 16384 and 1 <= w <= 16384):
                raise RefusedError(f"degradation: shape: {(t, h, w)} out of range")
            steps = []
            last = -1
            for entry in d["ops"]:
                name, step = entry["op"], int(entry["step"])
                if name not in OPS:
                    raise RefusedError(f"degradation: op {name!r}: unknown op")
                # The step must name this op at this place of the recorded preset.
                if not (last < step < len(preset.ops)) or preset.ops[step][0] != name:
                    raise RefusedError(
                        f"degradation: op {name!r}: step {step} is not in the preset"
                    )
                last = step
                params = params_from_json(OPS[name].params, entry["params"])
                check_params(name, params, t, h, w)  # a record is untrusted input
                steps.append((step, name, params))
            return cls(
                preset, int(d["seed"]), str(d["key"]), t, h, w, tuple(steps), d.get("templates", "")
            )
        except KeyError as e:
            raise RefusedError(f"degradation: missing field {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            raise RefusedError(f"degradation: malformed record: {e}") from None


def sample_degradation(
    preset: Preset,
    seed: int,
    key: str,
    t: int,
    h: int,
    w: int,
    bank: TemplateBank | None = None,
) -> Degradation:
    """Draw one window's degradation, deterministically from `(seed, key)` only.

    Args:
        preset: the validated preset.
        seed: the run's seed.
        key: the window's stable id.
        t, h, w: frames, height and width of the window.
        bank: the templates (needed by the `damage` op).

    Returns:
        The frozen `Degradation`.
    """
    if t < 1 or h < 1 or w < 1:
        raise RefusedError(f"sample_degradation: t, h, w must be >= 1, got {(t, h, w)}")
    steps = []
    uses_bank = False
    for i, (name, cfg) in enumerate(preset.ops):
        g = _generator("filmdata.degrade", seed, key, i, name)
        if torch.rand((), generator=g).item() >= cfg.p:
            continue
        op = OPS[name]
        steps.append((i, name, op.sample(g, cfg, t, h, w, bank)))
        uses_bank = uses_bank or name == "damage"
    fp = bank.fingerprint() if (bank is not None and uses_bank) else ""
    return Degradation(preset, int(seed), str(key), t, h, w, tuple(steps), fp)


def frames_to_clip(frames: np.ndarray) -> Tensor:
    """(T, H, W, 3) uint8 RGB frames to a planar (T, 3, H, W) float32 clip in [0, 1]: the very
    floats of `torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255)`, at a third of
    the cost. Synthesis and `replay_row` both start from it."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
        raise RefusedError(
            f"frames: expected (T, H, W, 3) uint8, got {frames.dtype} {frames.shape}"
        )
    return torch.from_numpy(frames_to_planes(frames))


def apply_degradation(
    gt: Tensor,
    degs: Sequence[Degradation],
    bank: TemplateBank | None = None,
    *,
    inplace: bool = False,
) -> Tensor:
    """Apply one `Degradation` per window to a batch of clips.

    Args:
        gt: `(B, T, C, H, W)` float in [0, 1], any device.
        degs: `B` degradations (sampled for this `T, H, W`).
        bank: the templates, when a degradation uses them.
        inplace: the caller gives `gt` up: on the CPU, a contiguous `gt` is degraded in its own
            memory and returned (no copies; the same pixels).

    Returns:
        `(B, T, C, H, W)` in [0, 1] on `gt`'s device and dtype.
    """
    x = check_clip(gt, "gt")
    b, t, _, h, w = x.shape
    if len(degs) != b:
        raise RefusedError(
            f"apply_degradation: {len(degs)} degradations for a batch of {b} windows"
        )
    for d in degs:
        if (d.t, d.h, d.w) != (t, h, w):
            raise RefusedError(
                f"degradation {d.key!r}: sampled for (T, H, W) = {(d.t, d.h, d.w)}, "
                f"got a clip of {(t, h, w)}"
            )
    if b == 0:
        return x.clone()
    if x.device.type == "cpu":
        keep_freed_memory()  # each op's output reuses freed memory, not fresh pages
        # On the CPU, one window at a time on one thread (torch's and OpenCV's): the working
        # set stays in cache, and intra-op threads on 8 small frames mostly wait for each other
        # (on a busy 2-core machine, 10x slower; worker threads over windows measured no better
        # there). Parallelism belongs to the window level (processes, as DESIGN.md's map over
        # items). Ops are batch-invariant, so the pixels equal a batched call's.
        import cv2

        threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
        torch.set_num_threads(1)
        cv2.setNumThreads(1)
        try:
            if inplace and x.is_contiguous() and x.dtype == torch.float32:
                src = out = x
            else:
                src, out = _owned_copy(x), torch.empty(x.shape, dtype=x.dtype)

            for i, d in enumerate(degs):
                _apply(src[i : i + 1], [d], bank, out=out[i : i + 1], owned=True)
            return out
        finally:
            torch.set_num_threads(threads)
            cv2.setNumThreads(cv_threads)
    return _apply(x, degs, bank)


def _owned_copy(x: Tensor) -> Tensor:
    """A contiguous `(B, T, C, H, W)` copy of `x` that the pipeline may modify in place.

    Frames usually arrive as a permuted view of decoded `(B, T, H, W, C)` pixels; OpenCV's
    `split` de-interleaves them 3x faster than torch's strided copy.
    """
    b, t, c, h, w = x.shape
    if c == 3 and x.dtype == torch.float32 and x.permute(0, 1, 3, 4, 2).is_contiguous():
        import cv2

        a = x.detach().permute(0, 1, 3, 4, 2).numpy()
        out = torch.empty(x.shape, dtype=x.dtype)
        o = out.numpy()
        for i in range(b):
            for j in range(t):
                cv2.split(a[i, j], [o[i, j, 0], o[i, j, 1], o[i, j, 2]])
        return out
    return torch.empty(x.shape, dtype=x.dtype, device=x.device).copy_(x)


@torch.no_grad()
def _apply(
    x: Tensor,
    degs: Sequence[Degradation],
    bank: TemplateBank | None,
    out: Tensor | None = None,
    owned: bool = False,
) -> Tensor:
    b = x.shape[0]
    # Our own contiguous copy (a permuted (B, T, H, W, C) view would slow every op down);
    # ops below may work in place on it.
    if owned:
        x = x.clamp_(0, 1)
    else:
        x = torch.clamp(x, 0, 1, out=torch.empty(x.shape, dtype=x.dtype, device=x.device))
    # Steps run in preset order: gather, for each (step, op), the windows that apply it.
    order: dict[tuple[int, str], list[tuple[int, Any]]] = {}
    for wi, d in enumerate(degs):
        for i, name, p in d.steps:
            order.setdefault((i, name), []).append((wi, p))
    for (_, name), items in sorted(order.items(), key=lambda kv: kv[0][0]):
        op = OPS[name]
        groups: dict[Any, list[tuple[int, Any]]] = {}
        for wi, p in items:
            k = group_key(p) if op.batched else ("window", wi)
            groups.setdefault(k, []).append((wi, p))
        for members in groups.values():
            idx = [wi for wi, _ in members]
            params = stack_params([p for _, p in members], x.device)
            if len(idx) == b:
                with handing(x):  # ours: the op may overwrite it
                    y = op.apply(x, params, bank)
            else:
                sel = torch.tensor(idx, device=x.device)
                y = x.index_copy(0, sel, op.apply(x[sel], params, bank))
            # Ops that can leave [0, 1] are clamped (the next op expects a picture).
            x = y if op.bounded else y.clamp_(0, 1)
    # The last clamp (float rounding of the bounded ones) writes straight into `out`.
    return torch.clamp(x, 0, 1, out=out) if out is not None else x.clamp_(0, 1)


def replay(gt: Tensor, record: dict[str, Any], bank: TemplateBank | None = None) -> Tensor:
    """Redo a window's LQ from its GT and its recorded degradation (bit-exact on one device).

    Args:
        gt: `(T, C, H, W)` or `(1, T, C, H, W)` float in [0, 1].
        record: a `Degradation.to_json()` dict.
        bank: the templates it was made with (checked against the recorded fingerprint).
    """
    d = Degradation.from_json(record)
    if d.templates and (bank is None or bank.fingerprint() != d.templates):
        have = bank.fingerprint() if bank is not None else "none"
        if bank is not None and bank.names_fingerprint() == d.templates:
            # An older record: its fingerprint named the files only, so which pixels made it
            # cannot be told (another seed's pack has the same names); not replayed.
            raise RefusedError(
                f"degradation {d.key!r}: templates {d.templates} is an older fingerprint of "
                "file names only, which cannot tell this pack's pixels from another's; "
                "re-make the dataset (synth --overwrite) to replay it"
            )
        raise RefusedError(
            f"degradation {d.key!r}: made with templates {d.templates}, given {have}; "
            "pass the same --templates folder"
        )
    single = isinstance(gt, Tensor) and gt.dim() == 4
    out = apply_degradation(gt[None] if single else gt, [d], bank)
    return out[0] if single else out
