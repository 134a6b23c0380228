"""`fetch --prune`: the sources a manifest no longer names leave the catalog and the data root.

A manifest owns its namespace: the catalog's rows keyed by its name and `raw/<manifest>/`. A
source taken out of it goes with its clips (rows and exported files), the manifest's pairs that
name it, its raw file, its sidecars (`<id>.info.json`) and what an interrupted download staged
(`.incoming/<id>/`, `.incoming/<id>.lock`). Another manifest's sources are never touched, nor
are datasets already written: they are records of what was made, and hold the source until
they are made again.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..catalog import Catalog
from ..manifest import Manifest
from ..video import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS
from .item import INCOMING, Item, try_lock, unlock


@dataclass(frozen=True)
class Pruned:
    """One source removed, and what went with it."""

    manifest: str
    id: str
    clips: int  # clip rows
    pairs: tuple[str, ...]  # pair ids
    files: tuple[str, ...]  # removed files and folders, relative to the root

    def reason(self, file: str) -> str:
        """`no longer in x.yaml: 3 clips, 1 pair, 2 files removed`: its row's reason."""
        counts = [(self.clips, "clip"), (len(self.pairs), "pair"), (len(self.files), "file")]
        what = ", ".join(f"{n} {w}{'' if n == 1 else 's'}" for n, w in counts)
        return f"no longer in {file}: {what} removed"


def stale(cat: Catalog, manifest: Manifest) -> list[str]:
    """The ids of the catalog's sources of `manifest` (by its name) that it no longer names."""
    named = {s.id for s in manifest.sources}
    return [r["id"] for r in cat.sources(manifest=manifest.name) if r["id"] not in named]


def stale_pairs(cat: Catalog, manifest: Manifest) -> list[str]:
    """The ids of the catalog's pairs of `manifest` that it no longer names (or names with
    other sources is not stale: `fetch` records the change)."""
    named = {p.id for p in manifest.pairs}
    return [r["id"] for r in cat.pairs(manifest=manifest.name) if r["id"] not in named]


def stale_hint(file: str, ids: Sequence[str], pairs: Sequence[str] = ()) -> str:
    """One line: `2 sources and 1 pair of x.yaml no longer in it (a, b; pair p): fetch --prune
    removes them`."""

    def some(names: Sequence[str]) -> str:
        return ", ".join(names[:5]) + (f", and {len(names) - 5} more" if len(names) > 5 else "")

    what = [
        f"{n} {word}{'' if n == 1 else 's'}"
        for n, word in ((len(ids), "source"), (len(pairs), "pair"))
        if n
    ]
    named = "; ".join(x for x in (some(ids), "pair " + some(pairs) if pairs else "") if x)
    one = len(ids) + len(pairs) == 1
    return (
        f"{' and '.join(what)} of {file} no longer in it ({named}): "
        f"fetch --prune removes {'it' if one else 'them'}"
    )


def prune(cat: Catalog, root: Path, manifest: Manifest) -> list[Pruned]:
    """Remove the sources of `manifest` that it no longer names (`stale`), with their rows and
    files. A source another process is fetching (its lock held) is left for a later run.

    Returns:
        What was removed, one `Pruned` per source, in id order.
    """
    kinds = {r["id"]: r["kind"] for r in cat.sources(manifest=manifest.name)}
    out = []
    for sid in stale(cat, manifest):
        item = Item(manifest=manifest.name, id=sid, kind=kinds[sid], root=str(root))
        fd = try_lock(item)
        if fd is None:
            continue
        try:
            gone = cat.drop_sources(manifest.name, [item.id])
            files = _remove_raw(item) + remove_exports(root, gone["clips"])
            # The lock file goes while held: a fetch that opens it later makes a new one.
            (item.raw / INCOMING / f"{item.id}.lock").unlink(missing_ok=True)
        finally:
            unlock(fd)
        out.append(
            Pruned(
                manifest.name,
                item.id,
                len(gone["clips"]),
                tuple(p["id"] for p in gone["pairs"]),
                tuple(str(p.relative_to(root)) for p in files),
            )
        )
    return out


def prune_pairs(cat: Catalog, manifest: Manifest) -> list[str]:
    """Remove the pairs of `manifest` that it no longer names (`stale_pairs`), their
    alignments with them; their ids, in order."""
    return [p["id"] for p in cat.drop_pairs(manifest.name, stale_pairs(cat, manifest))]


def _belongs(name: str, source_id: str) -> bool:
    """Whether a file name in `raw/<manifest>/` is this source's: `<id>.<media ext>` or
    `<id>.info.json`. Exact, as ids may hold dots: `bad.v2.mp4` is not `bad`'s."""
    if name == f"{source_id}.info.json":
        return True
    p = Path(name)
    return p.stem == source_id and p.suffix[1:].lower() in VIDEO_EXTENSIONS | AUDIO_EXTENSIONS


def _remove_raw(item: Item) -> list[Path]:
    removed: list[Path] = []
    if item.raw.is_dir():
        for p in sorted(item.raw.iterdir()):
            if p.is_file() and _belongs(p.name, item.id):
                p.unlink(missing_ok=True)
                removed.append(p)
    if item.staging.is_dir():
        shutil.rmtree(item.staging, ignore_errors=True)
        removed.append(item.staging)
    return removed


def remove_exports(root: Path, clips: list[dict[str, Any]]) -> list[Path]:
    """The clips' exported files (`cut --export`), and their folders left empty."""
    base = (root / "clips").resolve()
    removed: list[Path] = []
    for c in clips:
        if not c.get("path"):
            continue
        p = root / c["path"]
        if not p.resolve().is_relative_to(base) or not p.is_file():
            continue  # (a row naming anything else is not followed out of clips/)
        p.unlink()
        removed.append(p)
        for folder in p.parents:  # clips/<source>/, or clips/<manifest>/<source>/
            if folder.resolve() == base:
                break
            try:
                os.rmdir(folder)  # only where empty
            except OSError:
                break
    return removed
