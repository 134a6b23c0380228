"""One attempt at one source, run inside a worker process (see `pool.py`).

The order is what makes kill -9 safe at any moment:

1. (in the parent) the item's lock is taken, `raw/<manifest>/.incoming/<id>.lock`, and held
   until its catalog row is written; the OS releases it if the process dies;
2. skip it if the catalog's verified file is still there, same size and sha256;
3. download (or copy) into `raw/<manifest>/.incoming/<id>/`, where yt-dlp keeps its `.part`
   (a re-run resumes it, or verifies a complete file there, if `.source` names the same source);
4. verify there: not executable, probes as video, >= 95% of declared frames decode, sha256;
5. rename to `raw/<manifest>/<id>.<ext>` (atomic), and only then is it reported as fetched.

A file that fails verification is removed, so nothing that is not a verified video stays.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._json import dumps, finite
from ..video import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS
from .errors import ItemError
from .local import capture_ext, import_capture
from .verify import sha256_file, verify_media

INCOMING = ".incoming"
STAMP = ".source"  # in an item's staging folder: the source what is staged there came from


@dataclass(frozen=True)
class Item:
    """One source to fetch. Plain data: it travels to the worker process."""

    manifest: str
    id: str
    kind: str
    root: str
    url: str | None = None
    capture: str | None = None  # absolute path of a local capture
    sections: tuple[tuple[float, float], ...] = ()
    title: str | None = None
    year: int | None = None
    previous: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return f"{self.manifest}/{self.id}"

    @property
    def raw(self) -> Path:
        return Path(self.root) / "raw" / self.manifest

    @property
    def staging(self) -> Path:
        """This item's own folder for partial files (ids may contain dots: no shared globs)."""
        return self.raw / INCOMING / self.id


@dataclass(frozen=True)
class Options:
    max_height: int | None = None
    cookies: str | None = None
    proxy: str | None = None
    force: bool = False
    link: bool = False
    allow_truncated: bool = False
    socket_timeout: float = 30.0


def origin_stamp(capture: Path) -> dict[str, int] | None:
    """Size and mtime of a local capture: a changed capture is fetched again."""
    try:
        st = capture.stat()
    except OSError:
        return None
    return {"origin_bytes": st.st_size, "origin_mtime_ns": st.st_mtime_ns}


def is_current(item: Item) -> bool:
    """The catalog's verified copy is still there, unchanged, for the same source."""
    prev = item.previous
    if not prev or prev.get("status") != "fetched" or not prev.get("path"):
        return False
    info: dict[str, Any] = prev["info"] if isinstance(prev.get("info"), dict) else {}
    same_source = (
        prev.get("url") == item.url
        and prev.get("origin_path") == item.capture
        # as the catalog stores them: JSON has no infinity, an open end ("0:12-inf") is null
        and finite([list(s) for s in item.sections]) == info.get("sections", [])
    )
    if item.capture is not None:
        stamp = origin_stamp(Path(item.capture)) or {}
        same_source = same_source and all(info.get(k) == v for k, v in stamp.items())
    path = Path(item.root) / prev["path"]
    return (
        same_source
        and path.is_file()
        and path.stat().st_size == prev.get("bytes")
        and sha256_file(path) == prev.get("sha256")
    )


