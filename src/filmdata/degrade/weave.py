"""Gate weave and jitter: the frame moves in the projector/scanner gate.

Weave is a slow, smooth drift (a mean-reverting random walk) of the frame's position and
rotation; jitter is a small independent shake on top, frame to frame. Applied as one affine
warp per frame (`grid_sample`, reflection padding), batched over windows and frames.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from .params import Batched, Op, OpConfig, owned, register, span, uniform, walk


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

    Bilinear resampling with replicated borders. A window without rotation (|angle| < 0.01
    degree in every frame) is warped by a separable sub-pixel shift, done with slices and two
    lerps per frame, several times cheaper on the CPU than `grid_sample` and the same up to
    float rounding. The choice is made per window, so a window's pixels do not depend on the
    others in its batch.
    """
    b, t, c, h, w = x.shape
    turns = (p.rot.reshape(b, t).abs() >= 0.01).any(1).tolist()
    dx, dy = p.dx.reshape(b, t).float().cpu(), p.dy.reshape(b, t).float().cpu()
    rot = p.rot.reshape(b, t)
    if not any(turns):
        flat = x.reshape(b * t, c, h, w)  # a view of x when it is ours: written into
        return _shift(flat, dx.reshape(-1), dy.reshape(-1), into=owned(x)).reshape(x.shape)
    if all(turns):
        y = _rotate(x.reshape(b * t, c, h, w), dx.reshape(-1), dy.reshape(-1), rot.reshape(-1))
        return y.reshape(x.shape)
    out = torch.empty_like(x)
    for i, turn in enumerate(turns):
        xi = x[i].reshape(t, c, h, w)
        out[i] = _rotate(xi, dx[i], dy[i], rot[i]) if turn else _shift(xi, dx[i], dy[i])
    return out


def _rotate(x: Tensor, dx: Tensor, dy: Tensor, rot: Tensor) -> Tensor:
    """Rotate each frame of `x` (N, C, H, W) about its centre by `rot` degrees and shift it by
    (dx, dy) pixels, with `grid_sample`."""
    n, c, h, w = x.shape
    a = torch.deg2rad(rot.to(x))
    cos, sin = torch.cos(a)[:, None, None], torch.sin(a)[:, None, None]
    # Output pixel centres in [-1, 1] (align_corners=False), rotated about the centre, shifted.
    xs = (torch.arange(w, device=x.device, dtype=x.dtype) * 2 + 1) / w - 1
    ys = (torch.arange(h, device=x.device, dtype=x.dtype) * 2 + 1) / h - 1
    xs, ys = xs.view(1, 1, w), ys.view(1, h, 1)
    sx = cos * xs - sin * ys * h / w - (2 * dx.to(x) / w)[:, None, None]
    sy = sin * xs * w / h + cos * ys - (2 * dy.to(x) / h)[:, None, None]
    grid = _interleave(sx, sy)  # (N, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


_PAD = threading.local()  # each thread's padding buffer (CPU), reused from call to call


def _replicate_pad(x: Tensor, m: int) -> Tensor:
    """`F.pad(x, (m, m, m, m), mode="replicate")`: on the CPU in a buffer this thread reuses
    (the padded size changes with every window's shift: a fresh clip-sized block each time
    fragmented the heap, whose new pages fault in). The same values (copies only); valid
    until this thread's next call."""
    if x.device.type != "cpu" or x.dtype != torch.float32:
        return F.pad(x, (m, m, m, m), mode="replicate")
    n, c, h, w = x.shape
    shape = (n, c, h + 2 * m, w + 2 * m)
    need = shape[0] * shape[1] * shape[2] * shape[3]
    buf = getattr(_PAD, "buf", None)
    if buf is None or buf.numel() < need:
        buf = _PAD.buf = torch.empty(need, dtype=torch.float32)
    xp = buf[:need].view(shape)
    xp[:, :, m : m + h, m : m + w].copy_(x)
    xp[:, :, :m, m : m + w].copy_(x[:, :, :1].expand(n, c, m, w))
    xp[:, :, m + h :, m : m + w].copy_(x[:, :, h - 1 :].expand(n, c, m, w))
    xp[:, :, :, :m].copy_(xp[:, :, :, m : m + 1].expand(*shape[:3], m))
    xp[:, :, :, m + w :].copy_(xp[:, :, :, m + w - 1 : m + w].expand(*shape[:3], m))
    return xp


def _interleave(sx: Tensor, sy: Tensor) -> Tensor:
    """`torch.stack([sx, sy], -1)`: on the CPU merged by OpenCV, frame by frame (torch's
    copy into a last dimension of 2 took a third of the rotation's time); the same values."""
    if sx.device.type != "cpu" or sx.dtype != torch.float32:
        return torch.stack([sx, sy], -1)
    import cv2

    sx, sy = sx.contiguous(), sy.contiguous()
    grid = torch.empty((*sx.shape, 2), dtype=sx.dtype)
    a, b, g = sx.numpy(), sy.numpy(), grid.numpy()
    for i in range(a.shape[0]):
        cv2.merge([a[i], b[i]], dst=g[i])
    return grid


def _shift(x: Tensor, dx: Tensor, dy: Tensor, into: bool = False) -> Tensor:
    """Move each frame of `x` (N, C, H, W) by (dx, dy) pixels: out(y, x) = in(y - dy, x - dx).
    `into`: written into `x` (read only through its padded copy)."""
    n, c, h, w = x.shape
    m = int(max(float(dx.abs().max()), float(dy.abs().max()))) + 2
    xp = _replicate_pad(x, m)
    out = x if into else torch.empty_like(x)
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
