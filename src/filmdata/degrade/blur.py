"""Blur: gaussian (soft optics, generation loss), defocus (a disk) and motion (a line).

The size drifts a little from frame to frame (focus breathing, shake). Kernels are built per
frame and applied in one depthwise convolution over the whole batch (reflect padding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .params import Batched, Op, OpConfig, choice, owned, register, span, uniform, walk

Kind = Literal["gaussian", "defocus", "motion"]
_REFLECT = cv2.BORDER_REFLECT_101  # = torch's "reflect" padding


class BlurConfig(OpConfig):
    kind: tuple[Kind, ...] = ("gaussian", "defocus", "motion")
    sigma: tuple[float, float] = span((0.4, 1.5), 0.0, 8.0)
    radius: tuple[float, float] = span((1.0, 2.5), 0.0, 8.0)
    length: tuple[float, float] = span((2.0, 7.0), 0.0, 24.0)


@dataclass(frozen=True)
class BlurParams:
    kind: str  # gaussian | defocus | motion
    sizes: Tensor  # (T,) sigma (gaussian), radius (defocus) or length (motion) in pixels
    angle: float  # motion direction in radians


def sample_blur(
    g: torch.Generator, cfg: BlurConfig, t: int, h: int, w: int, bank: object = None
) -> BlurParams:
    kind = choice(g, cfg.kind)
    rng = {"gaussian": cfg.sigma, "defocus": cfg.radius, "motion": cfg.length}[kind]
    base = uniform(g, *rng)
    sizes = (base * (1 + 0.08 * walk(g, t, 1.0, pull=0.5))).clamp(rng[0] * 0.9, rng[1] * 1.1)
    return BlurParams(kind, sizes.clamp_min(0), uniform(g, 0.0, math.pi))


def _radius(kind: str, size: float) -> int:
    if kind == "gaussian":
        return max(1, math.ceil(3 * size))
    return max(1, math.ceil(size if kind == "defocus" else size / 2))


def blur_kernels(kind: str, sizes: Tensor, angles: Tensor, r: int) -> Tensor:
    """Kernels `(N, K)` (gaussian, separable) or `(N, K, K)` for `N` sizes, K = 2r + 1."""
    ax = torch.arange(-r, r + 1, dtype=torch.float32, device=sizes.device)
    s = sizes.float().reshape(-1, 1)
    if kind == "gaussian":
        k = torch.exp(-0.5 * (ax / s.clamp_min(1e-3)) ** 2)
        k = torch.where(s > 1e-3, k, (ax == 0).float())
        return k / k.sum(-1, keepdim=True)
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    if kind == "defocus":
        # A disk with a one-pixel soft edge (anti-aliased pillbox).
        d = (yy**2 + xx**2).sqrt()
        k = (s[..., None] + 0.5 - d).clamp(0, 1)
    else:
        # A line of `length` through the centre at `angle`, one pixel wide (anti-aliased).
        a = angles.float().reshape(-1, 1, 1)
        along = xx * torch.cos(a) + yy * torch.sin(a)
        across = -xx * torch.sin(a) + yy * torch.cos(a)
        half = s[..., None] / 2
        k = (1 - across.abs()).clamp(0, 1) * (half + 0.5 - along.abs()).clamp(0, 1)
    k = k + (k.sum((-1, -2), keepdim=True) == 0) * (xx == 0) * (yy == 0)
    return k / k.sum((-1, -2), keepdim=True)


def blur(x: Tensor, p: Batched) -> Tensor:
    """Blur every frame. `x`: (B, T, C, H, W); `p`: batched. Returns (B, T, C, H, W).

    Windows are convolved in groups of equal kernel radius, so a window's result does not depend
    on the others in its batch (bit-exact replay of a batched run).
    """
    b, t, c, h, w = x.shape
    limit = max(1, min(h, w) // 2 - 1)
    radii = [min(_radius(p.kind, float(s)), limit) for s in p.sizes.reshape(b, t).amax(1).tolist()]
    if len(set(radii)) == 1:
        return _blur(x, p.kind, p.sizes, p.angle, radii[0])
    out = torch.empty_like(x)
    for r in sorted(set(radii)):
        idx = [i for i, ri in enumerate(radii) if ri == r]
        sel = torch.tensor(idx, device=x.device)
        out[sel] = _blur(
            x[sel], p.kind, p.sizes[sel.to(p.sizes.device)], p.angle[sel.to(p.angle.device)], r
        )
    return out


def _blur(x: Tensor, kind: str, sizes: Tensor, angle: Tensor, r: int) -> Tensor:
    b, t, c, h, w = x.shape
    n = b * t * c
    angles = angle.reshape(b, 1).expand(b, t).reshape(b * t)
    k = blur_kernels(kind, sizes.reshape(b * t).cpu(), angles.cpu(), r)
    if x.device.type == "cpu" and x.dtype == torch.float32:
        return _blur_cv2(x, kind, k, into=owned(x)).reshape(b, t, c, h, w)
    k = k.to(device=x.device, dtype=x.dtype)
    k = k.repeat_interleave(c, 0)  # one kernel per (window, frame, channel)
    y = F.pad(x.reshape(1, n, h, w), (r, r, r, r), mode="reflect")
    if kind == "gaussian":
        y = F.conv2d(y, k[:, None, None, :], groups=n)
        y = F.conv2d(y, k[:, None, :, None], groups=n)
    else:
        y = F.conv2d(y, k[:, None], groups=n)
    return y.reshape(b, t, c, h, w)


def _blur_cv2(x: Tensor, kind: str, k: Tensor, into: bool = False) -> Tensor:
    """The CPU path: the same kernels and reflect border, through OpenCV's SIMD filters plane
    by plane (cache-resident; torch's depthwise conv is ~10x slower on the CPU). Agrees with the
    torch path within float rounding. `into`: written into `x` (ours, contiguous), each plane
    filtered from a copy of itself (one plane-sized buffer, not a clip-sized output)."""
    b, t, c, h, w = x.shape
    src = x.detach().reshape(b * t, c, h, w).contiguous().numpy()
    out = src if into else np.empty_like(src)
    plane = np.empty((h, w), np.float32) if into else None
    kn = k.numpy()
    for i in range(b * t):
        for ch in range(c):
            s = src[i, ch]
            if plane is not None:
                np.copyto(plane, s)
                s = plane
            if kind == "gaussian":
                cv2.sepFilter2D(s, -1, kn[i], kn[i], dst=out[i, ch], borderType=_REFLECT)
            else:
                cv2.filter2D(s, -1, kn[i], dst=out[i, ch], borderType=_REFLECT)
    return x if into else torch.from_numpy(out)


register(
    Op(
        "blur",
        BlurParams,
        BlurConfig,
        sample_blur,
        lambda x, p, bank: blur(x, p),
        doc="gaussian, defocus (disk) or motion (line) blur with per-frame drift",
    )
)
