"""`filmdata templates extract VIDEO`: real film-noise overlay footage into damage templates.

Overlay footage (dust and scratches filmed on black, or on white: "film grain overlay" reels)
is mostly flat background with the damage on top. For each frame (every `step`-th):

1. decode as luma (interlaced frames deinterlaced, non-square pixels made square: a speck is
   kept round, not combed or squeezed); if the background is bright (median > 0.5) invert,
   so damage is bright;
2. remove the background with a large median blur (flicker and vignetting of the overlay);
3. threshold (`threshold` above the background) and find connected components;
4. crop each component with a margin, keep its soft intensity (not the binary mask), and sort
   it by shape: long and thin vertical -> scratch, long and thin otherwise -> hair, large and
   solid -> blotch, small -> dust, the rest -> dirt.

Templates are written as `<out>/<kind>/x-<video stem>-NNNNN.png` (8-bit gray), up to `limit` a kind,
each whole or not at all (`templates.write_template`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import cv2
import numpy as np

from ..errors import MediaError, RefusedError
from .templates import template_folder, write_template


def classify(w: int, h: int, area: int, frame_h: int) -> str:
    """Kind of a damage component from its bounding box and pixel area."""
    fill = area / max(1, w * h)
    if h >= 4 * w and h >= 0.25 * frame_h:
        return "scratch"
    if max(w, h) >= 24 and fill < 0.25:
        return "hair"
    if area >= 900 and fill >= 0.3:
        return "blotch"
    if max(w, h) <= 24:
        return "dust"
    return "dirt"


#: the median share of a frame's pixels standing out from the background above which the
#: footage is taken for pictures, not overlay footage (dust and scratches on a plain ground:
#: well under 1%; a cartoon, a street scene, a phone call: 15-20%)
PICTURE_SHARE = 0.05


def extract_templates(
    video: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    step: int = 2,
    threshold: float = 0.12,
    limit: int = 200,
    min_area: int = 6,
    quiet: bool = False,
) -> dict[str, int]:
    """Extract damage templates from overlay footage.

    Args:
        video: a film-noise overlay video (damage on black or white).
        out: the templates folder to write `<kind>/*.png` into.
        step: look at every `step`-th frame.
        threshold: damage must stand this far (0-1) above the local background.
        limit: at most this many templates per kind.
        min_area: ignore components smaller than this (pixels; sensor noise).
        quiet: no progress bar.

    Returns:
        Templates written per kind.

    Raises:
        RefusedError: the video is missing, `step` or `limit` is under 1, `threshold` is not in
            (0, 1), a file stands where `out` should be, or no damage is found in it;
            MediaError: it cannot be decoded; FilmdataError: a template cannot be written (a full
            disk).
    """
    from tqdm import tqdm

    from ..paths import refuse_unless_file, refuse_unless_folder
    from ..video import SQUARE_SAR, file_aspect, iter_frames, probe

    video = Path(video)
    if step < 1:
        raise RefusedError(f"--step must be >= 1, got {step}")
    if not 0 < threshold < 1:  # (NaN too): outside, no pixel or every pixel is damage
        raise RefusedError(f"--threshold must be in (0, 1), got {threshold}")
    if limit < 1:
        raise RefusedError(f"--limit must be >= 1, got {limit}")
    refuse_unless_file(video)
    refuse_unless_folder(Path(out).absolute(), "--out")
    info = probe(video, count=False, as_shown=False)  # (its frame count only)
    total = info.frames if getattr(info, "frames", None) else None
    out = Path(out)
    counts: dict[str, int] = {}
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in video.stem)[:40]
    sar = file_aspect(video)
    bar = tqdm(total=total, disable=quiet, unit="frame", desc="extract")
    seen = 0
    shares: list[float] = []  # each frame's share of pixels standing out
    try:
        for index, frame in iter_frames(video, gray=True, step=step, deinterlace=True):
            bar.update(step)
            seen += 1
            if abs(sar - 1) >= SQUARE_SAR:  # square pixels: the width times the pixel aspect
                h, w = frame.shape
                wide = cv2.INTER_LINEAR if sar > 1 else cv2.INTER_AREA
                frame = cv2.resize(frame, (max(1, round(w * sar)), h), interpolation=wide)
            for kind, crop in components(frame, threshold, min_area, shares):
                n = counts.get(kind, 0)
                if n >= limit:
                    continue
                folder = template_folder(out / kind) if n == 0 else out / kind
                name = folder / f"x-{stem}-{index:05d}-{n:03d}.png"
                write_template(name, crop)
                counts[kind] = n + 1
            if counts and all(v >= limit for v in counts.values()) and len(counts) >= 5:
                break
    finally:
        bar.close()
    if seen == 0:
        raise MediaError(f"{video}: no frames decoded")
    if not counts:
        raise RefusedError(
            f"{video}: no damage found: nothing stands --threshold {threshold} above the "
            f"background in the {seen} frame(s) looked at; give overlay footage (dust and "
            "scratches on black or white), or a lower --threshold"
        )
    share = float(np.median(shares)) if shares else 0.0
    if share > PICTURE_SHARE:
        warnings.warn(
            f"{video}: does not look like overlay footage: {share:.0%} of a frame's pixels "
            "stand out from its background (dust and scratches on black or white: under 1%); "
            f"the {sum(counts.values())} templates written under {out} (x-{stem}-*.png) may "
            "be details of its pictures",
            UserWarning,
            stacklevel=2,
        )
    return counts


def components(
    frame: np.ndarray, threshold: float, min_area: int, shares: list[float] | None = None
) -> list[tuple[str, np.ndarray]]:
    """(kind, soft crop in [0, 1]) for every damage component of one (H, W) uint8 frame;
    `shares`: the share of its pixels standing `threshold` out is appended to it."""
    f = frame.astype(np.float32) / 255
    if np.median(f) > 0.5:
        f = 1 - f
    # The background, from a wide median of a quarter-size copy (wider than any blotch).
    small = cv2.resize(
        f, (max(1, f.shape[1] // 4), max(1, f.shape[0] // 4)), interpolation=cv2.INTER_AREA
    )
    k = min(255, max(3, (min(small.shape) // 2) | 1))
    bg = cv2.resize(cv2.medianBlur((small * 255).astype(np.uint8), k), (f.shape[1], f.shape[0]))
    damage = np.clip(f - bg.astype(np.float32) / 255, 0, 1)
    mask = (damage > threshold).astype(np.uint8)
    if shares is not None:
        shares.append(float(mask.mean()))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    out = []
    h, w = f.shape
    for i in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if area < min_area or bw >= 0.9 * w and bh >= 0.9 * h:
            continue
        m = 3
        x0, y0, x1, y1 = max(0, x - m), max(0, y - m), min(w, x + bw + m), min(h, y + bh + m)
        soft = damage[y0:y1, x0:x1] * (
            cv2.dilate((labels[y0:y1, x0:x1] == i).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        )
        peak = float(soft.max())
        if peak <= 0:
            continue
        out.append((classify(bw, bh, area, h), np.clip(soft / peak, 0, 1)))
    return out
