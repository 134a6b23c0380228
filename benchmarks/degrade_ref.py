"""The per-frame numpy/OpenCV reference degradation, as old-film papers' data loaders do it.

`reference_degrade(frame_uint8, rng) -> uint8` degrades one (H, W, 3) frame with the classic
recipe: blur, down/up resize, gaussian noise, JPEG, a dust/scratch template blended by grain
merge, luminance-dependent film grain and a flicker gain. It is the yardstick `benchmarks/synth.py`
and `benchmarks/degrade.py` time filmdata against (same frames, same run).

Run alone: `python benchmarks/degrade_ref.py [--frames 256]` prints the reference's frames/s
at 256x256 and ours (degradation alone, film and vhs presets) with the ratios, same frames.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

_TEMPLATES: list[np.ndarray] = []


def _templates() -> list[np.ndarray]:
    """The bundled dust/scratch templates as float32 (h, w) in [0, 1], read once."""
    if not _TEMPLATES:
        root = Path(__file__).resolve().parents[1] / "degradations" / "templates"
        for kind in ("dust", "dirt", "scratch", "hair"):
            for p in sorted((root / kind).glob("*.png")):
                _TEMPLATES.append(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255)
        if not _TEMPLATES:
            _TEMPLATES.append(np.zeros((8, 8), np.float32))
    return _TEMPLATES


def reference_degrade(frame_uint8: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Degrade one (H, W, 3) uint8 RGB frame; returns (H, W, 3) uint8."""
    h, w = frame_uint8.shape[:2]
    x = frame_uint8.astype(np.float32) / 255
    # 1. blur
    x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.4, 1.5))
    # 2. resolution loss: down and up again
    s = rng.uniform(0.4, 0.85)
    small = cv2.resize(x, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
    x = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    # 3. gaussian noise
    x = x + rng.standard_normal(x.shape, dtype=np.float32) * rng.uniform(0.005, 0.02)
    # 4. template grain merge: out = a + b - 0.5 (GIMP), b a grey layer with the damage on it
    layer = np.full((h, w), 0.5, np.float32)
    bank = _templates()
    for _ in range(int(rng.integers(3, 12))):
        t = bank[int(rng.integers(len(bank)))]
        sc = rng.uniform(0.5, 1.5) * min(h, w) / 512
        th, tw = max(1, int(t.shape[0] * sc)), max(1, int(t.shape[1] * sc))
        t = cv2.resize(t, (tw, th), interpolation=cv2.INTER_AREA)
        y0, x0 = int(rng.integers(0, max(1, h - th))), int(rng.integers(0, max(1, w - tw)))
        patch = layer[y0 : y0 + th, x0 : x0 + tw]
        patch -= 0.5 * t[: patch.shape[0], : patch.shape[1]]
    x = x + layer[..., None] - 0.5
    # 5. film grain, strongest in the mid-tones
    lum = cv2.cvtColor(np.clip(x, 0, 1), cv2.COLOR_RGB2GRAY)[..., None]
    grain = rng.standard_normal(x.shape[:2], dtype=np.float32)[..., None]
    x = x + grain * rng.uniform(0.02, 0.07) * (0.3 + 2.8 * lum * (1 - lum))
    # 6. flicker: a global gain and offset
    x = x * rng.uniform(0.88, 1.12) + rng.uniform(-0.03, 0.03)
    # 7. JPEG
    u8 = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
    ok, buf = cv2.imencode(
        ".jpg", u8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 85))]
    )
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


def _op_times(gt: Any, degs: list[Any], bank: Any, apply: Any) -> dict[str, tuple[float, int]]:
    """Each op's total wall time (ms) and the windows it ran on, over one pass of `apply`
    (the pipeline, window by window) with every registered op timed where it is called."""
    from filmdata.degrade import OPS

    spent: dict[str, list[float]] = {}
    real = {name: op.apply for name, op in OPS.items()}

    def timed(name: str) -> Any:
        def run(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            out = real[name](*a, **k)
            spent.setdefault(name, []).append(1e3 * (time.perf_counter() - t0))
            return out

        return run

    try:
        for name, op in OPS.items():
            object.__setattr__(op, "apply", timed(name))
        for b in range(len(degs)):
            apply(gt[b : b + 1], degs[b : b + 1], bank)
    finally:
        for name, op in OPS.items():
            object.__setattr__(op, "apply", real[name])
    return {name: (sum(v), len(v)) for name, v in spent.items()}


def main() -> None:
    """Print the reference's frames/s and ours (degradation alone, each bundled preset), with
    the ratio, on the same frames in the same run; wall clock and process CPU time."""
    import argparse

    ap = argparse.ArgumentParser(description="degradation alone: filmdata vs the reference")
    ap.add_argument("--frames", type=int, default=256)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--clip-len", type=int, default=8)
    ap.add_argument("--presets", default="film,vhs")
    ap.add_argument(
        "--ops", action="store_true", help="also print each op's share (ms a frame, CPU run)"
    )
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import torch

    from filmdata.degrade import (
        apply_degradation,
        bundled_dir,
        load_preset,
        load_templates,
        sample_degradation,
    )
    from filmdata.synthetic import render_shots

    t, s = args.clip_len, args.size
    windows = max(1, args.frames // t)
    n = windows * t
    frames, _ = render_shots((n,), s, s, seed=0)
    print(f"{n} frames of {s}x{s} (windows of {t}); torch threads {torch.get_num_threads()}")

    rng = np.random.default_rng(0)
    reference_degrade(frames[0], rng)
    w0, c0 = time.perf_counter(), time.process_time()
    for f in frames:
        reference_degrade(f, rng)
    ref_wall, ref_cpu = n / (time.perf_counter() - w0), n / (time.process_time() - c0)
    print(f"reference (numpy/OpenCV, per frame): {ref_wall:7.1f} frames/s wall, {ref_cpu:7.1f} cpu")

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        bank = load_templates(bundled_dir(), dev)
        gt = torch.from_numpy(frames).reshape(windows, t, s, s, 3).permute(0, 1, 4, 2, 3)
        gt = gt.to(dev).float().div(255)
        for name in args.presets.split(","):
            preset = load_preset(name)
            degs = [sample_degradation(preset, 0, f"w{i}", t, s, s, bank) for i in range(windows)]
            apply_degradation(gt[:1], degs[:1], bank)  # warm-up
            if dev == "cuda":
                torch.cuda.synchronize()
            w0, c0 = time.perf_counter(), time.process_time()
            for b in range(0, windows, 8):
                apply_degradation(gt[b : b + 8], degs[b : b + 8], bank)
            if dev == "cuda":
                torch.cuda.synchronize()
            wall, cpu = n / (time.perf_counter() - w0), n / (time.process_time() - c0)
            if args.ops and dev == "cpu":
                per_op = _op_times(gt, degs, bank, apply_degradation)
            print(
                f"filmdata {name:5s} ({dev}): {wall:7.1f} frames/s wall ({wall / ref_wall:4.2f}x), "
                f"{cpu:7.1f} cpu ({cpu / ref_cpu:4.2f}x)"
            )
            if args.ops and dev == "cpu":
                for op, (ms, used) in sorted(per_op.items(), key=lambda kv: -kv[1][0]):
                    print(f"    {op:12s} {ms / n:6.3f} ms a frame ({used} of {windows} windows)")


if __name__ == "__main__":
    main()
