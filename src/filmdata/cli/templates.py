"""`filmdata templates make` and `filmdata templates extract`: noise-template packs.

Thin translations of `filmdata.degrade.template_make.make_templates` and
`filmdata.degrade.template_extract.extract_templates`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import JsonOpt, NoBarsOpt, QuietOpt, app, print_json, print_table, translate_errors

templates_app = typer.Typer(
    help="Make or extract noise-template packs (degradations/templates/<kind>/*.png).",
    no_args_is_help=True,
)
app.add_typer(templates_app, name="templates")


def _report(counts: dict[str, int], out: Path, json_: bool) -> None:
    if json_:
        print_json({"out": str(out), "templates": counts})
    else:
        print_table(
            [{"kind": k, "templates": v} for k, v in sorted(counts.items())], ["kind", "templates"]
        )
        typer.echo(f"written under {out}")


@templates_app.command("make")
@translate_errors
def make_cmd(
    out: Path = typer.Option(
        Path("degradations/templates"), "--out", help="Templates folder to write."
    ),
    seed: int = typer.Option(0, "--seed", help="The pack's seed (same seed, same pack)."),
    json_: bool = JsonOpt,
    quiet: bool = NoBarsOpt,
) -> None:
    """Draw a procedural pack of dust, dirt, hair, scratch, blotch and edge templates."""
    from ..degrade.template_make import make_templates

    _report(make_templates(out, seed=seed), out, json_)


@templates_app.command("extract")
@translate_errors
def extract_cmd(
    video: Path = typer.Argument(
        ..., help="Film-noise overlay footage (dust, scratches on black or white)."
    ),
    out: Path = typer.Option(
        Path("degradations/templates"), "--out", help="Templates folder to write."
    ),
    step: int = typer.Option(2, "--step", help="Look at every N-th frame."),
    threshold: float = typer.Option(0.12, "--threshold", help="Damage above the background (0-1)."),
    limit: int = typer.Option(200, "--limit", help="At most this many templates per kind."),
    quiet: bool = QuietOpt,
    json_: bool = JsonOpt,
) -> None:
    """Turn real film-noise overlay footage into templates, sorted by kind."""
    import warnings

    from ..degrade.template_extract import extract_templates

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", UserWarning)
        counts = extract_templates(
            video, out, step=step, threshold=threshold, limit=limit, quiet=quiet
        )
    _report(counts, out, json_)
    for w in said:  # (one line each, on stderr: stdout may be JSON)
        typer.echo(f"warning: {w.message}", err=True)
