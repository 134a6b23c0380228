"""Cut detection on old film: F1 (+-1 frame) and frames/s for every detector, in one run.

Makes old-film footage with known cuts (`filmdata.scenes.footage`: textured moving shots,
monochrome, flicker at three levels, grain, dust, a moving scratch, gate weave, flashes that are
not cuts, fades), runs our `film` detector, PySceneDetect's content/adaptive/hash/histogram and
TransNetV2 (when installed) through `detect_scenes`, and prints F1 and frames/s. Then times the
whole process of `filmdata scenes FILE` against `scenedetect -i FILE detect-content` on the same
1500-frame file.

    python benchmarks/scenes.py [--frames 1500] [--width 320] [--height 240]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from filmdata.scenes.detect import DETECTORS, detect_scenes
from filmdata.scenes.footage import cut_f1 as f1
from filmdata.scenes.footage import make_footage
from filmdata.video import write_video

LEVELS = {"light": 0.08, "medium": 0.2, "heavy": 0.35}


def footage(n: int, w: int, h: int, seed: int, flicker: float, fades: bool) -> tuple:
    rng = np.random.default_rng(seed)
    lengths: list[int] = []
    while sum(lengths) < n:
        lengths.append(int(rng.integers(20, 90)))
    lengths[-1] -= sum(lengths) - n
    if lengths[-1] < 10:
        lengths[-2] += lengths.pop()
    kinds = [("fade" if fades and rng.random() < 0.15 else "cut") for _ in lengths[1:]]
    speeds = [int(rng.choice([1, 1, 1, 2])) for _ in lengths]
    return make_footage(
        lengths,
        width=w,
        height=h,
        seed=seed,
        flicker=flicker,
        flashes=max(1, n // 120),
        transitions=kinds,
        transition_len=10,
        speeds=speeds,
    )


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1500)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--eval-frames", type=int, default=600, help="frames per F1 clip")
    ap.add_argument("--seeds", type=int, default=2, help="clips per flicker level")
    ap.add_argument("--detectors", default=",".join(DETECTORS))
    args = ap.parse_args()
    detectors = args.detectors.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="filmdata-bench-"))
    try:
        print(f"# F1 (+-1 frame) on old film, {args.width}x{args.height}, flashes and fades")
        print(f"{'detector':<12}" + "".join(f"{lvl:>10}" for lvl in LEVELS) + f"{'frames/s':>10}")
        clips = {}
        for lvl, fl in LEVELS.items():
            for s in range(args.seeds):
                fo = footage(args.eval_frames, args.width, args.height, 40 + s, fl, True)
                path = tmp / f"{lvl}-{s}.mp4"
                write_video(path, fo.frames, fo.fps)
                clips[(lvl, s)] = (path, fo.cuts, len(fo.frames))
        for det in detectors:
            scores, frames, secs = {}, 0, 0.0
            try:
                for lvl in LEVELS:
                    vals = []
                    for s in range(args.seeds):
                        path, truth, n = clips[(lvl, s)]
                        t0 = time.perf_counter()
                        scenes = detect_scenes(path, detector=det)
                        secs += time.perf_counter() - t0
                        frames += n
                        vals.append(f1([x.start_frame for x in scenes[1:]], truth))
                    scores[lvl] = float(np.mean(vals))
            except Exception as e:  # noqa: BLE001 - a missing extra is reported, not fatal
                print(f"{det:<12}  skipped: {e}")
                continue
            row = "".join(f"{scores[lvl]:>10.3f}" for lvl in LEVELS)
            print(f"{det:<12}{row}{frames / secs:>10.0f}")

        print(f"\n# whole process on one {args.frames}-frame file (medium flicker), seconds")
        fo = footage(args.frames, args.width, args.height, 99, LEVELS["medium"], False)
        big = tmp / "big.mp4"
        write_video(big, fo.frames, fo.fps)
        bindir = Path(sys.executable).parent
        ours = [str(bindir / "filmdata"), "scenes", str(big), "-q"]
        theirs = [str(bindir / "scenedetect"), "-q", "-i", str(big), "detect-content"]
        timed(ours), timed(theirs)  # warm the page cache
        # Interleaved, best of 5: the machine's load changes less between neighbouring runs.
        runs = [(timed(ours), timed(theirs)) for _ in range(5)]
        t_ours, t_theirs = min(r[0] for r in runs), min(r[1] for r in runs)
        print(f"filmdata scenes             {t_ours:6.2f} s  {args.frames / t_ours:6.0f} frames/s")
        print(
            f"scenedetect detect-content  {t_theirs:6.2f} s  {args.frames / t_theirs:6.0f} frames/s"
        )
        print(f"ratio (theirs / ours)       {t_theirs / t_ours:6.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
