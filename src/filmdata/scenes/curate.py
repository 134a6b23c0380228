"""Clip curation: length windows, black/blank/static/tape-noise segments, letterbox, pHash.

Each function looks at a few gray frames sampled from one clip (uint8 (T, H, W), small) and
returns a number or a decision with its reason, so `cut` can record why a clip was dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..video import picture_box

BLACK_MEAN = 16.0  # luma: darker than this on average is black
BLANK_STD = 4.0  # luma std of a 32x24 thumbnail: flatter than this is blank (any brightness)
STATIC_CHANGE = 0.03  # mean |difference| of normalised 32x24 thumbnails: less is a still
NOISE_CORR = 0.3  # neighbour-pixel correlation: below this there is no picture (tape snow)
PHASH_DUPLICATE = 6  # Hamming distance of 64-bit pHashes at or below which clips are duplicates


@dataclass(frozen=True)
class Box:
    """The active picture: x, y, w, h in source pixels."""

    x: int
    y: int
    w: int
    h: int


def windows(
    start: int, end: int, fps: float, min_len: float, max_len: float
) -> list[tuple[int, int]]:
    """Split the scene `[start, end)` into near-equal windows no longer than `max_len` seconds.

    A scene shorter than `min_len` comes back whole (the caller drops it as short). Where
    near-equal windows would each be shorter than `min_len` (a scene a little longer than
    `max_len`, with `max_len` under twice `min_len`), the scene is cut into windows of
    `max_len` from its start instead, the rest a last window (which the caller drops if short),
    so that no footage a window fits is lost.
    """
    n = end - start
    longest = max(1, int(max_len * fps)) if max_len > 0 else n
    if n <= longest:
        return [(start, end)]
    k = -(-n // longest)
    if n // k < min_len * fps:
        edges = [*range(start, end, longest), end]
        return list(zip(edges[:-1], edges[1:]))
    edges = [start + round(i * n / k) for i in range(k + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _thumbs(frames: np.ndarray) -> np.ndarray:
    return np.stack([cv2.resize(f, (32, 24), interpolation=cv2.INTER_AREA) for f in frames]).astype(
        np.float32
    )


def stats(frames: np.ndarray) -> dict[str, float]:
    """Brightness, contrast, motion and picture measures of sampled gray frames (T, H, W)."""
    if frames.ndim != 3 or len(frames) == 0:
        raise ValueError(f"frames: expected (T, H, W) with T >= 1, got {frames.shape}")
    th = _thumbs(frames)
    norm = (th - th.mean((1, 2), keepdims=True)) / (th.std((1, 2), keepdims=True) + 1.0)
    change = float(np.abs(np.diff(norm, axis=0)).mean()) if len(th) > 1 else 0.0
    f = frames.astype(np.float32)
    a, b = f[:, :, :-1].ravel(), f[:, :, 1:].ravel()
    corr = float(np.corrcoef(a, b)[0, 1]) if a.std() > 1e-3 and b.std() > 1e-3 else 1.0
    return {
        "brightness": round(float(f.mean()), 2),
        "contrast": round(float(th.std((1, 2)).mean()), 2),
        "motion": round(change, 4),
        "pixel_corr": round(corr, 3),
    }


def verdict(s: dict[str, float]) -> str | None:
    """Why a clip with these `stats` is dropped (None: kept)."""
    if s["brightness"] < BLACK_MEAN and s["contrast"] < 2 * BLANK_STD:
        return f"black: mean luma {s['brightness']:.1f} < {BLACK_MEAN:g}"
    if s["contrast"] < BLANK_STD:
        return f"blank: contrast {s['contrast']:.1f} < {BLANK_STD:g}"
    if s["pixel_corr"] < NOISE_CORR:
        return f"tape-noise: neighbour-pixel correlation {s['pixel_corr']:.2f} < {NOISE_CORR:g}"
    if s["motion"] < STATIC_CHANGE:
        return f"static: frame change {s['motion']:.4f} < {STATIC_CHANGE:g}"
    return None


def letterbox(frames: np.ndarray, width: int, height: int) -> Box:
    """The active picture box in source pixels (`width` x `height`) of sampled gray frames
    (`video.picture_box`: rows and columns darker than `BAR_LUMA` in every sample are bars)."""
    return Box(*picture_box(frames, width, height))


def inside(frames: np.ndarray, box: Box, width: int, height: int) -> np.ndarray:
    """The samples (T, h, w) of a `width` x `height` source cropped to its active picture
    `box` (source pixels), its edges rounded inwards so no sample row or column of bar is
    left; the whole samples where the box is under one sample across.

    The pHash of a clip is of this: a letterboxed transfer (16:9 in a 4:3 frame) and the
    wide original of the same footage hash alike, bars or none (`phash` resizes to 32x32,
    so the aspect does not count)."""
    if frames.ndim != 3:
        raise ValueError(f"frames: expected (T, H, W), got {frames.shape}")
    sh, sw = frames.shape[1:]
    y0, y1 = -(-box.y * sh // height), (box.y + box.h) * sh // height
    x0, x1 = -(-box.x * sw // width), (box.x + box.w) * sw // width
    if y1 <= y0 or x1 <= x0:
        return frames
    return frames[:, y0:y1, x0:x1]


def phash(frames: np.ndarray) -> str:
    """64-bit perceptual hash (DCT of 32x32, 8x8 low frequencies > their median) as 16 hex.

    Hashes the mean of the per-frame normalised samples, so flicker does not change it.
    """
    th = np.stack([cv2.resize(f, (32, 32), interpolation=cv2.INTER_AREA) for f in frames])
    th = th.astype(np.float32)
    th = (th - th.mean((1, 2), keepdims=True)) / (th.std((1, 2), keepdims=True) + 1.0)
    low = cv2.dct(th.mean(0))[:8, :8].ravel()
    bits = low > np.median(low[1:])
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def hamming(a: str, b: str) -> int:
    """Bits that differ between two hex hashes."""
    return bin(int(a, 16) ^ int(b, 16)).count("1")
