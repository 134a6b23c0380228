"""`synth`'s forked reader: the same rows as the reader thread, its errors raised in the
parent, and no child process, no shared memory left behind on any path.

The forked path runs only in a process that has loaded no torch and started no thread, so each
test runs its forked part in a fresh interpreter (`_run`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import make_clip
from filmdata import shards
from filmdata.shards import decode_image

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the reader forks on Linux only"
)

T, S = 3, 32

# In the fresh interpreter: windows planned on a clip, and helpers to check for leftovers.
_PRELUDE = """
import json, os, signal, sys, time
from filmdata import _fork_reader as fr
from filmdata.windows import cut_windows, input_clips, plan

def windows(path, clip_len=3, size=32):
    return plan(input_clips([path]), clip_len=clip_len, size=size, stride=None, seed=0,
                val_fraction=0)["train"]

def slow_decoding(delay):  # the child's decoder, `delay` s a window (patch before the fork)
    real = fr.window_pictures_or_failures
    def slow(*a, **k):
        for item in real(*a, **k):
            time.sleep(delay)
            yield item
    fr.window_pictures_or_failures = slow

def no_children():
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False
"""


def _run(code: str, *args: str) -> str:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}  # as `filmdata synth` sets it
    out = subprocess.run(
        [sys.executable, "-c", _PRELUDE + textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _rows(dataset: Path) -> list[dict]:
    out = []
    for p in sorted((dataset / "data" / "synthetic").glob("*.parquet")):
        out += shards.read_shard(p).to_pylist()
    return out


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _ = make_clip(tmp_path_factory.mktemp("fork") / "street.mp4", (10, 11), (80, 56), seed=4)
    return path


def _shm() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


@pytest.mark.parametrize("preset", ["film", "vhs"])
def test_the_forked_reader_makes_the_rows_the_thread_makes(
    preset: str, footage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from filmdata.degrade.presets import bundled_dir
    from filmdata.synth import synth

    shm = _shm()
    kw = dict(clip_len=T, size=S, stride=2, seed=3, device="cpu", val_fraction=0.25, quiet=True)
    code = """
        from filmdata.synth import synth
        assert fr.can_fork(), "this interpreter should fork the reader"
        forks = []
        real = fr.ForkReader.__init__
        def counted(self, *a, **k):
            forks.append(1)
            real(self, *a, **k)
        fr.ForkReader.__init__ = counted
        synth(sys.argv[1], sys.argv[2], [sys.argv[3]], out=sys.argv[4],
              root=sys.argv[4] + "-root", **json.loads(sys.argv[5]))
        assert forks == [1] and no_children()
        print("ok")
    """
    forked = tmp_path / "forked"
    args = (str(bundled_dir()), preset, str(footage), str(forked), json.dumps(kw))
    assert _run(code, *args).split() == ["ok"]
    # Here, in this process, the reader thread (whether or not torch is loaded already).
    monkeypatch.setattr("filmdata._fork_reader.can_fork", lambda: False)
    threaded = tmp_path / "threaded"
    synth(bundled_dir(), preset, [footage], out=threaded, root=tmp_path / "root", **kw)
    a, b = _rows(forked), _rows(threaded)
    assert len(a) == len(b) > 4
    for ra, rb in zip(a, b, strict=True):
        assert ra == rb  # ids, crops, degradation JSON, and the PNG bytes themselves
    gt = [decode_image(c["bytes"]) for r in a for c in r["gt"]]
    assert len({g.tobytes() for g in gt}) > 1 and all(g.shape == (S, S, 3) for g in gt)
    assert _shm() <= shm  # nothing left in /dev/shm (the ring is an anonymous mapping)


def test_the_child_plans_the_windows_and_its_refusals_reach_the_parent(
    footage: Path, tmp_path: Path
) -> None:
    """`synth` forks before planning: the child probes the inputs and plans while torch loads
    in the parent, which gets the very plan, then the windows; a refusal of the planning (a
    missing input) is raised in the parent as it would be there, and no child is left."""
    code = """
        import functools
        from pathlib import Path
        from filmdata.errors import RefusedError
        from filmdata.synth import _plan_windows
        kw = dict(clip_len=3, size=32, stride=None, seed=0, val_fraction=0, max_windows=None)
        def planner(path):
            return functools.partial(_plan_windows, [path], Path(sys.argv[2]), ("hd",), kw)
        reader = fr.ForkReader(planner(sys.argv[1]), 3, 32, slots=4, timeout=30)
        planned = reader.plan()
        clips, splits = planned.clips, planned.splits
        want = windows(sys.argv[1])
        assert [w.id for w in splits["train"]] == [w.id for w in want]
        assert [w.crop for w in reader.windows] == [w.crop for w in want]
        assert clips[0].path == str(Path(sys.argv[1]).resolve())
        made = [(w.id, gt.shape) for w, gt in reader]
        assert made == [(w.id, (3, 32, 32, 3)) for w in want]
        reader.close()
        missing = sys.argv[1] + ".missing"
        bad = fr.ForkReader(planner(missing), 3, 32, slots=4, timeout=30)
        try:
            bad.plan()
        except RefusedError as e:
            print("refused:", e)
        bad.close()
        assert no_children()
    """
    out = _run(code, str(footage), str(tmp_path / "root"))
    assert out.strip() == f"refused: --input {footage}.missing: no such file"


def test_forked_windows_match_cut_windows_and_memory_stays_bounded(footage: Path) -> None:
    code = """
        import numpy as np
        wins = windows(sys.argv[1])
        assert len(wins) == 7
        reader = fr.ForkReader(wins, 3, 32, slots=2, timeout=30)
        time.sleep(0.5)  # the child runs ahead: two windows, then it waits for a free slot
        import select
        ready = b""
        while select.select([reader.rfd], [], [], 0.3)[0] and len(ready) < 100:
            ready += os.read(reader.rfd, fr._HEAD.size)
        assert [h[0] for h in fr._HEAD.iter_unpack(ready)] == [0, 1], ready
        reader.close()
        assert no_children()
        reader = fr.ForkReader(wins, 3, 32, slots=2, timeout=30)
        got = list(reader)
        expected = list(cut_windows(wins, 3, 32))
        assert [w for w, _ in got] == [w for w, _ in expected]
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, expected))
        assert no_children() and reader.finished
        print("ok")
    """
    assert _run(code, str(footage)).split() == ["ok"]


def test_forked_reader_errors_reach_the_parent_and_leave_nothing_behind(
    footage: Path, tmp_path: Path
) -> None:
    """A window whose decoding fails comes with its error, and the others still come; a stuck
    decoder times out; a child that dies is reported; a parent that dies takes the child with
    it. The child is reaped each time."""
    code = """
        from filmdata.errors import ItemsFailed, MediaError
        wins = windows(sys.argv[1])

        # The file broken after planning (cut short: it no longer opens): each window comes
        # in its place with the child's MediaError naming the file, and the reader ends.
        broken = sys.argv[2]
        with open(sys.argv[1], "rb") as f:
            data = f.read()
        with open(broken, "wb") as f:
            f.write(data[: len(data) // 3])
        moved = [type(w)(**{**w.to_dict(), "path": broken, "crop": w.crop}) for w in wins]
        reader = fr.ForkReader(moved, 3, 32, slots=4, timeout=30)
        got = list(reader)
        assert [w for w, _ in got] == moved
        assert all(isinstance(e, MediaError) and broken in str(e) for _, e in got), got
        assert reader.finished and no_children()

        # A stuck decoder: the run fails after the timeout and the child is killed.
        real = fr.window_pictures_or_failures
        def stuck(*a, **k):
            it = real(*a, **k)
            yield next(it)
            time.sleep(60)
        fr.window_pictures_or_failures = stuck
        reader = fr.ForkReader(wins, 3, 32, slots=4, timeout=0.5)
        next(reader)
        t = time.monotonic()
        try:
            next(reader)
        except ItemsFailed as e:
            assert "longer than 0.5 s" in str(e), e
        else:
            raise AssertionError("no timeout")
        assert time.monotonic() - t < 5 and no_children()

        # The child killed: reported, reaped.
        reader = fr.ForkReader(wins, 3, 32, slots=4, timeout=30)
        next(reader)
        os.kill(reader.pid, signal.SIGKILL)
        try:
            next(reader)
            next(reader)
        except ItemsFailed as e:
            assert "signal 9" in str(e), e
        else:
            raise AssertionError("no error")
        assert no_children()

        # The parent dies without closing: the child goes too.
        pid = os.fork()
        if pid == 0:
            reader = fr.ForkReader(wins, 3, 32, slots=4, timeout=30)
            print(reader.pid, flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        print("ok")
    """
    out = _run(code, str(footage), str(tmp_path / "broken.mp4")).split()
    assert out[-1] == "ok"
    orphan = int(out[0])
    deadline = __import__("time").monotonic() + 5
    while _alive(orphan) and __import__("time").monotonic() < deadline:
        __import__("time").sleep(0.05)
    assert not _alive(orphan)


def test_a_window_whose_crop_is_not_in_its_frames_fails_alone_in_the_child(
    tmp_path: Path,
) -> None:
    """A picture size changing mid-stream: the child's cut of each window past the change
    fails, whether its crop is outside the smaller frames or inside the larger ones (it was
    planned on the first picture); that window comes with its MediaError (its slot free
    again), the child goes on, and the windows before the change come with their frames, as
    from the thread reader."""
    from conftest import write_spliced_ts

    smaller = write_spliced_ts(tmp_path / "smaller.ts", ((160, 96), (64, 48)), frames=24)
    larger = write_spliced_ts(tmp_path / "larger.ts", ((64, 48), (160, 96)), frames=24)
    code = """
        from filmdata.errors import MediaError
        for path, size in zip(sys.argv[1:], ("64x48", "160x96")):
            wins = windows(path, clip_len=4, size=32)
            reader = fr.ForkReader(wins, 4, 32, slots=2, timeout=30)
            got = list(reader)
            assert [w for w, _ in got] == wins
            bad = {w.start_frame: e for w, e in got if isinstance(e, MediaError)}
            assert sorted(bad) == list(range(24, 48, 4)), bad
            assert all(not isinstance(e, MediaError) for w, e in got[:6]), bad
            assert f"frame 24 is {size}" in str(bad[24]) and wins[6].id in str(bad[24])
            assert reader.finished and no_children()
        print("ok")
    """
    assert _run(code, str(smaller), str(larger)).split() == ["ok"]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_no_fork_where_torch_is_loaded_or_threads_run() -> None:
    code = """
        import threading
        assert fr.can_fork()
        ev = threading.Event()
        t = threading.Thread(target=ev.wait)
        t.start()
        assert not fr.can_fork()
        ev.set()
        t.join()
        deadline = time.monotonic() + 5  # the thread's OS task ends just after the join
        while not fr.can_fork() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fr.can_fork()
        import types
        sys.modules["torch"] = types.ModuleType("torch")  # as if imported (not loaded: fast)
        assert not fr.can_fork()
        print("ok")
    """
    assert _run(code).split() == ["ok"]


def test_the_fresh_run_check_reads_the_record_shards_writes() -> None:
    from filmdata.gt_frames import RECORDS

    # `synth` decides on a fork before importing `shards` (pyarrow starts threads): it looks
    # for the record's names itself, in the order `shards.record_path` reads them.
    assert (shards.RECORD, *shards.LEGACY_RECORDS) == RECORDS


def test_ctrl_c_in_the_parent_kills_and_reaps_the_child(footage: Path) -> None:
    code = """
        slow_decoding(0.2)
        reader = fr.ForkReader(windows(sys.argv[1]), 3, 32, slots=4, timeout=30)
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            list(reader)
        except KeyboardInterrupt:
            pass
        else:
            raise AssertionError("not interrupted")
        assert reader.pid is None and no_children()
        print("ok")
    """
    assert _run(code, str(footage)).split() == ["ok"]


def test_a_windows_gt_is_cut_into_the_array_given(footage: Path) -> None:
    from filmdata.windows import cut_window, input_clips, plan, window_pictures

    wins = plan(input_clips([footage]), clip_len=T, size=S, stride=None, seed=0, val_fraction=0)
    w, pictures = next(window_pictures(wins["train"], T, S))
    out = np.zeros((T, S, S, 3), np.uint8)
    assert cut_window(w, pictures, S, out=out) is out
    assert np.array_equal(out, cut_window(w, pictures, S)) and out.any()


def test_under_a_real_time_policy_the_child_runs_one_priority_below(footage: Path) -> None:
    """`chrt -f 10 filmdata synth`: the reader child at priority 9, so that it never holds the
    CPU the parent (importing torch) waits for."""
    code = """
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        except PermissionError:
            print("skip")
            sys.exit(0)
        slow_decoding(0.05)
        reader = fr.ForkReader(windows(sys.argv[1]), 3, 32, slots=4, timeout=30)
        deadline = time.monotonic() + 5
        while os.sched_getparam(reader.pid).sched_priority != 9 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.sched_getscheduler(reader.pid) == os.SCHED_FIFO
        assert os.sched_getparam(reader.pid).sched_priority == 9
        assert len(list(reader)) == 7
        print("ok")
    """
    out = _run(code, str(footage)).split()
    if out == ["skip"]:
        pytest.skip("not allowed to use a real-time policy here")
    assert out == ["ok"]
