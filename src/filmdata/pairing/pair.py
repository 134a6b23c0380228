"""`pair(root, manifests)`: align the manifests' real LQ/GT pairs and record them in the catalog;
with `export`, write the aligned pairs as the `real` config of a dataset.

Each pair is one independent item (deterministic id: manifest, pair id): a pair that fails is
recorded with status `failed` and its error, and the others go on (`ItemsFailed` at the end).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..backend import ItemError, check_backend, map_items
from ..catalog import Catalog
from ..errors import FilmdataError, ItemsFailed, RefusedError
from ..gt_frames import (
    Held,
    content_keys,
    frames_record,
    held_by_others,
    keep_gap,
    refuse_conflict,
)
from ..manifest import load_manifest
from ..paths import datasets_dir, refuse_unless_folder, resolve_root, slug_or_refuse
from ..video import iter_frames
from .align import SHARP_SHARE, SMALL_WIDTH, align
from .descriptors import scale_matrix

CONFIG = "real"
EXPORT_ROWS_PER_SHARD = 64  # rows in each shard of the export


def pair(
    root: str | os.PathLike[str] | None = None,
    manifests: Sequence[str | os.PathLike[str]] = (),
    export: str | None = None,
    gt_scale: bool = False,
    clip_len: int = 8,
    size: int = 256,
    val_fraction: float = 0.1,
    quiet: bool = False,
    jobs: int = 1,
    backend: str = "local",
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Align every pair of the given manifests (default: every pair the catalog knows: those
    of the manifests `fetch` fetched, and those aligned before).

    Args:
        root: the data root.
        manifests: manifest files whose `pairs` to align; empty: re-align the catalog's pairs.
        export: a dataset name: also write the aligned pairs as its `real` config.
        gt_scale: export the GT at its own scale instead of warped onto the LQ grid.
        clip_len: frames per exported window.
        size: side of the exported square LQ crop (pixels), at most the picture's.
        val_fraction: the last stretch of each GT held out as validation: the windows of
            all its pairs that show it (`_hold_out`).
        quiet: no progress bars.
        jobs: pairs aligned at once (local process pool).
        backend: "local" or "ray" (each pair a Ray task; the catalog is written here alone).
        ray_address: the Ray cluster (default `$RAY_ADDRESS`; "local" starts one in-process).

    Returns:
        {"pairs": [{manifest, id, status, error, ...}], "dataset": {...} or None}

    Raises:
        RefusedError: a bad manifest or option.
        ItemsFailed: some pairs failed (the rest done); its `result` is what would be returned.
    """
    root = resolve_root(root)
    check_backend(backend)
    if clip_len < 1 or size < 8 or not 0 <= val_fraction < 1:
        raise RefusedError(
            f"clip_len must be >= 1, size >= 8, val_fraction in [0, 1); got {clip_len}, "
            f"{size}, {val_fraction}"
        )
    if export is not None:  # refused before any pair is aligned, not after
        refuse_unless_folder(datasets_dir(root) / slug_or_refuse(export, "--export"), "--export")
    todo: list[tuple[str, str, str, str]] = []  # manifest, pair id, lq id, gt id
    for m in (load_manifest(p) for p in manifests):
        todo += [(m.name, p.id, p.lq, p.gt) for p in m.pairs]
    results = []
    # Every pair's sources are read from the catalog: a root without one (a mistyped --root)
    # is refused, not made into an empty root that has "no pairs".
    with Catalog.existing(root) as cat:
        if not manifests:
            todo = [(r["manifest"], r["id"], r["lq"], r["gt"]) for r in cat.pairs()]
        if export is not None and not todo:
            where = "the manifests" if manifests else "the catalog (fetch a manifest with pairs)"
            raise RefusedError(f"--export {export}: no pairs in {where} to align and export")
        rows: list[dict[str, Any]] = []
        work: list[tuple[str, str, bool, float | None]] = []
        # pairs aligned at once here share the memory a longer tape's sharp pass may take
        share = SHARP_SHARE / jobs if backend == "local" and jobs > 1 else None
        for manifest, pid, lq, gt in todo:
            rows.append({"manifest": manifest, "id": pid, "lq": lq, "gt": gt})
            try:
                lq_path, gt_path = (_source_path(cat, root, manifest, s) for s in (lq, gt))
                quiet_one = quiet or backend == "ray" or jobs > 1
                work.append((str(lq_path), str(gt_path), quiet_one, share))
            except FilmdataError as e:
                rows[-1].update(status="failed", error=str(e))
        ready = [r for r in rows if "status" not in r]
        # The same per-pair function in a local pool or as Ray tasks; the catalog is written
        # here, by this process alone.
        for i, res in map_items(
            _align_item,
            work,
            backend=backend,
            jobs=jobs,  # type: ignore[arg-type]
            ray_address=ray_address,
            root=root,
        ):
            if isinstance(res, ItemError):
                ready[i].update(status="failed", error=res.error)
            else:
                ready[i].update(res)
        for row in rows:
            cat.upsert_pair(row)
            results.append({k: row.get(k) for k in ("manifest", "id", "status", "error")})
        dataset = None
        if export is not None:
            aligned = [
                r
                for r in cat.pairs(status="aligned")
                if (r["manifest"], r["id"]) in {(m, p) for m, p, _, _ in todo}
            ]
            dataset = export_real(
                root, export, aligned, cat, gt_scale, clip_len, size, val_fraction
            )
    out = {"pairs": results, "dataset": dataset}
    failed = [f"{r['id']}: {r['error']}" for r in results if r["status"] == "failed"]
    failed += dataset["left_out"] if dataset else []  # aligned, but not exported
    if failed:
        err = ItemsFailed(f"{len(failed)} of {len(results)} pairs failed: " + "; ".join(failed))
        err.result = out  # type: ignore[attr-defined]
        raise err
    return out


