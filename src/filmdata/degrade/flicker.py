"""Frame-level flicker: a global gain/offset random walk plus a smooth spatial field.

Old prints flicker because exposure, development and the projector lamp vary from frame to
frame, and unevenly over the frame. Per frame `t`::

    out = x * gain_t * (1 + amp * field_t(y, x)) + offset_t

`field_t` is a coarse random grid (drifting over time) upsampled bicubically: smooth, low
frequency, different in each corner of the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .params import (
    Batched,
    Op,
    OpConfig,
    bview,
    noise,
    owned,
    randint,
    register,
    seed_of,
    span,
    stack,
    uniform,
    walk,
)


class FlickerConfig(OpConfig):
    gain: tuple[float, float] = span((0.03, 0.12), 0.0, 1.0)
    offset: tuple[float, float] = span((0.0, 0.03), 0.0, 0.5)
    field: tuple[float, float] = span((0.0, 0.15), 0.0, 1.0)
    grid: tuple[int, int] = span((2, 4), 1, 16)


@dataclass(frozen=True)
class FlickerParams:
    gains: Tensor  # (T,) per-frame multiplicative gain
    offsets: Tensor  # (T,) per-frame additive offset
    field_amp: float  # amplitude of the smooth spatial field
    grid: int  # coarse grid size of the field
    seed: int  # seed of the field's noise


def sample_flicker(
    g: torch.Generator, cfg: FlickerConfig, t: int, h: int, w: int, bank: object = None
) -> FlickerParams:
    amount = uniform(g, *cfg.gain)
    off = uniform(g, *cfg.offset)
    gains = 1.0 + amount * walk(g, t, 1.0, pull=0.6)
    offsets = off * walk(g, t, 1.0, pull=0.6)
    return FlickerParams(
        gains.clamp(0.3, 1.7),
        offsets.clamp(-0.3, 0.3),
        uniform(g, *cfg.field),
        randint(g, *cfg.grid),
        seed_of(g),
    )


def _cubic_matrix(n_in: int, n_out: int) -> Tensor:
    """`(n_out, n_in)` matrix of 1-D bicubic upsampling (`F.interpolate`, align_corners=False)."""
    e = torch.eye(n_in)[:, None, :, None].expand(n_in, 1, n_in, 2).contiguous()
    return F.interpolate(e, size=(n_out, 2), mode="bicubic", align_corners=False)[:, 0, :, 0].T


def flicker_field(seed: int, grid: int, t: int, h: int, w: int, device: torch.device) -> Tensor:
    """`(t, 1, h, w)` smooth field of unit scale: a drifting `grid x grid` noise, bicubic up.

    Bicubic upsampling is separable, so it is two small matmuls (`Wy @ G @ Wx^T`), not a
    full-resolution interpolation.
    """
    n = noise(seed, (t + 1, 1, grid + 1, grid + 1))
    coarse = n[:1] + 0.5 * n[1:]  # shared base + per-frame drift
    wy = _cubic_matrix(grid + 1, h).to(device)
    wx = _cubic_matrix(grid + 1, w).to(device)
    field = wy @ coarse.to(device) @ wx.T
    return field.clamp_(-2.5, 2.5).div_(2)  # ours: the same values as `clamp(...) / 2`


def flicker(x: Tensor, p: Batched) -> Tensor:
    """Apply flicker. `x`: (B, T, C, H, W); `p`: batched FlickerParams. Returns the same shape."""
    b, t, _, h, w = x.shape
    gain = bview(p.gains, x)  # (B, T, 1, 1, 1)
    amps = p.field_amp.tolist()
    if any(a != 0 for a in amps):
        fields = stack(
            [
                flicker_field(int(s), int(gr), t, h, w, x.device).to(x.dtype).mul_(a).add_(1)
                for a, s, gr in zip(amps, p.seed.tolist(), p.grid.tolist())
            ]
        )  # (B, T, 1, H, W)
        gain = fields.mul_(gain)
    off = bview(p.offsets, x)
    return torch.addcmul(off, x, gain, out=x) if owned(x) else torch.addcmul(off, x, gain)


register(
    Op(
        "flicker",
        FlickerParams,
        FlickerConfig,
        sample_flicker,
        lambda x, p, bank: flicker(x, p),
        doc="frame-level gain/offset random walk and a smooth spatial flicker field",
    )
)
