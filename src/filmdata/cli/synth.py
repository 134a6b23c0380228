"""`filmdata synth`, `filmdata verify`, `filmdata preview` and `filmdata datasets`.

Thin translations of `filmdata.synth.synth`, `filmdata.verify.verify`,
`filmdata.preview.preview` and `filmdata.preview.list_datasets` (heavy imports stay inside).
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import ItemsFailed
from ._common import (
    BackendOpt,
    DeviceOpt,
    JsonOpt,
    NoBarsOpt,
    QuietOpt,
    RayAddressOpt,
    RootOpt,
    command,
    print_json,
    print_table,
)


@command("synth")
def synth_cmd(
    templates: Path = typer.Option(
        ..., "--templates", help="Degradations folder: presets/ and templates/<kind>/*.png."
    ),
    preset: str = typer.Option("film", "--preset", help="film | vhs | a preset YAML file."),
    inputs: list[Path] = typer.Option(
        [],
        "--input",
        help="Video file(s), each one clip (or one a scene, with --scenes), cropped inside its "
        "picture (no letterbox or pillarbox bars); default: the catalog's kept clips.",
    ),
    scenes: bool = typer.Option(
        False,
        "--scenes",
        help="Cut each --input file at its scene changes first (the film detector: one more "
        "decode of it), each scene a clip, so that no window spans a change of shot; "
        "refused without --input (the catalog's clips are cut already).",
    ),
    out: Path | None = typer.Option(None, "--out", help="Dataset folder to write."),
    name: str | None = typer.Option(
        None, "--name", help="Dataset name under ROOT/datasets/ (default synth)."
    ),
    root: Path | None = RootOpt,
    clip_len: int = typer.Option(8, "--clip-len", help="Frames per window."),
    size: int = typer.Option(256, "--size", help="Side of the square GT/LQ frames, pixels."),
    stride: int | None = typer.Option(
        None, "--stride", help="Frames between window starts (default: clip-len)."
    ),
    seed: int = typer.Option(
        0, "--seed", help="With each window id, decides crops and degradations."
    ),
    device: str = DeviceOpt,
    batch_size: int = typer.Option(
        8, "--batch-size", help="On a GPU: windows on the device at once (a worker thread each)."
    ),
    val_fraction: float = typer.Option(
        0.0,
        "--val-fraction",
        help="Share held out as validation (by source, clip or stretch of time).",
    ),
    image_format: str = typer.Option("png", "--image-format", help="png | jpeg."),
    rows_per_shard: int | None = typer.Option(
        None, "--rows-per-shard", help="Rows per shard (default: ~256 MB shards)."
    ),
    sharpen_gt: bool = typer.Option(
        False, "--sharpen-gt", help="Unsharp-mask the GT (recorded in each row)."
    ),
    max_windows: int | None = typer.Option(
        None, "--max-windows", help="Keep this many windows, evenly spread."
    ),
    kinds: list[str] = typer.Option(
        ["hd", "film", "cartoon"],
        "--kind",
        help="From the catalog: clips of sources of these kinds (vhs captures are not clean GT).",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a dataset made with other parameters."
    ),
    backend: str = BackendOpt,
    ray_address: str | None = RayAddressOpt,
    quiet: bool = QuietOpt,
    json_: bool = JsonOpt,
) -> None:
    """Cut windows from clips, degrade them with a preset, write paired Parquet shards."""
    import os

    # numpy and OpenCV each load an OpenBLAS, which starts a thread per core that spins for
    # ~0.1 s of CPU at start-up, on the core the reader decodes on. A run's BLAS calls are
    # small and single-threaded anyway (its worker threads are the parallelism), so one
    # thread each; OpenBLAS reads this when it loads, inside the command.
    blas = "OPENBLAS_NUM_THREADS" not in os.environ
    if blas:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        from ..synth import synth

        summary = synth(
            templates,
            preset,
            inputs,
            out=out,
            name=name,
            root=root,
            clip_len=clip_len,
            size=size,
            stride=stride,
            seed=seed,
            device=device,
            batch_size=batch_size,
            val_fraction=val_fraction,
            image_format=image_format,
            rows_per_shard=rows_per_shard,
            sharpen_gt=sharpen_gt,
            max_windows=max_windows,
            kinds=kinds,
            overwrite=overwrite,
            quiet=quiet,
            backend=backend,
            ray_address=ray_address,
            scenes=scenes,
        )
    except ItemsFailed as e:  # some windows failed, the others made: show them, then exit 1
        if e.summary is not None:
            _show_summary(e.summary, size, clip_len, json_, templates)
        raise
    finally:
        if blas:
            del os.environ["OPENBLAS_NUM_THREADS"]
    _show_summary(summary, size, clip_len, json_, templates)


def _show_summary(
    summary: dict, size: int, clip_len: int, json_: bool, templates: Path | str
) -> None:
    if json_:
        print_json(summary)
        return
    rows = [
        {"config": c, "split": s, "rows": k}
        for c, sp in summary["splits"].items()
        for s, k in sp.items()
    ]
    print_table(rows, ["config", "split", "rows"])
    fps = summary["frames_per_s"]
    typer.echo(
        f"{summary['path']}: {summary['windows_made']} windows made, "
        f"{summary['windows_skipped']} already there" + (f", {fps:.1f} frames/s" if fps else "")
    )
    if summary.get("clips_too_small"):
        typer.echo(
            f"{summary['clips_too_small']} clip(s) smaller than --size {size} left out (their "
            f"GT would be upscaled): {_names(summary.get('clips_too_small_ids') or [])}"
        )
    if summary.get("clips_too_short"):
        typer.echo(
            f"{summary['clips_too_short']} clip(s) shorter than --clip-len {clip_len} left out "
            f"(no window fits): {_names(summary.get('clips_too_short_ids') or [])}"
        )
    if summary.get("windows_left_out_across_configs"):
        typer.echo(
            f"{summary['windows_left_out_across_configs']} window(s) left out: other configs "
            "of the dataset hold their GT frames in both splits (or in validation, with "
            "--val-fraction 0)"
        )
    for why in summary.get("no_validation_across_configs") or []:
        typer.echo(f"no validation windows of {why}")
    if summary.get("templates_missing"):
        typer.echo(
            f"--templates {templates}: no {', '.join(summary['templates_missing'])} templates; "
            "that part of the preset's damage is left out"
        )
    if summary.get("sources_not_cut"):
        typer.echo(
            f"{len(summary['sources_not_cut'])} fetched source(s) with no clips left out "
            f"(run `filmdata cut`): {_names(summary['sources_not_cut'])}"
        )
    typer.echo(f'load it: datasets.load_dataset("{summary["path"]}")')


@command("verify")
def verify_cmd(
    dataset: str = typer.Argument(..., help="Dataset folder or name."),
    repair: bool = typer.Option(
        False, "--repair", help="Re-make bad or missing synthetic shards from their records."
    ),
    root: Path | None = RootOpt,
    device: str = DeviceOpt,
    quiet: bool = QuietOpt,
    json_: bool = JsonOpt,
) -> None:
    """Check every shard against its record (sha256, rows, images), and the card against the
    records; exit 1 naming bad ones."""
    from ..verify import verify

    report = verify(dataset, repair, root=root, device=device, quiet=quiet)
    if json_:
        print_json(report)
    else:
        rows = [
            {**s, "status": "repaired" if s["repaired"] else ("ok" if s["ok"] else "BAD")}
            for s in report["shards"]
        ]
        print_table(rows, ["config", "file", "status"])
        for s in report["shards"]:  # each problem whole (a table cell cuts it short)
            where = f"data/{s['config']}/{s['file']}"
            for p in [] if s["repaired"] else s["problems"]:
                typer.echo(f"{where}: {p}")
            if s.get("note"):
                typer.echo(f"{where}: {'' if s['repaired'] else 'not repaired: '}{s['note']}")
        for t in report["temporaries"]:
            typer.echo(f"stale temporary: {t}")
        card = report["card"]
        for p in card["problems"]:
            typer.echo(f"card {'(rewritten)' if card['repaired'] else 'BAD'}: {p}")
        for line in report["leaks"]:
            typer.echo(f"leak: {line}")
    if not report["ok"]:
        # only what is wrong: "bad shards: none" beside a bad card read as all well
        bad = [s["file"] for s in report["shards"] if not s["ok"]]
        wrong = [f"bad shards: {', '.join(bad)}"] if bad else []
        if report["temporaries"]:
            wrong.append(f"{len(report['temporaries'])} stale temporaries")
        if not report["card"]["ok"]:
            wrong.append("README.md does not list what the records do")
        if report["leaks"]:
            wrong.append(f"{len(report['leaks'])} leak(s) across configs")
        e = ItemsFailed(
            f"{report['dataset']}: {'; '.join(wrong)}" + ("" if repair else _advice(report))
        )
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(e.exit_code)


def _advice(report: dict) -> str:
    """What to run next: `--repair` where it can mend something (a shard it can make again or
    remove, a stale temporary, the card where no record is unreadable or gone), else the
    command that made the dataset."""
    card = not report["card"]["ok"] and report["card"]["repairable"]
    mendable = any(s.get("repairable") for s in report["shards"])
    if mendable or report["temporaries"] or card:
        return "; run `filmdata verify --repair`"
    return "; --repair cannot mend these: re-run the command that made it (each line says how)"


@command("preview")
def preview_cmd(
    dataset: str = typer.Argument(..., help="Dataset folder or name."),
    out: Path | None = typer.Option(
        None,
        "-o",
        "--out",
        help="FILE.png (contact sheet) or FILE.mp4 (video); default DATASET/preview.png.",
    ),
    split: str = typer.Option("train", "--split", help="Which split."),
    n: int = typer.Option(4, "--n", help="How many windows."),
    config: str | None = typer.Option(
        None,
        "--config",
        help="Which config: synthetic | real (default: synthetic where the dataset has it, "
        "else the first of its configs by name).",
    ),
    root: Path | None = RootOpt,
    quiet: bool = NoBarsOpt,
) -> None:
    """Write a contact sheet or a side-by-side video of LQ | GT windows."""
    from ..preview import preview

    typer.echo(str(preview(dataset, out, split=split, n=n, config=config, root=root)))


@command("datasets")
def datasets_cmd(
    root: Path | None = RootOpt, json_: bool = JsonOpt, quiet: bool = NoBarsOpt
) -> None:
    """List the catalog's datasets: name, rows per split, configs, size."""
    from ..preview import list_datasets

    rows = list_datasets(root)
    if json_:
        print_json(rows)
        return
    table = [
        {
            "name": r["name"],
            "configs": ",".join(r["configs"]),
            "rows": " ".join(f"{k}={v}" for k, v in r["rows"].items()),
            "MB": round((r["bytes"] or 0) / 2**20, 2),
            "folder": "incomplete" if r["incomplete"] else "present" if r["present"] else "missing",
            "path": r["path"],
        }
        for r in rows
    ]
    columns = ["name", "configs", "rows", "MB", "folder", "path"]
    print_table(table, columns, whole=columns)  # each a name or path to copy, rows to read


def _names(ids: list[str], most: int = 5) -> str:
    """The first `most` ids, and how many more."""
    more = f" and {len(ids) - most} more (--json lists them)" if len(ids) > most else ""
    return ", ".join(ids[:most]) + more