def _source_path(cat: Catalog, root: Path, manifest: str, source: str) -> Path:
    row = cat.source(manifest, source)
    if row is None:
        raise FilmdataError(f"source {manifest}/{source}: not in the catalog; run filmdata fetch")
    if row["status"] != "fetched" or not row.get("path"):
        raise FilmdataError(f"source {manifest}/{source}: status {row['status']}, not fetched")
    path = root / row["path"]
    if not path.exists():
        raise FilmdataError(f"source {manifest}/{source}: {path} is missing; fetch it again")
    return path


def _align_item(job: tuple[str, str, bool, float | None]) -> dict[str, Any]:
    """Align one pair of files: the catalog columns of an aligned (or failed) pair."""
    lq, gt, quiet, share = job
    try:
        a = align(lq, gt, quiet=quiet, memory_share=share)
    except FilmdataError as e:
        return {"status": "failed", "error": str(e)}
    # No frame matched: the wrong GT (or another programme on the tape), not a pair to export;
    # the alignment is kept for a look (`filmdata align` prints the same).
    none = not any(m is not None for m in a.mapping)
    return {
        "status": "failed" if none else "aligned",
        "error": (
            f"no frame of {Path(lq).name} matched {Path(gt).name} (the wrong GT, or another "
            "programme?); see `filmdata align` of the two"
        )
        if none
        else None,
        "offset_s": a.offset,
        "speed": a.speed,
        "transform": a.transform.tolist(),
        "mapping": a.mapping,
        "confidence": [round(c, 4) for c in a.confidence],
        "quality": a.quality,
    }


