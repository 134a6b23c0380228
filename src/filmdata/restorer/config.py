"""Restorer configs: frozen dataclasses, named presets `tiny`, `small`, `base`, or a YAML/JSON file.

`tiny` learns visibly in 60 CPU steps (small crops, high learning rate); `small` is sized for
about an hour on one GPU; `base` is the real baseline (old-film restorers are small: RTN has ~1M
parameters).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RefusedError
from ..paths import refuse_unless_file

OBJECTIVES = ("diffusion", "regression")
SAMPLERS = ("ddim", "dpm")
#: the fields only the diffusion objective reads (its schedule and sampling)
DIFFUSION_ONLY = ("train_timesteps", "sampler", "sample_steps", "start")


@dataclass(frozen=True)
class RestorerConfig:
    """Everything that makes a run: the model, the diffusion, the data and the optimisation."""

    name: str = "tiny"
    # model: a UNet over (B, T, C, H, W) windows
    window: int = 3  # T, frames per training window
    channels: int = 16  # width of the first level
    mults: tuple[int, ...] = (1, 2)  # width multiplier per level (len = number of levels)
    blocks: int = 1  # residual blocks per level
    attention: bool = True  # at the lowest resolution: spatial (in crop-sized windows), temporal
    heads: int = 2
    # diffusion
    objective: str = "diffusion"  # diffusion (v-prediction) | regression (L1, same backbone)
    train_timesteps: int = 1000
    residual_scale: float = 0.5  # x0 = (gt - lq) / residual_scale: the residual over the input
    sampler: str = "ddim"  # ddim | dpm
    sample_steps: int = 4  # tiny: fewer steps restore better while barely trained
    start: float = 1.0  # sampling starts at this fraction of the schedule (< 1: from the input)
    # data
    crop: int = 32
    batch_size: int = 8
    shuffle_buffer: int = 64
    # optimisation
    steps: int = 60
    lr: float = 3e-3
    warmup: int = 5
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema: float = 0.9
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 50
    workers: int = 0

    def __post_init__(self) -> None:
        _check(self)

    def replace(self, **changes: Any) -> RestorerConfig:
        """A copy with some fields changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["mults"] = list(self.mults)
        return d

    @property
    def multiple(self) -> int:
        """Frame sides must be a multiple of this: 2 ** (levels - 1)."""
        return 2 ** (len(self.mults) - 1)

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "config", saved: bool = False) -> RestorerConfig:
        """Build from a mapping (`base: NAME` starts from a preset); unknown keys and wrong types
        are refused, naming the field. A regression config that sets diffusion-only fields
        (`DIFFUSION_ONLY`) to other values than its preset's gets a warning naming them: the
        run ignores them (`saved`: a run's own config.json, which records every field, none)."""
        if not isinstance(data, dict):
            raise RefusedError(f"{where}: expected a mapping of config fields, got {data!r}")
        data = dict(data)
        base_name = str(data.pop("base", "tiny"))
        if base_name not in PRESETS:
            raise RefusedError(f"{where}: base {base_name!r} is not one of {', '.join(PRESETS)}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RefusedError(
                f"{where}: unknown field(s) {', '.join(unknown)}; allowed: base, {', '.join(known)}"
            )
        values = PRESETS[base_name].to_dict()
        for k, v in data.items():
            default = values[k]
            if k == "mults":
                if not isinstance(v, (list, tuple)) or not all(
                    isinstance(m, int) and not isinstance(m, bool) for m in v
                ):
                    raise RefusedError(f"{where}: field 'mults' must be a list of ints, got {v!r}")
                v = tuple(v)
            elif isinstance(default, float) and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            elif type(v) is not type(default):
                raise RefusedError(
                    f"{where}: field {k!r} must be {type(default).__name__}, got {v!r}"
                )
            values[k] = v
        values["mults"] = tuple(values["mults"])
        preset = PRESETS[base_name].to_dict()
        unused = [k for k in DIFFUSION_ONLY if k in data and values[k] != preset[k]]
        if values["objective"] == "regression" and unused and not saved:
            import warnings

            warnings.warn(
                f"{where}: {', '.join(unused)} set, but the objective is regression, which "
                "restores in one pass and never samples: ignored",
                stacklevel=2,
            )
        try:
            return cls(**values)
        except _InvalidField as e:  # name the file the value came from, not just the config
            raise RefusedError(
                f"{where}: field {e.field}={e.value!r} is invalid; {e.allowed}"
            ) from None


