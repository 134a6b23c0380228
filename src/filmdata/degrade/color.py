"""Colour and tone: fading dyes, tint/sepia, contrast and black-level loss, vignetting,
monochrome, and saturation drift (VHS). Each is a small per-pixel op on (B, T, C, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from .params import Batched, Op, OpConfig, bview, luma, owned, register, span, uniform, walk

# Tints of aged stock and toners, RGB multipliers on luma.
TINTS = {
    "sepia": (1.07, 0.90, 0.66),
    "amber": (1.10, 0.88, 0.50),
    "cyan": (0.72, 0.95, 1.05),
    "magenta": (1.05, 0.74, 1.00),
    "green": (0.80, 1.05, 0.80),
}


def _grey(x: Tensor) -> Tensor:
    return luma(x).expand_as(x)


# ----------------------------------------------------------------------------- fade


class FadeConfig(OpConfig):
    saturation: tuple[float, float] = span((0.3, 0.9), 0.0, 2.0)
    cast: tuple[float, float] = span((0.0, 0.12), 0.0, 0.5)


@dataclass(frozen=True)
class FadeParams:
    saturation: float  # 1 keeps colours, 0 is grey
    cast: Tensor  # (3,) additive colour cast (faded cyan dye leaves prints red/magenta)


def sample_fade(
    g: torch.Generator, cfg: FadeConfig, t: int, h: int, w: int, bank=None
) -> FadeParams:
    amount = uniform(g, *cfg.cast)
    # Cyan and yellow dyes fade first: a red-magenta cast, its exact hue varies.
    direction = torch.tensor([1.0, -0.4, 0.1]) + 0.3 * (torch.rand(3, generator=g) - 0.5)
    return FadeParams(uniform(g, *cfg.saturation), amount * direction)


def fade(x: Tensor, p: Batched) -> Tensor:
    if x.shape[2] == 1:
        return x
    # grey + s (x - grey), then the cast: one pass each (lerp broadcasts the grey channel).
    lum, s = luma(x), bview(p.saturation, x)
    out = torch.lerp(lum, x, s, out=x) if owned(x) else torch.lerp(lum, x, s)
    return out.add_(p.cast.to(x)[:, None, :, None, None])


# ----------------------------------------------------------------------------- tint


Tint = Literal["sepia", "amber", "cyan", "magenta", "green"]


class TintConfig(OpConfig):
    tint: tuple[Tint, ...] = ("sepia", "amber", "cyan", "magenta", "green")
    amount: tuple[float, float] = span((0.4, 1.0), 0.0, 1.0)


@dataclass(frozen=True)
class TintParams:
    color: Tensor  # (3,) RGB multipliers on luma
    amount: float  # 0: no tint, 1: fully toned


def sample_tint(
    g: torch.Generator, cfg: TintConfig, t: int, h: int, w: int, bank=None
) -> TintParams:
    name = cfg.tint[int(torch.randint(len(cfg.tint), (), generator=g))]
    color = torch.tensor(TINTS[name])
    return TintParams(color, uniform(g, *cfg.amount))


def tint(x: Tensor, p: Batched) -> Tensor:
    if x.shape[2] == 1:
        return x
    toned = luma(x) * p.color.to(x)[:, None, :, None, None]
    a = bview(p.amount, x)
    return torch.lerp(x, toned, a, out=x) if owned(x) else torch.lerp(x, toned, a)


# ----------------------------------------------------------------------------- contrast


class ContrastConfig(OpConfig):
    contrast: tuple[float, float] = span((0.6, 1.1), 0.0, 3.0)
    black: tuple[float, float] = span((0.0, 0.15), 0.0, 0.5)
    white: tuple[float, float] = span((0.85, 1.0), 0.5, 1.0)
    midtone: tuple[float, float] = span((-0.25, 0.25), -1.0, 1.0)


@dataclass(frozen=True)
class ContrastParams:
    contrast: Tensor  # (T,) contrast around mid-grey, per frame
    black: float  # lifted black level
    white: float  # lowered white level
    midtone: (
        float  # tone curve y + m y (1 - y): > 0 lifts the mid-tones, < 0 darkens (a cheap gamma)
    )


def sample_contrast(g, cfg: ContrastConfig, t: int, h: int, w: int, bank=None) -> ContrastParams:
    c = uniform(g, *cfg.contrast)
    return ContrastParams(
        (c * (1 + 0.02 * walk(g, t, 1.0, pull=0.5))).clamp_min(0),
        uniform(g, *cfg.black),
        uniform(g, *cfg.white),
        uniform(g, *cfg.midtone),
    )


def contrast(x: Tensor, p: Batched) -> Tensor:
    c, m = bview(p.contrast, x), bview(p.midtone, x)
    black, white = bview(p.black, x), bview(p.white, x)
    y = (x.mul_(c) if owned(x) else x * c).add_(0.5 - 0.5 * c).clamp_(0, 1)  # (x - 0.5) c + 0.5
    # black + (white - black) (y + m y (1 - y)) = black + y (A + B y),
    # with A = (w - b)(1 + m) and B = -(w - b) m
    span = white - black
    k, a = -span * m, span * (1 + m)  # (B, 1, 1, 1, 1)
    # Frame by frame into `y` (ours), through one frame-sized temporary that stays in cache:
    # the same products and sums as `(y * k).add_(a).mul_(y).add_(black)`, bit for bit.
    tmp = torch.empty_like(y[:, 0])
    for i in range(y.shape[1]):
        yi = y[:, i]
        torch.mul(yi, k[:, 0], out=tmp).add_(a[:, 0]).mul_(yi)
        torch.add(tmp, black[:, 0], out=yi)
    return y


# ----------------------------------------------------------------------------- vignette


class VignetteConfig(OpConfig):
    strength: tuple[float, float] = span((0.1, 0.5), 0.0, 1.0)
    radius: tuple[float, float] = span((0.4, 0.8), 0.0, 1.5)


@dataclass(frozen=True)
class VignetteParams:
    strength: float  # darkening at the corners
    radius: float  # normalised radius where the falloff starts
    center: Tensor  # (2,) (x, y) offset of the optical centre, in [-0.1, 0.1]


def sample_vignette(g, cfg: VignetteConfig, t: int, h: int, w: int, bank=None) -> VignetteParams:
    center = (torch.rand(2, generator=g) - 0.5) * 0.2
    return VignetteParams(uniform(g, *cfg.strength), uniform(g, *cfg.radius), center)


def vignette(x: Tensor, p: Batched) -> Tensor:
    b, _, _, h, w = x.shape
    ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype).view(1, h, 1)
    xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype).view(1, 1, w)
    c = p.center.to(x)
    r = ((xs - c[:, 0, None, None]) ** 2 + (ys - c[:, 1, None, None]) ** 2).sqrt() / 2**0.5
    r0 = p.radius.to(x).view(b, 1, 1)
    fall = ((r - r0) / (1 - r0).clamp_min(1e-3)).clamp(0, 1) ** 2
    mask = 1 - p.strength.to(x).view(b, 1, 1) * fall  # (B, H, W)
    return x.mul_(mask[:, None, None]) if owned(x) else x * mask[:, None, None]


# ----------------------------------------------------------------------------- monochrome


class MonochromeConfig(OpConfig):
    pass


@dataclass(frozen=True)
class MonochromeParams:
    pass


def monochrome(x: Tensor, p: Batched) -> Tensor:
    return x.copy_(_grey(x)) if owned(x) and x.shape[2] != 1 else _grey(x).clone()


# ----------------------------------------------------------------------------- saturation


class SaturationConfig(OpConfig):
    saturation: tuple[float, float] = span((0.6, 1.3), 0.0, 3.0)
    drift: tuple[float, float] = span((0.0, 0.08), 0.0, 1.0)


@dataclass(frozen=True)
class SaturationParams:
    saturations: Tensor  # (T,) per-frame saturation (a random walk around the window's)


def sample_saturation(g, cfg: SaturationConfig, t, h, w, bank=None) -> SaturationParams:
    s = uniform(g, *cfg.saturation)
    return SaturationParams((s + uniform(g, *cfg.drift) * walk(g, t, 1.0, pull=0.3)).clamp_min(0))


def saturation(x: Tensor, p: Batched) -> Tensor:
    if x.shape[2] == 1:
        return x
    return torch.lerp(luma(x), x, bview(p.saturations, x))


for _name, _params, _cfg, _sample, _fn, _doc in (
    ("fade", FadeParams, FadeConfig, sample_fade, fade, "colour fading and dye cast"),
    ("tint", TintParams, TintConfig, sample_tint, tint, "tint/sepia toning"),
    (
        "contrast",
        ContrastParams,
        ContrastConfig,
        sample_contrast,
        contrast,
        "contrast, mid-tone curve, black/white level loss",
    ),
    (
        "vignette",
        VignetteParams,
        VignetteConfig,
        sample_vignette,
        vignette,
        "lens/projector vignetting",
    ),
    (
        "monochrome",
        MonochromeParams,
        MonochromeConfig,
        lambda *a, **k: MonochromeParams(),
        monochrome,
        "black and white",
    ),
    (
        "saturation",
        SaturationParams,
        SaturationConfig,
        sample_saturation,
        saturation,
        "saturation drift over frames",
    ),
):
    register(
        Op(_name, _params, _cfg, _sample, (lambda f: lambda x, p, bank: f(x, p))(_fn), doc=_doc)
    )
