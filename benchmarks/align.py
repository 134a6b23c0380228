"""Benchmark `filmdata align` on VHS-like tapes with a known truth.

Makes GT footage (textured pans; the second clip crawls and holds still, the hard case), turns it
into tapes (noise head, ident, offset, PAL-like speed change 24 -> 25 fps, a drop, a duplicate,
overscan, 4:3 letterbox at 480x360, blur, chroma smear, noise, H.264 at crf 38), aligns, and prints
frame accuracy, geometric error (tape px, over a 9x9 grid of the GT picture) and speed (x real
time of the tape) for ours and for a constant-offset baseline.

    python benchmarks/align.py [--seconds 20] [--width 1280] [--height 720] [--keep DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from filmdata.pairing import align
from filmdata.pairing import descriptors as dsc
from filmdata.pairing.tapesim import (
    TapeSpec,
    frame_accuracy,
    geometric_error,
    identical_runs,
    make_tape,
    render_footage,
)
from filmdata.video import write_video


def constant_offset(lq: str, gt: str) -> tuple[list[int | None], float]:
    """The baseline: one time offset at speed 1 (the best by descriptor similarity)."""
    t0 = time.perf_counter()
    lv, gv = dsc.decode_gray(lq, 160), dsc.decode_gray(gt, 160)
    box = dsc.active_box(lv.small)
    grid = (32, 18)
    s = dsc.coarse(lv.small, box, grid) @ dsc.coarse(gv.small, (0, 0, 160, 90), grid).T
    i = np.arange(lv.frames)
    best, best_o = -np.inf, 0.0
    for o in np.arange(-lv.frames, gv.frames, 0.25):
        j = np.round(o + i * gv.fps / lv.fps).astype(int)
        ok = (j >= 0) & (j < gv.frames)
        if ok.sum() < 0.3 * len(i):
            continue
        score = s[i[ok], j[ok]].sum()
        if score > best:
            best, best_o = score, o
    j = np.round(best_o + i * gv.fps / lv.fps).astype(int)
    mapping = [int(v) if 0 <= v < gv.frames else None for v in j]
    return mapping, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--keep", type=Path, default=None, help="keep the clips and tapes here")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="align-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    n = int(args.seconds * 24)
    clips = [
        ("pans", dict(lengths=(n // 4, n // 3, n - n // 4 - n // 3), seed=11, slow=False)),
        ("slow", dict(lengths=(n // 3, n // 3, n - 2 * (n // 3)), seed=12, slow=True)),
    ]
    specs = [
        TapeSpec(seed=1, start=7.3),
        TapeSpec(seed=2, start=3.0, shift=(-0.3, 0.7), overscan=0.05, squeeze=0.99, head=30),
    ]
    print(
        f"{'clip':6} {'method':9} {'frames':>6} {'accuracy':>9} {'geom px':>8} {'x realtime':>10}"
    )
    for (name, kw), spec in zip(clips, specs):
        gt = work / f"{name}-gt.mp4"
        if not gt.exists():
            frames = render_footage(args.width, args.height, **kw)  # type: ignore[arg-type]
            write_video(gt, frames, 24.0, crf=18)
        tape = make_tape(gt, work / f"{name}-tape.mp4", spec)
        same = identical_runs(gt)
        duration = len(tape.mapping) / spec.fps
        t0 = time.perf_counter()
        a = align(tape.path, gt)
        took = time.perf_counter() - t0
        acc = frame_accuracy(tape.mapping, a.mapping, same)
        err = geometric_error(tape.transform, a.transform, args.width, args.height)
        print(
            f"{name:6} {'ours':9} {len(tape.mapping):6d} {acc:9.3f} {err:8.3f} "
            f"{duration / took:10.1f}"
        )
        base, took_b = constant_offset(str(tape.path), str(gt))
        acc_b = frame_accuracy(tape.mapping, base, same)
        print(
            f"{name:6} {'constant':9} {len(tape.mapping):6d} {acc_b:9.3f} {'-':>8} "
            f"{duration / took_b:10.1f}"
        )
        print(
            f"       speed {a.speed:.4f} (true {spec.speed:.4f}), offset {a.offset:.3f} s, "
            f"quality {a.quality['matched']:.3f} matched, ecc {a.quality['ecc']}"
        )


if __name__ == "__main__":
    main()