def export_real(
    root: Path,
    name: str,
    pairs: list[dict[str, Any]],
    cat: Catalog,
    gt_scale: bool,
    clip_len: int,
    size: int,
    val_fraction: float,
) -> dict[str, Any]:
    """Write aligned pairs as windows of the `real` config of ROOT/datasets/NAME.

    Returns:
        {"name", "path", "real": rows per split, "left_out": why each pair left out was,
        "smaller": the pairs whose windows are smaller than `size` (their tape's picture is),
        "windows_left_out_across_configs", "no_validation_across_configs": why a GT that
        would have validation windows has none (other configs hold it in train)}; with
        no window to export, `real` is empty and the dataset is left as it was (the caller
        reports the pairs left out as failed items: they were aligned and recorded).
    """
    from ..shards import register_dataset, shard_count, write_card, write_split
    from ..video import file_hdr

    dataset = datasets_dir(root) / name
    ready: list[tuple[dict[str, Any], Path, Path, list[int]]] = []
    left_out: list[str] = []
    smaller: list[str] = []  # pairs whose windows are smaller than `size`: said, not silent
    for p in pairs:
        lq = _source_path(cat, root, p["manifest"], p["lq"])
        gt = _source_path(cat, root, p["manifest"], p["gt"])
        hdr = file_hdr(gt)
        if hdr is not None:  # its code values are not SDR pixels: no clean GT
            left_out.append(f"{p['id']}: GT {p['gt']} is an HDR video ({hdr}); make an SDR copy")
            continue
        windows = _windows(p["mapping"], clip_len)
        if not windows:
            left_out.append(f"{p['id']}: no window of {clip_len} aligned frames")
            continue
        side = _side(p, size)
        if side < size:
            smaller.append(
                f"{p['id']}: windows of {side} px, as large as its tape's picture allows "
                f"(--size {size})"
            )
        ready.append((p, lq, gt, windows))
    # Tapes of one master show the same GT frames: the split is made on each GT's timeline,
    # over the windows of all its pairs (held out per pair, two tapes put the same GT frames
    # in both splits). A GT is known by its content where the catalog has it (one file
    # fetched under two manifests), else by its file.
    # Another config of the dataset (synth's `synthetic`) may cut the same GT frames: its
    # record's are honoured (`_hold_out_honouring`), so that no GT frame is in train there
    # and validation here, or the other way.
    keys = content_keys([str(gt) for _, _, gt, _ in ready], root, cat)
    groups: dict[str, list[int]] = {}
    for k, (_, _, gt, _) in enumerate(ready):
        groups.setdefault(keys[str(gt)], []).append(k)
    others = held_by_others(dataset, CONFIG, root)
    held: dict[int, tuple[list[int], list[int]]] = {}  # pair -> (train, validation) starts
    across = 0  # windows left out as other configs hold their GT frames
    no_val = []  # why a GT has no validation windows (one line each)
    for key, members in groups.items():
        each = [(ready[k][3], ready[k][0]["mapping"]) for k in members]
        if key in others.keys:
            starts, n = _hold_out_honouring(each, clip_len, val_fraction, others.side_of(key))
            across += n
            # alone it would have a validation stretch, but the others hold its frames in
            # train (synth's default --val-fraction 0 holds them all so): said, as one was asked
            if not any(va for _, va in starts) and any(
                va for _, va in _hold_out(each, clip_len, val_fraction)
            ):
                no_val.append(
                    f"GT {ready[members[0]][0]['gt']!r}: config(s) "
                    f"{', '.join(map(repr, others.configs))} hold its frames in train only, and "
                    "no GT frame is in train of one config and validation of another; re-make "
                    "them with --val-fraction > 0 (--overwrite) for a validation split of it here"
                )
        else:
            starts = _hold_out(each, clip_len, val_fraction)
        held.update(zip(members, starts, strict=True))
    plans = [(p, lq, gt, *held[k]) for k, (p, lq, gt, _) in enumerate(ready)]
    frames = _frames(plans, keys, clip_len)
    counts = {}
    todo = []
    for split in ("train", "validation"):
        parts = [(p, lq, gt, tr if split == "train" else va) for p, lq, gt, tr, va in plans]
        total = sum(len(w) for *_, w in parts)
        if total:
            todo.append((split, parts, total))
    if todo:  # until the last shard is written, the card names them all (`pending_files`)
        of = {split: shard_count(total, EXPORT_ROWS_PER_SHARD) for split, _, total in todo}
        _note_frames(dataset, root, frames, others, of)
        write_card(dataset)
    for split, parts, total in todo:
        rows = (
            row for p, lq, gt, ws in parts for row in _rows(p, lq, gt, ws, clip_len, size, gt_scale)
        )
        write_split(dataset, CONFIG, split, rows, rows_per_shard=EXPORT_ROWS_PER_SHARD, total=total)
        counts[split] = total
    summary = {
        "name": name,
        "path": str(dataset),
        "real": counts,
        "left_out": left_out,
        "smaller": smaller,
        "windows_left_out_across_configs": across,
        "no_validation_across_configs": no_val,
    }
    if not counts:  # every pair left out (or none aligned): the pairs say why
        return summary
    _note_params(dataset, CONFIG, {"gt_scale": gt_scale, "clip_len": clip_len, "size": size})
    write_card(dataset)
    # the recorder synth uses: every config's rows and params (a `synthetic` config beside
    # this one is kept; an upsert of this config's params alone replaced synth's)
    register_dataset(root, dataset)
    return summary


