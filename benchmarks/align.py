"""Benchmark `filmdata align` on VHS-like tapes with a known truth.

Makes GT footage (textured pans; the second clip crawls and holds still, the hard case), turns it
into tapes, aligns each with the whole `filmdata align LQ GT --json` process (Python start-up and
imports included, as a user runs it), and prints frame accuracy, geometric error (tape px, over a
9x9 grid of the GT picture) and speed: wall-clock and CPU (user + sys) seconds, median of
`--repeat` runs, and x real time of the tape (wall), for ours and for a constant-offset baseline
(in-process, decoding included).

Tape cases (`--cases`, comma-separated):
  pal       noise head, ident, offset, PAL-like speed change 24 -> 25 fps, a drop, a duplicate,
            overscan, 4:3 letterbox at 480x360, blur, chroma smear, noise, H.264 at crf 38
  true25    the same at 25 fps but true speed: a GT frame repeated every 25 tape frames
  pulldown  29.97 fps NTSC by 3:2 pulldown: two frames in five weave fields of two GT frames
  crf41     pal with crf 41 (heavier compression: ~33 kb/s against crf 38's ~45)
  crf45     pal with crf 45 (very heavy compression, ~25 kb/s; hardest on the slow clip)
  harsh     crf45 with twice the noise (10 grey levels), blur 2 and chroma smear 5
  jump      pal whose picture moves by (2.5, -1.5) tape px halfway (a re-locked capture); the
            geometric error is each half's against the segment found for it (`segments`), or
            the JSON transform's against the first half's where none is found
  relock    pal whose picture moves by (12, -8) tape px halfway (a capture re-locked with a
            visible jump: the moved half is aligned through its own geometry, `segments`)
  lost      pal missing 3 s (75 tape frames) of the GT halfway (a length spliced out)
  edit      pal missing 2.4 s twice, at 30% and 70% (a shorter edit of the GT)
  other     pal with 3 s of another programme halfway (a commercial recorded over it)

Scoring: a tape frame is right when mapped to its GT frame, to one with identical content (a
still: `tapesim.identical_runs`, neighbours within `IDENTICAL_TOL` grey levels; a crawl is not
one picture), or null where it has no GT; a frame whose fields mix two GT frames (pulldown) is
right on either.

    python benchmarks/align.py [--seconds 30] [--width 1280] [--height 720] [--cases pal,...]
        [--repeat 3] [--keep DIR] [--seed N [--vary]] [--gt-fps 24] [--tape-size 480x360]
        [--footage FILE [--start S] [--sound]]

`--seed N` adds N to every clip's and tape's seed (0: the tables below), for other footage and
other tape noise; the GT kept in `--keep` is named by it. `--vary` draws the time map from the
seed as well (where the content starts, where the dropped and the repeated frame fall): without
it every tape drops a frame at 35% of its content and repeats one at 70%. `--footage FILE`
takes the GT from a real video instead (`--seconds` of it from `--start`, scaled to fit
`--width` x `--height` with bars where its shape differs, as a remaster frames it) and makes
its tapes as for the `pans` clip. `--gt-fps` sets the GT's frame rate (24 by default); the
tapes stay 25 fps at PAL speed, so a 25 fps GT gives a tape that skips a GT frame about every
23 frames, a 30 fps one 1.25 GT frames a tape frame, and a 50 or 60 fps remaster 2.08 or 2.5
(with `--footage`, the footage's frames at that rate: its motion sped up, every GT frame a new
picture). `--sound` (with `--footage`): the GT keeps the footage's sound (made as long as its
pictures run there) and each tape gets it as a transfer would (`tapesim.tape_sound`: under each
frame the GT's sound from the frame it shows, PAL-sped, band-limited, hiss), so the aligner's
use of the sound is measured too. `--tape-size WxH` makes the tapes at another size than
480x360 (720x480 or 720x576: as a DV capture holds them).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from filmdata.pairing import descriptors as dsc
from filmdata.pairing.tapesim import (
    SOUND_RATE,
    TapeSpec,
    frame_accuracy,
    geometric_error,
    identical_runs,
    make_tape,
    ntsc_pulldown,
    read_sound,
    render_footage,
    tape_sound,
    with_sound,
)
from filmdata.video import iter_frames, probe, write_video

CLIPS = {  # name: footage kwargs (lengths filled in from --seconds), tape kwargs
    "pans": (dict(seed=11, slow=False), dict(seed=1, start=7.3)),
    "slow": (
        dict(seed=12, slow=True),
        dict(seed=2, start=3.0, shift=(-0.3, 0.7), overscan=0.05, squeeze=0.99, head=30),
    ),
}
CASES = {
    "pal": lambda **kw: TapeSpec(**kw),
    "true25": lambda **kw: TapeSpec(speed=1.0, **kw),
    "pulldown": lambda **kw: ntsc_pulldown(**kw),
    "crf41": lambda **kw: TapeSpec(crf=41, **kw),
    "crf45": lambda **kw: TapeSpec(crf=45, **kw),
    "harsh": lambda **kw: TapeSpec(crf=45, noise=10.0, blur=2.0, smear=5.0, **kw),
    "jump": lambda **kw: TapeSpec(jump=(0.5, 2.5, -1.5), **kw),
    "relock": lambda **kw: TapeSpec(jump=(0.5, 12.0, -8.0), **kw),
    "lost": lambda **kw: TapeSpec(lost=((0.5, 75),), **kw),
    "edit": lambda **kw: TapeSpec(lost=((0.3, 60), (0.7, 60)), **kw),
    "other": lambda **kw: TapeSpec(other=((0.5, 75),), **kw),
}


def real_footage(
    path: Path, start: float, frames: int, size: tuple[int, int], moving: float = 1.0
) -> Iterator[np.ndarray]:
    """`frames` frames of a real video from `start` s, each scaled (bicubic) to fit `size`
    (w, h) and centred on black where its shape differs. `moving` < 1: only that middle part
    of the width moves, the rest held at the first frame (a locked-off camera's still
    background)."""
    w, h = size
    first = round(start * probe(path, count=False).fps)
    a, b = round(w * (1 - moving) / 2), round(w * (1 + moving) / 2)
    held = None
    for _, f in iter_frames(path, first, first + frames):
        k = min(w / f.shape[1], h / f.shape[0])
        fw, fh = max(2, round(f.shape[1] * k)), max(2, round(f.shape[0] * k))
        out = np.zeros((h, w, 3), np.uint8)
        x, y = (w - fw) // 2, (h - fh) // 2
        out[y : y + fh, x : x + fw] = cv2.resize(f, (fw, fh), interpolation=cv2.INTER_CUBIC)
        if moving < 1:
            held = out.copy() if held is None else held
            still = held.copy()
            still[:, a:b] = out[:, a:b]
            out = still
        yield out


def footage_sound(path: Path, start: float, frames: int, gt_fps: float) -> np.ndarray:
    """The sound of `frames` frames of `path` from `start` s, made as long as those frames run
    at `gt_fps` (the GT `real_footage` makes of them), so that it stays under its pictures."""
    fps = probe(path, count=False).fps
    sound = read_sound(path, start, frames / fps + 1.0)
    if sound is None:
        raise SystemExit(f"{path}: no sound for --sound")
    t = np.arange(int(frames / gt_fps * SOUND_RATE)) / SOUND_RATE * (gt_fps / fps)
    return np.interp(t * SOUND_RATE, np.arange(len(sound)), sound, right=0.0).astype(np.float32)


def constant_offset(lq: str, gt: str) -> tuple[list[int | None], float]:
    """The baseline: one time offset at speed 1 (the best by descriptor similarity)."""
    t0 = time.perf_counter()
    lv, gv = dsc.decode_gray(lq, 160), dsc.decode_gray(gt, 160)
    s = dsc.coarse_similarity(lv.small, gv.small)[0]
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


def run_cli(lq: Path, gt: Path, repeat: int) -> tuple[dict, float, float]:
    """`filmdata align LQ GT --json` as its own process: (result, median wall s, median CPU s)."""
    walls, cpus = [], []
    cmd = [sys.executable, "-c", "from filmdata.cli import main; main()"]
    out = ""
    for _ in range(repeat):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run(
            [*cmd, "align", str(lq), str(gt), "--json"], capture_output=True, text=True, check=True
        ).stdout
        walls.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return json.loads(out), statistics.median(walls), statistics.median(cpus)


def _geometry_error(tape: Any, a: dict[str, Any], width: int, height: int) -> float:
    """The JSON transform's error against the tape's; where the tape's picture moves part-way
    and the alignment gives segments, each tape part's against the segment in force at its
    first frame, weighed by the part's length."""
    found = a["quality"].get("segments") or []
    if not tape.segments or not found:
        return float(geometric_error(tape.transform, np.array(a["transform"]), width, height))
    n = len(tape.mapping)
    ends = [f for f, _ in tape.segments[1:]] + [n]
    total = 0.0
    for (first, truth), end in zip(tape.segments, ends):
        at = [g for g in found if g["from_frame"] <= first + 2] or found[:1]
        got = np.array(at[-1]["transform"])
        total += (end - first) * geometric_error(truth, got, width, height)
    return total / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--cases", default="pal", help=f"comma-separated, of {', '.join(CASES)}")
    ap.add_argument("--clips", default="pans,slow", help=f"comma-separated, of {', '.join(CLIPS)}")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of ours (median)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the clips and tapes here")
    ap.add_argument("--seed", type=int, default=0, help="added to every clip's and tape's seed")
    ap.add_argument(
        "--vary",
        action="store_true",
        help="the time map drawn from --seed too: where the content starts, and where the "
        "dropped and the duplicated frame fall (without it: 35%% and 70%% of the content)",
    )
    ap.add_argument("--footage", type=Path, default=None, help="a real video to take the GT from")
    ap.add_argument("--start", type=float, default=0.0, help="where in --footage (s)")
    ap.add_argument(
        "--moving",
        type=float,
        default=1.0,
        help="with --footage: only this middle part of the width moves, the sides held still "
        "(a locked-off camera)",
    )
    ap.add_argument(
        "--sound",
        action="store_true",
        help="with --footage: the GT keeps the footage's sound, the tapes get it as transfers do",
    )
    ap.add_argument(
        "--tape-size",
        default="480x360",
        help="the tapes' size, WxH (720x480 or 720x576: a DV capture's)",
    )
    ap.add_argument(
        "--gt-fps",
        type=float,
        default=24.0,
        help="the GT's frame rate (the tapes stay 25 fps at PAL speed: 25 fps GT gives 1.043 GT "
        "frames a tape frame, 30 fps 1.25, 60 fps 2.5)",
    )
    args = ap.parse_args()
    try:
        tape_size = tuple(int(v) for v in args.tape_size.lower().split("x"))
        assert len(tape_size) == 2 and min(tape_size) > 0
    except (ValueError, AssertionError):
        ap.error(f"--tape-size: expected WxH, got {args.tape_size!r}")
    cases = args.cases.split(",")
    if args.sound and not args.footage:
        ap.error("--sound takes the footage's sound: give --footage too")
    if not 0 < args.moving <= 1 or (args.moving < 1 and not args.footage):
        ap.error("--moving: a part of the width in (0, 1], with --footage")
    for c in cases:
        if c not in CASES:
            ap.error(f"--cases: unknown case {c!r}; choose from {', '.join(CASES)}")
    work = args.keep or Path(tempfile.mkdtemp(prefix="align-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    n = int(args.seconds * args.gt_fps)
    lengths = {
        "pans": (n // 4, n // 3, n - n // 4 - n // 3),
        "slow": (n // 3, n // 3, n - 2 * (n // 3)),
    }
    print(
        f"GT {args.width}x{args.height} {args.gt_fps:g} fps, {args.seconds:g} s, "
        f"seed +{args.seed}; ours: whole process"
    )
    print(
        f"{'clip':5} {'case':9} {'method':9} {'frames':>6} {'accuracy':>8} {'geom px':>8} "
        f"{'wall s':>7} {'cpu s':>6} {'x realtime':>10}"
    )
    names = ["real"] if args.footage else args.clips.split(",")
    for name in names:
        footage, tape_kw = CLIPS["pans" if args.footage else name]
        footage = {**footage, "seed": footage["seed"] + args.seed}
        tape_kw = {**tape_kw, "seed": tape_kw["seed"] + args.seed, "size": tape_size}
        if args.vary:  # a drop and a repeat anywhere, not where the tables above put them
            rng = np.random.default_rng([args.seed, tape_kw["seed"]])
            start, drop = float(rng.uniform(2.0, 20.0)), float(rng.uniform(0.1, 0.5))
            tape_kw.update(start=start, drop=drop, dup=float(rng.uniform(drop + 0.1, 0.9)))
        tag = (
            (f"-s{args.seed}" if args.seed else "")
            + ("-vary" if args.vary else "")
            + (f"-{args.gt_fps:g}fps" if args.gt_fps != 24 else "")
        )
        if args.footage:
            tag = f"-{args.footage.stem}-{args.start:g}{tag}" + ("-sound" if args.sound else "")
            tag += f"-moving{args.moving:g}" if args.moving < 1 else ""
        gt = work / f"{name}{tag}-gt.mp4"
        if not gt.exists():
            if args.footage:
                size = (args.width, args.height)
                frames = real_footage(args.footage, args.start, n, size, args.moving)
            else:
                frames = render_footage(args.width, args.height, lengths[name], **footage)  # type: ignore[arg-type]
            write_video(gt, frames, args.gt_fps, crf=18)
            if args.sound:  # the footage's sound under the GT's pictures, as they run there
                tmp = gt.with_name(f".{gt.name}")
                gt.rename(tmp)
                with_sound(tmp, footage_sound(args.footage, args.start, n, args.gt_fps), gt)
                tmp.unlink()
        gt_sound = read_sound(gt) if args.sound else None
        same = identical_runs(gt)
        for case in cases:
            spec = CASES[case](**tape_kw)
            size = "" if tape_size == (480, 360) else f"-{tape_size[0]}x{tape_size[1]}"
            tape = make_tape(gt, work / f"{name}{tag}-{case}{size}-tape.mp4", spec)
            if gt_sound is not None:
                silent = tape.path.with_name(f".{tape.path.name}")
                tape.path.rename(silent)
                with_sound(silent, tape_sound(tape, gt_sound, args.gt_fps), tape.path)
                silent.unlink()
            duration = len(tape.mapping) / spec.fps
            a, wall, cpu = run_cli(tape.path, gt, args.repeat)
            acc = frame_accuracy(tape.mapping, a["mapping"], same, tape.also)
            err = _geometry_error(tape, a, args.width, args.height)
            print(
                f"{name:5} {case:9} {'ours':9} {len(tape.mapping):6d} {acc:8.3f} {err:8.3f} "
                f"{wall:7.2f} {cpu:6.2f} {duration / wall:10.1f}"
            )
            base, took_b = constant_offset(str(tape.path), str(gt))
            acc_b = frame_accuracy(tape.mapping, base, same, tape.also)
            print(
                f"{name:5} {case:9} {'constant':9} {len(tape.mapping):6d} {acc_b:8.3f} "
                f"{'-':>8} {took_b:7.2f} {'-':>6} {duration / took_b:10.1f}"
            )
            q = a["quality"]
            sound = f"sound clearance {q['audio']['clearance']:.2f}, " if q.get("audio") else ""
            # (null where no frame matched)
            speed, off, ecc = (
                "-" if v is None else f"{v:.{d}f}"
                for v, d in ((a["speed"], 4), (a["offset"], 3), (q["ecc"], 3))
            )
            print(
                f"      speed {speed} (true {spec.speed:.4f}), "
                f"offset {off} s, {q['matched']:.3f} matched, "
                f"ecc {ecc}, cadence {q.get('cadence_agreement')}, "
                f"unsure {q.get('unsure')}, sharp pass {q.get('sharp_pass')}, "
                f"{sound}in-process {q['seconds']}"
            )


if __name__ == "__main__":
    main()
