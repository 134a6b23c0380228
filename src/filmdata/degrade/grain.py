"""Film grain: luminance-dependent noise, new in every frame.

Grain is the silver (or dye cloud) structure of the emulsion: strongest in the mid-tones,
weaker in deep shadows and highlights. Per frame, a noise field is drawn at `1 / size` of the
resolution (coarser grain for larger `size`), upsampled, and scaled by::

    sigma(L) = amount_t * (0.3 + 2.8 * L * (1 - L))    # 1.0 x amount at L = 0.5

`chroma` mixes in per-channel noise (colour dye clouds) on top of the monochrome grain.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from .params import (
    Batched,
    Op,
    OpConfig,
    luma,
    noise,
    owned,
    register,
    seed_of,
    span,
    stack,
    uniform,
    walk,
)


class GrainConfig(OpConfig):
    amount: tuple[float, float] = span((0.02, 0.08), 0.0, 0.5)
    size: tuple[float, float] = span((1.0, 2.0), 1.0, 8.0)
    chroma: tuple[float, float] = span((0.0, 0.3), 0.0, 1.0)


@dataclass(frozen=True)
class GrainParams:
    amounts: Tensor  # (T,) grain strength at mid-grey, per frame
    size: float  # grain size in pixels (>= 1)
    chroma: float  # share of per-channel (colour) grain
    seed: int


def sample_grain(
    g: torch.Generator, cfg: GrainConfig, t: int, h: int, w: int, bank: object = None
) -> GrainParams:
    a = uniform(g, *cfg.amount)
    amounts = (a * (1 + 0.1 * walk(g, t, 1.0, pull=0.5))).clamp_min(0)
    return GrainParams(amounts, uniform(g, *cfg.size), uniform(g, *cfg.chroma), seed_of(g))


def _upsample(n: Tensor, h: int, w: int) -> Tensor:
    """Bilinear (half-pixel centres) up to (h, w): OpenCV's resize computes the same map as
    `F.interpolate(..., "bilinear", align_corners=False)`, several times faster on the CPU."""
    a = n.numpy()
    out = np.empty((*a.shape[:2], h, w), np.float32)
    for i in range(a.shape[0]):
        for c in range(a.shape[1]):
            cv2.resize(a[i, c], (w, h), dst=out[i, c], interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(out)


@functools.cache
def _spread(n_in: int, n_out: int) -> float:
    """The mean, over the `n_out` output pixels of one axis, of the variance that bilinear
    upsampling (half-pixel centres, edges clamped: OpenCV's INTER_LINEAR and `_upsample`)
    leaves of unit-variance independent samples: `(1 - f)^2 + f^2` at fraction `f`."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    f = src - np.floor(src)
    f[(src < 0) | (src >= n_in - 1)] = 0.0  # the edges repeat their last sample
    return float(np.mean((1 - f) ** 2 + f**2))


def _field(seed: int, t: int, c: int, h: int, w: int, size: float) -> tuple[Tensor, float]:
    """`(t, c, h, w)` noise drawn at `1 / size` of the resolution and upsampled, and the factor
    that brings it to unit deviation: bilinear upsampling averages neighbours, and its
    variance is known from the sampling grid alone (`_spread` across and down). Callers fold
    the factor into their own multiply."""
    gh, gw = max(1, math.ceil(h / size)), max(1, math.ceil(w / size))
    n = noise(seed, (t, c, gh, gw))
    if (gh, gw) == (h, w):
        return n, 1.0
    return _upsample(n, h, w), 1.0 / math.sqrt(_spread(gh, h) * _spread(gw, w))


def _unit_field(seed: int, t: int, c: int, h: int, w: int, size: float) -> Tensor:
    """`(t, c, h, w)` unit-deviation noise drawn at `1 / size` of the resolution, upsampled."""
    n, scale = _field(seed, t, c, h, w, size)
    return n if scale == 1.0 else n * scale


def grain_field(seed: int, t: int, c: int, h: int, w: int, size: float, chroma: float) -> Tensor:
    """`(t, c, h, w)` grain of unit deviation: monochrome grain of `size`, mixed with coarser
    per-channel dye-cloud noise (twice the size) by `chroma`. Drawn on the CPU from `seed`."""
    mono = _unit_field(seed, t, 1, h, w, size)
    if c == 1 or chroma <= 0.02:
        return mono.expand(t, c, h, w)
    col = _unit_field(seed + 1, t, c, h, w, 2 * size)
    return (1 - chroma) * mono + chroma * col


def grain(x: Tensor, p: Batched) -> Tensor:
    """Add grain. `x`: (B, T, C, H, W); `p`: batched GrainParams. Returns (B, T, C, H, W).

    Per window: `x + sigma(L) * ((1 - chroma) * mono + chroma * colour)`, computed as two
    fused multiply-adds so the full-colour tensor is touched twice.
    """
    b, t, c, h, w = x.shape
    mine = owned(x)
    out = []
    for i, (seed, size, ch) in enumerate(zip(p.seed.tolist(), p.size.tolist(), p.chroma.tolist())):
        xi = x[i]
        lum = luma(xi)  # (T, 1, H, W)
        amount = p.amounts[i].to(xi).view(t, 1, 1, 1)
        mono, k_mono = _field(int(seed), t, 1, h, w, float(size))
        faint = c == 1 or ch <= 0.02  # colour grain too faint to matter: skip its draw
        # sigma(L) = amount (0.3 + 2.8 (L - L^2)): three passes (the fields' unit-deviation
        # factors folded into the next multiply)
        sigma = torch.addcmul(lum, lum, lum, value=-1).mul_(2.8 * amount).add_(0.3 * amount)
        s_mono = sigma.mul(k_mono * (1 if faint else 1 - ch))
        yi = torch.addcmul(xi, s_mono, mono.to(xi), out=xi if mine else None)
        if faint:
            out.append(yi)
            continue
        col, k_col = _field(int(seed) + 1, t, c, h, w, 2 * float(size))
        out.append(yi.addcmul_(sigma.mul_(k_col * ch), col.to(xi)))
    return stack(out)


register(
    Op(
        "grain",
        GrainParams,
        GrainConfig,
        sample_grain,
        lambda x, p, bank: grain(x, p),
        doc="luminance-dependent film grain, new every frame",
    )
)
