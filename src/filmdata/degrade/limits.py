"""Bounds on recorded parameters: a `degradation` record read back from a shard is untrusted
input (issue 9), so before it is replayed every value must be finite and within what a sampler
could have drawn, or the record is refused. Without this a crafted row could ask for a
billion-pixel resize, an endless dropout loop or a huge kernel."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from torch import Tensor

from ..errors import RefusedError
from .blend import MODES


class PerWidth(float):
    """A bound in pixels of a 256-pixel-wide frame: the value recorded is a preset's value
    times w / 256 (`composite.sample_tape`), so the bound is scaled by max(w, 256) / 256 too;
    a fixed bound would refuse a valid preset's rows at large widths (a chroma delay of 20 at
    1024 px is recorded as 80)."""


# op -> field -> (lo, hi), for scalars and for every element of tensors. `S` stands for
# 4 * max(h, w, 64) (positions and lengths in pixels of the window); `PerWidth(v)` for v
# pixels of a 256-wide frame, scaled with the window's width as weave's `S` is.
S = 1e30
_BOUNDS: dict[str, dict[str, tuple[Any, Any]]] = {
    "flicker": {"grid": (1, 64), "field_amp": (0, 10), "gains": (-10, 10), "offsets": (-10, 10)},
    "grain": {"size": (0.5, 64), "chroma": (0, 1), "amounts": (0, 10)},
    "blur": {"sizes": (0, 64), "angle": (-10, 10)},
    "resample": {"scale": (0.01, 1)},
    "weave": {"dx": (-S, S), "dy": (-S, S), "rot": (-45, 45)},
    "jpeg": {"qualities": (1, 100)},
    "codec": {"quality": (0, 51), "gop": (1, 250)},
    "snow": {"density": (0, 1), "dropouts": (0, 1000), "length": (1, 1000)},
    "lines": {
        "wave": (0, 50),
        "jitter": (0, 500),
        "band_y": (-100, 100),
        "band_h": (0, 2),
        "head_lines": (0, 1),
        "head_shift": (-S, S),
    },
    "tape": {
        "luma_sigma": (0, PerWidth(64)),
        "chroma_sigma": (0, PerWidth(64)),
        "chroma_delay": (PerWidth(-64), PerWidth(64)),
        "smear": (0, 0.99),
        "ringing": (0, 10),
    },
    "composite": {"crosstalk": (0, 1)},
}
_CHOICES = {
    ("blur", "kind"): ("gaussian", "defocus", "motion"),
    ("codec", "codec"): ("h264", "mpeg2"),
    ("resample", "down"): ("area", "bilinear"),
    ("resample", "up"): ("bilinear", "bicubic"),
    ("damage", "mode"): MODES,
}


def check_params(op: str, p: Any, t: int, h: int, w: int) -> None:
    """Refuse parameters of `op` (one window) that no sampler could have drawn."""
    size = 4 * max(h, w, 64)
    bounds = _BOUNDS.get(op, {})

    def bound(b: Any) -> Any:
        if b in (S, -S):
            return size if b > 0 else -size
        return float(b) * max(w, 256) / 256 if isinstance(b, PerWidth) else b

    def bad(field: str, why: str) -> RefusedError:
        return RefusedError(f"degradation: op {op!r}: {field}: {why}")

    for f in dataclasses.fields(p):
        v = getattr(p, f.name)
        if isinstance(v, Tensor):
            if v.numel() > 16 * t + 64:
                raise bad(f.name, f"{v.numel()} values for a window of {t} frames")
            if v.is_floating_point() and not bool(v.isfinite().all()):
                raise bad(f.name, "not finite")
            vals = [float(v.min()), float(v.max())] if v.numel() else []
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            vals = []
        else:
            if not math.isfinite(v):
                raise bad(f.name, "not finite")
            vals = [float(v)]
        if f.name in bounds:
            lo, hi = (bound(b) for b in bounds[f.name])
            for x in vals:
                if not lo <= x <= hi:
                    raise bad(f.name, f"{x} outside [{lo}, {hi}]")
        choices = _CHOICES.get((op, f.name))
        if choices is not None and v not in choices:
            raise bad(f.name, f"{v!r} is not one of {', '.join(choices)}")
    if op == "damage":
        _check_placements(p.placements, t, 4 * size)


def _check_placements(placements: Any, t: int, size: int) -> None:
    if not isinstance(placements, tuple) or len(placements) > 20000:
        raise RefusedError("degradation: op 'damage': placements: malformed or too many")
    for pl in placements:
        ok = isinstance(pl, tuple) and len(pl) == 9
        if ok:
            frame, kind, i, y, x, hh, ww, orient, a = pl
            ok = (
                isinstance(kind, str)
                and all(
                    isinstance(n, int) and not isinstance(n, bool)
                    for n in (frame, i, y, x, hh, ww, orient)
                )
                and isinstance(a, (int, float))
                and 0 <= frame < t
                and 0 <= i < 100000
                and -size <= y <= size
                and -size <= x <= size
                and 1 <= hh <= size
                and 1 <= ww <= size
                and 0 <= orient <= 7
                and -1 <= a <= 1
            )
        if not ok:
            raise RefusedError(f"degradation: op 'damage': placement {pl!r} out of range")
