"""Benchmark `filmdata synth`: degrade-only and end-to-end frames/s against a per-frame
numpy/OpenCV reference degradation, on the same frame count, in the same run.

    python benchmarks/synth.py [--frames 256] [--size 256] [--width 1280 --height 720]
                               [--preset film] [--device cpu] [--batch-size 8] [--input CLIP]

Footage: a procedural 720p H.264 clip (textured pans with cuts), made once into a temp folder;
or `--input CLIP`, a real clip: then every whole window of it (or the first `--frames` frames),
and the degrade-only contenders degrade its own frames (centre squares, area-resized).
Prints: reference frames/s (degradation alone, per frame), ours degrade-only (batched, CPU and
CUDA when present), ours end to end (decode, crop, resize, degrade, PNG encode, Parquet write),
and each ratio against the reference.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _reference() -> tuple[str, object]:
    try:
        from degrade_ref import reference_degrade  # the degrade engineer's reference

        return "benchmarks/degrade_ref.py", reference_degrade
    except ImportError:
        return "benchmarks/synth.py (built-in)", builtin_reference


def builtin_reference(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A per-frame numpy/OpenCV film degradation (blur, resize, noise, JPEG, template grain
    merge, grain, flicker), the way DeepRemaster-era loaders did it."""
    import cv2

    h, w = frame.shape[:2]
    x = frame.astype(np.float32) / 255
    x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.4, 1.4))
    s = rng.uniform(0.5, 0.9)
    x = cv2.resize(
        cv2.resize(x, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA),
        (w, h),
        interpolation=cv2.INTER_LINEAR,
    )
    x = x + rng.normal(0, rng.uniform(0.01, 0.04), x.shape).astype(np.float32)
    tmpl = np.zeros((h, w), np.float32)
    for _ in range(rng.poisson(8)):
        cv2.circle(
            tmpl,
            (int(rng.integers(0, w)), int(rng.integers(0, h))),
            int(rng.integers(1, 4)),
            float(rng.uniform(-0.5, 0.5)),
            -1,
        )
    x = x + tmpl[..., None]  # grain merge: a + b - 0.5 with b = tmpl + 0.5
    lum = x.mean(axis=2, keepdims=True)
    x = x + rng.normal(0, 0.05, (h, w, 1)).astype(np.float32) * (0.5 + lum)
    x = x * rng.uniform(0.85, 1.15) + rng.uniform(-0.05, 0.05)
    u8 = (np.clip(x, 0, 1) * 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 90))])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def make_footage(folder: Path, width: int, height: int, frames: int) -> Path:
    from filmdata.synthetic import render_shots
    from filmdata.video import write_video

    path = folder / f"bench-{width}x{height}-{frames}.mp4"
    if not path.exists():
        n1 = frames // 2
        clip, _ = render_shots((n1, frames - n1), width, height, seed=11)
        write_video(path, clip, 24.0)
    return path


