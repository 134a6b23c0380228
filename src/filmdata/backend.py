"""Where per-item work runs: a local process pool, or tasks on a Ray cluster.

Every stage is a map over independent items with deterministic ids (DESIGN.md). A stage hands
`map_items` a picklable top-level function and its items; the same function runs in a local
process pool (`backend="local"`, `jobs` workers) or as Ray tasks (`backend="ray"`), so there is one
implementation of each stage. The driver (the caller) alone writes the catalog: `map_items` yields
results as they complete and the caller records them.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import FilmdataError, RefusedError

Backend = Literal["local", "ray"]


@dataclass(frozen=True)
class ItemError:
    """An item whose function raised: `error` is its one-line message."""

    error: str


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    try:
        return fn(item)
    except Exception as e:  # an item failure, recorded by the driver; the run goes on
        return ItemError(_message(e))


def _message(e: Exception) -> str:
    """One line for an item's failure: our errors' own message (it names the file, the item
    and the field), another exception's type before its message (a KeyError's is only the
    key: `'fps'`), the type alone where it has none."""
    text = (str(e).strip().splitlines() or [""])[0]
    if isinstance(e, FilmdataError) and text:
        return text
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def map_items(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    backend: Backend | str = "local",
    jobs: int = 1,
    ray_address: str | None = None,
    num_gpus: float = 0.0,
    max_retries: int = 3,
    root: Path | None = None,
    num_cpus: float = 1.0,
    start_interval: float = 0.0,
    group: Callable[[Any], str] | None = None,
    out: Path | None = None,
) -> Iterator[tuple[int, Any]]:
    """Run `fn(item)` for every item; yield `(index, result)` as each completes.

    A raising item yields an `ItemError` instead of stopping the others.

    Args:
        fn: a top-level (picklable) function of one item.
        items: the items (picklable).
        backend: "local" (a process pool of `jobs`, in-process when jobs <= 1) or "ray".
        jobs: local pool size.
        ray_address: the cluster ("127.0.0.1:6379", "auto", or "local" for an in-process Ray);
            default `$RAY_ADDRESS`, else "local".
        num_gpus: GPU share per Ray task (synth on CUDA).
        max_retries: Ray task retries when a worker dies (idempotent items only).
        root: the data root; on Ray, checked to be visible from the workers.
        num_cpus: CPU share per Ray task (1 for CPU work; less for I/O-bound fetches).
        start_interval: on Ray, at least this many seconds between two task starts of one
            `group` (a per-host rate limit that holds across the cluster: one driver dispatches).
        group: the rate-limit key of an item (e.g. its URL's host).
        out: a folder the items write into (synth's dataset, which `--out` may put outside
            the root); on Ray, checked to be visible from the workers too.

    Raises:
        RefusedError: an unknown backend, Ray not installed, or a root (or `out`) the workers
            cannot see.
    """
    if backend == "local":
        yield from _map_local(fn, items, jobs)
    elif backend == "ray":
        yield from _map_ray(
            fn,
            items,
            ray_address,
            num_gpus,
            max_retries,
            root,
            num_cpus,
            start_interval,
            group,
            out,
        )
    else:
        raise RefusedError(f"--backend: expected local or ray, got {backend!r}")


def _map_local(
    fn: Callable[[Any], Any], items: Sequence[Any], jobs: int
) -> Iterator[tuple[int, Any]]:
    if jobs <= 1 or len(items) <= 1:
        for i, item in enumerate(items):
            yield i, _call(fn, item)
        return
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(items)), initializer=_leave_ctrl_c)
    finished = False
    try:
        futures: dict[Future[Any], int] = {
            pool.submit(_call, fn, it): i for i, it in enumerate(items)
        }
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                try:
                    yield futures[f], f.result()
                except Exception as e:  # the worker process died
                    yield futures[f], ItemError(f"worker died: {e}")
        finished = True
    finally:
        if not finished:
            # Ctrl-C, or the caller stopped taking results: the pool's exit would run every
            # queued item first. Their results would be thrown away: stop the workers now (the
            # items write atomically, as they must for a kill -9).
            for proc in list((pool._processes or {}).values()):
                proc.terminate()
        pool.shutdown(wait=True, cancel_futures=not finished)


def _leave_ctrl_c() -> None:
    """A pool worker ignores Ctrl-C (the terminal sends it to the whole group): the parent
    stops the pool. A worker waiting for its next item printed a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def check_backend(backend: str) -> None:
    """Refuse an unknown backend, or "ray" where Ray is not installed, with the option's
    message: what a stage calls with its other options, before it writes anything (`map_items`
    runs only once a stage has made its folders, records and catalog rows; refused there, the
    run would leave them behind, a dataset's record among them, which then refuses the next
    run's other parameters).

    Raises:
        RefusedError: an unknown backend, or Ray not installed.
    """
    if backend not in ("local", "ray"):
        raise RefusedError(f"--backend: expected local or ray, got {backend!r}")
    if backend == "ray":
        _import_ray()


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RefusedError("--backend ray needs Ray: pip install 'filmdata[ray]'") from None
    return ray


def connect_ray(ray_address: str | None = None) -> Any:
    """Connect this process to Ray as a driver (a job on the cluster); return the module."""
    ray = _import_ray()
    address = ray_address or os.environ.get("RAY_ADDRESS") or "local"
    if not ray.is_initialized():
        kw: dict[str, Any] = {"log_to_driver": False, "ignore_reinit_error": True}
        if address == "local":
            ray.init(**kw, include_dashboard=False)
        else:
            try:
                ray.init(address=address, **kw)
            except Exception as e:
                raise RefusedError(
                    f"--ray-address {address!r}: cannot connect to Ray: {e}"
                ) from None
    return ray


def _visible(path: str) -> bool:
    return os.path.exists(path)


def _map_ray(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    ray_address: str | None,
    num_gpus: float,
    max_retries: int,
    root: Path | None,
    num_cpus: float = 1.0,
    start_interval: float = 0.0,
    group: Callable[[Any], str] | None = None,
    out: Path | None = None,
) -> Iterator[tuple[int, Any]]:
    ray = connect_ray(ray_address)
    # The root, and a folder the items write outside it, must be paths every node sees (a
    # shared filesystem): check with a marker.
    for folder, what in ((root, "--root"), (out, "the output folder")):
        if folder is None:
            continue
        marker = Path(folder) / f".ray-visible-{os.getpid()}-{time.time_ns()}"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("filmdata")
        try:
            seen = ray.get(ray.remote(num_cpus=0)(_visible).remote(str(marker)))
        finally:
            marker.unlink(missing_ok=True)
        if not seen:
            raise RefusedError(
                f"{what} {folder}: not visible from the Ray workers; put it on a filesystem "
                "every node mounts at the same path"
            )
    remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries)(_call)
    queue = list(enumerate(items))
    last: dict[str, float] = {}
    refs: dict[Any, int] = {}
    while queue or refs:
        now = time.monotonic()
        held = []
        for i, item in queue:  # submit what the per-group rate limit allows now
            key = group(item) if group is not None else ""
            if start_interval > 0 and now - last.get(key, -1e18) < start_interval:
                held.append((i, item))
                continue
            last[key] = now
            refs[remote.remote(fn, item)] = i
        queue = held
        if not refs:
            time.sleep(min(start_interval, 0.5))
            continue
        done, _ = ray.wait(list(refs), num_returns=1, timeout=0.5 if queue else None)
        for ref in done:
            i = refs.pop(ref)
            try:
                yield i, ray.get(ref)
            except Exception as e:  # retries exhausted
                yield i, ItemError(f"ray task failed: {str(e).splitlines()[0]}")
