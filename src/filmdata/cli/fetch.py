"""`filmdata fetch` and `filmdata sources`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ..errors import ItemsFailed
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


@command("fetch")
def fetch_cmd(
    manifests: list[Path] = typer.Argument(..., help="Manifest YAML files.", show_default=False),
    root: Path | None = RootOpt,
    only: list[str] = typer.Option(
        [], "--only", help="Fetch only this source id (or manifest/id); repeat for more."
    ),
    jobs: int = typer.Option(2, "--jobs", "-j", min=1, help="Sources fetched at once."),
    max_height: int | None = typer.Option(
        None, "--max-height", min=1, help="Tallest video format to pick, e.g. 1080."
    ),
    cookies: Path | None = typer.Option(
        None, "--cookies", help="Netscape cookies.txt for yt-dlp (bot checks, sign-in)."
    ),
    proxy: str | None = typer.Option(None, "--proxy", help="Proxy URL for yt-dlp."),
    sleep: float = typer.Option(
        0.0, "--sleep", min=0.0, help="Seconds between the starts of two downloads."
    ),
    retries: int = typer.Option(
        3, "--retries", min=0, help="Retries after a transient failure (HTTP 429/5xx, drops)."
    ),
    timeout: float = typer.Option(
        600.0, "--timeout", min=0.001, help="Hard limit in seconds per source (all attempts)."
    ),
    force: bool = typer.Option(False, "--force", help="Fetch again what is already verified."),
    link: bool = typer.Option(False, "--link", help="Hard-link local captures, do not copy."),
    allow_truncated: bool = typer.Option(
        False, "--allow-truncated", help="Keep files where < 95% of declared frames decode."
    ),
    prune: bool = typer.Option(
        False,
        "--prune",
        help="Remove the sources and pairs each manifest no longer names: their catalog rows, "
        "clips, the pairs naming them and their raw files (no other manifest's). A dataset made "
        "earlier still holds them until it is made again. Each is a row of status "
        '"pruned". Clips of other sources dropped as near-duplicates of clips removed are '
        "kept again (and exported again where their source's clips are). Not with --only.",
    ),
    backend: str = BackendOpt,
    ray_address: str | None = RayAddressOpt,
    json_: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Download the sources of MANIFESTS into ROOT/raw/, probe, hash and catalogue them.

    Ends with a table (fetched / skipped / failed / pruned + reason); exit 1 if any source
    failed.
    Sources a manifest no longer names stay in the catalog (a hint says so) unless --prune.
    """
    from ..fetch import fetch

    try:
        report = fetch(
            manifests,
            root=root,
            only=only,
            jobs=jobs,
            max_height=max_height,
            cookies=cookies,
            proxy=proxy,
            sleep=sleep,
            retries=retries,
            timeout=timeout,
            force=force,
            link=link,
            allow_truncated=allow_truncated,
            prune=prune,
            quiet=quiet,
            backend=backend,
            ray_address=ray_address,
        )
    except ItemsFailed as e:
        if getattr(e, "report", None) is not None:
            _show_report(e.report, json_, quiet)  # type: ignore[attr-defined]
        raise
    _show_report(report, json_, quiet)


def _show_report(report: Any, json_: bool, quiet: bool) -> None:
    from ..fetch.prune import stale_hint

    if not quiet:  # on stderr: stdout may be JSON
        for file, ids, pairs in report.stale:
            typer.echo(stale_hint(file, ids, pairs), err=True)
        if report.recut:
            typer.echo(
                f"{len(report.recut)} source(s) fetched with other content, their clips of the "
                f"old file dropped: {', '.join(report.recut)}; run `filmdata cut`",
                err=True,
            )
        if report.redecided:
            few = ", ".join(report.redecided[:5])
            n = len(report.redecided)
            more = f" and {n - 5} more" if n > 5 else ""
            typer.echo(
                f"{n} clip(s) of other sources decided again as near-duplicates, clips they "
                "duplicated gone (kept again, or a duplicate of one kept again; see "
                f"`filmdata clips`): {few}{more}",
                err=True,
            )
    if json_:
        print_json(report.to_dict())
        return
    # The reason is printed whole (it says where to put a missing capture, or what to fix).
    cols = ["manifest", "id", "status", "attempts", "seconds", "reason"]
    cells = [[_text(r.to_dict()[c]) for c in cols] for r in report.items]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    for row in [cols, *cells]:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
    typer.echo(report.summary())


def _text(v: Any) -> str:
    return "-" if v is None else f"{v:.1f}" if isinstance(v, float) else str(v)


@command("sources")
def sources_cmd(
    root: Path | None = RootOpt, json_: bool = JsonOpt, quiet: bool = NoBarsOpt
) -> None:
    """List the catalog's sources (status, probe fields, path, error; --json: every field)."""
    from ..fetch import sources

    rows = sources(root)
    if json_:
        print_json(rows)
    else:
        print_table(
            rows,
            [
                "manifest",
                "id",
                "kind",
                "status",
                "frames",
                "fps",
                "width",
                "height",
                "path",
                "error",
            ],
        )
