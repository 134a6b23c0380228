"""Gate weave and jitter: the frame moves in the projector/scanner gate.

Weave is a slow, smooth drift (a mean-reverting random walk) of the frame's position and
rotation; jitter is a small independent shake on top, frame to frame. Applied as one affine
warp per frame (`grid_sample`, reflection padding), batched over windows and frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from .params import Batched, Op, OpConfig, register, span, uniform, walk


class WeaveConfig(OpConfig):
    weave: tuple[float, float] = span((0.3, 1.5), 0.0, 20.0)
    jitter: tuple[float, float] = span((0.0, 0.8), 0.0, 20.0)
    rotation: tuple[float, float] = span((0.0, 0.3), 0.0, 10.0)
    rotate_p: float = Field(0.3, ge=0.0, le=1.0)  # share of windows that also rotate


@dataclass(frozen=True)
class WeaveParams:
    dx: Tensor  # (T,) horizontal shift in pixels
    dy: Tensor  # (T,) vertical shift in pixels
    rot: Tensor  # (T,) rotation in degrees


def sample_weave(
    g: torch.Generator, cfg: WeaveConfig, t: int, h: int, w: int, bank=None
) -> WeaveParams:
    amp, jit, rot = uniform(g, *cfg.weave), uniform(g, *cfg.jitter), uniform(g, *cfg.rotation)
    dx = amp * walk(g, t, 1.0, pull=0.3) + jit * torch.randn(t, generator=g)
    dy = amp * walk(g, t, 1.0, pull=0.3) + jit * torch.randn(t, generator=g)
    rots = rot * walk(g, t, 1.0, pull=0.3)
    if uniform(g, 0, 1) >= cfg.rotate_p:
        rots = torch.zeros(t)
    return WeaveParams(dx, dy, rots)


def weave(x: Tensor, p: Batched) -> Tensor:
    """Shift and rotate every frame. `x`: (B, T, C, H, W); `p`: batched. Returns the same shape.

    Bilinear resampling with replicated borders. Without rotation (|angle| < 0.01 degree in every
    frame) the warp is a separable sub-pixel shift, done with slices and two lerps per frame,
    several times cheaper on the CPU than `grid_sample` and the same up to float rounding.
    """
    b, t, c, h, w = x.shape
    n = b * t
    dx, dy = p.dx.reshape(n).float().cpu(), p.dy.reshape(n).float().cpu()
    if float(p.rot.abs().max()) < 0.01:
        return _shift(x.reshape(n, c, h, w), dx, dy).reshape(b, t, c, h, w)
    a = torch.deg2rad(p.rot.reshape(n).to(x))
    cos, sin = torch.cos(a)[:, None, None], torch.sin(a)[:, None, None]
    # Output pixel centres in [-1, 1] (align_corners=False), rotated about the centre, shifted.
    xs = (torch.arange(w, device=x.device, dtype=x.dtype) * 2 + 1) / w - 1
    ys = (torch.arange(h, device=x.device, dtype=x.dtype) * 2 + 1) / h - 1
    xs, ys = xs.view(1, 1, w), ys.view(1, h, 1)
    sx = cos * xs - sin * ys * h / w - (2 * dx.to(x) / w)[:, None, None]
    sy = sin * xs * w / h + cos * ys - (2 * dy.to(x) / h)[:, None, None]
    grid = torch.stack([sx, sy], -1)  # (N, H, W, 2)
    y = F.grid_sample(
        x.reshape(n, c, h, w), grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return y.reshape(b, t, c, h, w)


def _shift(x: Tensor, dx: Tensor, dy: Tensor) -> Tensor:
    """Move each frame of `x` (N, C, H, W) by (dx, dy) pixels: out(y, x) = in(y - dy, x - dx)."""
    n, c, h, w = x.shape
    m = int(max(float(dx.abs().max()), float(dy.abs().max()))) + 2
    xp = F.pad(x, (m, m, m, m), mode="replicate")
    out = torch.empty_like(x)
    for i in range(n):
        fx, fy = -float(dx[i]), -float(dy[i])  # sample position offset
        ix, iy = math.floor(fx), math.floor(fy)
        ax, ay = fx - ix, fy - iy
        r0, c0 = m + iy, m + ix
        rows = xp[i, :, r0 : r0 + h + 1, c0 : c0 + w + 1]
        cols = torch.lerp(rows[:, :, :w], rows[:, :, 1:], ax) if ax else rows[:, :, :w]
        if ay:
            torch.lerp(cols[:, :h], cols[:, 1:], ay, out=out[i])
        else:
            out[i] = cols[:, :h]
    return out


register(
    Op(
        "weave",
        WeaveParams,
        WeaveConfig,
        sample_weave,
        lambda x, p, bank: weave(x, p),
        doc="gate weave (smooth drift) and jitter (per-frame shake)",
    )
)
