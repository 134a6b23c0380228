"""Benchmark `filmdata align` on tapes from a second, plainer VHS-like maker.

`align.py` makes its tapes with `filmdata.pairing.tapesim`, the maker the aligner was developed
against. This one makes its tapes with none of its code (it shares only the measures), so
that the aligner is not measured only on the quirks of its own test footage: from a GT video
(`GT`, any frame rate; a real HD clip) each seed draws a tape of

  - a head of horizontally smeared snow (15-39 frames, no GT),
  - the GT from a random frame on (10-39), at PAL speed (25/24 GT seconds a tape second) and
    25 fps: tape frame k shows GT frame floor(start + k * speed * gt_fps / 25),
  - one GT frame dropped (somewhere in the first half) and one tape frame shown twice (in the
    second half; `--repeat-first`: the other way round),
  - overscan cut from each side (2-5% of the picture, unequal), the rest scaled into a 16:9
    box letterboxed in 480x360 (4:3),
  - luma blur (sigma 1.3), chroma smeared (a 9-px box) and delayed (3 px), gain 0.85-1.1 and
    a lifted black (5-15), Gaussian luma noise (`--noise`, 7 grey levels), and
  - H.264 (libx264 `--crf` 40, preset veryfast, x264's own GOP and scene cuts),

runs the whole `filmdata align TAPE GT --json` process on it and prints frame accuracy (right
GT frame, one with the same picture (`tapesim.identical_runs`: a frame the GT itself repeats,
as a 24 fps film made 25 does; a slow movement is not one picture), or null where the tape has
no GT), the geometric error
(`tapesim.geometric_error`: mean tape px over a 9x9 grid of the GT picture, as `align.py`
gives it) and x real time.

    python benchmarks/align_plain.py GT [--seeds 1-10] [--noise 7] [--crf 40] [--repeat-first]
                                        [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from filmdata.pairing.tapesim import frame_accuracy, geometric_error, identical_runs

TAPE_W, TAPE_H, PICTURE_H, TAPE_FPS = 480, 360, 270, 25.0


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def make_tape(
    gt: np.ndarray,
    gt_fps: float,
    out: Path,
    seed: int,
    noise: float,
    crf: int,
    repeat_first: bool = False,
) -> tuple[list[int | None], np.ndarray]:
    """Write a tape of the GT frames `gt` (N, H, W, 3) RGB to `out`; (truth, GT -> tape 2x3)."""
    rng = np.random.default_rng(seed)
    n_gt, h, w = gt.shape[:3]
    rate = (25 / 24) * gt_fps / TAPE_FPS  # GT frames a tape frame
    start = int(rng.integers(10, 40))
    shown: list[int] = []
    while (g := int(np.floor(start + len(shown) * rate + 1e-9))) < n_gt:
        shown.append(g)
    if repeat_first:  # a tape frame shown twice in the first half, a GT frame lost later
        dup = int(rng.integers(20, len(shown) // 2))
        shown.insert(dup, shown[dup])
        shown.pop(int(rng.integers(len(shown) // 2, len(shown) - 10)))
    else:  # a GT frame lost in the first half, a tape frame shown twice later
        shown.pop(int(rng.integers(20, len(shown) // 2)))
        dup = int(rng.integers(len(shown) // 2, len(shown) - 10))
        shown.insert(dup, shown[dup])
    left, right = rng.uniform(0.02, 0.05, 2) * w
    top, bottom = rng.uniform(0.02, 0.05, 2) * h
    sx, sy = TAPE_W / (w - left - right), PICTURE_H / (h - top - bottom)
    bar = (TAPE_H - PICTURE_H) / 2
    m = np.array([[sx, 0, (0.5 - left) * sx - 0.5], [0, sy, (0.5 - top) * sy - 0.5 + bar]])
    head = int(rng.integers(15, 40))
    gain, lift = rng.uniform(0.85, 1.1), rng.uniform(5, 15)
    frames: list[np.ndarray] = []
    for _ in range(head):
        snow = cv2.blur(rng.integers(0, 256, (TAPE_H, TAPE_W), np.uint8), (5, 1))
        frames.append(np.repeat(snow[..., None], 3, 2))
    for g in shown:
        img = cv2.warpAffine(gt[g], m, (TAPE_W, TAPE_H), flags=cv2.INTER_LINEAR)
        img[: int(bar)] = 0
        img[int(bar + PICTURE_H) :] = 0
        yuv = cv2.cvtColor(img, cv2.COLOR_RGB2YUV).astype(np.float32)
        yuv[..., 0] = cv2.GaussianBlur(yuv[..., 0], (0, 0), 1.3)
        yuv[..., 1:] = np.roll(cv2.blur(yuv[..., 1:], (9, 1)), 3, axis=1)
        yuv[..., 0] = yuv[..., 0] * gain + lift + rng.normal(0, noise, yuv.shape[:2])
        frames.append(cv2.cvtColor(np.clip(yuv, 0, 255).astype(np.uint8), cv2.COLOR_YUV2RGB))
    with av.open(str(out), "w") as c:
        s = c.add_stream("libx264", rate=int(TAPE_FPS))
        s.width, s.height, s.pix_fmt = TAPE_W, TAPE_H, "yuv420p"
        s.options = {"crf": str(crf), "preset": "veryfast"}
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode())
    return [None] * head + shown, m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gt", type=Path, help="the GT video (a real HD clip)")
    ap.add_argument("--seeds", default="1-10", help="e.g. 1-10 or 2,5")
    ap.add_argument("--noise", type=float, default=7.0, help="luma noise std (grey levels)")
    ap.add_argument("--crf", type=int, default=40)
    ap.add_argument(
        "--repeat-first",
        action="store_true",
        help="the repeated tape frame in the first half and the dropped GT frame in the second",
    )
    ap.add_argument(
        "--keep", type=Path, default=None, help="keep the tapes here (each with its truth, .json)"
    )
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="align-plain-"))
    work.mkdir(parents=True, exist_ok=True)
    with av.open(str(args.gt)) as c:
        v = c.streams.video[0]
        gt_fps = float(v.average_rate)
        gt = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(v)])
    n, h, w = gt.shape[:3]
    print(f"GT {args.gt.name}: {w}x{h} {gt_fps:g} fps, {n} frames")
    print(f"tapes: noise {args.noise:g}, crf {args.crf}; ours: whole process")
    print(f"{'seed':>4} {'frames':>6} {'accuracy':>8} {'geom px':>8} {'wall s':>7} {'x rt':>6}")
    same = identical_runs(args.gt)  # a GT frame shown twice in the GT itself: either is right
    accs = []
    for seed in _seeds(args.seeds):
        order = "-rf" if args.repeat_first else ""
        tape = work / f"{args.gt.stem}-plain{order}-s{seed}-n{args.noise:g}-crf{args.crf}.mp4"
        truth, m = make_tape(gt, gt_fps, tape, seed, args.noise, args.crf, args.repeat_first)
        if args.keep:  # the truth beside the tape, for a closer look
            tape.with_name(tape.name + ".json").write_text(
                json.dumps({"truth": truth, "transform": m.tolist(), "gt": str(args.gt)})
            )
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", "from filmdata.cli import main; main()", "align", str(tape),
             str(args.gt), "--json"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        wall = time.perf_counter() - t0
        a = json.loads(out)
        accs.append(frame_accuracy(truth, a["mapping"], same))
        err = geometric_error(np.vstack([m, [0, 0, 1]]), np.array(a["transform"]), w, h)
        print(
            f"{seed:4d} {len(truth):6d} {accs[-1]:8.3f} {err:8.3f} {wall:7.2f} "
            f"{len(truth) / TAPE_FPS / wall:6.1f}",
            flush=True,
        )
    print(f"mean accuracy {np.mean(accs):.3f}, worst {np.min(accs):.3f} over {len(accs)} tapes")


if __name__ == "__main__":
    main()
