"""A tiny procedural paired dataset in the DESIGN layout (card + Parquet shards), for tests,
the loading notebook and the benchmarks: textured moving footage, degraded by flicker, blur and
noise. Real datasets come from `filmdata synth` and `filmdata pair`."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ..synthetic import render_shots

CARD = """---
configs:
- config_name: {config}
  default: true
  data_files:
{files}
---
# {name}

A tiny procedural dataset of paired windows (`gt`, `lq`) made by `filmdata.restorer.toydata`.
"""


def degrade(frames: np.ndarray, seed: int) -> tuple[np.ndarray, dict[str, float]]:
    """Flicker (per-frame gain), Gaussian blur and Gaussian noise: (T, H, W, 3) uint8 -> same."""
    rng = np.random.default_rng(seed)
    sigma_blur = float(rng.uniform(0.6, 1.2))
    noise = float(rng.uniform(0.03, 0.06))
    gains = rng.normal(1.0, 0.08, len(frames))
    out = []
    for g, f in zip(gains, frames):
        x = cv2.GaussianBlur(f.astype(np.float32) / 255, (0, 0), sigma_blur) * g
        x = x + rng.normal(0, noise, x.shape).astype(np.float32)
        out.append((np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8))
    params = {"blur": sigma_blur, "noise": noise, "gains": [float(v) for v in gains]}
    return np.stack(out), params  # type: ignore[return-value]


def _png(img: np.ndarray) -> dict[str, object]:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    assert ok
    return {"bytes": io.BytesIO(buf.tobytes()).getvalue(), "path": None}


def _quietly(fn: Callable[..., object], *args: object) -> None:
    """Run fn(*args) without datasets' progress bars (restoring their previous state)."""
    import datasets as dtqdm

    was = dtqdm.are_progress_bars_disabled()
    dtqdm.disable_progress_bars()
    try:
        fn(*args)
    finally:
        if not was:
            dtqdm.enable_progress_bars()


def make_toy_dataset(
    path: str | Path,
    *,
    windows: dict[str, int] | None = None,
    frames: int = 5,
    size: tuple[int, int] = (64, 48),
    seed: int = 0,
    config: str = "synthetic",
) -> Path:
    """Write `path/README.md` and `path/data/<config>/<split>-00000-of-00001.parquet`.

    Args:
        windows: rows per split (default {"train": 8, "validation": 2}); each split renders its
            own footage (a different seed), so nothing leaks between splits.
        frames: frames per window (T); size: (width, height).

    Returns:
        The dataset folder.
    """
    from datasets import Dataset, Features, Image, Sequence, Value

    path = Path(path)
    windows = windows or {"train": 8, "validation": 2}
    features = Features(
        {
            "id": Value("string"),
            "source": Value("string"),
            "clip": Value("string"),
            "start_frame": Value("int32"),
            "fps": Value("float32"),
            "crop": {
                "x": Value("int32"),
                "y": Value("int32"),
                "w": Value("int32"),
                "h": Value("int32"),
            },
            "gt": Sequence(Image()),
            "lq": Sequence(Image()),
            "degradation": Value("string"),
            "origin": Value("string"),
        }
    )
    w, h = size
    lines = []
    for k, (split, n) in enumerate(windows.items()):
        footage, _ = render_shots([n * frames], w, h, seed=seed * 100 + k)
        rows: dict[str, list] = {name: [] for name in features}
        for i in range(n):
            gt = footage[i * frames : (i + 1) * frames]
            lq, params = degrade(gt, seed * 100_000 + k * 1000 + i)
            rows["id"].append(f"toy-{split}:{i * frames}:{seed}")
            rows["source"].append(f"toy-{split}")
            rows["clip"].append(f"toy-{split}-0")
            rows["start_frame"].append(i * frames)
            rows["fps"].append(24.0)
            rows["crop"].append({"x": 0, "y": 0, "w": w, "h": h})
            rows["gt"].append([_png(f) for f in gt])
            rows["lq"].append([_png(f) for f in lq])
            rows["degradation"].append(json.dumps({"preset": "toy", "seed": seed, **params}))
            rows["origin"].append("synthetic")
        out = path / "data" / config / f"{split}-00000-of-00001.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        _quietly(Dataset.from_dict(rows, features=features).to_parquet, str(out))
        lines.append(f"  - split: {split}\n    path: data/{config}/{split}-*.parquet")
    card = CARD.format(config=config, files="\n".join(lines), name=path.name)
    (path / "README.md").write_text(card, encoding="utf-8")
    return path
