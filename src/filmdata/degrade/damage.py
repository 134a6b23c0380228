"""Film damage from noise templates: dust, dirt, hair, scratches, blotches and edge damage.

Each window gets a damage *layer* per frame, signed in [-1, 1] (negative darkens: dirt on the
print; positive brightens: dirt on the negative), pasted together from the template bank and
blended onto the frames with one blend mode (`blend.py`). What lasts on film lasts here:

- dust, dirt and blotches live for one frame each (they sit on the print as it runs);
- a line scratch is cut along the film, so it stays for the whole window, drifting sideways a
  pixel or two and changing in strength;
- a hair caught in the gate stays for a run of frames, moving a little;
- edge damage runs along one side of the frame and scrolls with the film.

Sizes are relative to the frame (a template is drawn for a frame of `templates.FRAME` = 384
pixels on its short side), so one pack serves every resolution. The placements are recorded,
not the pixels: replay needs the same bank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import Tensor

from ..errors import RefusedError
from .blend import MODES, apply_layer
from .params import (
    Batched,
    Draws,
    Op,
    OpConfig,
    choice,
    owned,
    randint,
    register,
    span,
    stack,
    uniform,
)
from .templates import FRAME, TemplateBank


class DamageConfig(OpConfig):
    modes: tuple[str, ...] = (
        "grain_merge",
        "overlay",
        "multiply",
        "screen",
        "soft_light",
        "grain_extract",
    )
    dark: float = Field(0.75, ge=0.0, le=1.0)  # probability that a window's damage darkens
    dust: tuple[int, int] = span((2, 14), 0, 200)  # per frame
    dirt: tuple[int, int] = span((0, 2), 0, 50)  # per frame
    blotch: tuple[int, int] = span((0, 1), 0, 10)  # per frame
    hair: tuple[int, int] = span((0, 1), 0, 10)  # per window
    scratch: tuple[int, int] = span((0, 3), 0, 20)  # per window
    edge: float = Field(0.3, ge=0.0, le=1.0)  # probability of edge damage in a window
    scale: tuple[float, float] = span((0.5, 1.5), 0.05, 4.0)
    opacity: tuple[float, float] = span((0.5, 1.0), 0.0, 1.0)

    @model_validator(mode="after")
    def _modes(self) -> DamageConfig:
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            got = bad[0] if bad else "(none)"
            raise ValueError(f"modes: unknown blend mode {got!r}; use {', '.join(MODES)}")
        return self


@dataclass(frozen=True)
class DamageParams:
    mode: str  # blend mode
    # (frame, kind, template index, y, x, height, width, orientation 0-7, signed opacity)
    placements: tuple[tuple[Any, ...], ...]


def _size(bank: TemplateBank, kind: str, i: int, s: float) -> tuple[int, int]:
    """A template's pasted size at scale `s`, snapped to quarter-octave steps so that the bank's
    cache of resized templates is hit again and again (a continuous scale would resize every
    paste)."""
    s = 2.0 ** (round(math.log2(max(s, 1e-3)) * 4) / 4)
    th, tw = bank.get(kind, i).shape
    return max(1, round(th * s)), max(1, round(tw * s))


def sample_damage(
    gen: torch.Generator, cfg: DamageConfig, t: int, h: int, w: int, bank: TemplateBank | None
) -> DamageParams:
    if bank is None:
        raise RefusedError("the damage op needs noise templates: pass --templates DIR")
    g = Draws(gen)  # thousands of small draws: one torch call a block
    mode = choice(g, cfg.modes)
    sign = -1.0 if uniform(g, 0, 1) < cfg.dark else 1.0
    rel = min(h, w) / FRAME  # templates are drawn for a 384-pixel frame
    out: list[tuple[Any, ...]] = []

    def spot(kind: str, frame: int) -> None:
        i = randint(g, 0, bank.count(kind) - 1)
        hh, ww = _size(bank, kind, i, uniform(g, *cfg.scale) * rel)
        orient = randint(g, 0, 7)
        if orient >= 4:
            hh, ww = ww, hh
        y, x = randint(g, -hh // 2, h - hh // 2), randint(g, -ww // 2, w - ww // 2)
        out.append((frame, kind, i, y, x, hh, ww, orient, sign * uniform(g, *cfg.opacity)))

    for frame in range(t):
        for kind in ("dust", "dirt", "blotch"):
            if bank.count(kind):
                for _ in range(randint(g, *getattr(cfg, kind))):
                    spot(kind, frame)
    if bank.count("scratch"):
        for _ in range(randint(g, *cfg.scratch)):
            i = randint(g, 0, bank.count("scratch") - 1)
            th, tw = bank.get("scratch", i).shape
            ww = _size(bank, "scratch", i, rel * uniform(g, 0.7, 1.3))[1]
            x = uniform(g, 0, w - 1)
            v, op = uniform(g, -0.6, 0.6), uniform(g, *cfg.opacity)
            s = (
                sign if uniform(g, 0, 1) < 0.8 else -sign
            )  # a scratch through the emulsion is bright
            for frame in range(t):
                x += v + 0.4 * g.normal()
                a = op * uniform(g, 0.6, 1.0)
                out.append(
                    (frame, "scratch", i, 0, round(x) - ww // 2, h, ww, randint(g, 0, 1) * 2, s * a)
                )
    if bank.count("hair"):
        for _ in range(randint(g, *cfg.hair)):
            first = randint(g, 0, t - 1)
            last = randint(g, first, t - 1)
            i = randint(g, 0, bank.count("hair") - 1)
            hh, ww = _size(bank, "hair", i, uniform(g, *cfg.scale) * rel)
            orient = randint(g, 0, 7)
            if orient >= 4:
                hh, ww = ww, hh
            y, x = randint(g, 0, max(0, h - hh)), randint(g, 0, max(0, w - ww))
            a = sign * uniform(g, *cfg.opacity)
            for frame in range(first, last + 1):
                y += randint(g, -1, 1)
                x += randint(g, -1, 1)
                out.append((frame, "hair", i, y, x, hh, ww, orient, a))
    if bank.count("edge") and uniform(g, 0, 1) < cfg.edge:
        i = randint(g, 0, bank.count("edge") - 1)
        th, tw = bank.get("edge", i).shape
        ww = max(2, round(w * uniform(g, 0.04, 0.12)))
        right = uniform(g, 0, 1) < 0.5
        y0, speed = randint(g, 0, h - 1), uniform(g, 0.1, 0.5) * h
        a = sign * uniform(g, *cfg.opacity)
        for frame in range(t):
            y = round(y0 + speed * frame) % h
            for dy in (y - h, y):  # two copies tile the scroll
                out.append(
                    (frame, "edge", i, dy, w - ww if right else 0, h, ww, 1 if right else 0, a)
                )
    return DamageParams(mode, tuple(out))


def _orient(tm: Tensor, orient: int) -> Tensor:
    if orient >= 4:
        tm = tm.t()
    if orient & 1:
        tm = tm.flip(1)
    if orient & 2:
        tm = tm.flip(0)
    return tm


def damage_layer(
    placements: Any, t: int, h: int, w: int, bank: TemplateBank, device: Any
) -> Tensor:
    """The signed `(t, 1, h, w)` damage layer of one window's placements."""
    if bank.device.type == "cpu":
        return torch.from_numpy(_layer_numpy(placements, t, h, w, bank)).to(device)
    return _layer_torch(placements, t, h, w, bank).to(device)


