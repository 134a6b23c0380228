"""The GT frames each config of a dataset holds in train and in validation, so that the configs
of one dataset never leak into each other.

`synthetic` (synth) and `real` (pair --export) may cut their GT from the very same files: the
catalog's HD sources. Each config's record (`data/<config>/.shards.json`) keeps, per GT content
key (`content_keys`: the catalog source's sha256 where known, else the resolved file path), the
GT frame ranges of its train and of its validation windows (`frames_record`). A config being
(re)written reads the others' (`held_by_others`) and honours them (`assign`): a window whose GT
frames fall in, or within a window's gap of, another config's validation goes to validation;
one touching another config's train goes to train; one touching both is left out. `leaks`
finds a GT frame in train of one config and validation of another (`filmdata verify`).

Frames are counted as `video.iter_frames` numbers them, from the file's first frame: a
synthetic window's `start_frame` is its source file's frame (a catalog clip that starts
mid-source starts at its scene's frame), and a pair's mapping holds GT frames of that count.
This module reads records as JSON and imports pyarrow only for a record made before GT frames
were recorded: synth plans in a process forked before any thread starts.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPLITS = ("train", "validation")
# `shards.RECORD`, then `shards.LEGACY_RECORDS`: the order `shards.record_path` reads them in
RECORDS = (".shards.json", "_shards.json", "shards.json")

Span = tuple[int, int]  # GT frames [a, b)


def content_keys(
    paths: Iterable[str | os.PathLike[str]], root: Path | None, cat: Any = None
) -> dict[str, str]:
    """Each GT file's content key, by the path given: the sha256 of the catalog source whose
    file it is, where the catalog knows one (one file fetched under two manifests is one GT),
    else the resolved path. `cat`: an open `Catalog` (else the one at `root`, if any)."""
    from .catalog import Catalog

    sha: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    if cat is not None:
        rows = cat.sources()
    elif root is not None and (Path(root) / "catalog.sqlite").exists():
        with Catalog.at_root(root) as c:
            rows = c.sources()
    for r in rows:
        if r.get("sha256") and r.get("path"):
            sha.setdefault(str((Path(root or ".") / r["path"]).resolve()), r["sha256"])
    out = {}
    for p in paths:
        resolved = str(Path(p).expanduser().resolve())
        out[str(p)] = sha.get(resolved, resolved)
    return out


def merge(spans: Iterable[Span]) -> list[list[int]]:
    """Half-open spans merged where they overlap or meet, in order."""
    out: list[list[int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def frames_record(items: Iterable[tuple[str, str, str, int, int]], gap: int) -> dict[str, Any]:
    """The record's `gt_frames` of a config from its windows (GT key, source name, split, GT
    frames [a, b)): {"gap": frames a window spans, "keys": {key: {"name", "train",
    "validation"}}}, each split's frames as merged [a, b) ranges."""
    spans: dict[str, dict[str, list[Span]]] = {}
    names: dict[str, str] = {}
    for key, name, split, a, b in items:
        spans.setdefault(key, {s: [] for s in SPLITS})[split].append((a, b))
        names.setdefault(key, name)
    return {
        "gap": int(gap),
        "keys": {
            k: {"name": names[k], **{s: merge(v[s]) for s in SPLITS}}
            for k, v in sorted(spans.items())
        },
    }


def _first_shared(ours: Iterable[Sequence[int]], theirs: Iterable[Sequence[int]]) -> int | None:
    """The first frame two lists of [a, b) ranges share, or None."""
    theirs = list(theirs)
    both = [max(a, c) for a, b in ours for c, d in theirs if max(a, c) < min(b, d)]
    return min(both) if both else None


def _touch(a: int, b: int, ranges: Sequence[Sequence[int]], gap: int) -> bool:
    """Whether [a, b) overlaps a range or comes within `gap` frames of one."""
    return any(a < r1 + gap and r0 < b + gap for r0, r1 in ranges)


