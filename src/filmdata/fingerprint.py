"""What a run's input files hold, cheaply: recorded with a dataset's parameters, so that a file
replaced at its path (re-encoded, re-captured, fetched again) is not resumed as the same input.

A full sha256 of a multi-GB file on every run costs a read of it all; the size and the sha256
of its first and last `ENDS` bytes cost two short reads and change with any re-encode or other
capture (a container's header and index, at its ends, describe every packet). A file's mtime
is left out: a `touch`, or a copy back of the same bytes, is the same content.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

ENDS = 4 << 20  # bytes hashed at each end of a file (a file of up to 2 * ENDS: all of it)


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """`ends:<size>:<sha256 of the first and last ENDS bytes>` of the file at `path`."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        h.update(f.read(ENDS))
        if size > ENDS:
            f.seek(max(ENDS, size - ENDS))
            h.update(f.read(ENDS))
    return f"ends:{size}:{h.hexdigest()}"


def input_content(
    files: Iterable[str], root: Path | None = None, catalog: dict[str, str] | None = None
) -> dict[str, str]:
    """Each file's content key, by its name: its path relative to `root` where given (a
    catalog's sources: the same under a moved root), else as given. The key is the catalog's
    sha256 of the file (`catalog`: resolved path -> sha256) where it has one (`sha256:<hex>`),
    else `file_fingerprint`."""
    out = {}
    for f in files:
        sha = (catalog or {}).get(str(Path(f).resolve()))
        name = os.path.relpath(f, root) if root is not None else f
        out[name] = f"sha256:{sha}" if sha else file_fingerprint(f)
    return out


def replaced(old: dict[str, str] | None, new: dict[str, str]) -> list[str]:
    """The files of `new` whose content differs from `old`'s record of them; a file `old`
    does not name (added since, or a record made before contents were recorded: None) is
    not compared."""
    return [f for f, key in new.items() if (old or {}).get(f, key) != key]


def holds(path: str | os.PathLike[str], key: str) -> bool:
    """Whether the file at `path` holds the content `key` (an `input_content` value) names: a
    `sha256:` key (a catalog's) by the sha256 of the whole file, which a copy of other bytes
    put at its path without a fetch does not keep; an `ends:` key by `file_fingerprint`."""
    if not key.startswith("sha256:"):
        return file_fingerprint(path) == key
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}" == key