class _InvalidField(RefusedError):
    """A field whose value `_check` refuses; `from_dict` re-raises it naming its source."""

    def __init__(self, name: str, field_: str, value: Any, allowed: str) -> None:
        self.field, self.value, self.allowed = field_, value, allowed
        super().__init__(f"config {name!r}: {field_}={value!r} is invalid; {allowed}")


def _check(c: RestorerConfig) -> None:
    def bad(field_: str, value: Any, allowed: str) -> RefusedError:
        return _InvalidField(c.name, field_, value, allowed)

    for f in dataclasses.fields(c):  # nan passes every comparison below; inf, most
        v = getattr(c, f.name)
        if isinstance(v, float) and not math.isfinite(v):
            raise bad(f.name, v, "use a finite number")
    if any(ch in c.name for ch in "/\\\0"):  # it names the run folder under ROOT/runs/
        raise bad("name", c.name, "use a name without / or \\ (it names the run's folder)")
    if c.objective not in OBJECTIVES:
        raise bad("objective", c.objective, f"use one of {', '.join(OBJECTIVES)}")
    if c.sampler not in SAMPLERS:
        raise bad("sampler", c.sampler, f"use one of {', '.join(SAMPLERS)}")
    if c.window < 1:
        raise bad("window", c.window, "use 1 or more frames")
    if not c.mults or any(m < 1 for m in c.mults):
        raise bad("mults", c.mults, "use a non-empty list of positive ints")
    if c.channels < 4 or c.channels % 4:
        raise bad("channels", c.channels, "use a multiple of 4 (GroupNorm groups)")
    odd = sorted(n for n in _normed_widths(c) if n % min(8, n // 4))
    if odd:
        raise bad(
            "channels",
            c.channels,
            f"with mults {list(c.mults)} the model normalises {odd[0]} channels, which "
            f"GroupNorm's {min(8, odd[0] // 4)} groups do not divide; use a multiple of 8",
        )
    if c.crop < 1 or c.crop % c.multiple:
        raise bad("crop", c.crop, f"use a positive multiple of {c.multiple} (2 ** (levels - 1))")
    for name in (
        "steps",
        "batch_size",
        "sample_steps",
        "log_every",
        "ckpt_every",
        "heads",
        "shuffle_buffer",
    ):
        if getattr(c, name) < 1:
            raise bad(name, getattr(c, name), "use 1 or more")
    for name in ("warmup", "workers", "seed", "blocks"):
        if getattr(c, name) < 0:
            raise bad(name, getattr(c, name), "use 0 or more")
    if c.train_timesteps < 2:  # one timestep makes a NaN loss; none, an empty schedule
        raise bad("train_timesteps", c.train_timesteps, "use 2 or more")
    if c.weight_decay < 0:
        raise bad("weight_decay", c.weight_decay, "use 0 or more")
    if c.grad_clip <= 0:  # a norm clipped to 0 never moves the weights
        raise bad("grad_clip", c.grad_clip, "use a positive gradient norm")
    if not 0 <= c.ema < 1:
        raise bad("ema", c.ema, "use a decay in [0, 1)")
    if not 0 < c.start <= 1:
        raise bad("start", c.start, "use a fraction in (0, 1]")
    if c.lr <= 0:
        raise bad("lr", c.lr, "use a positive learning rate")
    if c.residual_scale <= 0:
        raise bad("residual_scale", c.residual_scale, "use a positive scale")
    if c.sample_steps > most_sample_steps(c):
        raise bad("sample_steps", c.sample_steps, _steps_allowed(c))


def most_sample_steps(c: RestorerConfig) -> int:
    """The most sampling steps the run's schedule has: the sampler sets ceil(steps / start)
    of its train_timesteps (`sampling.sample_window`), and has no more than those. (No limit
    for the regression objective, which does not sample.)"""
    if c.objective != "diffusion":
        return sys.maxsize
    n = int(c.train_timesteps * c.start)
    return n if math.ceil(n / c.start) <= c.train_timesteps else n - 1


def _steps_allowed(c: RestorerConfig) -> str:
    return f"use at most {most_sample_steps(c)} (train_timesteps {c.train_timesteps}" + (
        f" x start {c.start})" if c.start < 1 else ")"
    )


def check_steps(c: RestorerConfig, steps: int | None, run: os.PathLike[str] | str = "") -> None:
    """Refuse `--steps` beyond what the run's schedule has (`most_sample_steps`), and any for
    the regression objective, which restores in one pass: it has no sampling steps, and
    `sampling.sample_window` took and dropped them (the same output at any --steps).

    Raises:
        RefusedError: naming the option, the value and the most allowed (or the run and its
            objective).
    """
    if steps is not None and c.objective == "regression":
        raise RefusedError(
            f"--steps {steps}: {'run ' + str(run) if run else 'the run'} was trained with the "
            "regression objective, which restores in one pass and has no sampling steps; "
            "drop --steps"
        )
    if steps is not None and steps > most_sample_steps(c):
        raise RefusedError(
            f"--steps {steps}: more than the run's schedule has; {_steps_allowed(c)}"
        )


def _normed_widths(c: RestorerConfig) -> set[int]:
    """The channel counts `model.UNet` puts through GroupNorm(min(8, n // 4), n): each block's
    input and output on the way down, and on the way up the concatenations with the skips."""
    widths = [c.channels * m for m in c.mults]
    cin, skips, out = c.channels, [c.channels], {c.channels}
    for i, w in enumerate(widths):
        for _ in range(c.blocks):
            out |= {cin, w}
            cin = w
            skips.append(cin)
        if i < len(widths) - 1:
            skips.append(cin)
    for w in reversed(widths):
        for _ in range(c.blocks + 1):
            out |= {cin + skips.pop(), w}
            cin = w
    return out


PRESETS: dict[str, RestorerConfig] = {
    "tiny": RestorerConfig(),
    "small": RestorerConfig(
        name="small",
        sample_steps=8,
        window=5,
        channels=32,
        mults=(1, 2, 4),
        blocks=2,
        heads=4,
        crop=128,
        batch_size=8,
        steps=20_000,
        lr=2e-4,
        warmup=500,
        ema=0.999,
        log_every=50,
        ckpt_every=2000,
        workers=4,
        shuffle_buffer=512,
    ),
    "base": RestorerConfig(
        name="base",
        sample_steps=8,
        window=7,
        channels=64,
        mults=(1, 2, 2, 4),
        blocks=2,
        heads=8,
        crop=256,
        batch_size=8,
        steps=200_000,
        lr=1e-4,
        warmup=2000,
        ema=0.9995,
        log_every=100,
        ckpt_every=5000,
        workers=8,
        shuffle_buffer=2048,
    ),
}


def load_config(spec: str | os.PathLike[str] | RestorerConfig) -> RestorerConfig:
    """A preset name (`tiny`, `small`, `base`) or a YAML/JSON file of fields (`base: NAME` starts
    from a preset).

    Raises:
        RefusedError: unknown preset, unreadable file, unknown field or invalid value.
    """
    from ..manifest import load_yaml

    if isinstance(spec, RestorerConfig):
        return spec
    text = str(spec)
    if text in PRESETS:
        return PRESETS[text]
    path = Path(text)
    refuse_unless_file(
        path, "config file", name=f"config {text!r}", hint=f"not a preset ({', '.join(PRESETS)})"
    )
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise RefusedError(f"{path}: cannot read as JSON: {e}") from None
    else:
        data = load_yaml(path)
    if isinstance(data, dict):
        data.setdefault("name", path.stem)
    return RestorerConfig.from_dict(data, where=str(path))


__all__ = ["OBJECTIVES", "PRESETS", "SAMPLERS", "RestorerConfig", "load_config"]