@dataclass(frozen=True)
class Held:
    """The GT frames the other configs of a dataset hold: per key, each split's ranges."""

    keys: Mapping[str, Mapping[str, Sequence[Sequence[int]]]] = field(default_factory=dict)
    gap: int = 0  # the widest window of the other configs, in GT frames
    configs: tuple[str, ...] = ()

    def side(self, key: str, a: int, b: int, gap: int) -> str | None:
        """Where a window of GT frames [a, b) of `key` must go: "train", "validation", "both"
        (it touches both: left out) or None (no other config holds frames near it). Touching
        is overlapping or coming within the wider of `gap` and the others' window."""
        held = self.keys.get(key)
        if not held:
            return None
        g = max(gap, self.gap)
        val = _touch(a, b, held.get("validation", ()), g)
        train = _touch(a, b, held.get("train", ()), g)
        return "both" if val and train else "validation" if val else "train" if train else None

    def side_of(self, key: str) -> Callable[[int, int, int], str | None]:
        """`side` for the windows of one GT: (a, b, gap) -> its split."""
        return functools.partial(self.side, key)

    def to_dict(self) -> dict[str, Any]:
        return {"keys": self.keys, "gap": self.gap, "configs": list(self.configs)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Held:
        return cls(d.get("keys") or {}, int(d.get("gap") or 0), tuple(d.get("configs") or ()))


def assign(items: Sequence[tuple[str, int, int]], held: Held, gap: int) -> list[str | None]:
    """`Held.side` of each window (GT key, GT frames [a, b))."""
    return [held.side(k, a, b, gap) for k, a, b in items]


def keep_gap(items: Sequence[tuple[str, int, int, str]], gap: int, keys: set[str]) -> list[bool]:
    """Which windows (GT key, [a, b), split) to keep: of the `keys` some other config holds,
    a train window within `gap` frames of a validation window of its key is dropped (windows
    sent to a split by another config's frames and those split by the usual rules may meet
    there; the usual rules keep their own gap)."""
    spans: dict[str, list[Span]] = {}
    for k, a, b, split in items:
        if split == "validation" and k in keys:
            spans.setdefault(k, []).append((a, b))
    val = {k: merge(v) for k, v in spans.items()}  # (near their union is near one of them)
    return [
        not (split == "train" and k in keys and _touch(a, b, val.get(k, ()), gap))
        for k, a, b, split in items
    ]


# Reading the records -------------------------------------------------------------------------


def json_record(dataset: Path, config: str) -> dict[str, Any] | None:
    """`config`'s record read as JSON without importing `shards` (synth reads it before its
    fork, where pyarrow's threads must not have started); None where there is none or it
    does not parse."""
    folder = Path(dataset) / "data" / config
    for name in RECORDS:
        if (folder / name).is_file():
            try:
                rec = json.loads((folder / name).read_text())
            except ValueError:
                return None
            return rec if isinstance(rec, dict) else None  # (`shards.read_record` says why)
    return None


def configs(dataset: Path) -> list[str]:
    """The dataset's configs that have a record file (read once, by `config_frames`: a
    synthetic record lists every window)."""
    data = Path(dataset) / "data"
    if not data.is_dir():
        return []
    return sorted(
        p.name for p in data.iterdir() if p.is_dir() and any((p / r).is_file() for r in RECORDS)
    )


def config_frames(dataset: Path, config: str, root: Path | None) -> dict[str, Any]:
    """A config's `gt_frames`: its record's, or, for a record made before they were kept,
    found from its shards (`_found_frames`)."""
    record = json_record(dataset, config) or {}
    if "gt_frames" in record:
        return dict(record["gt_frames"])
    return _found_frames(dataset, config, record, root)


def held_by_others(dataset: Path, config: str, root: Path | None) -> Held:
    """What every config of `dataset` but `config` holds, merged."""
    keys: dict[str, dict[str, list[Span]]] = {}
    gap, others = 0, []
    for c in configs(dataset):
        if c == config:
            continue
        frames = config_frames(dataset, c, root)
        if not frames.get("keys"):
            continue
        others.append(c)
        gap = max(gap, int(frames.get("gap") or 0))
        for k, v in frames["keys"].items():
            for s in SPLITS:
                keys.setdefault(k, {t: [] for t in SPLITS})[s] += [tuple(r) for r in v.get(s, [])]
    merged = {k: {s: merge(v[s]) for s in SPLITS} for k, v in sorted(keys.items())}
    return Held(merged, gap, tuple(others))


def _found_frames(
    dataset: Path, config: str, record: Mapping[str, Any], root: Path | None
) -> dict[str, Any]:
    """`gt_frames` of a config whose record has none: a synthetic config's from its record's
    windows, a real one's from its rows (the GT frames each shows, its pair's GT source)."""
    entries = (record.get("shards") or {}).values()
    items: list[tuple[str, str, str, int, int]] = []
    if any(e.get("windows") for e in entries):
        clip_len = int((record.get("params") or {}).get("clip_len") or 1)
        wins = [(e["split"], w) for e in entries for w in e.get("windows") or []]
        keys = content_keys({w["path"] for _, w in wins}, root)
        for split, w in wins:
            a = int(w["start_frame"])
            items.append((keys[w["path"]], w["source"], split, a, a + clip_len))
        return frames_record(items, clip_len)
    import pyarrow.parquet as pq

    from .catalog import Catalog

    rows = []
    for name, e in sorted((record.get("shards") or {}).items()):
        path = Path(dataset) / "data" / config / name
        if path.is_file():
            cols = ["id", "clip", "start_frame", "degradation"]
            rows += [(e.get("split"), r) for r in pq.read_table(path, columns=cols).to_pylist()]
    gts: dict[tuple[str, str], str] = {}  # (manifest, GT id) -> its file
    have = root is not None and (Path(root) / "catalog.sqlite").exists()
    spans, gap = [], 0
    for split, r in rows:
        deg = json.loads(r["degradation"] or "{}")
        frames = deg.get("gt_frames")
        if not frames or "gt" not in deg:
            continue
        suffix = f".{r['clip']}.{r['start_frame']}"  # (ids: manifest.pair.start)
        manifest = r["id"][: -len(suffix)] if r["id"].endswith(suffix) else ""
        spans.append((split, manifest, deg["gt"], min(frames), max(frames) + 1))
        gap = max(gap, max(frames) - min(frames) + 1)
    if have and spans:
        with Catalog.at_root(root) as cat:  # type: ignore[arg-type]
            for _, m, g, _, _ in spans:
                src = cat.source(m, g)
                if src is not None and src.get("path") and (m, g) not in gts:
                    gts[m, g] = str(Path(root) / src["path"])  # type: ignore[arg-type]
            keys = content_keys(gts.values(), root, cat)
    else:
        keys = {}
    for split, m, g, a, b in spans:
        key = keys.get(gts.get((m, g), ""), f"source:{m}/{g}")
        items.append((key, g, split, a, b))
    return frames_record(items, gap)


def leaks(dataset: Path, root: Path | None = None) -> list[str]:
    """A line for each (config in train, config in validation, GT) where a GT frame is in
    train of one config and validation of another, naming the first such frame."""
    dataset = Path(dataset)
    found = {c: config_frames(dataset, c, root).get("keys") or {} for c in configs(dataset)}
    out = []
    for tc, tkeys in found.items():
        for vc, vkeys in found.items():
            if tc == vc:
                continue
            for key in sorted(set(tkeys) & set(vkeys)):
                frame = _first_shared(tkeys[key].get("train", []), vkeys[key].get("validation", []))
                if frame is not None:
                    name = tkeys[key].get("name") or key
                    out.append(
                        f"{dataset}: GT frame {frame} of source {name!r} ({key}) is in "
                        f"config {tc!r} train and config {vc!r} validation: a leak across "
                        f"configs; re-make one of them (it honours the other)"
                    )
    return out


def conflict(frames: Mapping[str, Any], held: Held) -> str | None:
    """The first GT frame a config's `frames` (its `gt_frames`) hold in one split and `held`
    in the other, said in words; None when there is none."""
    for key, mine in sorted((frames.get("keys") or {}).items()):
        theirs = held.keys.get(key) or {}
        for split, other in (("train", "validation"), ("validation", "train")):
            frame = _first_shared(mine.get(split, []), theirs.get(other, []))
            if frame is not None:
                name = mine.get("name") or key
                return f"GT frame {frame} of source {name!r} is {split} here, {other} there"
    return None


def refuse_conflict(
    dataset: Path, config: str, frames: Mapping[str, Any], root: Path | None, why: str, then: str
) -> None:
    """Refuse `config`'s planned `frames` (its `gt_frames`) where another config of `dataset`
    now holds one of them in the other split (`conflict`), under the caller's lock: "DATASET:
    config(s) OTHERS WHY: the frame; THEN".

    Raises:
        RefusedError: naming the dataset, the other configs and the first such frame.
    """
    from .errors import RefusedError

    now = held_by_others(dataset, config, root)
    found = conflict(frames, now)
    if found:
        raise RefusedError(
            f"{dataset}: config(s) {', '.join(map(repr, now.configs))} {why}: {found}; {then}"
        )
