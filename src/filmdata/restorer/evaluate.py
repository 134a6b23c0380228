"""`evaluate`: a run against its baselines on a dataset split.

Methods: `model` (the run, EMA weights), `input` (the degraded window itself), `median` (temporal
median filter, radius 1) and `gt` (the ground truth: the floor of E_warp and tOF). Metrics: PSNR,
SSIM, E_warp (flows of the GT), tOF, and seconds per frame (the model's after an untimed first
call), averaged over the split's windows.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .. import metrics as M
from ..devices import pick_device
from ..errors import ItemsFailed, MediaError, RefusedError
from .checkpoint import load_run, trained_on, warn_part_way
from .config import check_steps
from .data import load_split, resolve_dataset, row_frames
from .sampling import restore_array

METHODS = ("model", "input", "median", "gt")
KEYS = ("psnr", "ssim", "ewarp", "tof", "sec_per_frame")


def evaluate(
    run: str | os.PathLike[str],
    data: str | os.PathLike[str] | None = None,
    *,
    split: str = "validation",
    steps: int | None = None,
    device: str = "auto",
    limit: int | None = None,
    root: str | os.PathLike[str] | None = None,
    quiet: bool = False,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Evaluate a run and the baselines on `split` of a dataset.

    Args:
        run: a run folder (or a name under ROOT/runs).
        data: a dataset folder (or a name under ROOT/datasets); default: the one the run
            was trained on.
        steps: sampling steps (default: the run's config).
        limit: evaluate only the first `limit` windows.

    Returns:
        {"model": {...}, "input": {...}, "median": {...}, "gt": {...}}, each with `psnr`, `ssim`,
        `ewarp`, `tof`, `sec_per_frame` (psnr None for `gt`), plus `windows` and `frames`
        (`model` also: `run`, its folder; `step`, its checkpoint's training step; and
        `train_steps`, its config's steps: a run stopped part-way, or still training, has
        fewer, and warns so); and where some window's frames do not decode, `failed`:
        [{"id", "error"}, ...] (the metrics are those of the other windows).

    Raises:
        RefusedError: a bad run, dataset, split or device.
        ItemsFailed: no window of the split decodes.
    """
    dev = pick_device(device)
    model, cfg, run_dir, step = load_run(run, root, device=dev)
    check_steps(cfg, steps, run_dir)
    if data is None:
        data = trained_on(run_dir)
        if data is None:
            raise RefusedError(f"{run_dir}: its config names no dataset; pass --data")
    dataset = resolve_dataset(data, root)
    # frames decoded here, row by row: `datasets` decodes a batch of rows at once, and one
    # frame that does not decode ended the whole evaluation in its iterator
    rows = load_split(dataset, split).decode(False)
    warn_part_way(run_dir, cfg, step, "evaluating")  # (once the input is taken)
    failed: list[dict[str, Any]] = []
    methods: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "model": lambda lq: restore_array(model, lq, cfg, steps=steps, device=dev, seed=seed),
        "input": lambda lq: lq,
        "median": M.temporal_median,
    }
    sums = {m: dict.fromkeys(KEYS, 0.0) for m in METHODS}
    windows = frames = 0
    bar = tqdm(desc="eval", unit="window", disable=quiet)
    for row in rows:
        if limit is not None and windows + len(failed) >= limit:
            break
        try:
            lq, gt = row_frames(row)  # (T, H, W, 3) uint8 each
        except MediaError as e:
            failed.append({"id": row.get("id"), "error": str(e)})
            bar.update(1)
            continue
        flows = M.gt_flows(gt)
        outs = {"gt": (gt, 0.0)}
        if windows == 0:
            # untimed, once: a first call pays one-off costs (diffusers' import, about 2 s on
            # two cores; torch's first kernels), timed as the model's own where it was timed
            methods["model"](lq)
        for name, fn in methods.items():
            t0 = time.perf_counter()
            out = fn(lq)
            outs[name] = (out, time.perf_counter() - t0)
        n = len(gt)
        for name, (out, secs) in outs.items():
            s = sums[name]
            s["psnr"] += (M.psnr(out, gt) if name != "gt" else 0.0) * n
            s["ssim"] += M.ssim(out, gt) * n
            s["ewarp"] += M.ewarp(out, flows) * n
            s["tof"] += M.tof(out, flows) * n
            s["sec_per_frame"] += secs
        windows += 1
        frames += n
        bar.update(1)
    bar.close()
    if frames == 0 and failed:
        raise ItemsFailed(f"{dataset}: no window of split {split!r} decodes: {failed[0]['error']}")
    if frames == 0:
        raise RefusedError(f"{dataset}: split {split!r} has no windows to evaluate")
    report: dict[str, dict[str, Any]] = {}
    for name in METHODS:
        s = sums[name]
        report[name] = {k: s[k] / frames for k in KEYS} | {"windows": windows, "frames": frames}
    report["gt"]["psnr"] = None  # identical to itself: infinite
    report["model"] |= {"run": str(run_dir), "step": step, "train_steps": cfg.steps}
    if failed:
        report["failed"] = failed  # type: ignore[assignment]
    return report