def _drop_shard_files(folder: Path) -> None:
    """Remove every shard file in `folder` (a config's): an earlier export's, which its record
    no longer lists (the caller replaced it first, under the dataset's lock, as `write_split`
    replaces a split: a shard the record does not list is not complete)."""
    from ..shards import SHARD_RE

    for f in folder.glob("*.parquet"):
        if SHARD_RE.match(f.name):
            f.unlink(missing_ok=True)


def _hold_out(
    pairs: list[tuple[list[int], list[int | None]]], clip_len: int, val_fraction: float
) -> list[tuple[list[int], list[int]]]:
    """(train, validation) window starts of each of one GT's pairs (window starts, mapping):
    the last stretch of the GT's timeline is validation, about `val_fraction` of the windows
    (none of 2 or fewer), one window's length of GT apart from train; a window reaching into
    that gap or across the cut is in neither. No GT frame is in both splits."""
    spans = [[_gt_span(m, st, clip_len) for st in ws] for ws, m in pairs]
    firsts = sorted(lo for sp in spans for lo, _ in sp)
    n_val = int(round(val_fraction * len(firsts))) if len(firsts) > 2 else 0
    if not n_val:
        return [(ws, []) for ws, _ in pairs]
    cut = firsts[len(firsts) - n_val]  # validation: the windows whose GT frames all come from here
    gap = int(np.median([hi - lo + 1 for sp in spans for lo, hi in sp]))  # a window's GT frames
    return [
        (
            [st for st, (_, hi) in zip(ws, sp, strict=True) if hi < cut - gap],
            [st for st, (lo, _) in zip(ws, sp, strict=True) if lo >= cut],
        )
        for (ws, _), sp in zip(pairs, spans, strict=True)
    ]


def _hold_out_honouring(
    pairs: list[tuple[list[int], list[int | None]]],
    clip_len: int,
    val_fraction: float,
    side: Callable[[int, int, int], str | None],
) -> tuple[list[tuple[list[int], list[int]]], int]:
    """`_hold_out` of one GT's pairs where other configs of the dataset hold some of its frames
    (`side`: `Held.side` of this GT): a window near their validation frames is validation,
    one near their train frames train, one near both left out; the others are held out by
    `_hold_out` among themselves; then a train window within a window of a validation one is
    left out. With `val_fraction` 0, the windows bound for validation are left out. Returns
    (train, validation) starts of each pair and how many windows were left out so."""
    spans = [[_gt_span(m, st, clip_len) for st in ws] for ws, m in pairs]
    gap = int(np.median([hi - lo + 1 for sp in spans for lo, hi in sp] or [clip_len]))
    sides = [[side(lo, hi + 1, gap) for lo, hi in sp] for sp in spans]
    free = [
        ([st for st, s in zip(ws, ss, strict=True) if s is None], m)
        for (ws, m), ss in zip(pairs, sides, strict=True)
    ]
    to: dict[tuple[int, int], str] = {}  # (pair, start) -> split
    for k, (tr, va) in enumerate(_hold_out(free, clip_len, val_fraction)):
        to.update({(k, st): "train" for st in tr})
        to.update({(k, st): "validation" for st in va})
    for k, ((ws, _), ss) in enumerate(zip(pairs, sides, strict=True)):
        for st, s in zip(ws, ss, strict=True):
            if s in ("train", "validation") and (s == "train" or val_fraction):
                to[k, st] = s
    items = [
        (k, st, lo, hi + 1)
        for k, ((ws, _), sp) in enumerate(zip(pairs, spans, strict=True))
        for st, (lo, hi) in zip(ws, sp, strict=True)
        if (k, st) in to
    ]
    ok = keep_gap([("", a, b, to[k, st]) for k, st, a, b in items], gap, {""})
    kept = {(k, st) for (k, st, _, _), keep in zip(items, ok, strict=True) if keep}
    near = {(k, st) for k, ((ws, _), ss) in enumerate(zip(pairs, sides, strict=True))
            for st, s in zip(ws, ss, strict=True) if s is not None}  # fmt: skip
    dropped = {(k, st) for k, st, _, _ in items} - kept
    left = len((near | dropped) - kept)
    out = [
        (
            [st for st in ws if (k, st) in kept and to[k, st] == "train"],
            [st for st in ws if (k, st) in kept and to[k, st] == "validation"],
        )
        for k, (ws, _) in enumerate(pairs)
    ]
    return out, left


