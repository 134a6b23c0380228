"""`filmdata fetch` and `filmdata sources`."""

from __future__ import annotations

from pathlib import Path

from ..catalog import Catalog
from ..paths import resolve_root
from ._common import JsonOpt, RootOpt, command, print_json, print_table


@command("sources")
def sources_cmd(root: Path | None = RootOpt, json_: bool = JsonOpt) -> None:
    """List the catalog's sources (status, error, path, sha256 and probe fields)."""
    rows = list_sources(resolve_root(root))
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


def list_sources(root: Path) -> list[dict]:
    with Catalog.at_root(root) as cat:
        return cat.sources()
