"""`filmdata train`, `filmdata eval` and `filmdata restore`: thin twins of `filmdata.restorer`.

torch and friends are imported inside the commands, so `filmdata --help` stays fast.
"""

from __future__ import annotations

import math
from pathlib import Path

import typer

from ._common import (
    DeviceOpt,
    JsonOpt,
    QuietOpt,
    RootOpt,
    command,
    print_json,
    print_table,
    warnings_on_stderr,
)


@command("train")
def train_cmd(
    data: str = typer.Option(
        ...,
        "--data",
        help="Dataset folder, or a name: ROOT/datasets/NAME, or one `filmdata datasets` lists.",
    ),
    config: str | None = typer.Option(
        None,
        "--config",
        help="tiny | small | base | a YAML/JSON file (default: tiny; with --resume, the run's).",
    ),
    steps: int | None = typer.Option(
        None, "--steps", min=1, help="Training steps (default: config)."
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1, help="Windows per batch (default: config)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Run folder (default ROOT/runs/<name>)."),
    device: str = DeviceOpt,
    resume: bool = typer.Option(False, "--resume", help="Continue the run from its checkpoint."),
    objective: str | None = typer.Option(
        None, "--objective", help="diffusion | regression (default: config)."
    ),
    root: Path | None = RootOpt,
    quiet: bool = QuietOpt,
    json_: bool = JsonOpt,
) -> None:
    """Train the temporal restorer on a dataset.

    The run folder gets config.json, model.safetensors (+ EMA and optimizer state, all
    safetensors) and metrics.jsonl (one JSON line per logged step).
    """
    from ..restorer import train

    with warnings_on_stderr():  # (a config's fields the run ignores)
        result = train(
            data,
            config,
            steps=steps,
            batch_size=batch_size,
            out=out,
            device=device,
            resume=resume,
            objective=objective,
            root=root,
            quiet=quiet,
        )
    if json_:
        print_json(result.to_dict())
    else:
        # first -> last where this call logged more than one interval; one logged: its loss
        one = result.first_loss == result.loss or (
            math.isnan(result.first_loss) and math.isnan(result.loss)
        )
        loss = f"{result.loss:.4f}" if one else f"{result.first_loss:.4f} -> {result.loss:.4f}"
        typer.echo(
            f"{result.run}: {result.steps} steps, loss {loss}, {result.steps_per_s:.2f} steps/s, "
            f"{result.parameters:,} parameters"
        )


@command("eval")
def eval_cmd(
    run: str = typer.Argument(..., help="Run folder (or a name under ROOT/runs)."),
    data: str | None = typer.Option(
        None,
        "--data",
        help="Dataset folder, or a name: ROOT/datasets/NAME, or one `filmdata datasets` lists "
        "(default: the one the run was trained on).",
    ),
    split: str = typer.Option("validation", "--split", help="Dataset split to evaluate on."),
    steps: int | None = typer.Option(
        None, "--steps", min=1, help="Sampling steps of a diffusion run (default: config)."
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Evaluate only the first N windows."
    ),
    device: str = DeviceOpt,
    root: Path | None = RootOpt,
    quiet: bool = QuietOpt,
    json_: bool = JsonOpt,
) -> None:
    """Evaluate a run against the input, a temporal median filter and the GT.

    Reports PSNR, SSIM, E_warp (flows of the GT), tOF and seconds per frame for each.
    """
    from ..restorer import evaluate

    with warnings_on_stderr():  # (a run stopped part-way)
        report = evaluate(
            run, data, split=split, steps=steps, device=device, limit=limit, root=root, quiet=quiet
        )
    failed = report.pop("failed", None)
    if json_:
        print_json(report | ({"failed": failed} if failed else {}))
    else:
        model = report["model"]
        typer.echo(f"run {model['run']} at step {model['step']} of {model['train_steps']}")
        # 4 significant digits, not the table's 3 decimals: E_warp is of the order of 1e-3 to
        # 1e-4, where those showed the GT's floor as 0
        print_table(
            [{"method": k} | {m: _digits(x) for m, x in v.items()} for k, v in report.items()],
            ["method", "psnr", "ssim", "ewarp", "tof", "sec_per_frame", "frames"],
        )
    if failed:
        errors = "; ".join(f["error"] for f in failed)  # type: ignore[index]
        typer.echo(f"error: {len(failed)} window(s) left out: {errors}", err=True)
        raise typer.Exit(1)


def _digits(value: object) -> object:
    """A metric to 4 significant digits (a float; anything else as it is)."""
    return f"{value:.4g}" if isinstance(value, float) else value


@command("restore")
def restore_cmd(
    video: Path = typer.Argument(..., help="The video to restore."),
    out: Path = typer.Option(
        ..., "-o", "--out", help="The restored video to write (.mp4, .mkv or .mov)."
    ),
    checkpoint: str = typer.Option(..., "--checkpoint", help="Run folder (or name under runs)."),
    steps: int | None = typer.Option(
        None, "--steps", min=1, help="Sampling steps of a diffusion run (default: config)."
    ),
    window: int | None = typer.Option(
        None, "--window", min=1, help="Frames per window (default: run)."
    ),
    overlap: int | None = typer.Option(
        None, "--overlap", min=0, help="Frames shared by windows (default: half the window)."
    ),
    tile: int = typer.Option(
        256,
        "--tile",
        min=16,
        help="Spatial tile size in pixels (bounds memory; attention runs in windows of the "
        "run's training crop at any tile).",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the -o file if it exists (refused otherwise)."
    ),
    device: str = DeviceOpt,
    root: Path | None = RootOpt,
    quiet: bool = QuietOpt,
    json_: bool = JsonOpt,
) -> None:
    """Restore a whole video with a trained run: same frame count, fps, size and sound."""
    from ..restorer import restore

    with warnings_on_stderr():  # (a run stopped part-way)
        result = restore(
            video,
            out,
            checkpoint,
            steps=steps,
            window=window,
            overlap=overlap,
            tile=tile,
            device=device,
            root=root,
            quiet=quiet,
            overwrite=overwrite,
        )
    if json_:
        print_json(result.to_dict())
    else:
        typer.echo(
            f"{result.out}: {result.frames} frames {result.width}x{result.height} "
            f"@ {result.fps:g} fps, {result.frames_per_s:.2f} frames/s"
        )
    if result.cut_short:  # restored as far as it decodes; the rest is not in the input
        typer.echo(f"error: {result.short}; those are restored", err=True)
        raise typer.Exit(1)