def _layer_torch(placements: Any, t: int, h: int, w: int, bank: TemplateBank) -> Tensor:
    """`damage_layer` pasted with torch on the bank's device."""
    layer = torch.zeros(t, 1, h, w, device=bank.device)
    for frame, kind, i, y, x, hh, ww, orient, a in placements:
        if not 0 <= frame < t:
            continue
        ph, pw = (ww, hh) if orient >= 4 else (hh, ww)
        tm = _orient(bank.resized(kind, int(i), int(ph), int(pw)), int(orient))
        y0, x0, y1, x1 = max(0, y), max(0, x), min(h, y + hh), min(w, x + ww)
        if y1 <= y0 or x1 <= x0:
            continue
        layer[frame, 0, y0:y1, x0:x1] += float(a) * tm[y0 - y : y1 - y, x0 - x : x1 - x]
    return layer.clamp_(-1, 1)


def _layer_numpy(placements: Any, t: int, h: int, w: int, bank: TemplateBank) -> np.ndarray:
    """`damage_layer` on the CPU, pasted with numpy: a window has about a hundred small pastes,
    and numpy's per-call cost is a fraction of torch's (the same float32 products and sums,
    bit for bit). Each paste is a product into a scratch buffer and a sum in place (no
    temporaries), of the template oriented once per run (`_oriented`)."""
    layer = np.zeros((t, 1, h, w), np.float32)
    scratch = np.empty(h * w, np.float32)
    multiply, add, f32 = np.multiply, np.add, np.float32
    for frame, kind, i, y, x, hh, ww, orient, a in placements:
        if not 0 <= frame < t:
            continue
        y0, x0 = (y if y > 0 else 0), (x if x > 0 else 0)
        y1, x1 = (y + hh if y + hh < h else h), (x + ww if x + ww < w else w)
        if y1 <= y0 or x1 <= x0:
            continue
        tm = _oriented(bank, kind, i, hh, ww, orient)[y0 - y : y1 - y, x0 - x : x1 - x]
        prod = scratch[: tm.size].reshape(tm.shape)
        multiply(f32(a), tm, out=prod)
        dst = layer[frame, 0, y0:y1, x0:x1]
        add(dst, prod, out=dst)
    return np.clip(layer, -1, 1, out=layer)


