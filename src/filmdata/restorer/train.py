"""Training, top to bottom: one `train()` loop (nanoGPT-style).

data (datasets -> albumentations) -> UNet -> diffusion or regression loss -> AdamW with warmup and
cosine decay, gradient clipping, EMA weights, bf16 autocast on CUDA -> metrics.jsonl, checkpoints.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .._json import dumps
from ..devices import pick_device
from ..errors import RefusedError
from ..paths import refuse_unless_folder, resolve_root, runs_dir
from . import checkpoint as ckpt
from .config import RestorerConfig, load_config
from .data import Windows, loader, resolve_dataset
from .diffusion import loss as batch_loss
from .diffusion import train_scheduler
from .model import UNet, count_parameters


@dataclass(frozen=True)
class TrainResult:
    """What a training run left behind."""

    run: Path
    steps: int
    loss: float  # mean loss of the last logged interval
    first_loss: float  # mean loss of the first logged interval of this call
    parameters: int
    seconds: float
    steps_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in self.__dict__.items()}


def lr_at(step: int, cfg: RestorerConfig) -> float:
    """Linear warmup then cosine decay to 10% (SGDR, Loshchilov & Hutter 2017)."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def train(
    data: str | os.PathLike[str],
    config: str | os.PathLike[str] | RestorerConfig | None = None,
    *,
    steps: int | None = None,
    batch_size: int | None = None,
    out: str | os.PathLike[str] | None = None,
    device: str = "auto",
    resume: bool = False,
    objective: str | None = None,
    root: str | os.PathLike[str] | None = None,
    quiet: bool = False,
    split: str = "train",
) -> TrainResult:
    """Train a restorer on a dataset's `split`; returns where and how it went.

    Args:
        data: a dataset folder, or a name under ROOT/datasets.
        config: `tiny` (the default), `small`, `base`, a YAML/JSON file, or a
            `RestorerConfig`; with `resume`, the run's config.json (one given must be it).
        steps, batch_size, objective: override the config's (with `resume`, the objective
            must be the run's).
        out: the run folder (default ROOT/runs/<dataset>-<config>-<objective>).
        resume: continue from the run's last checkpoint, with its config.json.
            Weights, EMA, optimizer and the learning-rate schedule go on from that step; the
            window stream and the diffusion noise are drawn afresh from `seed + step` (not
            replayed from the stream's start), so a resumed run is a different, equally seeded
            continuation, not bit-identical to one never stopped. Two runs alike (resumed at
            the same step or not at all) are bit-identical on the CPU.

    Raises:
        RefusedError: bad dataset, config or device; a run already there without `resume`,
            or a folder of other files;
            `resume` of a run trained on another dataset, config or objective.
    """
    root_path = resolve_root(root)
    dataset = resolve_dataset(data, root_path)
    given = load_config("tiny" if config is None else config)
    cfg = given.replace(steps=steps, batch_size=batch_size, objective=objective)
    run = Path(out) if out is not None else runs_dir(root_path) / _run_name(dataset, cfg)
    refuse_unless_folder(run, "--out" if out is not None else "--root")
    if resume:
        if not (run / ckpt.STATE).is_file():
            raise RefusedError(f"--resume: {run} has no checkpoint ({ckpt.STATE}); drop --resume")
        cfg = ckpt.load_config_json(run)
        # Another loss on the same weights would record that objective alone, as if every
        # step had been trained with it (eval and restore sample by it)
        if objective is not None and objective != cfg.objective:
            raise RefusedError(
                f"--resume: {run} was trained with objective {cfg.objective}, not {objective}; "
                f"drop --objective, or train another run (--out) with {objective}"
            )
        # config.json makes the run: another config given was dropped without a word
        if config is not None:
            _refuse_other_config(run, given, cfg)
        cfg = cfg.replace(steps=steps, batch_size=batch_size)
        # The run records one dataset, which `eval` takes by default: resuming on another
        # would record that one alone, as if every step had been trained on it. (A record of
        # a folder since moved or deleted is no other dataset there to mix up.)
        before = ckpt.trained_on(run)
        if before and Path(before).is_dir() and not Path(before).samefile(dataset):
            raise RefusedError(
                f"--resume: {run} was trained on {before}, not {dataset}; resume it with "
                f"--data {before}, or train another run (--out) on this one"
            )
    elif (run / ckpt.STATE).exists():
        # (weights without a state.json are a first checkpoint killed while written: nothing
        # to resume, and --resume refuses it, so it starts again)
        raise RefusedError(f"{run}: a run is already there; pass --resume, or another --out")
    elif run.is_dir() and not (run / ckpt.CONFIG).is_file() and _visible_files(run):
        # (a run's config.json is its first file: a folder of others is none, a dataset's say)
        raise RefusedError(
            f"{'--out ' if out is not None else ''}{run}: a folder of other files, not a run "
            f"(no {ckpt.CONFIG}); pass a new or empty folder for the run"
        )
    dev = pick_device(device)
    torch.manual_seed(cfg.seed)

    # ---- model, optimizer, EMA, schedule
    model = UNet(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    sched = train_scheduler(cfg)
    start = 0
    if resume:
        start = ckpt.checkpoint_step(run)  # weights, EMA and optimizer all of state.json's step
        state = ckpt.read_json(run / ckpt.STATE)
        ckpt.load_weights(model, run / ckpt.MODEL)
        ema = {k: v.to(dev) for k, v in ckpt.read_tensors(run / ckpt.EMA).items()}
        ckpt.load_optimizer(run, opt, state.get("param_groups"))
        if start >= cfg.steps:
            raise RefusedError(
                f"--resume: {run} is already at step {start}; pass --steps above {start}"
            )
        _truncate_log(run / "metrics.jsonl", start)

    # ---- data: an endless stream of augmented windows (T, 3, crop, crop) pairs; the split is
    # checked here, before the run folder is made
    windows = Windows(dataset, split, cfg.window, cfg.crop, cfg.seed + start, cfg.shuffle_buffer)
    ckpt.save_config(run, cfg, {"dataset": str(dataset), "parameters": count_parameters(model)})
    cuda = dev.type == "cuda"
    batches = iter(loader(windows, cfg.batch_size, cfg.workers if cuda else 0, pin_memory=cuda))
    gen = torch.Generator(device=dev).manual_seed(cfg.seed * 1_000_003 + start)
    amp = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda")

    # ---- the loop
    # a fresh start begins the log afresh: a run killed before its first checkpoint left rows
    # that this one logs again (a resumed one's were cut back to its checkpoint above)
    log = (run / "metrics.jsonl").open("a" if resume else "w", encoding="utf-8")
    bar = tqdm(total=cfg.steps, initial=start, disable=quiet, desc="train", unit="step")
    losses: list[float] = []
    first = last = float("nan")
    t0 = t_log = time.perf_counter()
    step = start
    try:
        model.train()
        for step in range(start, cfg.steps):
            lq, gt = next(batches)  # (B, T, 3, crop, crop) each, in [0, 1]
            lq, gt = lq.to(dev, non_blocking=True), gt.to(dev, non_blocking=True)
            lr = lr_at(step, cfg)
            for group in opt.param_groups:
                group["lr"] = lr
            with amp:
                loss = batch_loss(model, sched, lq, gt, cfg, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            with torch.no_grad():  # EMA of the weights (Polyak averaging)
                decay = min(cfg.ema, (1 + step) / (10 + step))
                for k, v in model.state_dict().items():
                    if v.dtype.is_floating_point:
                        ema[k].lerp_(v, 1 - decay)
                    else:
                        ema[k].copy_(v)
            losses.append(loss.item())
            bar.update(1)
            done = step + 1
            if done % cfg.log_every == 0 or done == cfg.steps:
                now = time.perf_counter()
                last = sum(losses) / len(losses)
                first = last if math.isnan(first) else first
                rate = len(losses) / max(now - t_log, 1e-9)
                row = {"step": done, "loss": last, "lr": lr, "steps_per_s": rate, "time": now - t0}
                log.write(dumps(row) + "\n")  # (a diverged loss: null, not NaN)
                log.flush()
                bar.set_postfix(loss=f"{last:.4f}")
                losses, t_log = [], now
            if done % cfg.ckpt_every == 0 or done == cfg.steps:
                ckpt.save_checkpoint(run, model, ema, opt, {"step": done})
        step = cfg.steps
    finally:
        bar.close()
        log.close()
    seconds = time.perf_counter() - t0
    return TrainResult(
        run=run,
        steps=step,
        loss=last,
        first_loss=first,
        parameters=count_parameters(model),
        seconds=seconds,
        steps_per_s=(step - start) / max(seconds, 1e-9),
    )


def _truncate_log(path: Path, step: int) -> None:
    """Keep the rows of metrics.jsonl up to the checkpoint's `step`: a run stopped after logging
    past its last checkpoint logs those steps again when resumed (and a row cut short by the
    kill would run into the next one)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a row cut short by the kill
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
            keep.append(line + "\n")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(keep), encoding="utf-8")
    os.replace(tmp, path)


def _refuse_other_config(run: Path, given: RestorerConfig, cfg: RestorerConfig) -> None:
    """Refuse a config given to `--resume` that differs from the run's `cfg` in more than the
    fields a resume may set (steps, batch_size; objective is checked apart), naming them."""
    skip = {"steps", "batch_size", "objective"}
    mine, theirs = given.to_dict(), cfg.to_dict()
    differ = [k for k in theirs if k not in skip and mine.get(k) != theirs[k]]
    if differ:
        fields = ", ".join(f"{k}={mine[k]!r} (the run's {theirs[k]!r})" for k in differ[:3])
        fields += f" and {len(differ) - 3} more" if len(differ) > 3 else ""
        raise RefusedError(
            f"--resume: {run} was trained with another config: {fields}; drop --config "
            "(a resumed run keeps its config.json), or train another run (--out)"
        )


def _visible_files(folder: Path) -> bool:
    """Whether `folder` holds anything but hidden files (a temporary one of a killed write)."""
    return any(not p.name.startswith(".") for p in folder.iterdir())


def _run_name(dataset: Path, cfg: RestorerConfig) -> str:
    return f"{dataset.name}-{cfg.name}-{cfg.objective}"
