"""Per-item workers with a hard time limit, retries with backoff, and a start-rate limit.

Each attempt at an item runs in its own forked process, in its own process group, so that a
stalled server, a hung decoder or an ffmpeg merge can be killed as a whole when the item's
time is up. A worker also dies with its parent (kill -9 of `filmdata fetch` leaves no orphan
finishing a download behind its back). The parent is a single thread: it starts workers,
waits on their pipes and deadlines, and hands each final outcome to `on_done`.

Retries cover the whole attempt (extraction and download): exponential backoff with jitter,
or the host's `Retry-After` when it gave one, within the item's time limit.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from .errors import ItemError

#: Backoff before retry n (1-based): BACKOFF_BASE * 2**(n-1), times a jitter in [0.5, 1.5).
BACKOFF_BASE = 1.0
BACKOFF_CAP = 60.0
BUSY_POLL = 0.25  # seconds between two tries at an item another process holds

Attempt = Callable[..., dict[str, Any]]


@dataclass
class _State:
    index: int
    item: Any
    attempts: int = 0
    started: float = 0.0  # wall time of the first attempt
    deadline: float = 0.0
    not_before: float = 0.0
    busy_since: float = 0.0  # when another process was first found holding the item
    last_error: str | None = None


@dataclass
class Outcome:
    """The final word on one item."""

    index: int
    item: Any
    status: str  # fetched | skipped | failed
    attempts: int
    seconds: float
    reason: str | None = None
    result: dict[str, Any] = field(default_factory=dict)


def _die_with_parent(parent: int) -> None:
    """Kill this worker's whole group (ffmpeg, probe children) when the parent goes away."""

    def kill_group(*_: Any) -> None:
        with contextlib.suppress(OSError):
            os.killpg(os.getpgid(0), signal.SIGKILL)
        os._exit(137)

    with contextlib.suppress(Exception):  # Linux: a signal the moment the parent dies
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        signal.signal(signal.SIGTERM, kill_group)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        kill_group()

    def watch() -> None:  # everywhere: poll for a new parent (the old one died)
        while True:
            time.sleep(0.2)
            if os.getppid() != parent:
                kill_group()

    threading.Thread(target=watch, daemon=True).start()


def _worker(
    conn: Connection,
    fn: Attempt,
    item: Any,
    deadline: float,
    first: bool,
    parent: int,
    extra: tuple[Any, ...],
) -> None:
    if hasattr(os, "setpgid"):
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)
    _die_with_parent(parent)
    try:
        conn.send(("ok", fn(item, deadline, first, *extra)))
    except ItemError as e:
        conn.send(("err", e.to_dict()))
    except BaseException as e:  # noqa: BLE001 - an unexpected failure is this item's failure
        reason = f"internal error: {type(e).__name__}: {e}".splitlines()[0][:300]
        conn.send(("err", {"reason": reason, "retryable": False, "retry_after": None}))
    finally:
        conn.close()


def _kill(proc: Any) -> None:
    if hasattr(os, "killpg"):
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.kill()
    proc.join(2)


def backoff(n: int, rng: random.Random) -> float:
    """Seconds before retry `n` (1-based): exponential, with jitter so workers do not stampede."""
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (n - 1)) * (0.5 + rng.random())


