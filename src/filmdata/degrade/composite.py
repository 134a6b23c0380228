"""Composite video: YIQ, tape bandwidths (SP/LP/EP), chroma delay, luma smear and ringing, and
dot crawl from a real modulate/demodulate pass.

What a VHS deck does to the signal, after composite-video emulators (ntsc-rs, the yardstick):

- `tape`: the luma and chroma *bandwidths* of the tape speed (SP, LP, EP; chroma only a few
  hundred kHz), a chroma *delay* (colour shifted right of the luma), luma *smear* (a one-sided
  exponential tail to the right) and *ringing* (overshoot beside edges from the sharpening and
  band-limiting filters). All horizontal, along the scan line.
- `composite`: I and Q are modulated on a subcarrier (four samples a cycle, as 4fsc capture
  does), whose phase turns half a cycle each line and each frame, added to Y, and decoded again
  by a notch filter and a product demodulator. What the notch misses is *dot crawl* (carrier left
  in luma at colour edges, crawling from frame to frame) and *cross-colour* (fine luma detail
  read as colour).
- `chroma`: what the tape and the deck do to the colour carrier: a *phase error* (the hue turned,
  drifting slowly over the window), *phase noise* (each line's hue jittered, new every frame),
  *chroma loss* (lines whose colour drops out, grey) and *vertical blend* (the deck's delay
  line averaging each line's chroma with the line above), as ntsc-rs's chroma phase
  error/noise, VHS chroma loss and chroma vertical blend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from .params import (
    Batched,
    Op,
    OpConfig,
    choice,
    noise,
    rand,
    register,
    seed_of,
    span,
    stack,
    take,
    uniform,
    walk,
)

# RGB -> YIQ (FCC NTSC) and its inverse.
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.5959, -0.2746, -0.3213], [0.2115, -0.5227, 0.3112]])
_RGB = torch.linalg.inv(_YIQ)


def _mix(m: Tensor, x: Tensor) -> Tensor:
    """A 3x3 colour matrix on (..., 3, H, W). On the CPU one batched matmul (4x faster than
    einsum); elsewhere plane by plane, since cuBLAS may sum in another order for another batch
    size (a window's pixels must not depend on its batch)."""
    if x.device.type == "cpu":
        h, w = x.shape[-2:]
        return (m.to(x) @ x.reshape(-1, 3, h * w)).reshape(x.shape)
    x0, x1, x2 = x.unbind(-3)
    return torch.stack([a * x0 + b * x1 + c * x2 for a, b, c in m.tolist()], -3)


def to_yiq(x: Tensor) -> Tensor:
    """(..., 3, H, W) RGB -> YIQ."""
    return _mix(_YIQ, x)


def to_rgb(y: Tensor) -> Tensor:
    """(..., 3, H, W) YIQ -> RGB."""
    return _mix(_RGB, y)


def hfilter(x: Tensor, k: Tensor) -> Tensor:
    """Filter every row of `x` (N, H, W) with its own 1-D kernel `k` (N, K), K odd, edges
    replicated. OpenCV on the CPU (SIMD), a depthwise conv elsewhere; the same sums."""
    n, h, w = x.shape
    r = k.shape[1] // 2
    if x.device.type == "cpu" and x.dtype == torch.float32:
        a = x.detach().contiguous().numpy()
        out = np.empty_like(a)
        kn = k.detach().cpu().numpy().astype(np.float32)
        one = np.ones(1, np.float32)
        for i in range(n):
            cv2.sepFilter2D(a[i], -1, kn[i], one, dst=out[i], borderType=cv2.BORDER_REPLICATE)
        return torch.from_numpy(out)
    y = F.pad(x[None], (r, r, 0, 0), mode="replicate")
    return F.conv2d(y, k.to(x)[:, None, None, :], groups=n)[0]


def gauss_kernel(sigma: Tensor, r: int) -> Tensor:
    """(N, 2r + 1) normalised gaussians."""
    ax = torch.arange(-r, r + 1, dtype=torch.float32)
    s = sigma.float().reshape(-1, 1).clamp_min(1e-3)
    k = torch.exp(-0.5 * (ax / s) ** 2)
    return k / k.sum(1, keepdim=True)


# ----------------------------------------------------------------------------- tape

Speed = Literal["SP", "LP", "EP"]
# Blur (gaussian sigma, in pixels of a 256-pixel-wide frame) of luma and chroma per tape speed:
# the slower the tape, the less bandwidth (ntsc-rs: SP 3.0 / LP 2.4 / EP 1.8 MHz luma).
SPEEDS = {"SP": (0.8, 3.0), "LP": (1.1, 4.0), "EP": (1.5, 5.0)}


class TapeConfig(OpConfig):
    speed: tuple[Speed, ...] = ("SP", "LP", "EP")
    chroma_delay: tuple[float, float] = span((0.5, 3.0), -20.0, 20.0)
    smear: tuple[float, float] = span((0.0, 0.5), 0.0, 0.95)
    ringing: tuple[float, float] = span((0.0, 0.6), 0.0, 3.0)


@dataclass(frozen=True)
class TapeParams:
    speed: str  # SP | LP | EP
    luma_sigma: Tensor  # (T,) horizontal luma blur in pixels (drifts with tape tension)
    chroma_sigma: float  # horizontal chroma blur in pixels
    chroma_delay: float  # chroma shift to the right, pixels
    smear: float  # luma smear: weight of the exponential tail
    ringing: float  # overshoot gain at edges


def sample_tape(
    g: torch.Generator, cfg: TapeConfig, t: int, h: int, w: int, bank=None
) -> TapeParams:
    speed = choice(g, cfg.speed)
    ls, cs = SPEEDS[speed]
    scale = w / 256
    luma = ls * scale * uniform(g, 0.85, 1.15) * (1 + 0.05 * walk(g, t, 1.0, pull=0.5))
    return TapeParams(
        speed,
        luma.clamp_min(0.05),
        cs * scale * uniform(g, 0.85, 1.15),
        uniform(g, *cfg.chroma_delay) * scale,
        uniform(g, *cfg.smear),
        uniform(g, *cfg.ringing),
    )


def tape(x: Tensor, p: Batched) -> Tensor:
    """Band-limit luma and chroma along the lines. `x`: (B, T, C, H, W). Returns the same shape.

    Windows go one by one: their kernel lengths differ, and a window's pixels must not depend
    on its batch (bit-exact replay); the work is in the per-line filters, not the call count.
    """
    b, t, c, h, w = x.shape
    if b > 1:
        return torch.cat([tape(x[i : i + 1], take(p, i)) for i in range(b)])
    yiq = to_yiq(x) if c == 3 else x
    y = yiq[:, :, 0].reshape(b * t, h, w)
    ls = p.luma_sigma.reshape(b * t).cpu()
    r = max(1, math.ceil(3 * float(ls.max())))
    k = gauss_kernel(ls, r)
    ring = p.ringing.cpu().repeat_interleave(t)
    if float(ring.abs().max()) > 0:
        # Ringing: an unsharp overshoot with a wider blur, k' = k + g (k - k_wide), sharpens
        # edges and leaves a halo beside them, as a VCR's detail/peaking filter does.
        wide = gauss_kernel(ls * 2.2, r * 3)
        k = F.pad(k, (2 * r, 2 * r))
        k = k + ring[:, None] * (k - wide)
    y = hfilter(y, k)
    smear = p.smear.cpu().repeat_interleave(t)
    if float(smear.max()) > 0:
        # Smear: a one-sided exponential tail, the luma lags to the right of edges
        # (hfilter correlates: weights left of the centre pull from the left).
        rs = max(1, math.ceil(4 / max(1e-3, -math.log(max(1e-3, float(smear.max()))))))
        decay = smear[:, None] ** torch.arange(rs, -1, -1, dtype=torch.float32)
        tail = torch.cat([decay, torch.zeros(len(smear), rs)], 1)
        y = hfilter(y, tail / tail.sum(1, keepdim=True))
    y = y.reshape(b, t, h, w)
    if c == 1:
        return y[:, :, None]
    cs = p.chroma_sigma.cpu().repeat_interleave(t).repeat_interleave(2)
    d = p.chroma_delay.cpu().repeat_interleave(t).repeat_interleave(2)
    iq = yiq[:, :, 1:].reshape(b * t * 2, h, w)
    # Chroma has a fraction of the luma's bandwidth: filter it along the lines at a quarter of
    # the width (box down, bilinear up; the same maps on every device), a 16x smaller job.
    f = 4 if float(cs.min()) >= 2.4 and w >= 32 else 1
    if f > 1:
        iq = _resize(iq, (h, math.ceil(w / f)), "area")
        cs, d = cs / f, d / f
    rc = max(1, math.ceil(3 * float(cs.max()) + float(d.abs().max())) + 1)
    # The delay: the chroma kernel's centre moved right by a fractional number of pixels.
    ax = torch.arange(-rc, rc + 1, dtype=torch.float32)
    kc = torch.exp(-0.5 * ((ax + d[:, None]) / cs[:, None].clamp_min(1e-3)) ** 2)
    kc = kc / kc.sum(1, keepdim=True)
    iq = hfilter(iq, kc)
    if f > 1:
        iq = _resize(iq, (h, w), "bilinear")
    return to_rgb(torch.cat([y[:, :, None], iq.reshape(b, t, 2, h, w).to(y)], 2))


def _resize(x: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    """(N, H, W) resized: OpenCV on the CPU, torch elsewhere (`resample.py`: the same maps)."""
    from .resample import _resize_cv2, _resize_torch

    if x.device.type == "cpu" and x.dtype == torch.float32:
        return torch.from_numpy(_resize_cv2(x.contiguous().numpy()[None], size, mode)[0])
    return _resize_torch(x[None], size, mode)[0]


# ----------------------------------------------------------------------------- composite


class CompositeConfig(OpConfig):
    crosstalk: tuple[float, float] = span((0.2, 0.8), 0.0, 1.0)
    phase: tuple[float, float] = span((0.0, 6.2832), -10.0, 10.0)


@dataclass(frozen=True)
class CompositeParams:
    crosstalk: float  # share of the residual carrier left in the decoded luma (dot crawl)
    phase: float  # subcarrier phase at the first pixel of the window


def sample_composite(
    g: torch.Generator, cfg: CompositeConfig, t, h, w, bank=None
) -> CompositeParams:
    return CompositeParams(uniform(g, *cfg.crosstalk), uniform(g, *cfg.phase))


def composite(x: Tensor, p: Batched) -> Tensor:
    """Encode to composite and decode again. `x`: (B, T, 3, H, W). Returns the same shape."""
    b, t, c, h, w = x.shape
    if c == 1:
        return x
    yiq = to_yiq(x)
    # Subcarrier at a quarter of the pixel rate; +pi per line and per frame (NTSC's 227.5
    # cycles a line), so the dots crawl.
    # Phase = phase0 + pi/2 x + pi (y + t): the +pi turns are a sign, (-1)^(y + t), so the
    # trigonometry is done once per column and broadcast.
    xs = torch.arange(w, dtype=torch.float64) * (math.pi / 2)
    ph = p.phase.double().cpu().view(b, 1) + xs.view(1, w)  # (B, W)
    cx, sx = (v.to(x).view(b, 1, 1, w) for v in (torch.cos(ph), torch.sin(ph)))
    ty = torch.arange(t).view(t, 1) + torch.arange(h).view(1, h)
    sign = (1 - 2 * (ty % 2)).to(x).view(1, t, h, 1)
    cos, sin = sign * cx, sign * sx  # (B, T, H, W)
    s = yiq[:, :, 0] + yiq[:, :, 1] * cos + yiq[:, :, 2] * sin
    # Decode: a notch at the carrier ([1, 2, 2, 2, 1] / 8 has a zero at pi/2) gives luma...
    notch = torch.tensor([[1, 2, 2, 2, 1]], dtype=torch.float32) / 8
    n = b * t
    y = hfilter(s.reshape(n, h, w), notch.expand(n, 5)).reshape(b, t, h, w)
    chroma = s - y
    # ...and the product demodulator (x2, low-passed) gives I and Q back.
    lp = torch.tensor([[1, 2, 3, 4, 3, 2, 1]], dtype=torch.float32) / 16
    i = hfilter((2 * chroma * cos).reshape(n, h, w), lp.expand(n, 7)).reshape(b, t, h, w)
    q = hfilter((2 * chroma * sin).reshape(n, h, w), lp.expand(n, 7)).reshape(b, t, h, w)
    # A real decoder's notch is imperfect: part of the carrier stays in luma (the dots).
    y = y + p.crosstalk.to(x).view(b, 1, 1, 1) * (chroma - (i * cos + q * sin))
    return to_rgb(torch.stack([y, i, q], 2))


# ----------------------------------------------------------------------------- chroma


class ChromaConfig(OpConfig):
    phase_error: tuple[float, float] = span((-10.0, 10.0), -180.0, 180.0)  # degrees
    phase_noise: tuple[float, float] = span((0.0, 5.0), 0.0, 90.0)  # degrees, per line
    loss: tuple[float, float] = span((0.0, 0.005), 0.0, 1.0)  # share of lines
    blend: float = Field(0.5, ge=0.0, le=1.0)  # probability of the deck's vertical blend


@dataclass(frozen=True)
class ChromaParams:
    phase: Tensor  # (T,) hue turn of the whole frame, radians (the phase error, drifting)
    noise: float  # per-line phase noise (standard deviation), radians, new every frame
    loss: float  # chance that a line loses its chroma, new every frame
    blend: bool  # each line's chroma averaged with the line above's
    seed: int


def sample_chroma(
    g: torch.Generator, cfg: ChromaConfig, t: int, h: int, w: int, bank=None
) -> ChromaParams:
    error = math.radians(uniform(g, *cfg.phase_error))
    phase = walk(g, t, math.radians(0.5), center=error, pull=0.3)  # a slow drift, ~0.5 deg a frame
    return ChromaParams(
        phase,
        math.radians(uniform(g, *cfg.phase_noise)),
        uniform(g, *cfg.loss),
        bool(uniform(g, 0.0, 1.0) < cfg.blend),
        seed_of(g),
    )


def chroma(x: Tensor, p: Batched) -> Tensor:
    """Turn, jitter, drop and blend the chroma (I, Q) of each line. `x`: (B, T, 3, H, W);
    grey clips pass unchanged. Returns the same shape.

    Per line, (I, Q) is turned by the frame's phase plus that line's noise (drawn on the CPU
    from the window's seed, as are the lost lines: CPU and CUDA agree), zeroed on a lost line,
    then (with `blend`) averaged with the line above (the first line kept). Luma is untouched.
    """
    b, t, c, h, w = x.shape
    if c == 1 or b == 0:
        return x
    yiq = to_yiq(x)
    out = []
    for k in range(b):
        seed = int(p.seed[k])
        angle = p.phase[k].float().cpu().view(t, 1) + float(p.noise[k]) * noise(seed, (t, h))
        keep = (rand(seed + 1, (t, h)) >= float(p.loss[k])).float()
        cos = (torch.cos(angle) * keep).to(x).view(t, h, 1)
        sin = (torch.sin(angle) * keep).to(x).view(t, h, 1)
        y, i, q = yiq[k].unbind(1)  # (T, H, W) each
        i2, q2 = i * cos - q * sin, i * sin + q * cos
        if bool(p.blend[k]) and h > 1:
            i2 = torch.cat([i2[:, :1], 0.5 * (i2[:, 1:] + i2[:, :-1])], 1)
            q2 = torch.cat([q2[:, :1], 0.5 * (q2[:, 1:] + q2[:, :-1])], 1)
        out.append(torch.stack([y, i2, q2], 1))
    return to_rgb(stack(out))


register(
    Op(
        "tape",
        TapeParams,
        TapeConfig,
        sample_tape,
        lambda x, p, bank: tape(x, p),
        doc="VHS tape speed bandwidths (SP/LP/EP), chroma delay, luma smear and ringing",
    )
)
register(
    Op(
        "composite",
        CompositeParams,
        CompositeConfig,
        sample_composite,
        lambda x, p, bank: composite(x, p),
        doc="composite (YIQ) modulate/demodulate: dot crawl and cross-colour",
    )
)
register(
    Op(
        "chroma",
        ChromaParams,
        ChromaConfig,
        sample_chroma,
        lambda x, p, bank: chroma(x, p),
        doc="chroma phase error (drifting) and per-line phase noise, chroma loss, vertical blend",
    )
)
