"""Procedural footage for tests, benchmarks and the demo: textured moving scenes with cuts.

Each shot is a camera (pan and zoom) moving over its own large textured "world" (multi-octave
noise, gradients, edges and blobs), with objects moving across it, so that detectors, aligners
and restorers see texture and motion rather than flat shapes. Everything is seeded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np


def _octave_noise(rng: np.random.Generator, h: int, w: int, octaves: int = 6) -> np.ndarray:
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        gh, gw = max(2, h >> (octaves - o)), max(2, w >> (octaves - o))
        grid = rng.random((gh, gw), dtype=np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.55
    out /= total
    return (out - out.min()) / (np.ptp(out) + 1e-6)


def make_world(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A (h, w, 3) float32 texture in [0, 1]: noise, a horizon gradient, buildings, blobs."""
    base = np.stack([_octave_noise(rng, h, w) for _ in range(3)], -1)
    hue = rng.random(3).astype(np.float32)
    img = 0.55 * base * (0.5 + hue) + 0.25 * rng.random(3).astype(np.float32)
    horizon = rng.uniform(0.3, 0.7) * h
    ys = np.arange(h, dtype=np.float32)[:, None, None]
    img += 0.25 * np.tanh((ys - horizon) / (0.05 * h)) * (rng.random(3) - 0.5).astype(np.float32)
    for _ in range(rng.integers(15, 40)):  # rectangles: "buildings", windows, signs
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        bw, bh = int(rng.integers(w // 40, w // 8)), int(rng.integers(h // 30, h // 4))
        col = rng.random(3).astype(np.float32)
        img[y0 : y0 + bh, x0 : x0 + bw] = 0.6 * img[y0 : y0 + bh, x0 : x0 + bw] + 0.4 * col
    for _ in range(rng.integers(10, 30)):
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        r = int(rng.integers(3, max(4, min(h, w) // 12)))
        cv2.circle(img, c, r, tuple(float(x) for x in rng.random(3)), -1, cv2.LINE_AA)
    for _ in range(rng.integers(5, 15)):
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(
            img,
            p1,
            p2,
            tuple(float(x) for x in rng.random(3)),
            int(rng.integers(1, 4)),
            cv2.LINE_AA,
        )
    fine = rng.normal(0, 0.03, (h, w, 1)).astype(np.float32)
    return np.clip(img + cv2.GaussianBlur(fine, (3, 3), 0)[..., None], 0, 1)


@dataclass(frozen=True)
class Shot:
    length: int
    seed: int


def render_shot(shot: Shot, width: int, height: int) -> Iterator[np.ndarray]:
    """Frames (height, width, 3) uint8 of one shot: a pan/zoom over its world plus movers."""
    rng = np.random.default_rng(shot.seed)
    ww, wh = int(width * 2.2), int(height * 2.2)
    world = make_world(rng, wh, ww)
    x0, y0 = rng.uniform(0, ww - width * 1.2), rng.uniform(0, wh - height * 1.2)
    vx, vy = rng.uniform(-2.5, 2.5), rng.uniform(-1.2, 1.2)
    z0, dz = rng.uniform(1.0, 1.15), rng.uniform(-0.002, 0.002)
    movers = []
    # radii from a twentieth to a sixth of the height, at least 3 pixels (a shorter frame than
    # 24 rows has no sixth over 3: the range is the one radius 3)
    r_lo = max(3, height // 20)
    r_hi = max(height // 6, r_lo + 1)
    for _ in range(int(rng.integers(1, 4))):
        movers.append(
            (
                rng.uniform(0, width),
                rng.uniform(0, height),
                rng.uniform(-4, 4),
                rng.uniform(-2, 2),
                int(rng.integers(r_lo, r_hi)),
                tuple(int(c) for c in rng.integers(0, 256, 3)),
            )
        )
    # The zoom bounces between a 4x close-up and the whole world's width: left to run, a long
    # shot's (500+ frames) zoom passes 0, where the picture flips and then leaves the world
    # (black), or grows past the world (black beyond its edges).
    z_lo, z_hi = 0.25, min((ww - 1) / width, (wh - 1) / height)
    for t in range(shot.length):
        z = z0 + dz * t
        if not z_lo <= z <= z_hi:
            z = _bounce(z, z_lo, z_hi)
        cw, ch = width * z, height * z
        cx = np.clip(x0 + vx * t, 0, ww - cw - 1)
        cy = np.clip(y0 + vy * t, 0, wh - ch - 1)
        m = np.array([[z, 0, cx], [0, z, cy]], np.float32)
        frame = cv2.warpAffine(
            world, m, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        )
        out = (frame * 255).astype(np.uint8)
        for mx, my, mvx, mvy, r, col in movers:
            px, py = int(mx + mvx * t) % width, int(my + mvy * t) % height
            cv2.circle(out, (px, py), r, col, -1, cv2.LINE_AA)
            cv2.circle(out, (px - r // 3, py - r // 3), max(1, r // 4), (255, 255, 255), -1)
        yield out


def _bounce(z: float, lo: float, hi: float) -> float:
    """`z` reflected back and forth into [lo, hi] (a value that runs on turns at each end)."""
    period = 2 * (hi - lo)
    u = (z - lo) % period
    return lo + (u if u <= hi - lo else period - u)


def render_shots(
    lengths: Sequence[int], width: int = 320, height: int = 240, seed: int = 0
) -> tuple[np.ndarray, list[int]]:
    """Frames (N, H, W, 3) uint8 of consecutive shots, and the cut frames (start of shot 2..)."""
    frames: list[np.ndarray] = []
    cuts: list[int] = []
    n = 0
    for i, length in enumerate(lengths):
        if i:
            cuts.append(n)
        frames.extend(render_shot(Shot(length, seed * 1000 + i), width, height))
        n += length
    return np.stack(frames), cuts


def to_old_film(
    frames: np.ndarray,
    seed: int = 0,
    flicker: float = 0.15,
    grain: float = 0.06,
    dust: int = 6,
    scratch: bool = True,
    weave: float = 1.0,
    flashes: Sequence[int] = (),
) -> np.ndarray:
    """Monochrome, flickering, grainy, dusty, scratched, weaving film (N, H, W, 3) uint8.

    `flicker` is the std of the per-frame gain; `flashes` lists frames overexposed to near white.
    """
    rng = np.random.default_rng(seed)
    n, h, w = frames.shape[:3]
    out = np.empty_like(frames)
    sx = rng.uniform(0.2, 0.8) * w
    for i in range(n):
        g = cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
        dx, dy = rng.normal(0, weave, 2)
        g = cv2.warpAffine(
            g, np.array([[1, 0, dx], [0, 1, dy]], np.float32), (w, h), borderMode=cv2.BORDER_REFLECT
        )
        gain = 1 + rng.normal(0, flicker)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        field = 1 + flicker * 0.5 * np.sin(xx / w * rng.uniform(1, 4) + rng.uniform(0, 6)) * np.cos(
            yy / h * rng.uniform(1, 3)
        )
        g = g * gain * field + rng.normal(0, flicker * 0.2)
        g += rng.normal(0, grain, (h, w)).astype(np.float32)
        for _ in range(rng.poisson(dust)):
            c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.circle(g, c, int(rng.integers(1, 4)), float(rng.choice([0.0, 1.0])), -1)
        if scratch:
            sx = float(np.clip(sx + rng.normal(0, 1.5), 2, w - 3))
            g[:, int(sx)] = np.clip(g[:, int(sx)] + 0.35, 0, 1)
        if i in flashes:
            g = 0.25 * g + 0.75
        out[i] = np.repeat((np.clip(g, 0, 1) * 255).astype(np.uint8)[..., None], 3, 2)
    return out
