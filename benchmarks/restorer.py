"""Restorer throughput: training steps/s and restore frames/s, printed (not a timed test).

    python benchmarks/restorer.py [--config tiny] [--steps 30] [--frames 24] [--size 128x96]

Builds a tiny procedural dataset and a short run in a temporary folder, then restores a clip.
The reference in the same run is the temporal median filter baseline (frames/s), so the ratio
says how many times slower the learned restorer is than the cheapest baseline on this machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from filmdata.devices import pick_device
from filmdata.metrics import temporal_median
from filmdata.restorer import load_config, train
from filmdata.restorer.checkpoint import load_model
from filmdata.restorer.sampling import restore_array
from filmdata.restorer.toydata import make_toy_dataset
from filmdata.synthetic import render_shots


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--steps", type=int, default=30, help="training steps to time")
    ap.add_argument("--frames", type=int, default=24, help="frames of the clip to restore")
    ap.add_argument("--size", default="128x96", help="WxH of the clip to restore")
    ap.add_argument("--sample-steps", type=int, default=None, help="sampling steps")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    cfg = load_config(args.config)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"cuda={torch.cuda.is_available()}; config {cfg.name}")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        data = make_toy_dataset(
            Path(tmp) / "toy",
            windows={"train": 16, "validation": 2},
            frames=max(cfg.window, 5),
            size=(max(64, cfg.crop), max(48, cfg.crop)),
        )
        for objective in ("diffusion", "regression"):
            run = Path(tmp) / f"run-{objective}"
            train(data, cfg.replace(log_every=5), steps=3, out=run, device=args.device,
                  quiet=True, objective=objective)  # fmt: skip
            # steady state: median rate of the logged intervals after the first (warm stream)
            train(data, steps=3 + args.steps, out=run, device=args.device, quiet=True,
                  resume=True)  # fmt: skip
            lines = (run / "metrics.jsonl").read_text().splitlines()
            train_rate = statistics.median(json.loads(x)["steps_per_s"] for x in lines[1:])
            dev = pick_device(args.device)
            model, rcfg, _ = load_model(run, device=dev)
            frames, _ = render_shots([args.frames], w, h, seed=1)
            restore_array(
                model, frames[: rcfg.window], rcfg, steps=args.sample_steps, device=dev
            )  # warm-up
            t0 = time.perf_counter()
            restore_array(model, frames, rcfg, steps=args.sample_steps, device=dev)
            restore_rate = args.frames / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            temporal_median(frames)
            median_rate = args.frames / (time.perf_counter() - t0)
            steps = 1 if objective == "regression" else (args.sample_steps or rcfg.sample_steps)
            ratio = restore_rate / median_rate
            print(
                f"{objective:10s} train: {train_rate:7.2f} steps/s (batch {cfg.batch_size}, "
                f"{cfg.window}x{cfg.crop}x{cfg.crop})  restore {w}x{h}: {restore_rate:7.2f} "
                f"frames/s ({steps} steps, window {rcfg.window}); median filter "
                f"{median_rate:8.1f} frames/s; restore/median {ratio:.4f}"
            )


if __name__ == "__main__":
    main()
