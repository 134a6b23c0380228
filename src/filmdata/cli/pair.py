"""`filmdata align` and `filmdata pair`: thin translations of `filmdata.pairing.align` and
`filmdata.pairing.pair.pair` (heavy imports stay inside the commands)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ..errors import RefusedError
from ..paths import refuse_unless_file
from ._common import (
    BackendOpt,
    JsonOpt,
    QuietOpt,
    RayAddressOpt,
    RootOpt,
    command,
    print_json,
    print_table,
)


def _aligner_environment() -> None:
    """numpy's settings for an aligning process, effective where numpy is not loaded yet (as
    in a `filmdata align` or `pair` process; a user's own can still set them otherwise).

    - OpenBLAS on one thread: most of the aligner's matrix products are small, and its threads
      would only spin beside the decoders and OpenCV (a second core's worth of CPU); the large
      ones (the sharp pass's band similarities) run on two threads of our own.
    - No transparent huge pages for numpy's large arrays (`NUMPY_MADVISE_HUGEPAGE=0`): the
      aligner makes ~1 GB of fresh descriptors, and faulting them in as 2 MB pages cost twice
      the system time of 4 kB ones here (a 720p tape of detailed footage: 1.4-2.2 -> 0.9-1.0 s
      of system CPU, 3.9-4.2 -> 3.7 s wall; a real 1080p harsh tape 3.75 -> 3.49 s)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")


@command("align")
def align_cmd(
    lq: Path = typer.Argument(..., help="The degraded video (tape capture).", show_default=False),
    gt: Path = typer.Argument(..., help="Its clean ground truth (HD master).", show_default=False),
    min_confidence: float | None = typer.Option(
        None,  # the aligner's own (pairing.align.MIN_CONFIDENCE: not imported until run)
        "--min-confidence",
        show_default=False,
        help="LQ frames whose match scores below this get null: 0 to 1 (default 0.25; a "
        "frame with no GT scores near 0).",
    ),
    homography: bool = typer.Option(
        False, "--homography", help="Estimate a homography instead of an affine transform."
    ),
    samples: int = typer.Option(12, "--samples", help="Frame pairs registered for the transform."),
    timeout: float = typer.Option(
        3600.0, "--timeout", min=0.001, help="Seconds before decoding is killed (bad media)."
    ),
    json_: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Align a tape to its ground truth: GT frame per LQ frame (null where none), GT->LQ 3x3."""
    _aligner_environment()
    from ..pairing.align import align

    for p in (lq, gt):
        refuse_unless_file(p)
    if samples < 1:
        raise RefusedError(f"--samples must be >= 1, got {samples}")
    a = align(
        lq,
        gt,
        **({} if min_confidence is None else {"min_confidence": min_confidence}),
        homography=homography,
        samples=samples,
        quiet=quiet or json_,
        timeout=timeout,
    )
    if json_:
        print_json(a.to_json())
        return
    q = a.quality
    n = len(a.mapping)
    t = a.transform
    typer.echo(
        f"{n} LQ frames: {n - q['null']} mapped ({q['matched']:.1%}), {q['null']} without GT; "
        f"{q['repeats']} repeats, {q['drops']} drops, {q['jumps']} jumps"
    )
    typer.echo(
        "offset and speed: none (no frame matched)"
        if a.offset is None or a.speed is None
        else f"offset {a.offset:+.3f} s, speed {a.speed:.4f} (GT seconds per LQ second)"
    )
    spread = q["spatial_spread_px"]
    typer.echo(
        f"GT->LQ: scale {t[0, 0]:.4f} x {t[1, 1]:.4f}, shift ({t[0, 2]:+.2f}, {t[1, 2]:+.2f}) px; "
        f"ECC {q['ecc'] if q['ecc'] is None else round(q['ecc'], 3)}, "
        + (
            f"spread {spread:.2f} px over {q['spatial_samples']} frames"
            if spread is not None
            else "no frame pair registered (no GT found in the tape?)"
        )
    )


@command("pair")
def pair_cmd(
    root: Path | None = RootOpt,
    manifests: list[Path] = typer.Option(
        [], "--manifest", "-m", help="Manifest(s) whose pairs to align (default: the catalog's)."
    ),
    export: str | None = typer.Option(
        None, "--export", help="Also write aligned pairs as config 'real' of datasets/NAME."
    ),
    gt_scale: bool = typer.Option(
        False, "--gt-scale", help="Export the GT at its own scale (default: on the LQ grid)."
    ),
    clip_len: int = typer.Option(8, "--clip-len", help="Frames per exported window."),
    size: int = typer.Option(
        256,
        "--size",
        help="Side of the exported square LQ crop (at most the tape's picture: said where less).",
    ),
    val_fraction: float = typer.Option(
        0.1,
        "--val-fraction",
        help="Last stretch of each GT (the windows of all its pairs) held out as validation.",
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Pairs aligned at once (local)."),
    backend: str = BackendOpt,
    ray_address: str | None = RayAddressOpt,
    json_: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Align the manifests' LQ/GT pairs, record them in the catalog, optionally export them."""
    _aligner_environment()
    from ..errors import ItemsFailed
    from ..pairing.pair import pair

    try:
        out = pair(
            root,
            manifests,
            export=export,
            gt_scale=gt_scale,
            clip_len=clip_len,
            size=size,
            val_fraction=val_fraction,
            quiet=quiet or json_,
            jobs=jobs,
            backend=backend,
            ray_address=ray_address,
        )
    except ItemsFailed as e:  # show what was done, then exit 1 with the reasons
        _show(getattr(e, "result", None), json_)
        raise
    _show(out, json_)


def _show(out: dict | None, json_: bool) -> None:
    if out is None:
        return
    if json_:
        print_json(out)
        return
    print_table(out["pairs"], ["manifest", "id", "status", "error"])
    if not out["pairs"]:
        typer.echo("no pairs to align: fetch a manifest with pairs, or pass --manifest", err=True)
    if out["dataset"]:
        d = out["dataset"]
        if d["real"]:
            typer.echo(f"dataset {d['name']}: real {d['real']} at {d['path']}")
        else:
            typer.echo(f"dataset {d['name']}: nothing exported; {d['path']} left as it was")
        for why in d.get("left_out") or []:
            typer.echo(f"left out of it: {why}")
        for why in d.get("smaller") or []:
            typer.echo(f"note: {why}")
        for why in d.get("no_validation_across_configs") or []:
            typer.echo(f"no validation windows of {why}")
        if d.get("windows_left_out_across_configs"):
            typer.echo(
                f"{d['windows_left_out_across_configs']} window(s) left out: other configs of "
                "the dataset hold their GT frames in both splits (or in validation, with "
                "--val-fraction 0)"
            )