def _frames(
    plans: Sequence[tuple[dict[str, Any], Path, Path, list[int], list[int]]],
    keys: dict[str, str],
    clip_len: int,
) -> dict[str, Any]:
    """The `gt_frames` of the planned windows: each GT's frames in each split (`gt_frames`)."""
    items, widths = [], []
    for p, _, gt, tr, va in plans:
        for split, starts in (("train", tr), ("validation", va)):
            for st in starts:
                lo, hi = _gt_span(p["mapping"], st, clip_len)
                items.append((keys[str(gt)], p["gt"], split, lo, hi + 1))
                widths.append(hi - lo + 1)
    return frames_record(items, int(np.median(widths)) if widths else clip_len)


def _note_frames(
    dataset: Path, root: Path, frames: dict[str, Any], others: Held, plan: dict[str, int]
) -> None:
    """Record the planned GT frames (`gt_frames`) in the config's record before its shards are
    written, as synth does: the other configs honour them. The shards planned per split
    (`plan`, replacing an earlier export's) go in the same write: a record without them, stopped
    before the card, gives `write_card` nothing to name and `load_dataset` took the record
    for the data.

    An earlier export's shards go in the same write, and then their files: the card names
    the new shards only, and no split of it is loaded beside one of this export (left listed
    until their split was rewritten, the old card's patterns loaded new train shards beside
    old validation shards, silently where the counts agreed). Until the new card,
    `load_dataset` fails on the old card's files, now gone, or (stopped between the record
    and the files) loads the old export whole.

    Raises:
        RefusedError: another config, written since the plan read the others' frames (they are
            read outside the lock), holds one of its GT frames in the other split (synth checks
            alike: `synth._check_held`); nothing is written.
    """
    from ..shards import config_dir, locked, read_record, write_record

    with locked(dataset):
        refuse_conflict(
            dataset, CONFIG, frames, root, "were written while this export planned",
            "nothing exported, run the export again (it plans against them)",
        )  # fmt: skip
        record = read_record(dataset, CONFIG)
        record.update(gt_frames=frames, held=others.to_dict(), plan=dict(plan), shards={})
        write_record(dataset, CONFIG, record)
        _drop_shard_files(config_dir(dataset, CONFIG))


def _gt_span(mapping: list[int | None], start: int, clip_len: int) -> tuple[int, int]:
    """The first and last GT frame a window shows (a path may run back: min and max)."""
    gts = [j for j in mapping[start : start + clip_len] if j is not None]
    return min(gts), max(gts)


def _note_params(dataset: Path, config: str, params: dict[str, Any]) -> None:
    """Record what made `config` in its record (under the dataset's lock), where the card and
    `register_dataset` read each config's params."""
    from ..shards import locked, read_record, write_record

    with locked(dataset):
        record = read_record(dataset, config)
        record.update(params=params, maker="pair")
        write_record(dataset, config, record)


def _windows(mapping: list[int | None], clip_len: int) -> list[int]:
    """Start frames of non-overlapping windows of `clip_len` LQ frames that all have a GT."""
    out, i = [], 0
    while i + clip_len <= len(mapping):
        bad = [k for k in range(i, i + clip_len) if mapping[k] is None]
        if bad:
            i = bad[-1] + 1
            continue
        out.append(i)
        i += clip_len
    return out


