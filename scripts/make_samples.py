"""Make the bundled demo footage in manifests/samples/ (run once by a developer; output committed).

No moving footage with a clear licence can be had from this machine's package registries, so
the samples are camera moves (pan, zoom, slight rotation) over real public-domain and CC0
photographs that scikit-image ships (see manifests/samples/LICENSE.md), plus a procedurally
textured scene, cut together with hard cuts and one fade. `--photos` is scikit-image's
`skimage/data` folder.

    python scripts/make_samples.py --photos /path/to/skimage/data
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from filmdata.synthetic import Shot, render_shot
from filmdata.video import write_video

W, H, FPS = 320, 240, 24.0
PHOTOS = [
    "astronaut.png",
    "rocket.jpg",
    "coffee.png",
    "chelsea.png",
    "camera.png",
    "hubble_deep_field.jpg",
    "brick.png",
    "grass.png",
    "gravel.png",
]


def camera_move(img: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """n frames of a smooth pan/zoom/rotation over a photo (RGB uint8)."""
    rng = np.random.default_rng(seed)
    ih, iw = img.shape[:2]
    scale0 = max(W / iw, H / ih) * rng.uniform(1.25, 1.5)
    scale1 = scale0 * rng.uniform(0.9, 1.15)
    cx0, cy0 = iw * rng.uniform(0.4, 0.6), ih * rng.uniform(0.4, 0.6)
    dx, dy = rng.uniform(-0.12, 0.12) * iw, rng.uniform(-0.08, 0.08) * ih
    rot = rng.uniform(-2, 2)
    frames = []
    for t in range(n):
        a = t / max(1, n - 1)
        s = scale0 + (scale1 - scale0) * a
        cx, cy = cx0 + dx * a, cy0 + dy * a
        m = cv2.getRotationMatrix2D((cx, cy), rot * a, s)
        m[:, 2] += (W / 2 - cx, H / 2 - cy)
        frames.append(
            cv2.warpAffine(img, m, (W, H), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
        )
    return frames


def load(photos: Path, name: str) -> np.ndarray:
    img = cv2.imread(str(photos / name), cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"{photos / name}: cannot read")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def fade(a: list[np.ndarray], b: list[np.ndarray], k: int) -> list[np.ndarray]:
    """Cross-dissolve the last k frames of a into the first k of b."""
    mid = [
        (
            (1 - (i + 1) / (k + 1)) * a[-k + i].astype(np.float32)
            + (i + 1) / (k + 1) * b[i].astype(np.float32)
        ).astype(np.uint8)
        for i in range(k)
    ]
    return a[:-k] + mid + b[k:]


def vhs_like(frames: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """A crude tape transfer: 12 frames of snow, then the picture shrunk into a letterbox."""
    rng = np.random.default_rng(seed)
    out = [rng.integers(0, 255, (H, W, 3), dtype=np.uint8) for _ in range(12)]
    pw, ph, top = 300, 170, 35
    for f in frames:
        small = cv2.resize(f[6:-6, 8:-8], (pw, ph), interpolation=cv2.INTER_AREA)
        yuv = cv2.cvtColor(cv2.GaussianBlur(small, (5, 3), 0), cv2.COLOR_RGB2YUV)
        yuv[..., 1:] = cv2.blur(yuv[..., 1:], (9, 1))  # chroma bandwidth loss
        pic = cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB).astype(np.int16)
        pic += rng.normal(0, 6, pic.shape).astype(np.int16)
        canvas = np.zeros((H, W, 3), np.uint8)
        canvas[top : top + ph, (W - pw) // 2 : (W - pw) // 2 + pw] = np.clip(pic, 0, 255)
        out.append(canvas)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--photos", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("manifests/samples"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    shots = [camera_move(load(args.photos, p), 40, i) for i, p in enumerate(PHOTOS)]
    # Reel 1: astronaut | rocket | coffee, hard cuts; then chelsea dissolving into camera.
    reel1 = shots[0] + shots[1] + shots[2] + fade(shots[3], shots[4], 8)
    write_video(args.out / "reel-photos.mp4", reel1, FPS, crf=20)
    # Reel 2: brick, grass, gravel (CC0 texture photos), a procedural scene, the hubble field.
    reel2 = shots[6] + shots[7] + shots[8] + list(render_shot(Shot(36, 900), W, H)) + shots[5]
    write_video(args.out / "reel-textures.mp4", reel2, FPS, crf=20)
    # The "VHS" of reel 1: a noise head, 4:3 letterboxed smaller picture, blur, chroma smear,
    # noise, heavy compression; `filmdata pair` aligns it back to reel 1.
    write_video(args.out / "reel-photos-vhs.mp4", vhs_like(reel1, seed=5), 25.0, crf=34)
    print("wrote", sorted(p.name for p in args.out.glob("*.mp4")))


if __name__ == "__main__":
    main()
