"""`filmdata templates make`: a procedural pack of film-damage templates.

Real damage has a few recognisable shapes, which we draw with OpenCV at the scale of a frame
384 pixels on its short side (`templates.FRAME`: the damage op pastes a template pixel on a
frame pixel there). Scratches and edge wear are strips drawn 512 long, stretched to the frame's
height when pasted:

- dust: small opaque specks with ragged outlines and soft edges, some with fibre tails;
- dirt: larger clumps, several overlapping specks with noisy density;
- hair: thin curved fibres (a jittered random-walk curve), one or two pixels wide;
- scratch: a long vertical line of varying width and density, with breaks (tall, narrow);
- blotch: big soft stains of emulsion damage with a darker rim;
- edge: a tall strip of perforation-edge wear, ragged from one side.

Every template is grayscale damage intensity (0 clean, 255 full), written as PNG, each whole or
not at all (`templates.write_template`).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import RefusedError
from .templates import template_folder, write_template

COUNTS = {"dust": 48, "dirt": 16, "hair": 12, "scratch": 12, "blotch": 8, "edge": 6}


def _ragged_blob(rng: np.random.Generator, size: int, lobes: int = 9) -> np.ndarray:
    c = size / 2
    angles = np.sort(rng.uniform(0, 2 * np.pi, lobes))
    radii = rng.uniform(0.35, 0.95, lobes) * (size / 2 - 1)
    pts = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], 1)
    img = np.zeros((size, size), np.float32)
    cv2.fillPoly(img, [np.round(pts * 4).astype(np.int32)], 1.0, cv2.LINE_AA, shift=2)
    return img


def _soften(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0 else img


def dust(rng: np.random.Generator) -> np.ndarray:
    size = int(rng.integers(6, 28))
    pad = size
    img = np.zeros((size + pad, size + pad), np.float32)
    blob = _ragged_blob(rng, size, int(rng.integers(5, 12)))
    o = pad // 2
    img[o : o + size, o : o + size] = blob
    if rng.random() < 0.3:  # a fibre tail
        pts = _walk(rng, (o + size // 2, o + size // 2), int(rng.integers(3, 8)), 2.5)
        cv2.polylines(img, [pts], False, 0.8, 1, cv2.LINE_AA)
    density = rng.uniform(0.7, 1.0) * (1 - 0.3 * rng.random(img.shape).astype(np.float32))
    return _soften(img, rng.uniform(0.3, 0.9)) * density


def dirt(rng: np.random.Generator) -> np.ndarray:
    size = int(rng.integers(32, 80))
    img = np.zeros((size, size), np.float32)
    for _ in range(int(rng.integers(3, 9))):
        s = int(rng.integers(4, size // 2))
        y, x = rng.integers(0, size - s, 2)
        img[y : y + s, x : x + s] = np.maximum(
            img[y : y + s, x : x + s], _ragged_blob(rng, s) * rng.uniform(0.5, 1)
        )
    mottle = cv2.resize(
        rng.random((6, 6)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC
    )
    return _soften(img, 0.7) * (0.6 + 0.4 * mottle.clip(0, 1))


def _walk(rng: np.random.Generator, start: tuple[int, int], n: int, step: float) -> np.ndarray:
    pts = [np.array(start, np.float64)]
    heading = rng.uniform(0, 2 * np.pi)
    for _ in range(n):
        heading += rng.normal(0, 0.35)
        pts.append(pts[-1] + step * np.array([np.cos(heading), np.sin(heading)]))
    return np.round(np.array(pts)).astype(np.int32).reshape(-1, 1, 2)


def hair(rng: np.random.Generator) -> np.ndarray:
    size = int(rng.integers(80, 200))
    img = np.zeros((size, size), np.float32)
    pts = _walk(rng, (size // 2, size // 2), int(rng.integers(20, 50)), size / 40)
    pts = pts - pts.reshape(-1, 2).min(0) + 4
    span = pts.reshape(-1, 2).max(0) + 5
    img = np.zeros((int(span[1]), int(span[0])), np.float32)
    cv2.polylines(img, [pts], False, 1.0, int(rng.integers(1, 3)), cv2.LINE_AA)
    return _soften(img, 0.4) * rng.uniform(0.7, 1.0)


def scratch(rng: np.random.Generator) -> np.ndarray:
    h, w = 512, int(rng.integers(5, 12))
    img = np.zeros((h, w), np.float32)
    width = np.clip(
        1
        + 1.5
        * cv2.resize(rng.random((8, 1)).astype(np.float32), (1, h), interpolation=cv2.INTER_CUBIC)[
            :, 0
        ],
        0.5,
        3,
    )
    dens = cv2.resize(
        rng.random((16, 1)).astype(np.float32), (1, h), interpolation=cv2.INTER_CUBIC
    )[:, 0].clip(0, 1)
    dens = 0.5 + 0.5 * dens
    for _ in range(int(rng.integers(0, 4))):  # breaks in the line
        a = int(rng.integers(0, h))
        dens[a : a + int(rng.integers(5, 60))] *= rng.uniform(0, 0.3)
    xs = np.arange(w, dtype=np.float32)[None, :]
    cx = w / 2 + np.cumsum(rng.normal(0, 0.03, h)).astype(np.float32)[:, None]
    img = (width[:, None] / 2 + 0.5 - np.abs(xs - cx)).clip(0, 1) * dens[:, None]
    return img.astype(np.float32)


def blotch(rng: np.random.Generator) -> np.ndarray:
    size = int(rng.integers(64, 160))
    blob = _ragged_blob(rng, size, int(rng.integers(8, 16)))
    soft = _soften(blob, size / 14)
    rim = np.clip(soft - _soften(blob, size / 6) * 0.8, 0, 1) * 1.5
    mottle = cv2.resize(
        rng.random((5, 5)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC
    )
    return np.clip(0.45 * soft * (0.7 + 0.3 * mottle) + rim, 0, 1)


def edge(rng: np.random.Generator) -> np.ndarray:
    h, w = 512, 48
    profile = cv2.resize(
        rng.random((24, 1)).astype(np.float32), (1, h), interpolation=cv2.INTER_CUBIC
    )[:, 0]
    depth = (0.15 + 0.5 * profile.clip(0, 1)) * w
    xs = np.arange(w, dtype=np.float32)[None, :]
    img = ((depth[:, None] - xs) / 3).clip(0, 1)
    speck = (rng.random((h, w)) < 0.02).astype(np.float32) * (xs < depth[:, None] * 1.5)
    return np.clip(_soften(img * rng.uniform(0.6, 1.0) + speck, 0.8), 0, 1).astype(np.float32)


MAKERS = {
    "dust": dust,
    "dirt": dirt,
    "hair": hair,
    "scratch": scratch,
    "blotch": blotch,
    "edge": edge,
}


def make_templates(
    out: str | os.PathLike[str], seed: int = 0, counts: dict[str, int] | None = None
) -> dict[str, int]:
    """Draw a template pack into `out/<kind>/<kind>-NNN.png`; returns the count per kind.

    Args:
        out: the templates folder (made if missing; existing files of the same names replaced).
        seed: the pack's seed (the same seed draws the same pack).
        counts: templates per kind (default `COUNTS`).

    Raises:
        RefusedError: `seed` is negative, or a file stands where `out` (or a folder above it)
            should be; FilmdataError: a template cannot be written (a full disk).
    """
    from ..paths import refuse_unless_folder

    if seed < 0:  # (numpy's SeedSequence takes non-negative integers only)
        raise RefusedError(f"--seed must be >= 0, got {seed}")
    out = Path(out)
    refuse_unless_folder(out.absolute(), "--out")
    done: dict[str, int] = {}
    for kind, n in (counts or COUNTS).items():
        folder = template_folder(out / kind)
        rng = np.random.default_rng([seed, list(MAKERS).index(kind)])
        for i in range(n):
            write_template(folder / f"{kind}-{i:03d}.png", MAKERS[kind](rng))
        done[kind] = n
    return done
