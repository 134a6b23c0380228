"""Resolution loss: down-scale and up-scale back, as a low-resolution scan or telecine does.

Down-scaling is `area` (a box filter with fractional coverage, OpenCV's INTER_AREA) or
`bilinear` (no prefilter: aliasing, as cheap scalers do); up-scaling is `bilinear` or `bicubic`
(half-pixel centres, a = -0.75). On the CPU the frames go through OpenCV's SIMD `resize` plane
by plane; elsewhere through torch (area as two small matmuls, the rest `F.interpolate`). Both
paths compute the same linear maps (equal within float rounding; `tests/test_degrade_ops.py`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .params import Batched, Op, OpConfig, choice, owned, register, span, stack, uniform

Down = Literal["area", "bilinear"]
Up = Literal["bilinear", "bicubic"]
_CV = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


class ResampleConfig(OpConfig):
    scale: tuple[float, float] = span((0.35, 0.85), 0.05, 1.0)
    down: tuple[Down, ...] = ("area", "bilinear")
    up: tuple[Up, ...] = ("bilinear", "bicubic")


@dataclass(frozen=True)
class ResampleParams:
    scale: float  # linear scale of the intermediate resolution
    down: str  # area | bilinear
    up: str  # bilinear | bicubic


def sample_resample(
    g: torch.Generator, cfg: ResampleConfig, t: int, h: int, w: int, bank: object = None
) -> ResampleParams:
    return ResampleParams(uniform(g, *cfg.scale), choice(g, cfg.down), choice(g, cfg.up))


@functools.lru_cache(maxsize=64)
def area_matrix(n_in: int, n_out: int) -> Tensor:
    """`(n_out, n_in)` box weights: output i averages input [i s, (i + 1) s), s = n_in / n_out."""
    s = n_in / n_out
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    for i in range(n_out):
        a, b = i * s, (i + 1) * s
        for j in range(int(math.floor(a)), min(n_in, int(math.ceil(b)))):
            m[i, j] = (min(b, j + 1) - max(a, j)) / s
    return m.float()


def _resize_torch(x: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    if mode == "area" and (size[0] <= x.shape[-2] and size[1] <= x.shape[-1]):
        my = area_matrix(x.shape[-2], size[0]).to(x)
        mx = area_matrix(x.shape[-1], size[1]).to(x)
        return my @ x @ mx.T
    m = "bilinear" if mode == "area" else mode
    return F.interpolate(x, size=size, mode=m, align_corners=False)


def _resize_cv2(
    x: np.ndarray, size: tuple[int, int], mode: str, out: np.ndarray | None = None
) -> np.ndarray:
    n, c = x.shape[:2]
    out = np.empty((n, c, *size), np.float32) if out is None else out
    for i in range(n):
        for ch in range(c):
            cv2.resize(x[i, ch], (size[1], size[0]), dst=out[i, ch], interpolation=_CV[mode])
    return out


def resample(x: Tensor, p: Batched) -> Tensor:
    """Down and up again. `x`: (B, T, C, H, W); `p`: batched. Returns (B, T, C, H, W)."""
    b, t, c, h, w = x.shape
    out = []
    cpu = x.device.type == "cpu" and x.dtype == torch.float32
    mine = owned(x)
    for i, s in enumerate(p.scale.tolist()):
        size = (max(1, round(h * s)), max(1, round(w * s)))
        xi = x[i]
        if size != (h, w):
            if cpu:
                a = xi.detach().contiguous().numpy()
                small = _resize_cv2(a, size, p.down)
                # Up again into x itself when it is ours (read only through `small`).
                xi = torch.from_numpy(_resize_cv2(small, (h, w), p.up, out=a if mine else None))
            else:
                xi = _resize_torch(_resize_torch(xi, size, p.down), (h, w), p.up)
        out.append(xi)
    return stack(out)


register(
    Op(
        "resample",
        ResampleParams,
        ResampleConfig,
        sample_resample,
        lambda x, p, bank: resample(x, p),
        doc="resolution loss: down-scale (area or bilinear) then up-scale (bilinear or bicubic)",
    )
)
