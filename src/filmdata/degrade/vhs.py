"""Tape defects of VHS playback: snow and dropouts, line displacement (edge wave, tracking
bands, head-switching noise) and interlace combing.

Random fields are drawn on the CPU from a seed kept in the parameters (so CPU and CUDA agree);
everything else is a per-window value with per-frame drift, so a window looks like one tape:

- `snow`: sparse speckles and short horizontal streaks, new every frame; `dropouts`: oxide loss,
  white (or black) horizontal streaks a few to a hundred pixels long.
- `lines`: a horizontal displacement per line: *edge wave* (smooth along the picture and over
  time), a *tracking band* (a band of torn, noisy lines rolling through the frame) and
  *head-switching noise* (the bottom lines, pulled sideways more the lower they are).
- `interlace`: odd lines from the previous frame's field, so motion combs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from .params import (
    Batched,
    Op,
    OpConfig,
    noise,
    rand,
    randint,
    register,
    seed_of,
    span,
    stack,
    uniform,
    walk,
)

# ----------------------------------------------------------------------------- snow


class SnowConfig(OpConfig):
    snow: tuple[float, float] = span((0.0005, 0.004), 0.0, 0.2)
    dropouts: tuple[float, float] = span((0.0, 3.0), 0.0, 100.0)
    length: tuple[int, int] = span((4, 60), 1, 1000)


@dataclass(frozen=True)
class SnowParams:
    density: Tensor  # (T,) share of pixels that start a speckle
    dropouts: float  # mean dropouts per frame
    length: Tensor  # (2,) int64 dropout length range, pixels at 256 wide
    seed: int


def sample_snow(
    g: torch.Generator, cfg: SnowConfig, t: int, h: int, w: int, bank=None
) -> SnowParams:
    d = uniform(g, *cfg.snow)
    density = (d * (1 + 0.3 * walk(g, t, 1.0, pull=0.4))).clamp_min(0)
    return SnowParams(density, uniform(g, *cfg.dropouts), torch.tensor(cfg.length), seed_of(g))


def _streaks(start: Tensor, length: int) -> Tensor:
    """Extend every nonzero of `start` (N, H, W) `length` pixels to the right (a running max
    done with a cumulative sum over the row)."""
    c = start.cumsum(-1)
    shifted = F.pad(c, (length, 0))[..., : c.shape[-1]]
    return (c - shifted).clamp_(0, 1)


def snow(x: Tensor, p: Batched) -> Tensor:
    """Add snow and dropouts. `x`: (B, T, C, H, W); `p`: batched. Returns the same shape."""
    b, t, c, h, w = x.shape
    layers = []
    for i, seed in enumerate(p.seed.tolist()):
        u = rand(seed, (t, h, w))
        start = (u < p.density[i].cpu().view(t, 1, 1)).float()
        speck = _streaks(start, max(1, round(2 * w / 256)))
        # Dropouts: a Poisson number per frame, at random lines, of random lengths.
        g = torch.Generator().manual_seed(seed ^ 0x5EED)
        counts = torch.poisson(torch.full((t,), float(p.dropouts[i])), generator=g).long()
        lo, hi = (int(v) for v in p.length[i].tolist())
        drop = torch.zeros(t, h, w)
        for f in range(t):
            for _ in range(int(counts[f])):
                y = int(torch.randint(0, h, (), generator=g))
                x0 = int(torch.randint(0, w, (), generator=g))
                n = max(1, round(int(torch.randint(lo, hi + 1, (), generator=g)) * w / 256))
                drop[f, y, x0 : x0 + n] = 0.6 + 0.4 * float(torch.rand((), generator=g))
        layers.append(torch.maximum(speck * (0.5 + 0.5 * u), drop))
    layer = stack(layers).to(device=x.device, dtype=x.dtype)[:, :, None]  # (B, T, 1, H, W)
    return x + layer * (1.0 - x)  # white speckles: screen the layer on


# ----------------------------------------------------------------------------- lines


class LinesConfig(OpConfig):
    wave: tuple[float, float] = span((0.0, 1.5), 0.0, 50.0)
    jitter: tuple[float, float] = span((0.0, 0.5), 0.0, 50.0)
    tracking: float = Field(0.3, ge=0.0, le=1.0)  # probability of a tracking band in a window
    band: tuple[float, float] = span((0.03, 0.12), 0.0, 1.0)
    head_switch: tuple[float, float] = span((0.0, 0.04), 0.0, 0.5)
    head_shift: tuple[float, float] = span((2.0, 12.0), 0.0, 100.0)


@dataclass(frozen=True)
class LinesParams:
    wave: float  # edge wave amplitude, pixels at 256 wide
    jitter: Tensor  # (T,) per-line random jitter amplitude per frame
    band_y: Tensor  # (T,) tracking band centre (fraction of the height; < -1: no band)
    band_h: float  # band height (fraction of the height)
    head_lines: float  # share of lines at the bottom hit by head switching
    head_shift: Tensor  # (T,) their largest horizontal shift, pixels at 256 wide
    seed: int


def sample_lines(
    g: torch.Generator, cfg: LinesConfig, t: int, h: int, w: int, bank=None
) -> LinesParams:
    wave, jit = uniform(g, *cfg.wave), uniform(g, *cfg.jitter)
    band = uniform(g, 0, 1) < cfg.tracking
    y0, v = uniform(g, -0.2, 1.2), uniform(g, -0.08, 0.08)
    band_y = y0 + v * torch.arange(t, dtype=torch.float32) + 0.01 * walk(g, t, 1.0)
    if not band:
        band_y = torch.full((t,), -9.0)
    shift = uniform(g, *cfg.head_shift) * (1 + 0.3 * walk(g, t, 1.0, pull=0.5))
    return LinesParams(
        wave,
        (jit * (1 + 0.2 * walk(g, t, 1.0, pull=0.5))).clamp_min(0),
        band_y,
        uniform(g, *cfg.band),
        uniform(g, *cfg.head_switch),
        shift,
        seed_of(g),
    )


def line_offsets(p: Batched, i: int, t: int, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Window `i`'s (t, h) horizontal shift of every line (pixels) and (t, h) band noise level."""
    scale = w / 256
    n = noise(int(p.seed[i]), (t + 2, 1, max(2, h // 24), 1))  # coarse along the picture
    # Edge wave: smooth along y (coarse noise, bicubic up) and over time (shared base + drift).
    coarse = n[:1] + 0.3 * n[1 : t + 1]
    wave = F.interpolate(coarse, size=(h, 1), mode="bicubic", align_corners=False)[:, 0, :, 0]
    shift = float(p.wave[i]) * scale * wave
    fine = noise(int(p.seed[i]) + 1, (t, h))
    shift = shift + p.jitter[i].cpu().view(t, 1) * scale * fine
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h
    # Tracking band: lines inside it are torn sideways (large, rough shifts) and noisy.
    d = (ys.view(1, h) - p.band_y[i].cpu().view(t, 1)) / max(1e-3, float(p.band_h[i]) / 2)
    inside = (1 - d.abs()).clamp(0, 1)
    shift = shift + inside * 8 * scale * noise(int(p.seed[i]) + 2, (t, h)).abs()
    # Head switching: the last lines pulled right, more the lower (a ramp to the bottom).
    hl = float(p.head_lines[i])
    ramp = ((ys - (1 - hl)) / max(hl, 1e-3)).clamp(0, 1) if hl > 0 else torch.zeros(h)
    shift = shift + ramp.view(1, h) * p.head_shift[i].cpu().view(t, 1) * scale
    return shift, inside + 0.5 * ramp.view(1, h).expand(t, h)


def shift_rows(x: Tensor, shift: Tensor) -> Tensor:
    """Move each line of `x` (N, C, H, W) right by `shift` (N, H) pixels (linear, edge clamped).

    One `grid_sample` whose sampling points sit on the line centres (so lines never mix),
    `shift` pixels to the left along each line.
    """
    n, c, h, w = x.shape
    xs = (torch.arange(w, device=x.device, dtype=x.dtype) * 2 + 1) / w - 1  # pixel centres
    ys = (torch.arange(h, device=x.device, dtype=x.dtype) * 2 + 1) / h - 1
    gx = xs.view(1, 1, w) - (2 / w) * shift.to(x)[..., None]  # (N, H, W)
    gy = ys.view(1, h, 1).expand(n, h, w)
    grid = torch.stack([gx, gy], -1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def lines(x: Tensor, p: Batched) -> Tensor:
    """Displace lines. `x`: (B, T, C, H, W); `p`: batched. Returns the same shape."""
    b, t, c, h, w = x.shape
    shifts, levels = zip(*(line_offsets(p, i, t, h, w) for i in range(b)))
    shift = stack(shifts).reshape(b * t, h)
    y = shift_rows(x.reshape(b * t, c, h, w), shift).reshape(b, t, c, h, w)
    # Hiss inside the band and on the head-switching lines: only those lines of each window
    # (drawn per window, so a window's noise does not depend on its batch).
    for i, (seed, level) in enumerate(zip(p.seed.tolist(), levels)):
        rows = (level.amax(0) > 0).nonzero().flatten()  # level: (T, H)
        if len(rows):
            hiss = rand(int(seed) + 3, (t, len(rows), w))
            y[i, :, :, rows] += (level[:, rows, None] * (hiss - 0.5) * 0.6).to(x)[:, None]
    return y


# ----------------------------------------------------------------------------- interlace


class InterlaceConfig(OpConfig):
    pass


@dataclass(frozen=True)
class InterlaceParams:
    lower_first: bool  # which field comes from the previous frame


def sample_interlace(
    g: torch.Generator, cfg: InterlaceConfig, t, h, w, bank=None
) -> InterlaceParams:
    return InterlaceParams(randint(g, 0, 1) == 1)


def interlace(x: Tensor, p: Batched) -> Tensor:
    """Weave each frame from its own field and the previous frame's other field (combing on
    motion). `x`: (B, T, C, H, W). The first frame has no predecessor and stays whole."""
    out = x.clone()
    if x.shape[1] < 2:
        return out
    for i, lower in enumerate(p.lower_first.tolist()):
        start = 1 if lower else 0
        out[i, 1:, :, start::2] = x[i, :-1, :, start::2]
    return out


register(
    Op(
        "snow",
        SnowParams,
        SnowConfig,
        sample_snow,
        lambda x, p, bank: snow(x, p),
        doc="VHS snow (speckles) and dropouts (white streaks)",
    )
)
register(
    Op(
        "lines",
        LinesParams,
        LinesConfig,
        sample_lines,
        lambda x, p, bank: lines(x, p),
        doc="line jitter and edge wave, tracking bands, head-switching noise",
    )
)
register(
    Op(
        "interlace",
        InterlaceParams,
        InterlaceConfig,
        sample_interlace,
        lambda x, p, bank: interlace(x, p),
        doc="interlace combing (fields from two frames)",
    )
)
