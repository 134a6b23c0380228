"""`cut`: every fetched source into curated clips in the catalog (and, with export, files).

Per source: detect the scenes, split long ones into windows of at most `max_len` seconds, look
at a few sampled frames of each window (curation: short, black, blank, tape noise, static,
letterbox box, near-duplicate by pHash of the picture inside that box), and write all of the
source's clips in one `replace_many`, so a re-run replaces them (idempotent). A source that
does not decode becomes one failed clip record with the reason; the other sources go on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import ItemError, check_backend, map_items
from ..catalog import Catalog
from ..errors import FilmdataError, MediaError, RefusedError
from ..paths import clips_dir
from ..video import (
    TONE_MAP,
    decodes_on,
    file_aspect,
    file_hdr,
    iter_frames,
    keyframe_frames,
    probe,
    write_video,
)
from ..windows import GT_KINDS
from . import curate
from .detect import DETECTORS, detect_cuts, make_detector, require_transnet, scenes_from_cuts
from .duplicates import _across, _decided, _deciding

SAMPLE_WIDTH = 128  # gray samples for curation are decoded this wide


@dataclass(frozen=True)
class SourceReport:
    """What `cut` did to one source."""

    manifest: str
    source: str
    status: str  # done | failed
    scenes: int = 0
    kept: int = 0
    dropped: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CutReport:
    """What `cut` did, per source."""

    sources: list[SourceReport] = field(default_factory=list)
    # clips of sources not cut this time whose status changed: dropped as near-duplicates of
    # a better copy cut now, or kept again where what duplicated them is gone (`_across`)
    redecided: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [s.source for s in self.sources if s.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": [s.to_dict() for s in self.sources],
            "failed": self.failed,
            "redecided": self.redecided,
        }


def clip_id(source: str, start: int, end: int) -> str:
    """The stable id of a clip: `<source>.<start_frame>-<end_frame>`.

    `source` is the source's id, or `<manifest>/<id>` (`clip_source`) where the catalog holds
    that id under more than one manifest: clip ids are the catalog's primary key.
    """
    return f"{source}.{start}-{end}"


def clip_source(row: dict[str, Any], shared: set[str]) -> str:
    """What a source's clip ids and clip folder are named by: its id, or `<manifest>/<id>`
    where another manifest in the catalog has a source of the same id (`shared`).

    Qualified only then, so that the ids of a source no other manifest shares keep the form
    DESIGN.md gives them (`clips/<source-id>/<clip-id>.mp4`); `/` is in no id or manifest
    name (slugs), so a qualified id never equals a plain one.
    """
    return f"{row['manifest']}/{row['id']}" if row["id"] in shared else row["id"]


def cut(
    root: str | os.PathLike[str],
    sources: tuple[str, ...] = (),
    detector: str = "film",
    threshold: float | None = None,
    min_len: float = 1.0,
    max_len: float = 10.0,
    export: bool = False,
    quiet: bool = False,
    jobs: int = 1,
    backend: str = "local",
    ray_address: str | None = None,
) -> CutReport:
    """Cut the fetched sources of the catalog at `root` into clips.

    Args:
        root: the data root.
        sources: only these source ids, or `manifest/id` (default all fetched ones).
        detector: a name from `DETECTORS`.
        threshold: the detector's threshold (None: its default).
        min_len: seconds; shorter scenes are dropped ("short").
        max_len: seconds; longer scenes are split into near-equal windows (0: never), or into
            windows of max_len and a rest where near-equal ones would be under min_len.
        export: write each kept clip, frame-exact, to `ROOT/clips/<source>/<clip-id>.mp4`
            (`<manifest>/<source>` where two manifests share the id: `clip_source`).
        quiet: no progress bars.
        jobs: sources cut at once (local process pool).
        backend: "local" or "ray" (each source a Ray task; this process alone writes the
            catalog and drops near-duplicates across sources, so both backends give the same
            clips).
        ray_address: the Ray cluster (default `$RAY_ADDRESS`; "local" starts one in-process).

    Near-duplicate clips of different sources (the same footage fetched twice: an HD
    remaster and an old transfer of it, two uploads) keep the better copy (`_across`): more
    picture, then more bits per pixel, then the first source in catalog order; the others are
    dropped naming it. This is decided again over the whole catalog at every cut, so the
    order sources are cut in does not matter: a better copy cut later drops an earlier one's
    clip, and a clip whose duplicate went (re-cut, no longer fetched) is kept again (and
    exported again, where its source's clips are). Cuts of one root may run at once: each
    decides and writes back in turn, holding `ROOT/.cut.lock` (`duplicates.DECIDE_LOCK`).

    Returns:
        A report per source; failed sources are recorded as failed clips too.

    Raises:
        RefusedError: a bad option (a threshold the detector refuses included), a root with
            no catalog, an unknown source, or a detector that is not installed; nothing is
            touched.
    """
    root = Path(root)
    check_backend(backend)
    if detector not in DETECTORS:
        raise RefusedError(f"--detector: unknown {detector!r}; use one of {', '.join(DETECTORS)}")
    if detector == "transnetv2":
        require_transnet()
    else:
        # A threshold the detector refuses is the user's input, not one source's failure:
        # refuse it here, before any source's clips are replaced.
        make_detector(detector, threshold)
    finite = np.isfinite(min_len) and np.isfinite(max_len)  # nan passes every comparison
    if not finite or min_len < 0 or max_len < 0 or (max_len and max_len < min_len):
        raise RefusedError(
            f"--min-len {min_len:g} / --max-len {max_len:g}: need finite 0 <= min-len <= max-len "
            "(max-len 0: no limit)"
        )
    report = CutReport()
    with Catalog.existing(root) as cat:
        every = cat.sources()
        shared = _shared(every)
        # "clip_source" travels with the row to the worker: it names the source's clips.
        rows = [{**r, "clip_source": clip_source(r, shared)} for r in every]
        rows = [r for r in rows if r["status"] == "fetched"]
        if sources:
            # an id, or `manifest/id` (as `fetch --only`): one of two manifests sharing the id
            names = {r["id"] for r in rows} | {f"{r['manifest']}/{r['id']}" for r in rows}
            missing = [s for s in sources if s not in names]
            if missing:
                raise RefusedError(
                    f"--source: no fetched source {', '.join(map(repr, missing))}; "
                    "see `filmdata sources`"
                )
            rows = [r for r in rows if {r["id"], f"{r['manifest']}/{r['id']}"} & set(sources)]
        work = [
            (
                str(root),
                row,
                detector,
                threshold,
                min_len,
                max_len,
                export,
                quiet or backend == "ray" or jobs > 1,
            )
            for row in rows
        ]
        if not sources:
            # A source no longer fetched (its re-fetch failed and its file went) keeps no
            # clips: they would name frames of a file that is not there (synth takes kept
            # clips), and stand as near-duplicate references for the clips cut below.
            for r in every:
                if r["status"] != "fetched" and cat.clips(manifest=r["manifest"], source=r["id"]):
                    cat.replace_many("clips", {"manifest": r["manifest"], "source": r["id"]}, [])
                    _prune_exports(root, {**r, "clip_source": clip_source(r, shared)}, [])
        results: dict[int, tuple[list[dict[str, Any]], SourceReport]] = {}
        for i, res in map_items(
            _cut_item, work, backend=backend, jobs=jobs, ray_address=ray_address, root=root
        ):
            if isinstance(res, ItemError):  # the worker itself died: a failed source
                res = _failed(rows[i], detector, res.error)
            results[i] = res
        # near-duplicates across sources, decided over the whole catalog with these clips
        # (of fetched sources only: another's clips name frames of a file that is not there),
        # read, decided and written back under the root's lock: another cut (or fetch's
        # `settle_duplicates`) deciding at once would write back decisions made on a catalog
        # this one changes (the detection above, the slow part, is not held up by it)
        with _deciding(root):
            every = cat.sources()  # (as it is now)
            cutting = {(r["manifest"], r["id"]) for r in rows}
            new = [c for i in range(len(rows)) for c in results[i][0]]
            _, decided, changed = _decide(cat, every, new, cutting)
            for i, row in enumerate(rows):  # in source order, whatever order they finished in
                clips, rep = results[i]
                clips = [_decided(root, c, decided) for c in clips]
                rep = replace(
                    rep,
                    kept=sum(c["status"] == "kept" for c in clips),
                    dropped=sum(c["status"] == "dropped" for c in clips),
                )
                cat.replace_many("clips", {"manifest": row["manifest"], "source": row["id"]}, clips)
                _prune_exports(root, row, clips)
                report.sources.append(rep)
            # other sources' clips, dropped now or kept again
            report.redecided.extend(_write_back(root, cat, decided, changed, every, export))
    return report


def settle_duplicates(root: str | os.PathLike[str], cat: Catalog) -> list[str]:
    """Decide the near-duplicates across sources again over the catalog's clips as they are,
    and write the decisions back: what `cut` does at its end, for clips that went without a
    cut (`fetch --prune` removed their source, a re-fetch with other content dropped them).

    A clip dropped as a duplicate of one that went is kept again (and exported again where
    its source's clips are: `clips/<source>` exists), unless another copy kept is better
    (`_across`); only clips of fetched sources are decided, and taken as the better copies.

    Args:
        root: the data root (exported clip files are under it).
        cat: its open catalog.

    Returns:
        The ids of the clips whose status changed (kept again, or dropped as a duplicate of
        one kept again), sorted.
    """
    root = Path(root)
    with _deciding(root):  # (as `cut` decides: one at a time)
        every = cat.sources()
        pool, decided, changed = _decide(cat, every)
        _write_back(root, cat, decided, changed, every)
    was = {c["id"]: c["status"] for c in pool}
    return sorted(i for i, (status, _) in decided.items() if status != was[i])


def _decide(
    cat: Catalog,
    every: list[dict[str, Any]],
    new: list[dict[str, Any]] | None = None,
    cutting: set[tuple[str, str]] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str | None]], list[tuple[str, str]]]:
    """`_across` over the catalog's clips of fetched sources (`every`: the catalog's source
    rows), those of the sources `cutting` (manifest, id) replaced by their `new` clips: (the
    clips decided over, the decisions, the other sources whose clips they change, sorted).
    Another source's clips name frames of a file that is not there: never in the pool."""
    skip = cutting or set()
    by_key = {(r["manifest"], r["id"]): r for r in every}
    fetched = {k for k, r in by_key.items() if r["status"] == "fetched"} - skip
    pool = [c for c in cat.clips() if (c["manifest"], c["source"]) in fetched] + list(new or [])
    decided = _across(pool, by_key)
    changed = sorted({(c["manifest"], c["source"]) for c in pool if c["id"] in decided} - skip)
    return pool, decided, changed


def _shared(every: list[dict[str, Any]]) -> set[str]:
    """The source ids that more than one manifest of the catalog's sources `every` has."""
    manifests: dict[str, set[str]] = {}
    for r in every:
        manifests.setdefault(r["id"], set()).add(r["manifest"])
    return {sid for sid, ms in manifests.items() if len(ms) > 1}


def _write_back(
    root: Path,
    cat: Catalog,
    decided: dict[str, tuple[str, str | None]],
    keys: list[tuple[str, str]],
    every: list[dict[str, Any]],
    export: bool = False,
) -> list[str]:
    """Write `_across`'s decisions to the catalog's clips of the sources `keys` (manifest,
    id): a clip dropped loses its exported file (`_decided`), one kept again is exported
    again where its source's clips are (its folder stays when they are dropped), or
    everywhere with `export`. Returns the ids of the clips decided again, in source order."""
    shared = _shared(every)
    by_key = {(r["manifest"], r["id"]): r for r in every}
    out: list[str] = []
    for key in keys:
        clips = [_decided(root, c, decided) for c in cat.clips(manifest=key[0], source=key[1])]
        again = [c for c in clips if c["status"] == "kept" and c["id"] in decided]
        row = {**by_key[key], "clip_source": clip_source(by_key[key], shared)}
        if again and (export or clips_dir(root, row["clip_source"]).is_dir()):
            made = {c["id"]: c for c in _export(root, row, again)}
            clips = [made.get(c["id"], c) for c in clips]
        cat.replace_many("clips", {"manifest": key[0], "source": key[1]}, clips)
        out.extend(c["id"] for c in clips if c["id"] in decided)
    return out


def _prune_exports(root: Path, row: dict[str, Any], clips: list[dict[str, Any]]) -> None:
    """Remove the source's exported clip files that its new clip rows do not name: the rows
    are replaced on a re-cut, and so are the files (a window of an earlier cut, a clip dropped
    or not exported this time, does not stay in `clips/` beside the new ones)."""
    folder = clips_dir(root, row["clip_source"])
    if not folder.is_dir():
        return
    keep = {(root / c["path"]).resolve() for c in clips if c.get("path")}
    mine = re.compile(rf"^{re.escape(row['id'])}\.\d+-\d+\.mp4$")
    for p in folder.iterdir():
        if p.is_file() and mine.match(p.name) and p.resolve() not in keep:
            p.unlink(missing_ok=True)


def _cut_item(
    job: tuple[str, dict[str, Any], str, float | None, float, float, bool, bool],
) -> tuple[list[dict[str, Any]], SourceReport]:
    """One source: detect, window, curate (near-duplicates within the source), export."""
    root_s, row, detector, threshold, min_len, max_len, export, quiet = job
    root = Path(root_s)
    clips, rep = _cut_source(root, row, detector, threshold, min_len, max_len, [], quiet)
    if export:
        clips = _export(root, row, clips)
        # A clip asked for and not written is a failure of its source (exit 1), not a quiet
        # hole in the export.
        bad = [c for c in clips if c["status"] == "failed"]
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            error = f"clip {bad[0]['id']}: {bad[0]['reason']}{more}"
            rep = replace(rep, status="failed", error=error)
    return clips, rep


def _failed(
    row: dict[str, Any], detector: str, error: str
) -> tuple[list[dict[str, Any]], SourceReport]:
    clip = {
        "manifest": row["manifest"],
        "source": row["id"],
        "detector": detector,
        "id": f"{row['clip_source']}.failed",
        "scene": 0,
        "start_frame": 0,
        "end_frame": 0,
        "fps": float(row.get("fps") or 0.0),
        "start_time": 0.0,
        "end_time": 0.0,
        "status": "failed",
        "reason": error,
    }
    return [clip], SourceReport(row["manifest"], row["id"], "failed", error=error)


def _cut_source(
    root: Path,
    row: dict[str, Any],
    detector: str,
    threshold: float | None,
    min_len: float,
    max_len: float,
    seen: list[tuple[str, str]],
    quiet: bool,
) -> tuple[list[dict[str, Any]], SourceReport]:
    manifest, source = row["manifest"], row["id"]
    path = root / (row["path"] or "")
    base = {"manifest": manifest, "source": source, "detector": detector}
    try:
        if not row["path"]:
            raise MediaError(f"source {source!r}: no path recorded; fetch it again")
        if not path.exists():  # moved or deleted since it was fetched
            raise MediaError(f"{path}: missing; fetch it again (`filmdata fetch` of its manifest)")
        hdr = file_hdr(path)
        if hdr is not None:  # its code values are not SDR pixels: no clip until it is SDR
            raise MediaError(f"{path}: an HDR video ({hdr}); make an SDR copy first: {TONE_MAP}")
        cuts, n, fps = detect_cuts(path, detector, threshold, quiet=quiet)
        info = probe(path, count=False)
        scenes = scenes_from_cuts(cuts, n, fps)
        spans = [
            (k, a, b)
            for k, scene in enumerate(scenes)
            for a, b in curate.windows(scene.start_frame, scene.end_frame, fps, min_len, max_len)
        ]
        step = _sample_step(fps)
        picks = {(a, b): _sampled(a, b, step) for _, a, b in spans}
        samples = _samples(path, info.width, info.height, step, picks.values())
    except MediaError as e:
        return _failed(row, detector, str(e))
    clips: list[dict[str, Any]] = []
    for k, a, b in spans:
        cid = clip_id(row["clip_source"], a, b)
        sample = _window_samples(samples, path, picks[a, b])
        box = curate.letterbox(sample, info.width, info.height)
        stats = curate.stats(sample)
        ph = curate.phash(curate.inside(sample, box, info.width, info.height))
        reason = None
        if (b - a) < min_len * fps:
            reason = f"short: {(b - a) / fps:.2f} s < --min-len {min_len:g} s"
        reason = reason or curate.verdict(stats)
        if reason is None:
            near = [(curate.hamming(ph, h), other) for h, other in seen]
            best = min(near, default=None)
            if best is not None and best[0] <= curate.PHASH_DUPLICATE:
                reason = f"duplicate of {best[1]} (phash distance {best[0]})"
        if reason is None:
            seen.append((ph, cid))
        clips.append(
            {
                **base,
                "id": cid,
                "scene": k,
                "start_frame": a,
                "end_frame": b,
                "fps": fps,
                "start_time": round(a / fps, 6),
                "end_time": round(b / fps, 6),
                "box_x": box.x,
                "box_y": box.y,
                "box_w": box.w,
                "box_h": box.h,
                "status": "dropped" if reason else "kept",
                "reason": reason,
                "phash": ph,
                "stats": stats,
            }
        )
    kept = sum(c["status"] == "kept" for c in clips)
    return clips, SourceReport(manifest, source, "done", len(scenes), kept, len(clips) - kept)


def _sample_size(width: int, height: int) -> tuple[int, int]:
    w = min(SAMPLE_WIDTH, width)
    h = max(8, round(w * height / max(1, width)))
    return w, h + h % 2


def _sample_step(fps: float) -> int:
    """Curation looks at about four frames a second: every `step`-th frame."""
    return max(1, int(fps // 4))


def _sampled(a: int, b: int, step: int) -> range:
    """The frames curation looks at in the window `[a, b)`: the source's every `step`-th that
    fall in it, or, where those are fewer than two (a flash cut's few frames) and it is longer
    than one frame, three or four spread over its own frames."""
    own = range(a + (-a) % step, b, step)
    if len(own) >= 2 or (own and b - a < 2):
        return own
    return range(a, b, max(1, (b - a) // 3))


def _samples(
    path: Path, width: int, height: int, step: int, picks: Iterable[range]
) -> dict[int, np.ndarray]:
    """Every `step`-th gray frame of the whole source and those `picks` name between them, by
    frame index, in one pass: a short window's frames read apart were each a seek, decoded from
    a keyframe at least a second before them (flash cuts in a file with x264's 250-frame GOPs:
    more frames than the pass itself)."""
    also = {i for r in picks for i in r if i % step}
    size = _sample_size(width, height)
    return dict(iter_frames(path, gray=True, size=size, step=step, also=also))


def _window_samples(samples: dict[int, np.ndarray], path: Path, picked: range) -> np.ndarray:
    """The gray frames `picked` (`_sampled`) of a window, from the pass (`_samples`)."""
    frames = [samples[i] for i in picked if i in samples]
    if not frames:
        raise MediaError(f"{path}: no frames in [{picked.start}, {picked.stop})")
    return np.stack(frames)


def _export(root: Path, row: dict[str, Any], clips: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write each kept clip of a source to its file, frame-exact; a clip that fails is marked so.

    The clips come in frame order, and are decoded in one pass where the next is in reach
    (`video.decodes_on`): a seek to each started decoding at a keyframe at least a second
    before it, so on x264's 250-frame GOPs a source's clips decoded about twice its frames.
    """
    src = root / row["path"]
    sar = file_aspect(src)  # the source's, for each clip's file
    # A clean source's clips are pictures (written progressive): its interlaced frames are
    # deinterlaced, as synth cuts its GT; a tape's keep their fields (its degradation).
    clean = row.get("kind") in GT_KINDS
    keys = keyframe_frames(src) if any(c["status"] == "kept" for c in clips) else None
    frames: Iterator[tuple[int, np.ndarray]] | None = None  # the decode going on
    at = 0  # the frame it gives next
    out = []
    for clip in clips:
        if clip["status"] != "kept":
            out.append(clip)
            continue
        a, b = clip["start_frame"], clip["end_frame"]
        if frames is None or a < at or not decodes_on(keys, at, a):
            frames = iter_frames(src, a, deinterlace=clean)

        target = clips_dir(root, row["clip_source"]) / f"{clip_id(row['id'], a, b)}.mp4"
        try:
            n = write_video(target, _taken(frames, a, b), clip["fps"], sar=sar)
        except FilmdataError as e:
            out.append({**clip, "status": "failed", "reason": f"export: {e}"})
            frames = None  # (where the decode stopped is not known: the next clip seeks)
            continue
        if n != b - a:
            target.unlink(missing_ok=True)
            out.append(
                {**clip, "status": "failed", "reason": f"export: wrote {n} of {b - a} frames"}
            )
            frames = None
            continue
        at = b
        out.append({**clip, "path": str(target.relative_to(root))})
    return out


def _taken(frames: Iterator[tuple[int, np.ndarray]], a: int, b: int) -> Iterator[np.ndarray]:
    """Frames `[a, b)` from a decode at `a` or before it (those before, of clips dropped,
    passed over), leaving it at `b`."""
    for i, f in frames:
        if i >= a:
            yield f
        if i >= b - 1:
            return


def list_clips(
    root: str | os.PathLike[str], sources: tuple[str, ...] = (), status: str | None = None
) -> list[dict[str, Any]]:
    """The catalog's clips, optionally only of `sources` (ids, or `manifest/id`) and of one
    `status`.

    Raises:
        RefusedError: an unknown status or source, or a root with no catalog.
    """
    if status is not None and status not in ("kept", "dropped", "failed"):
        raise RefusedError(f"--status: unknown {status!r}; use kept, dropped or failed")
    where: dict[str, Any] = {}
    if status:
        where["status"] = status
    with Catalog.existing(Path(root)) as cat:
        rows = cat.clips(**where)
        known = {n for r in cat.sources() for n in (r["id"], f"{r['manifest']}/{r['id']}")}
    missing = [s for s in sources if s not in known]
    if missing:  # (a typo listed nothing, as if the source had no clips)
        raise RefusedError(
            f"--source: no source {', '.join(map(repr, missing))} in the catalog; "
            "see `filmdata sources`"
        )
    if sources:  # an id, or `manifest/id` (as `cut --source`)
        wanted = set(sources)
        rows = [r for r in rows if {r["source"], f"{r['manifest']}/{r['source']}"} & wanted]
    return rows
