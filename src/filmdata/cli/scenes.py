"""`filmdata scenes`, `filmdata cut` and `filmdata clips`."""

from __future__ import annotations

from pathlib import Path

import typer

from ..paths import resolve_root
from ._common import (
    BackendOpt,
    JsonOpt,
    NoBarsOpt,
    QuietOpt,
    RayAddressOpt,
    RootOpt,
    command,
    print_json,
    print_table,
)

DetectorOpt = typer.Option(
    "film",
    "--detector",
    "-d",
    help="film (ours, for old film) | content | adaptive | hash | histogram | transnetv2.",
)
ThresholdOpt = typer.Option(
    None, "--threshold", "-t", help="The detector's threshold (default: its own)."
)


@command("scenes")
def scenes_cmd(
    video: Path = typer.Argument(..., help="The video file."),
    detector: str = DetectorOpt,
    threshold: float | None = ThresholdOpt,
    timeout: float = typer.Option(
        3600.0, "--timeout", min=0.001, help="Seconds before decoding is killed (bad media)."
    ),
    json_: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """List the scenes of one video, frames half-open [start_frame, end_frame)."""
    from ..scenes.detect import detect_scenes

    scenes = detect_scenes(
        video, detector=detector, threshold=threshold, quiet=quiet or json_, timeout=timeout
    )
    rows = [s.to_dict() for s in scenes]
    if json_:
        print_json(rows)
    else:
        print_table(rows, ["start_frame", "end_frame", "start_time", "end_time"])


@command("cut")
def cut_cmd(
    root: Path | None = RootOpt,
    source: list[str] = typer.Option(
        [], "--source", "-s", help="Only these source ids (or manifest/id)."
    ),
    detector: str = DetectorOpt,
    threshold: float | None = ThresholdOpt,
    min_len: float = typer.Option(1.0, "--min-len", help="Seconds; shorter scenes are dropped."),
    max_len: float = typer.Option(
        10.0, "--max-len", help="Seconds; longer scenes are split into windows."
    ),
    export: bool = typer.Option(False, "--export", help="Write kept clips under ROOT/clips/."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Sources cut at once (local)."),
    backend: str = BackendOpt,
    ray_address: str | None = RayAddressOpt,
    json_: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Cut every fetched source into clips in the catalog (kept, dropped with a reason, failed).

    Near-duplicate clips of different sources keep the better copy (more picture, then more
    bits per pixel), decided again over the whole catalog at every cut.
    """
    from ..errors import ItemsFailed
    from ..scenes.cut import cut

    report = cut(
        resolve_root(root),
        sources=tuple(source),
        detector=detector,
        threshold=threshold,
        min_len=min_len,
        max_len=max_len,
        export=export,
        quiet=quiet or json_,
        jobs=jobs,
        backend=backend,
        ray_address=ray_address,
    )
    if json_:
        print_json(report.to_dict())
    else:
        print_table(
            [s.to_dict() for s in report.sources],
            ["manifest", "source", "status", "scenes", "kept", "dropped", "error"],
        )
        if report.redecided:
            few = ", ".join(report.redecided[:5])
            more = f" and {len(report.redecided) - 5} more" if len(report.redecided) > 5 else ""
            typer.echo(
                f"{len(report.redecided)} clip(s) of other sources decided again as "
                f"near-duplicates (see `filmdata clips`): {few}{more}"
            )
    if report.failed:
        raise ItemsFailed(f"{len(report.failed)} source(s) failed: {', '.join(report.failed)}")


@command("clips")
def clips_cmd(
    root: Path | None = RootOpt,
    source: list[str] = typer.Option(
        [], "--source", "-s", help="Only these source ids (or manifest/id)."
    ),
    status: str | None = typer.Option(None, "--status", help="kept | dropped | failed."),
    json_: bool = JsonOpt,
    quiet: bool = NoBarsOpt,
) -> None:
    """List the catalog's clips (status, reason, frames, active picture box, exported path)."""
    from ..scenes.cut import list_clips

    rows = list_clips(resolve_root(root), sources=tuple(source), status=status)
    if json_:
        print_json(rows)
    else:
        print_table(
            rows,
            ["id", "status", "reason", "start_frame", "end_frame", "box_w", "box_h", "path"],
        )
