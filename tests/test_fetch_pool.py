"""The per-item worker pool: hard time limit, retries with Retry-After, start spacing, jobs."""

from __future__ import annotations

import time

from filmdata.fetch import pool
from filmdata.fetch.errors import ItemError


def _work(item: dict, deadline: float, first: bool) -> dict:
    started = time.time()
    if item["kind"] == "hang":
        time.sleep(600)
    if item["kind"] == "flaky" and first:
        raise ItemError("HTTP Error 503", retryable=True, retry_after=0.2)
    if item["kind"] == "broken":
        raise ItemError("HTTP Error 404")
    if item["kind"] == "crash":
        raise RuntimeError("boom")
    time.sleep(item.get("for", 0.0))
    return {"status": "fetched", "started": started}


def _run(items: list[dict], **kw: object) -> list[pool.Outcome]:
    done: list[pool.Outcome] = []
    opts = {"jobs": 2, "retries": 2, "timeout": 30.0, **kw}
    out = pool.run(items, _work, on_done=done.append, **opts)  # type: ignore[arg-type]
    assert sorted(o.index for o in done) == list(range(len(items)))
    return out


def test_hard_timeout_kills_and_others_go_on() -> None:
    t0 = time.monotonic()
    out = _run([{"kind": "hang"}, {"kind": "ok"}], timeout=1.5)
    assert time.monotonic() - t0 < 10
    assert out[0].status == "failed" and "timed out after 1.5 s" in (out[0].reason or "")
    assert out[1].status == "fetched"


def test_retry_after_then_success_and_final_failures() -> None:
    out = _run([{"kind": "flaky"}, {"kind": "broken"}, {"kind": "crash"}])
    assert (out[0].status, out[0].attempts) == ("fetched", 2)
    assert (out[1].status, out[1].attempts, out[1].reason) == ("failed", 1, "HTTP Error 404")
    assert out[2].status == "failed" and "RuntimeError: boom" in (out[2].reason or "")


def test_sleep_spaces_starts_and_jobs_overlap() -> None:
    out = _run([{"kind": "ok"}] * 3, jobs=3, sleep=0.4)
    starts = sorted(o.result["started"] for o in out)
    assert all(b - a >= 0.35 for a, b in zip(starts, starts[1:]))
    out = _run([{"kind": "ok", "for": 1.0}] * 2, jobs=2)
    starts = sorted(o.result["started"] for o in out)
    assert starts[1] - starts[0] < 0.9  # both ran at once