def clip_frames(path: Path, n: int | None, size: int) -> np.ndarray:
    """The first `n` frames of `path` (None: all of them) as (n, size, size, 3) uint8 RGB:
    each frame's centre square, area-resized (what the degrade-only contenders work on)."""
    import cv2

    from filmdata.video import iter_frames

    out = []
    for _, f in iter_frames(path, 0, n):
        h, w = f.shape[:2]
        e = min(h, w)
        y, x = (h - e) // 2, (w - e) // 2
        square = f[y : y + e, x : x + e]
        out.append(cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA))
    if n is not None and len(out) < n:
        raise SystemExit(f"{path}: {len(out)} frames decode, {n} wanted")
    return np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--frames",
        type=int,
        default=None,
        help="frames degraded by each contender (default 256; with --input, all its windows)",
    )
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--clip-len", type=int, default=8)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--preset", default="film")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--image-format", default="png")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--input", type=Path, default=None, help="a real clip instead of ours")
    args = ap.parse_args()

    import torch

    from filmdata.degrade import (
        apply_degradation,
        bundled_dir,
        load_preset,
        load_templates,
        sample_degradation,
    )
    from filmdata.synth import synth
    from filmdata.synthetic import render_shots

    work = Path(args.workdir or tempfile.mkdtemp(prefix="filmdata-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t, s = args.clip_len, args.size
    squares = None
    if args.input is not None:  # decoded once: its frames count, and are the contenders' GT
        squares = clip_frames(args.input, None, s)
        n = min(args.frames or len(squares), len(squares))
    else:
        n = args.frames or 256
    windows = max(1, n // t)
    n = windows * t
    print(
        f"machine: {torch.get_num_threads()} torch threads; {n} frames of {s}x{s}, "
        f"windows of {t}, preset {args.preset}; footage {args.input or 'procedural 720p'}"
    )

    # GT frames for the degrade-only contenders (the same frames for both).
    if squares is not None:
        gt_frames = squares[:n]
    else:
        gt_frames, _ = render_shots((n,), s, s, seed=5)

    name, ref = _reference()
    rng = np.random.default_rng(0)
    ref(gt_frames[0], rng)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    for f in gt_frames:
        ref(f, rng)
    ref_fps = n / (time.perf_counter() - t0)
    ref_cpu = n / (time.process_time() - c0)
    print(
        f"reference ({name}), degradation alone: {ref_fps:8.1f} frames/s "
        f"({ref_cpu:.1f} per CPU-second)"
    )

    templates = bundled_dir()
    preset = load_preset(args.preset, templates)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        bank = load_templates(templates, dev)
        gt = torch.from_numpy(gt_frames).reshape(windows, t, s, s, 3).permute(0, 1, 4, 2, 3)
        gt = gt.to(dev).float().div(255)
        degs = [
            sample_degradation(preset, seed=0, key=f"w{i}", t=t, h=s, w=s, bank=bank)
            for i in range(windows)
        ]
        with torch.no_grad():  # warm-up: first calls allocate and pick kernels
            apply_degradation(gt[: args.batch_size], degs[: args.batch_size], bank)
        if dev == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad():
            for b in range(0, windows, args.batch_size):
                apply_degradation(gt[b : b + args.batch_size], degs[b : b + args.batch_size], bank)
        if dev == "cuda":
            torch.cuda.synchronize()
        fps = n / (time.perf_counter() - t0)
        print(
            f"ours, degrade only ({dev}, batch {args.batch_size}): {fps:8.1f} frames/s  "
            f"ratio {fps / ref_fps:5.2f}x"
        )

    # The degrade-only contenders' clips (n frames as float32: 0.8 GB at 1024 frames of 256^2)
    # and parameters are freed first: `synth` is timed as a process that holds nothing else.
    del gt, degs, bank
    import gc

    gc.collect()
    footage = args.input or make_footage(work, args.width, args.height, n + t)
    out = work / "ds"
    shutil.rmtree(out, ignore_errors=True)  # a fresh dataset, not --overwrite's removal timed
    t0, c0 = time.perf_counter(), time.process_time()
    summary = synth(
        templates,
        args.preset,
        [footage],
        out=out,
        root=work / "root",
        clip_len=t,
        size=s,
        seed=0,
        device=args.device,
        batch_size=args.batch_size,
        max_windows=windows,
        image_format=args.image_format,
        overwrite=True,
        quiet=True,
    )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    made = summary["windows_made"] * t
    e2e = made / wall
    print(
        f"ours, end to end ({footage.name} -> {s}^2 {args.image_format} "
        f"shards, {args.device}): {e2e:8.1f} frames/s  ratio {e2e / ref_fps:5.2f}x "
        f"({made} frames in {wall:.1f} s; {made / cpu:.1f} per CPU-second, all threads)"
    )
    # The whole command, as a user runs it: a fresh process (Python, torch's import, ...).
    import json
    import subprocess

    cli = shutil.which("filmdata") or str(Path(sys.executable).with_name("filmdata"))
    cmd = [cli, "synth", "--templates", str(templates), "--preset", args.preset, "--input",
           str(footage), "--out", str(work / "ds-cli"), "--root", str(work / "root"),
           "--clip-len", str(t), "--size", str(s), "--max-windows", str(windows),
           "--device", args.device, "--image-format", args.image_format, "--seed", "0",
           "--quiet", "--json"]  # fmt: skip
    # A fresh dataset, as a user's first run makes it (`--overwrite` would time the removal
    # of the last run's shards too: ~0.3 s here).
    shutil.rmtree(work / "ds-cli", ignore_errors=True)
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the command and its reader process
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    made = json.loads(out)["windows_made"] * t
    print(
        f"ours, whole `filmdata synth` process: {made / wall:8.1f} frames/s  ratio "
        f"{made / wall / ref_fps:5.2f}x ({made} frames in {wall:.2f} s, start-up included; "
        f"{cpu:.2f} CPU-s)"
    )


if __name__ == "__main__":
    main()
