"""`fetch`: every source of some manifests into `ROOT/raw/`, verified and catalogued.

The map over sources is the img2dataset shape: reader (manifests -> items), downloader (a
worker per attempt, `pool.py`), checker (`verify.py`), writer (the catalog, in this process).
A failed item becomes a row with its reason and the others go on.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .._progress import progress
from ..catalog import Catalog
from ..errors import RefusedError
from ..manifest import Manifest, load_manifest
from ..paths import refuse_unless_file, resolve_root
from . import pool
from .item import Item, Options, attempt, try_lock, unlock
from .prune import prune as prune_stale
from .prune import prune_pairs, remove_exports, stale, stale_pairs
from .report import FetchFailed, FetchReport, ItemResult

_PROXY = re.compile(r"^(https?|socks4a?|socks5h?)://[^\s]+$")
_PROBE_FIELDS = (
    "container",
    "codec",
    "width",
    "height",
    "fps",
    "frames",
    "declared_frames",
    "duration",
    "audio",
    "audio_codec",
)


def _check_options(
    jobs: int,
    retries: int,
    timeout: float,
    sleep: float,
    max_height: int | None,
    cookies: str | os.PathLike[str] | None,
    proxy: str | None,
) -> str | None:
    if jobs < 1:
        raise RefusedError(f"--jobs: must be at least 1, got {jobs}")
    if retries < 0:
        raise RefusedError(f"--retries: must be 0 or more, got {retries}")
    if not timeout > 0:
        raise RefusedError(f"--timeout: must be more than 0 seconds, got {timeout}")
    if not 0 <= sleep < math.inf:  # (NaN too: no wait is >= NaN, nothing would start)
        raise RefusedError(f"--sleep: must be a finite 0 or more seconds, got {sleep}")
    if max_height is not None and max_height < 1:
        raise RefusedError(f"--max-height: must be at least 1, got {max_height}")
    if proxy is not None and not _PROXY.match(proxy):
        raise RefusedError(f"--proxy: must be http(s):// or socks5://..., got {proxy!r}")
    if cookies is None:
        return None
    path = Path(cookies).expanduser().resolve()
    refuse_unless_file(
        path, "cookies file", name=f"--cookies {cookies}", hint="give a Netscape cookies.txt"
    )
    # read as yt-dlp will read it (else every URL source fails on it in turn); the lines it
    # skips it warns of when it downloads, not here too
    from http.cookiejar import LoadError

    from yt_dlp.cookies import YoutubeDLCookieJar

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            YoutubeDLCookieJar(str(path)).load()
    except (LoadError, OSError, UnicodeDecodeError) as e:
        raise RefusedError(
            f"--cookies {cookies}: not a cookies file yt-dlp reads ({e}); give a Netscape "
            "cookies.txt (its first line '# Netscape HTTP Cookie File')"
        ) from None
    return str(path)


def _select(manifests: Sequence[Manifest], only: Sequence[str]) -> list[tuple[Manifest, Any]]:
    """(manifest, source) pairs to fetch; `only` takes ids or manifest/id."""
    wanted = set(only)
    chosen = [
        (m, s)
        for m in manifests
        for s in m.sources
        if not wanted or s.id in wanted or f"{m.name}/{s.id}" in wanted
    ]
    known = {s.id for m in manifests for s in m.sources}
    known |= {f"{m.name}/{s.id}" for m in manifests for s in m.sources}
    unknown = sorted(wanted - known)
    if unknown:
        raise RefusedError(f"--only: no source {unknown[0]!r} in the manifests given")
    return chosen


# The columns an alignment fills in (`pairing.pair`): cleared when a pair's sources change.
_ALIGNED = ("error", "offset_s", "speed", "transform", "mapping", "confidence", "quality")


def _record_pairs(
    cat: Catalog, manifests: Sequence[Manifest], chosen: Sequence[tuple[Manifest, Any]]
) -> None:
    """Tell the catalog of the manifests' pairs whose two sources this run fetches (or that
    it knows already), so that `filmdata pair` aligns them without the manifest named again.
    A pair known with the same sources keeps its row (and its alignment); one whose LQ or GT
    changed is pending again, its old result cleared."""
    fetching = {(m.name, s.id) for m, s in chosen}
    for m in manifests:
        for p in m.pairs:
            if not all((m.name, s) in fetching or cat.source(m.name, s) for s in (p.lq, p.gt)):
                continue
            row = cat.row("pairs", {"manifest": m.name, "id": p.id})
            if row is not None and (row["lq"], row["gt"]) == (p.lq, p.gt):
                continue
            cleared = dict.fromkeys(_ALIGNED)
            cat.upsert_pair(
                {"manifest": m.name, "id": p.id, "lq": p.lq, "gt": p.gt, "status": "pending"}
                | cleared
            )


def fetch(
    manifests: Sequence[str | os.PathLike[str]],
    root: str | os.PathLike[str] | None = None,
    only: Sequence[str] = (),
    jobs: int = 2,
    max_height: int | None = None,
    cookies: str | os.PathLike[str] | None = None,
    proxy: str | None = None,
    sleep: float = 0.0,
    retries: int = 3,
    timeout: float = 600.0,
    force: bool = False,
    link: bool = False,
    allow_truncated: bool = False,
    prune: bool = False,
    quiet: bool = False,
    backend: str = "local",
    ray_address: str | None = None,
) -> FetchReport:
    """Fetch the sources of some manifests into `ROOT/raw/<manifest>/<id>.<ext>`.

    Remote URLs go through yt-dlp; local captures are copied (hard-linked with `link`). Each
    file is probed (every frame decoded) and sha256'd into the catalog's `sources` table.
    A re-run skips what is fetched and verified and resumes partial downloads.

    Args:
        manifests: manifest files; all are validated before anything runs.
        root: the data root (default `$FILMDATA_ROOT` or `./filmdata-data`).
        only: fetch only these source ids (or `manifest/id`).
        jobs: items fetched at once.
        max_height: the tallest video format to pick (e.g. 1080).
        cookies: a Netscape cookies.txt for yt-dlp (bot checks, sign-in).
        proxy: a proxy URL for yt-dlp.
        sleep: at least this many seconds between the starts of two downloads.
        retries: further attempts after a transient failure (HTTP 429/5xx, dropped link).
        timeout: hard limit in seconds per item, all attempts together (the worker is killed).
        force: fetch again even what is fetched and verified.
        link: hard-link local captures instead of copying them.
        allow_truncated: keep files where fewer than 95% of the declared frames decode
            (recorded with truncated=1).
        prune: remove the catalog's sources of each manifest (by its name) that it no longer
            names, with their clips, the pairs naming them, their raw files and sidecars
            (`prune.py`), before fetching. Datasets already written are not touched: one made
            earlier holds them until it is made again. Not with `only`.
        quiet: no progress bar.
        backend: "local" (`jobs` worker processes here) or "ray" (each source a Ray task on
            the cluster at `ray_address`; the catalog is written here, by the driver alone).
        ray_address: the Ray cluster (default `$RAY_ADDRESS`; "local" starts one in-process).

    Returns:
        A FetchReport with each item's status (fetched / skipped / failed) and reason, the
        sources pruned (with `prune`: status "pruned", first, the reason saying what went
        with each), those a manifest no longer names that are left, and the clips of other
        sources whose status changed when the near-duplicates were decided again after clips
        went (`redecided`: kept again where what they duplicated was pruned or re-fetched).

    Raises:
        ManifestError: a manifest does not validate (nothing runs).
        RefusedError: a bad option, an `only` id that no manifest has, or `prune` with `only`.
        ItemsFailed: after the run, when any item failed (its `report` holds the results).
    """
    from ..backend import check_backend

    cookie_file = _check_options(jobs, retries, timeout, sleep, max_height, cookies, proxy)
    check_backend(backend)  # Ray missing: refused before the root and catalog are made
    if prune and only:
        raise RefusedError(
            "--prune takes each manifest whole, and --only takes part of it; "
            "run fetch --prune without --only"
        )
    if not manifests:
        raise RefusedError("give at least one manifest")
    # Each file once, by where it is (not by the object naming it: fetch([p, p]) would fetch
    # every item twice at once, and one of the two would fail).
    seen: set[Path] = set()
    files = []
    for p in manifests:
        if Path(p).resolve() not in seen:
            seen.add(Path(p).resolve())
            files.append(p)
    loaded = [load_manifest(p) for p in files]  # every manifest, before anything runs
    names: dict[str, str] = {}
    for m in loaded:
        if names.setdefault(m.name, m.file) != m.file:
            raise RefusedError(f"{m.file}: manifest name {m.name!r} is also {names[m.name]}")
    chosen = _select(loaded, only)

    root_dir = resolve_root(root)  # made by the catalog (refused where it cannot be)
    opts = Options(
        max_height=max_height,
        cookies=cookie_file,
        proxy=proxy,
        force=force,
        link=link,
        allow_truncated=allow_truncated,
        socket_timeout=float(min(max(timeout / 2, 1.0), 30.0)),
    )
    with Catalog.at_root(root_dir) as cat:
        pruned = []
        for m in loaded if prune else []:
            file = Path(m.file).name
            pruned += [
                ItemResult(p.manifest, p.id, "pruned", reason=p.reason(file))
                for p in prune_stale(cat, root_dir, m)
            ]
            pruned += [
                ItemResult(m.name, pid, "pruned", reason=f"a pair no longer in {file}: removed")
                for pid in prune_pairs(cat, m)
            ]
        # (after pruning: one another process was fetching is still there, and named)
        left = tuple(
            (m.file, tuple(ids), tuple(pairs))
            for m in loaded
            if (ids := stale(cat, m)) + (pairs := stale_pairs(cat, m))
        )
        _record_pairs(cat, loaded, chosen)
        items = [
            Item(
                manifest=m.name,
                id=s.id,
                kind=s.kind,
                root=str(root_dir),
                url=s.url,
                capture=str(m.local_path(s).resolve()) if s.path is not None else None,
                sections=tuple(s.section_ranges()),
                title=s.title,
                year=s.year,
                previous=None,  # read when the item is claimed
            )
            for m, s in chosen
        ]
        urls = [it.url for it in items if it.url is not None]
        if urls:
            from .ytdlp import warm_up

            warm_up(urls)
        bar = _progress(len(items), quiet)

        locks: dict[str, int] = {}
        kept: dict[int, dict[str, Any]] = {}  # failed items whose verified copy stays recorded
        recut: list[str] = []  # sources fetched with other content: their clips dropped

        def claim(it: Item) -> Item | None:
            # The lock is held from here to the catalog write: two processes never fetch one
            # item at once, and the second one sees the first one's row (and skips).
            fd = try_lock(it)
            if fd is None:
                return None
            locks[it.key] = fd
            return replace(it, previous=cat.source(it.manifest, it.id))

        def on_done(out: pool.Outcome) -> None:
            fd = locks.pop(out.item.key, None)
            try:
                # An item this process never claimed (busy: another process holds it) is the
                # holder's to record; here it is only a line of this run's report.
                if fd is not None and _record(cat, out, root_dir, recut):
                    kept[out.index] = out.item.previous
            finally:
                if fd is not None:
                    unlock(fd)
            bar.update(1)
            if out.status == "failed":  # as it happens, on stderr (stdout may be JSON)
                bar.write(f"failed {out.item.key}: {out.reason}", file=sys.stderr)

        try:
            if backend == "ray":
                outcomes = _run_ray(
                    items, opts, claim, on_done, retries, timeout, sleep, ray_address, root_dir
                )
            else:
                outcomes = pool.run(
                    items,
                    _attempt,
                    jobs=jobs,
                    retries=retries,
                    timeout=timeout,
                    sleep=sleep,
                    on_done=on_done,
                    retryable=_retryable,
                    extra=(opts,),
                    claim=claim,
                )
        finally:
            bar.close()
            for fd in locks.values():
                unlock(fd)
        # other sources' clips dropped as duplicates of clips this run removed (pruned, or of
        # a source fetched with other content) are decided again now, not at the next `cut`
        redecided: list[str] = []
        if pruned or recut:
            from ..scenes.cut import settle_duplicates

            redecided = settle_duplicates(root_dir, cat)

    report = FetchReport(
        root_dir,
        (*pruned,)
        + tuple(
            ItemResult(
                manifest=o.item.manifest,
                id=o.item.id,
                status=o.status,
                reason=o.reason,
                path=(o.result.get("row") or kept.get(o.index) or {}).get("path"),
                sha256=(o.result.get("row") or kept.get(o.index) or {}).get("sha256"),
                attempts=o.attempts,
                seconds=round(o.seconds, 3),
            )
            for o in outcomes
        ),
        stale=left,
        recut=tuple(recut),
        redecided=tuple(redecided),
    )
    if report.failed:
        raise FetchFailed(report)
    return report


def sources(root: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """The catalog's sources: id, manifest, kind, status, error, path, sha256, probe fields.

    Args:
        root: the data root (default `$FILMDATA_ROOT` or `./filmdata-data`).

    Raises:
        RefusedError: the root has no catalog (a mistyped path is not made a new root).
    """
    with Catalog.existing(resolve_root(root)) as cat:
        return cat.sources()


def _attempt(item: Item, deadline: float, first: bool, opts: Options) -> dict[str, Any]:
    return attempt(item, opts, deadline, first)


def _retryable(item: Item) -> bool:
    return item.url is not None


def _ray_item(job: tuple[Item, Options, int, float]) -> pool.Outcome:
    """One source as a Ray task: the same attempts, retries and hard time limit as locally."""
    item, opts, retries, timeout = job
    (out,) = pool.run(
        [item],
        _attempt,
        jobs=1,
        retries=retries,
        timeout=timeout,
        on_done=lambda o: None,
        retryable=_retryable,
        extra=(opts,),
    )
    return out


def _host(job: tuple[Item, Options, int, float]) -> str:
    from urllib.parse import urlsplit

    url = job[0].url
    if not url:
        return ""
    return urlsplit(url).hostname or ""


def _run_ray(
    items: list[Item],
    opts: Options,
    claim: Any,
    on_done: Any,
    retries: int,
    timeout: float,
    sleep: float,
    ray_address: str | None,
    root: Path,
) -> list[pool.Outcome]:
    """Fetch on a Ray cluster: this process claims items and writes the catalog; tasks fetch.

    The per-host rate limit (`sleep` between two starts) holds across the cluster, since this
    one driver dispatches every task.
    """
    import time

    from ..backend import ItemError, map_items

    outcomes: list[pool.Outcome] = []
    jobs: list[tuple[Item, Options, int, float]] = []
    index: list[int] = []
    for i, it in enumerate(items):
        deadline = time.time() + timeout
        claimed = claim(it)
        while claimed is None and time.time() < deadline:
            time.sleep(pool.BUSY_POLL)
            claimed = claim(it)
        if claimed is None:
            out = pool.Outcome(i, it, "failed", 0, timeout, "busy: another process is fetching it")
            outcomes.append(out)
            on_done(out)
            continue
        jobs.append((claimed, opts, retries, timeout))
        index.append(i)
    results = map_items(
        _ray_item,
        jobs,
        backend="ray",
        ray_address=ray_address,
        root=root,
        num_cpus=0.5,  # I/O-bound: two fetches per core
        start_interval=sleep,
        group=_host,
        max_retries=2,  # a dead worker: the item runs again (its .part resumes)
    )
    for j, res in results:
        if isinstance(res, ItemError):
            res = pool.Outcome(index[j], jobs[j][0], "failed", 1, 0.0, res.error)
        else:
            res.index = index[j]
        outcomes.append(res)
        on_done(res)
    outcomes.sort(key=lambda o: o.index)
    return outcomes


def _record(cat: Catalog, out: pool.Outcome, root: Path, recut: list[str]) -> bool:
    """Write one item's outcome: fetched only with a verified file in place. A source fetched
    with other content than the catalog's loses the clips cut from the old one (its key is
    added to `recut`: it needs `cut` again).

    Returns:
        Whether a failed item's earlier verified copy is still in place and stays recorded (its
        path and sha256 are then the report's too; a deleted one's are not).
    """
    it: Item = out.item
    base = {
        "manifest": it.manifest,
        "id": it.id,
        "kind": it.kind,
        "url": it.url,
        "origin_path": it.capture,
        "title": it.title,
        "year": it.year,
    }
    prev_attempts = int((it.previous or {}).get("attempts") or 0)
    if out.status == "skipped":
        cat.upsert_source(base)
        return False
    if out.status == "fetched":
        row = dict(out.result["row"])
        if (it.previous or {}).get("sha256") != row.get("sha256"):
            # other content than the catalog's (or none recorded: a failed re-fetch removed
            # it): clips cut from the old one (frame ranges, picture box) name none of the new
            # one's frames, and `synth` takes kept clips
            clips = cat.clips(manifest=it.manifest, source=it.id)
            cat.replace_many("clips", {"manifest": it.manifest, "source": it.id}, [])
            remove_exports(root, clips)
            if clips:
                recut.append(it.key)
        cat.upsert_source(
            {
                **base,
                "status": "fetched",
                "error": None,
                "attempts": prev_attempts + out.attempts,
                **{k: row.get(k) for k in ("path", "sha256", "bytes", "truncated", "info")},
                **{k: row.get(k) for k in _PROBE_FIELDS},
            }
        )
        return False
    # Failed. Under --force an earlier verified copy may still be in place: keep it recorded.
    prev = it.previous or {}
    kept = prev.get("status") == "fetched" and prev.get("path") and (root / prev["path"]).is_file()
    if kept and (root / prev["path"]).stat().st_size == prev.get("bytes"):
        cat.upsert_source({**base, "error": f"re-fetch failed: {out.reason}"})
        return True
    cat.upsert_source(
        {
            **base,
            "status": "failed",
            "error": out.reason,
            "attempts": prev_attempts + out.attempts,
            "path": None,
            "sha256": None,
            "bytes": None,
            "truncated": 0,
            "info": {"sections": [list(s) for s in it.sections]},
            **{k: None for k in _PROBE_FIELDS},
        }
    )
    return False


def _progress(total: int, quiet: bool) -> Any:
    return progress(total, quiet, desc="fetch", unit="source", leave=False, dynamic_ncols=True)
