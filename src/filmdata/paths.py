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


def slug_or_refuse(name: str, option: str) -> str:
    """`name`, refused unless it is a slug: it names a folder under the root (a dataset), and
    a path such as '../x' would write outside it.

    Raises:
        RefusedError: naming the option and the name.
    """
    import re

    from .errors import RefusedError

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise RefusedError(f"{option} must be a slug [A-Za-z0-9][A-Za-z0-9._-]*, got {name!r}")
    return name


def refuse_unless_folder(path: Path, option: str, give: str = "a folder to write into") -> None:
    """Refuse an output folder that a file stands in the way of (the path itself or a parent),
    or where nothing can be written (a read-only file system, no permission), before anything
    is written under it.

    Raises:
        RefusedError: naming the option, the path and the file in the way (or the folder that
            cannot be written, and why).
    """
    from .errors import RefusedError

    there = next(p for p in (path, *path.parents) if p.exists())  # (the root at worst)
    if not there.is_dir():
        raise RefusedError(f"{option} {path}: {there} is a file, not a folder; give {give}")
    why = unwritable(there)
    if why:
        raise RefusedError(f"{option} {path}: {there} is {why}; write elsewhere")


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
    why = unwritable(there)
    if why:
        raise RefusedError(f"{option} {path}: {there} is {why}; write elsewhere")


def unwritable(folder: Path) -> str | None:
    """Why nothing can be written in `folder` ("on a read-only file system", "not writable (no
    permission)"), or None."""
    if os.access(folder, os.W_OK):
        return None
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "on a read-only file system"
    except OSError:
        pass
    return "not writable (no permission)"


def refuse_unless_file(
    path: str | os.PathLike[str],
    what: str = "video file",
    *,
    name: str | None = None,
    hint: str = "",
    error: type[Exception] | None = None,
) -> None:
    """Refuse an input file that is not there, or is a folder, before it is opened: "no such
    file" only where nothing is there. Anything else there (a file, a pipe) is left to what
    reads it, whose error names it.

    Args:
        path: the file given.
        what: what the command reads there ("video file", "config file", "YAML file").
        name: how the message names it (default: the path; "--input X" to name the option too).
        hint: what to give instead, after a "; " (both messages).
        error: the exception to raise (default RefusedError; MediaError where a missing video
            is a MediaError, for the CLI the same exit 2).

    Raises:
        RefusedError (or `error`): "NAME: no such file" or "NAME: a folder, not a WHAT".
    """
    from .errors import RefusedError

    p = Path(path)
    if p.is_dir():
        problem = f"a folder, not a {what}"
    elif not p.exists():  # (a dangling link too)
        problem = "no such file"
    else:
        return
    raise (error or RefusedError)(
        f"{path if name is None else name}: {problem}" + (f"; {hint}" if hint else "")
    )


def refuse_unless_input_folder(
    path: str | os.PathLike[str],
    what: str = "folder",
    *,
    name: str | None = None,
    hint: str = "",
    missing_ok: bool = False,
) -> None:
    """Refuse an input folder that is a file, or is not there, before it is read: "no such
    folder" only where nothing is there, "a file, not a WHAT" where a file (anything but a
    folder) is. The twin of `refuse_unless_file`; `refuse_unless_folder` is for output folders.

    Args:
        path: the folder given.
        what: what the command reads there, with what it holds ("dataset folder", "run folder
            (config.json, weights)", "degradations folder (presets/, templates/)").
        name: how the message names it (default: the path; "--templates X" to name the option).
        hint: what to give instead, after a "; " (both messages).
        missing_ok: nothing there passes (the caller, which also looks the name up under the
            root, has its own words for that).

    Raises:
        RefusedError: "NAME: no such folder" or "NAME: a file, not a WHAT".
    """
    from .errors import RefusedError

    p = Path(path)
    if p.is_dir():
        return
    if p.exists():
        problem = f"a file, not a {what}"
    elif missing_ok:  # (a dangling link too)
        return
    else:
        problem = "no such folder"
    raise RefusedError(
        f"{path if name is None else name}: {problem}" + (f"; {hint}" if hint else "")
    )