def run(
    items: Sequence[Any],
    fn: Attempt,
    *,
    jobs: int,
    retries: int,
    timeout: float,
    sleep: float = 0.0,
    on_done: Callable[[Outcome], None],
    retryable: Callable[[Any], bool] = lambda item: True,
    extra: tuple[Any, ...] = (),
    claim: Callable[[Any], Any | None] = lambda item: item,
) -> list[Outcome]:
    """Run `fn(item, deadline, first)` for every item, `jobs` at a time, in worker processes.

    Args:
        items: plain-data items (they travel to the workers).
        fn: one attempt; returns {"status": ..., ...} or raises ItemError.
        jobs: workers at once.
        retries: further attempts after a retryable failure.
        timeout: hard limit in seconds for each item, all its attempts and waits together.
        sleep: at least this many seconds between the starts of two attempts (rate limit).
        on_done: called in this process with each item's final Outcome, as soon as it is known.
        retryable: whether an item may be retried at all (local captures are not).
        extra: further arguments for `fn`, after (item, deadline, first).
        claim: called before an item's first attempt: returns the item to run (it may refresh
            it), or None when it is busy elsewhere (then asked again, until its time is up).
    """
    ctx: Any = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    rng = random.Random()
    ready = [_State(i, it) for i, it in enumerate(items)]
    ready.reverse()  # pop() from the end keeps the manifest's order
    waiting: list[_State] = []
    running: dict[Any, tuple[Any, _State]] = {}
    outcomes: list[Outcome] = []
    last_start = -float("inf")
    parent = os.getpid()

    def finish(st: _State, status: str, reason: str | None = None, result: Any = None) -> None:
        out = Outcome(st.index, st.item, status, st.attempts, time.time() - st.started, reason)
        out.result = dict(result or {})
        outcomes.append(out)
        on_done(out)

    try:
        while ready or waiting or running:
            now = time.time()
            for st in [s for s in waiting if s.not_before <= now]:
                waiting.remove(st)
                ready.append(st)
            while ready and len(running) < jobs and time.monotonic() - last_start >= sleep:
                st = ready.pop()
                first = st.attempts == 0
                if first:
                    # The clock starts when the item is ours; waiting for another process to
                    # finish it is bounded by the same `timeout`.
                    st.started = time.time()
                    st.deadline = st.started + timeout
                    claimed = claim(st.item)
                    if claimed is None:
                        st.busy_since = st.busy_since or st.started
                        if st.started + BUSY_POLL >= st.busy_since + timeout:
                            finish(st, "failed", "busy: another process is fetching it")
                        else:
                            st.not_before = st.started + BUSY_POLL
                            waiting.append(st)
                        continue
                    st.item = claimed
                st.attempts += 1
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(
                    target=_worker, args=(send, fn, st.item, st.deadline, first, parent, extra)
                )
                proc.start()
                if hasattr(os, "setpgid"):
                    with contextlib.suppress(OSError):
                        os.setpgid(proc.pid, proc.pid)
                send.close()
                running[recv] = (proc, st)
                last_start = time.monotonic()
            # Sleep until a worker answers, a deadline passes, a retry or a start slot is due.
            wake = [st.deadline for _, st in running.values()] + [s.not_before for s in waiting]
            if ready and len(running) < jobs:
                wake.append(time.time() + max(0.0, sleep - (time.monotonic() - last_start)))
            delay = max(0.0, min(wake) - time.time()) if wake else 0.05
            answered: list[Any] = wait(list(running), timeout=min(delay, 1.0)) if running else []
            if not running:
                time.sleep(min(delay, 1.0))
            for conn in answered:
                proc, st = running.pop(conn)
                value: dict[str, Any]
                try:
                    kind, value = conn.recv()
                except (EOFError, OSError):
                    kind, value = (
                        "err",
                        {
                            "reason": f"the worker died (exit {proc.exitcode})",
                            "retryable": True,
                            "retry_after": None,
                        },
                    )
                conn.close()
                _kill(proc)  # its group too: nothing it started outlives it
                if kind == "ok":
                    finish(st, value.pop("status"), None, value)
                    continue
                st.last_error = value["reason"]
                if not value["retryable"] or not retryable(st.item) or st.attempts > retries:
                    finish(st, "failed", value["reason"])
                    continue
                pause = value["retry_after"]
                pause = backoff(st.attempts, rng) if pause is None else min(pause, 600.0)
                if time.time() + pause >= st.deadline:
                    finish(st, "failed", f"{value['reason']} (no time left to retry)")
                    continue
                st.not_before = time.time() + pause
                waiting.append(st)
            now = time.time()
            for conn, (proc, st) in list(running.items()):
                if now >= st.deadline:
                    del running[conn]
                    _kill(proc)
                    conn.close()
                    why = f"; last error: {st.last_error}" if st.last_error else ""
                    finish(st, "failed", f"timed out after {timeout:g} s (killed){why}")
    finally:
        for conn, (proc, _) in running.items():
            _kill(proc)
            conn.close()
    outcomes.sort(key=lambda o: o.index)
    return outcomes