def _rows(
    p: dict[str, Any],
    lq: Path,
    gt: Path,
    starts: list[int],
    clip_len: int,
    size: int,
    gt_scale: bool,
) -> Iterator[dict[str, Any]]:
    """Rows of one pair, decoding both videos once, in step (the mapping is monotonic)."""
    if not starts:
        return
    t = np.array(p["transform"], float)
    mapping: list[int | None] = p["mapping"]
    q = p["quality"]
    lw, lh, gw, gh = q["lq"]["width"], q["lq"]["height"], q["gt"]["width"], q["gt"]["height"]
    # where the geometry drifts along the tape, each window is warped with its own segment's
    # transform (one LQ crop for every window, inside every segment's picture)
    segs = [(int(g["from_frame"]), np.array(g["transform"], float)) for g in q.get("segments", [])]
    segs = sorted(segs, key=lambda g: g[0]) or [(0, t)]
    x, y, s = _crop([t, *(ts for _, ts in segs)], (gw, gh), (lw, lh), q.get("active_box"), size)
    need: set[int] = {
        j for st in starts for i in range(st, st + clip_len) if (j := mapping[i]) is not None
    }

    def geometry(seg: int) -> tuple[np.ndarray, tuple[int, int, int, int], float]:
        ts = segs[seg][1]
        sc = float(np.sqrt(abs(np.linalg.det(ts[:2, :2]))))  # GT -> LQ scale
        # GT -> crop pixels, from a GT first shrunk by area averaging (no aliasing)
        m = np.array([[1, 0, -x], [0, 1, -y], [0, 0, 1.0]]) @ ts @ np.linalg.inv(scale_matrix(sc))
        return m, _gt_box(ts, (x, y, s)), sc

    geo = [geometry(k) for k in range(len(segs))]

    def prep(f: np.ndarray, seg: int) -> np.ndarray:
        m, gt_box, sc = geo[seg]
        if gt_scale:
            gx, gy, bw, bh = gt_box
            return np.ascontiguousarray(f[gy : gy + bh, gx : gx + bw])
        small = cv2.resize(f, None, fx=sc, fy=sc, interpolation=cv2.INTER_AREA) if sc < 1 else f
        mm = m if sc < 1 else m @ scale_matrix(sc)
        return cv2.warpAffine(
            small, mm[:2], (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )

    # both videos decoded once, in step (the mapping is monotonic); a few GT frames cached
    lq_it = iter_frames(lq, starts[0], starts[-1] + clip_len)
    gt_it = iter_frames(gt, min(need), max(need) + 1, deinterlace=True)  # pictures, not fields
    raw: dict[int, np.ndarray] = {}  # GT frames decoded and not yet passed
    cache: dict[tuple[int, int], np.ndarray] = {}

    def gt_frame(j: int, seg: int) -> np.ndarray:
        while j not in raw:
            k, f = next(gt_it)
            if k in need:
                raw[k] = f
        if (j, seg) not in cache:
            cache[j, seg] = prep(raw[j], seg)
        return cache[j, seg]

    for st in starts:
        seg = max(k for k, (first, _) in enumerate(segs) if first <= st or k == 0)
        gt_box = geo[seg][1]
        crop = (
            dict(zip("xywh", gt_box, strict=True)) if gt_scale else {"x": x, "y": y, "w": s, "h": s}
        )
        ids = list(range(st, st + clip_len))
        lqs: list[np.ndarray] = []
        while len(lqs) < clip_len:
            i, f = next(lq_it)
            if i >= st:
                lqs.append(f[y : y + s, x : x + s].copy())
        gts = [int(mapping[i]) for i in ids]  # type: ignore[arg-type]  # windows have no None
        frames = [gt_frame(j, seg) for j in gts]
        for k in [k for k in raw if k < min(gts)]:
            del raw[k]
        for key in [key for key in cache if key[0] < min(gts)]:
            del cache[key]
        yield {
            "id": f"{p['manifest']}.{p['id']}.{st}",
            "source": p["lq"],
            "clip": p["id"],
            "start_frame": st,
            "fps": float(q["lq"]["fps"]),
            "crop": crop,
            "gt": frames,
            "lq": lqs,
            "degradation": json.dumps(
                {
                    "origin": "real",
                    "pair": p["id"],
                    "lq": p["lq"],
                    "gt": p["gt"],
                    "gt_frames": gts,
                    "transform": segs[seg][1].tolist(),
                    "gt_scale": gt_scale,
                    "lq_crop": [x, y, s, s],
                }
            ),
            "origin": "real",
        }


def _side(p: dict[str, Any], size: int) -> int:
    """The side of an aligned pair's exported windows (LQ pixels): `size`, or less where the
    tape's picture (inside its active box and the GT's) is smaller (`_crop`)."""
    q = p["quality"]
    gt_size, lq_size = (q["gt"]["width"], q["gt"]["height"]), (q["lq"]["width"], q["lq"]["height"])
    ts = [np.array(p["transform"], float)]
    ts += [np.array(g["transform"], float) for g in q.get("segments", [])]
    return _crop(ts, gt_size, lq_size, q.get("active_box"), size)[2]


def _crop(
    ts: Sequence[np.ndarray],
    gt_size: tuple[int, int],
    lq_size: tuple[int, int],
    box: list[float] | None,
    size: int,
) -> tuple[int, int, int]:
    """A centred square (x, y, side) of LQ pixels inside both the active box and the GT picture,
    under each of `ts` (the GT -> LQ transforms of the tape's parts: the pair's, and its
    `segments` where its picture moves part-way, one crop for them all).

    The active box was found on frames `SMALL_WIDTH` px wide: a side with a bar is known to a
    small pixel (3 px of a 480 px tape), whose edge row may be part bar, and a heavy tape's
    noisy bar may lend it one more (a crf-45 tape of a letterboxed 720p GT: box top 66, the
    picture from 69.4); such a side is taken two small pixels in, so no bar is exported.
    Where the picture moves, its bars move with it: the box, found over every part, is taken
    as each part shows it, moved by the geometry from any part to any other (a re-locked
    tape, its picture 8 px up halfway: the first half's windows held its top bar)."""
    from .spatial import picture_box

    x0, y0, x1, y1 = -np.inf, -np.inf, np.inf, np.inf
    for t in ts:
        px0, py0, px1, py1 = picture_box(t, gt_size, lq_size)
        # the GT picture's edge pixels left out
        x0, y0, x1, y1 = max(x0, px0 + 1), max(y0, py0 + 1), min(x1, px1 - 1), min(y1, py1 - 1)
    if box:
        k = 2 * lq_size[0] / min(SMALL_WIDTH, lq_size[0])  # two small pixels, in LQ pixels
        bx0, by0, bx1, by1 = box[0], box[1], box[0] + box[2], box[1] + box[3]
        bx0, by0 = bx0 + (k if bx0 > 0 else 0), by0 + (k if by0 > 0 else 0)
        bx1 = bx1 - (k if bx1 < lq_size[0] else 0)
        by1 = by1 - (k if by1 < lq_size[1] else 0)
        corners = np.array([[bx0, by0, 1], [bx1, by0, 1], [bx1, by1, 1], [bx0, by1, 1]]).T
        for a in ts:
            for b in ts:  # the box as part `a` shows it, were it found on part `b`
                c = a @ np.linalg.inv(b) @ corners
                cx, cy = np.round(c[:2] / c[2], 6)  # (a part on itself: the box, not 1e-13 in)
                x0, y0 = max(x0, float(cx.min())), max(y0, float(cy.min()))
                x1, y1 = min(x1, float(cx.max())), min(y1, float(cy.max()))
    x0, y0, x1, y1 = int(np.ceil(x0)), int(np.ceil(y0)), int(x1), int(y1)
    s = max(1, min(size, x1 - x0, y1 - y0))
    return (x0 + x1 - s) // 2, (y0 + y1 - s) // 2, s


def _gt_box(t: np.ndarray, crop: tuple[int, int, int]) -> tuple[int, int, int, int]:
    """The GT pixel box (x, y, w, h) that the LQ square (x, y, side) shows."""
    x, y, s = crop
    c = np.array([[x - 0.5, y - 0.5, 1], [x + s - 0.5, y + s - 0.5, 1]]).T
    g = np.linalg.inv(t) @ c
    g = g[:2] / g[2]
    gx0, gy0 = int(np.floor(g[0, 0] + 0.5)), int(np.floor(g[1, 0] + 0.5))
    gx1, gy1 = int(np.ceil(g[0, 1] + 0.5)), int(np.ceil(g[1, 1] + 0.5))
    return max(0, gx0), max(0, gy0), gx1 - max(0, gx0), gy1 - max(0, gy0)