def try_lock(item: Item) -> int | None:
    """Take the item's exclusive lock (held by `filmdata fetch` from claim to catalog write).

    Returns the locked descriptor, or None when another process holds it. The OS releases the
    lock when its holder dies, kill -9 included.
    """
    (item.raw / INCOMING).mkdir(parents=True, exist_ok=True)
    fd = os.open(item.raw / INCOMING / f"{item.id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock (Windows): one process per root
        return fd
    try:
        # A POSIX record lock belongs to this process: forked workers do not inherit it.
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def unlock(fd: int) -> None:
    os.close(fd)  # closing it releases the lock


def _finals(item: Item) -> list[Path]:
    exts = VIDEO_EXTENSIONS | AUDIO_EXTENSIONS
    return [p for p in item.raw.glob(f"{item.id}.*") if p.stem == item.id and p.suffix[1:] in exts]


def _source_stamp(item: Item) -> str:
    return dumps({"url": item.url, "capture": item.capture, "sections": item.sections})


def _resumable(p: Path) -> bool:
    """A `.part` (yt-dlp resumes it) or a complete download (yt-dlp takes it as done)."""
    ext = p.suffix.lower().lstrip(".")
    return ext == "part" or ext in VIDEO_EXTENSIONS | AUDIO_EXTENSIONS | {"unknown_video"}


def _clear_staging(item: Item, keep: bool) -> None:
    """Empty the item's staging folder; with `keep`, leave what an interrupted run staged of
    the same source (a `.part`, or a complete file killed while it was verified: verified
    again, not downloaded again). What another source left (the manifest's URL or sections
    changed since) goes: its bytes are not this source's.
    """
    stamp = item.staging / STAMP
    same = keep and stamp.is_file() and stamp.read_text(encoding="utf-8") == _source_stamp(item)
    for p in item.staging.iterdir():
        if p.is_file() and not (same and _resumable(p)):
            p.unlink(missing_ok=True)
    stamp.write_text(_source_stamp(item), encoding="utf-8")


def _place(staged: Path, final: Path, linked: bool = False) -> None:
    """fsync, drop any execute bit, and rename into place (atomic on one file system).

    A hard-linked capture keeps its mode: its inode is the user's own file, whose mode is
    theirs (its content was sniffed for executables like any other).
    """
    with open(staged, "rb") as f:
        os.fsync(f.fileno())
    mode = staged.stat().st_mode
    if not linked and mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
        os.chmod(staged, mode & ~(stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
    os.replace(staged, final)


# PyAV's container names (FFmpeg demuxers) -> the extension a file of that kind gets.
_CONTAINER_EXT = {
    "mov,mp4,m4a,3gp,3g2,mj2": "mp4",
    "matroska,webm": "mkv",
    "avi": "avi",
    "mpegts": "ts",
    "mpeg": "mpg",
    "flv": "flv",
    "ogg": "ogv",
    "asf": "wmv",
    "dv": "dv",
    "mxf": "mxf",
}


def container_ext(container: str) -> str | None:
    """The extension for a probed container (a download that came without one)."""
    return _CONTAINER_EXT.get(container)


def _sections_length(
    sections: tuple[tuple[float, float], ...], duration: float | None
) -> float | None:
    """Seconds the downloaded sections should last (None: no sections, or one runs to the end
    of a source whose duration yt-dlp did not give)."""
    if not sections:
        return None
    end = float(duration) if duration else float("inf")
    total = sum(max(0.0, min(b, end) - a) for a, b in sections)
    return total if total != float("inf") else None


def attempt(item: Item, opts: Options, deadline: float, first: bool) -> dict[str, Any]:
    """One attempt at `item`; returns {"status": "fetched" | "skipped", "row": catalog fields}.

    Raises:
        ItemError: the attempt failed (retryable or not).
    """
    if first and not opts.force and is_current(item):
        prev = item.previous or {}
        return {"status": "skipped", "row": {"path": prev["path"], "sha256": prev["sha256"]}}
    if not opts.force:
        # A file at the final name that the catalog does not vouch for is not trusted.
        # (With --force the old verified copy stays until the new one replaces it.)
        for p in _finals(item):
            p.unlink(missing_ok=True)
    item.staging.mkdir(parents=True, exist_ok=True)
    if first:
        # --force starts over; otherwise a complete staged file or a .part is picked up.
        _clear_staging(item, keep=not opts.force)
    info: dict[str, Any] = {"sections": [list(s) for s in item.sections]}
    if item.capture is not None:
        capture = Path(item.capture)
        ext = capture_ext(capture)
        staged = item.staging / f"{item.id}.{ext}"
        info["linked"] = import_capture(capture, staged, link=opts.link)
        info.update(origin_stamp(capture) or {})
    else:
        from .ytdlp import download

        assert item.url is not None
        staged, remote = download(
            item.url,
            item.staging,
            item.id,
            sections=item.sections,
            max_height=opts.max_height,
            cookies=opts.cookies,
            proxy=opts.proxy,
            socket_timeout=opts.socket_timeout,
        )
        info.update(remote)
    try:
        left = max(1.0, deadline - time.time())
        row = verify_media(
            staged,
            timeout=left,
            allow_truncated=opts.allow_truncated,
            sections=bool(item.sections),
            expected_seconds=_sections_length(item.sections, info.get("duration")),
        )
    except ItemError:
        staged.unlink(missing_ok=True)
        raise
    kept: str | None = staged.suffix.lower().lstrip(".")
    if kept not in VIDEO_EXTENSIONS | AUDIO_EXTENSIONS:
        kept = container_ext(str(row["container"]))  # it came without a usable extension
    if kept is None:
        staged.unlink(missing_ok=True)
        raise ItemError(f"not a video container we keep: {row['container']}")
    final = item.raw / f"{item.id}.{kept}"
    _place(staged, final, linked=bool(info.get("linked")))
    for p in _finals(item):
        if p != final:
            p.unlink(missing_ok=True)
    for p in item.staging.iterdir():  # nothing staged is needed any more (the stamp included)
        if p.is_file():
            p.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        item.staging.rmdir()
    row.update(path=str(final.relative_to(item.root)), info=info)
    return {"status": "fetched", "row": row}