def _oriented(bank: TemplateBank, kind: str, i: int, hh: int, ww: int, orient: int) -> np.ndarray:
    """Template `i` of `kind` fitted to a (hh, ww) paste in orientation `orient`, as a numpy
    view of the bank's cached tensor (kept in the bank's numpy cache)."""
    key = (kind, i, hh, ww, orient)
    tm = bank.np_cache.get(key)
    if tm is None:
        ph, pw = (ww, hh) if orient >= 4 else (hh, ww)
        tm = bank.resized(kind, int(i), int(ph), int(pw)).numpy()
        if orient >= 4:
            tm = tm.T
        if orient & 1:
            tm = tm[:, ::-1]
        if orient & 2:
            tm = tm[::-1]
        if len(bank.np_cache) > 4096:
            bank.np_cache.clear()
        bank.np_cache[key] = tm
    return tm


def damage(x: Tensor, p: Batched, bank: TemplateBank | None) -> Tensor:
    """Paste and blend the damage. `x`: (B, T, C, H, W); `p`: batched. Returns the same shape."""
    if bank is None:
        raise RefusedError("the damage op needs noise templates: pass --templates DIR")
    b, t, c, h, w = x.shape
    layers = stack([damage_layer(pl, t, h, w, bank, x.device) for pl in p.placements])
    return apply_layer(x, layers.to(x.dtype), p.mode, inplace=owned(x))


def missing_kinds(preset: Any, bank: TemplateBank) -> list[str]:
    """The template kinds the preset's damage ops may draw (a kind with a count above 0, or
    `edge` with a probability, in an op that may run) that `bank` has none of: that part of
    the damage is left out of every window (`sample_damage` draws only the kinds it has)."""
    wanted: set[str] = set()
    for name, cfg in preset.ops:
        if name != "damage" or cfg.p <= 0:
            continue
        wanted |= {k for k in ("dust", "dirt", "blotch", "hair", "scratch") if getattr(cfg, k)[1]}
        if cfg.edge > 0:
            wanted.add("edge")
    return sorted(k for k in wanted if not bank.count(k))


register(
    Op(
        "damage",
        DamageParams,
        DamageConfig,
        sample_damage,
        damage,
        batched=False,
        doc="dust, dirt, hair, scratches, blotches and edge damage from templates, blended",
    )
)
