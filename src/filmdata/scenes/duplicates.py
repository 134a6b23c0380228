"""Near-duplicate clips across sources (the same footage fetched twice): which copy is kept.

`_across` decides over the catalog's clips, the better copy first (`_better`), the others
dropped naming it; `_decided` applies a decision to a clip. `cut` and `settle_duplicates`
(in `cut`, beside the export they need) read, decide and write back holding `_deciding`,
the data root's lock, one process at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..windows import GT_KINDS
from . import curate

DECIDE_LOCK = ".cut.lock"  # in the data root: held while duplicates are decided (`_deciding`)


@contextlib.contextmanager
def _deciding(root: Path) -> Iterator[None]:
    """Hold the root's exclusive lock on deciding near-duplicates (`ROOT/DECIDE_LOCK`),
    waiting while another process (or another caller here) holds it. flock: the OS releases
    it when its holder dies, kill -9 included; the file stays, empty."""
    fd = os.open(root / DECIDE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # (closing it releases the lock)


_DUPLICATE = re.compile(r"^duplicate of (\S+) \(phash distance \d+\)$")


def _duplicate_of(c: dict[str, Any]) -> str | None:
    """The id of the other source's clip that `c` was dropped as a near-duplicate of; None
    where it was not (kept, dropped for another reason or as a duplicate in its own source)."""
    m = _DUPLICATE.match(c.get("reason") or "") if c["status"] == "dropped" else None
    if m is None or m.group(1).rsplit(".", 1)[0] == str(c["id"]).rsplit(".", 1)[0]:
        return None  # (a clip id is its source's `clip_source`, a dot, its frames)
    return m.group(1)


def _across(
    clips: list[dict[str, Any]], sources: dict[tuple[str, str], dict[str, Any]]
) -> dict[str, tuple[str, str | None]]:
    """Near-duplicates (pHash) across sources, decided over `clips` (the whole catalog's):
    {clip id: (status, reason)} for each clip whose status or reason this changes.

    The candidates are the kept clips and those dropped before as a duplicate of another
    source's clip (which may have gone since, or be the worse copy now); a clip dropped for
    anything else (short, black, a duplicate within its own source) stays so. Best first
    (`_better`), each candidate is kept unless it is a near-duplicate of one kept before it
    of another source, and then dropped naming the nearest."""

    def candidate(c: dict[str, Any]) -> bool:
        return bool(c.get("phash")) and (c["status"] == "kept" or _duplicate_of(c) is not None)

    order = [(r["manifest"], r["id"]) for r in sources.values()]
    rank = {k: i for i, k in enumerate(sorted(order))}  # catalog order: manifest, id
    ranked = sorted(filter(candidate, clips), key=lambda c: _better(c, sources, rank))
    # the kept ones so far, as arrays: each candidate's distances to all of them at once
    # (a catalog of 10 000 clips: 67 s one pair at a time)
    owners = {k: i for i, k in enumerate({(c["manifest"], c["source"]) for c in ranked})}
    hashes = np.zeros(len(ranked), np.uint64)
    owner = np.zeros(len(ranked), np.int64)
    ids: list[str] = []
    out: dict[str, tuple[str, str | None]] = {}
    for c in ranked:
        h, mine = np.uint64(int(c["phash"], 16)), owners[c["manifest"], c["source"]]
        k = len(ids)
        d = np.bitwise_count(hashes[:k] ^ h).astype(np.int64)
        d[owner[:k] == mine] = 64 + 1  # (another source's only)
        near = np.flatnonzero(d == d.min()) if k else np.zeros(0, np.int64)
        got: tuple[str, str | None] = ("kept", None)
        if near.size and d[near[0]] <= curate.PHASH_DUPLICATE:
            best = min(ids[i] for i in near)  # (the first id among the nearest)
            got = ("dropped", f"duplicate of {best} (phash distance {d[near[0]]})")
        else:
            hashes[k], owner[k] = h, mine
            ids.append(c["id"])
        if got != (c["status"], c.get("reason")):
            out[c["id"]] = got
    return out


def _better(
    c: dict[str, Any], sources: dict[tuple[str, str], dict[str, Any]], rank: dict[Any, int]
) -> tuple[float, ...]:
    """The sort key of a clip among near-duplicates, the better copy first: a clean kind's
    (a film scan or a master, not a tape) before a tape's; more picture (its active box, in
    source pixels); more bits per pixel (the source's file size over its pixels: the less
    compressed encode); then the first source in catalog order, and the earlier clip."""
    src = sources.get((c["manifest"], c["source"]), {})
    w, h = src.get("width") or 0, src.get("height") or 0
    area = (c.get("box_w") or w) * (c.get("box_h") or h)
    pixels = w * h * (src.get("fps") or 0) * (src.get("duration") or 0)
    bpp = 8 * (src.get("bytes") or 0) / pixels if pixels else 0.0
    clean = src.get("kind") in GT_KINDS
    at = rank.get((c["manifest"], c["source"]), len(rank))
    return (-float(clean), -float(area), -bpp, float(at), float(c["start_frame"]))


def _decided(
    root: Path, clip: dict[str, Any], decided: dict[str, tuple[str, str | None]]
) -> dict[str, Any]:
    """`clip` as `_across` decided it: a clip dropped now loses its exported file."""
    if clip["id"] not in decided:
        return clip
    status, reason = decided[clip["id"]]
    if status == "dropped":
        if clip.get("path"):
            (root / clip["path"]).unlink(missing_ok=True)
        return {**clip, "status": status, "reason": reason, "path": None}
    return {**clip, "status": status, "reason": reason}
