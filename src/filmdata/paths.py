"""The data root and its layout (see DESIGN.md, "The data root")."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_ROOT = "filmdata-data"


def resolve_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The data root: `root`, else `$FILMDATA_ROOT`, else `./filmdata-data`, made absolute."""
    value = root if root is not None else os.environ.get("FILMDATA_ROOT") or DEFAULT_ROOT
    return Path(value).expanduser().resolve()


def raw_dir(root: Path, manifest: str) -> Path:
    return root / "raw" / manifest


def clips_dir(root: Path, source: str) -> Path:
    return root / "clips" / source


def datasets_dir(root: Path) -> Path:
    return root / "datasets"


def runs_dir(root: Path) -> Path:
    return root / "runs"


def refuse_unless_folder(path: Path, option: str) -> None:
    """Refuse an output folder that a file stands in the way of (the path itself or a parent),
    before anything is written under it.

    Raises:
        RefusedError: naming the option, the path and the file in the way.
    """
    from .errors import RefusedError

    there = next(p for p in (path, *path.parents) if p.exists())  # (the root at worst)
    if not there.is_dir():
        raise RefusedError(
            f"{option} {path}: {there} is a file, not a folder; give a folder to write into"
        )


def refuse_unwritable_file(path: Path, option: str) -> None:
    """Refuse an output file that is a folder, or whose folder a file stands in the way of,
    before the work that makes it (the rename into place, or the mkdir, would fail after it).

    Raises:
        RefusedError: naming the option and the path.
    """
    from .errors import RefusedError

    if path.is_dir():
        raise RefusedError(f"{option} {path}: is a folder; give the name of the file to write")
    there = next(p for p in path.absolute().parents if p.exists())  # (/ at worst)
    if not there.is_dir():
        raise RefusedError(f"{option} {path}: {there} is a file, not a folder")
