"""Fetch under faults: stalls, 503s, truncation, executables, kill -9, two processes at once."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from _http import Route, serve
from conftest import make_clip
from filmdata.catalog import Catalog
from filmdata.cli import app

CLI = [sys.executable, "-c", "from filmdata.cli import main; main()"]


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("served")
    a, _ = make_clip(d / "a.mp4", (12, 12), seed=1)
    b, _ = make_clip(d / "b.mkv", (48, 48), seed=2)  # Matroska: declares its frame count
    big, _ = make_clip(d / "big.mp4", (24, 24), size=(320, 240), seed=4)
    return {"a": a.read_bytes(), "b": b.read_bytes(), "big": big.read_bytes()}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest(path: Path, name: str, sources: dict[str, str]) -> Path:
    body = "".join(f"  - id: {k}\n    url: {json.dumps(v)}\n" for k, v in sources.items())
    path.write_text(f"name: {name}\nsources:\n{body}", encoding="utf-8")
    return path


def run(runner: CliRunner, *args: str) -> tuple[int, dict[str, dict]]:
    result = runner.invoke(app, ["fetch", *args, "--json", "--quiet"])
    items = json.loads(result.stdout) if result.stdout.strip().startswith("[") else []
    return result.exit_code, {i["id"]: i for i in items}


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_stalled_server_times_out(runner: CliRunner, root: Path, tmp_path: Path) -> None:
    with serve({"/stall.mp4": Route(b"\0" * 50_000, behaviour="stall")}) as srv:
        m = manifest(tmp_path / "m.yaml", "st", {"stall": srv.url("/stall.mp4")})
        t0 = time.monotonic()
        code, items = run(runner, str(m), "--root", str(root), "--timeout", "3")
        took = time.monotonic() - t0
    assert code == 1 and items["stall"]["status"] == "failed"
    assert "timed out" in items["stall"]["reason"]
    assert took < 20


def test_503_then_200_with_retries(
    runner: CliRunner, root: Path, tmp_path: Path, footage: dict[str, bytes]
) -> None:
    routes = {
        "/flaky.mp4": Route(footage["a"], behaviour="flaky", fails=2, retry_after=1),
        "/down.mp4": Route(footage["a"], behaviour="flaky", fails=99, retry_after=0),
        # The page answers, then the download itself gets a 503.
        "/late.mp4": Route(footage["a"], behaviour="flaky", first_ok=1, fails=1, retry_after=0),
    }
    with serve(routes) as srv:
        m = manifest(
            tmp_path / "m.yaml",
            "flaky",
            {k: srv.url(f"/{k}.mp4") for k in ("flaky", "down", "late")},
        )
        code, items = run(runner, str(m), "--root", str(root), "--retries", "3", "--timeout", "60")
    assert code == 1
    assert items["flaky"]["status"] == "fetched" and items["flaky"]["attempts"] == 3
    assert items["flaky"]["sha256"] == sha(footage["a"])
    assert items["down"]["status"] == "failed" and "503" in items["down"]["reason"]
    assert items["down"]["attempts"] == 4
    assert items["late"]["status"] == "fetched" and items["late"]["attempts"] == 2
    with Catalog.at_root(root) as cat:
        assert cat.source("flaky", "flaky")["status"] == "fetched"


def test_truncated_transfer(
    runner: CliRunner, root: Path, tmp_path: Path, footage: dict[str, bytes]
) -> None:
    # The server closes early without a Content-Length: yt-dlp calls that a success.
    routes = {
        "/cut.mkv": Route(footage["b"], "video/x-matroska", behaviour="truncate"),
        "/cut.mp4": Route(footage["a"], behaviour="truncate"),  # its index (moov) is at the end
    }
    with serve(routes) as srv:
        m = manifest(
            tmp_path / "m.yaml", "cut", {"cut": srv.url("/cut.mkv"), "mp4": srv.url("/cut.mp4")}
        )
        code, items = run(runner, str(m), "--root", str(root))
        assert code == 1
        reason = items["cut"]["reason"]
        assert reason.startswith("truncated: ") and reason.endswith(" of 96 frames decode")
        assert items["mp4"]["reason"].startswith("truncated: the MP4 ends at byte ")
        assert not list((root / "raw/cut").glob("*.m*"))
        code, items = run(runner, str(m), "--root", str(root), "--allow-truncated", "--only", "cut")
    assert code == 0 and items["cut"]["status"] == "fetched"
    with Catalog.at_root(root) as cat:
        row = cat.source("cut", "cut")
    assert row["truncated"] == 1 and row["frames"] < 0.95 * row["declared_frames"]


def test_truncated_capture(
    runner: CliRunner, root: Path, tmp_path: Path, footage: dict[str, bytes]
) -> None:
    (tmp_path / "tape.mkv").write_bytes(footage["b"][: len(footage["b"]) // 2])
    m = tmp_path / "m.yaml"
    m.write_text("name: tapes\nsources:\n  - id: tape\n    path: tape.mkv\n    kind: vhs\n")
    code, items = run(runner, str(m), "--root", str(root))
    assert code == 1 and items["tape"]["reason"].startswith("truncated: ")
    assert (tmp_path / "tape.mkv").exists() and not list((root / "raw/tapes").glob("tape.*"))


EXECUTABLES = [b"MZ\x90\x00\x03" + b"\0" * 4000, b"\x7fELF\x02\x01" + b"\0" * 4000]


@pytest.mark.parametrize("payload", EXECUTABLES, ids=["pe", "elf"])
def test_executable_served_as_video(
    runner: CliRunner, root: Path, tmp_path: Path, payload: bytes
) -> None:
    with serve({"/clip.mp4": Route(payload)}) as srv:
        m = manifest(tmp_path / "m.yaml", "exe", {"exe": srv.url("/clip.mp4")})
        code, items = run(runner, str(m), "--root", str(root))
    assert code == 1 and items["exe"]["reason"].startswith("not a video: the file is ")
    for p in files_under(root):
        head = p.read_bytes()[:4]
        assert not head.startswith((b"MZ", b"\x7fELF")), p
        assert not os.access(p, os.X_OK), p
    with Catalog.at_root(root) as cat:
        assert cat.source("exe", "exe")["path"] is None


def _wait_for(cond, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.05)


def test_kill9_mid_download_then_resume(
    root: Path, tmp_path: Path, footage: dict[str, bytes]
) -> None:
    body = footage["big"]
    route = Route(body, behaviour="hold")
    with serve({"/big.mp4": route}) as srv:
        m = manifest(tmp_path / "m.yaml", "k9", {"big": srv.url("/big.mp4")})
        args = ["fetch", str(m), "--root", str(root), "--quiet", "--timeout", "120"]
        proc = subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            assert route.sent_half.wait(60), "the download never started"
            part = root / "raw/k9/.incoming/big/big.mp4.part"
            _wait_for(lambda: part.exists() and part.stat().st_size > 0)
            time.sleep(0.3)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        size = part.stat().st_size
        time.sleep(0.8)  # the worker died with its parent: the part stops growing
        assert part.stat().st_size == size and 0 < size < len(body)
        assert not (root / "raw/k9/big.mp4").exists()
        with Catalog.at_root(root) as cat:
            row = cat.source("k9", "big")
        assert row is None or row["status"] != "fetched"

        route.behaviour = "ok"
        done = subprocess.run([*CLI, *args, "--json"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        ranges = [h.range for h in srv.gets("/big.mp4") if h.range]
        assert f"bytes={size}-" in ranges
    item = json.loads(done.stdout)[0]
    assert item["status"] == "fetched" and item["sha256"] == sha(body)
    assert (root / "raw/k9/big.mp4").read_bytes() == body
    assert not part.exists()


def test_two_processes_one_root(root: Path, tmp_path: Path, footage: dict[str, bytes]) -> None:
    """Two `filmdata fetch` of one manifest at once: each item is fetched by one of them and
    skipped by the other, never downloaded twice. The first holds item x (its download waits
    on the server) while the second starts: the second finds x busy and fetches y meanwhile."""
    x = Route(footage["big"], behaviour="hold")
    with serve({"/x.mp4": x, "/y.mp4": Route(footage["a"])}) as srv:
        m = manifest(tmp_path / "m.yaml", "two", {k: srv.url(f"/{k}.mp4") for k in "xy"})
        args = [*CLI, "fetch", str(m), "--root", str(root), "--quiet", "--json", "--jobs", "1"]
        procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
        try:
            part = root / "raw/two/.incoming/x/x.mp4.part"
            _wait_for(lambda: part.exists() and part.stat().st_size > 0)  # the first has x
            procs.append(
                subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            )
            _wait_for(lambda: srv.gets("/y.mp4"))  # the second is past x (busy, or not)
        finally:
            x.release.set()
        outs = [p.communicate(timeout=120) for p in procs]
        gets = {k: len(srv.gets(f"/{k}.mp4")) for k in "xy"}
    assert [p.returncode for p in procs] == [0, 0], outs
    status = [{i["id"]: i["status"] for i in json.loads(out)} for out, _ in outs]
    assert status == [{"x": "fetched", "y": "skipped"}, {"x": "skipped", "y": "fetched"}]
    assert gets["x"] <= 2 and gets["y"] <= 2  # yt-dlp's look at the link, one download
    with Catalog.at_root(root) as cat:
        rows = {r["id"]: r for r in cat.sources()}
    assert rows["x"]["sha256"] == sha(footage["big"]) and rows["y"]["sha256"] == sha(footage["a"])


def test_busy_item_leaves_the_holders_row_alone(
    runner: CliRunner, root: Path, tmp_path: Path, footage: dict[str, bytes]
) -> None:
    """An item another process holds (say a `fetch --force` in another shell) fails here as
    busy, in this run's report only: its catalog row is the holder's, and stays as it was."""
    (tmp_path / "tape.mkv").write_bytes(footage["b"])
    m = tmp_path / "m.yaml"
    m.write_text("name: tapes\nsources:\n  - id: tape\n    path: tape.mkv\n    kind: vhs\n")
    code, _ = run(runner, str(m), "--root", str(root))
    assert code == 0
    with Catalog.at_root(root) as cat:
        before = cat.source("tapes", "tape")
    lock = root / "raw/tapes/.incoming/tape.lock"
    hold = "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR); "
    hold += "fcntl.lockf(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(lock)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        code, items = run(runner, str(m), "--root", str(root), "--timeout", "1")
    finally:
        holder.kill()
        holder.wait(10)
    assert code == 1 and items["tape"]["status"] == "failed"
    assert items["tape"]["reason"].startswith("busy: ")
    with Catalog.at_root(root) as cat:
        after = cat.source("tapes", "tape")
    assert after == before and after["status"] == "fetched" and after["sha256"]


@pytest.mark.slow
def test_same_manifest_twice_at_once_downloads_once(
    root: Path, tmp_path: Path, footage: dict[str, bytes]
) -> None:
    route = Route(footage["big"], behaviour="hold")
    with serve({"/big.mp4": route}) as srv:
        m = manifest(tmp_path / "m.yaml", "twice", {"big": srv.url("/big.mp4")})
        args = [*CLI, "fetch", str(m), "--root", str(root), "--quiet", "--json"]
        first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert route.sent_half.wait(60), "the download never started"
        second = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)  # the second one is waiting for the item's lock
        route.release.set()
        outs = [p.communicate(timeout=120) for p in (first, second)]
        assert [first.returncode, second.returncode] == [0, 0], outs
        downloads = [h for h in srv.gets("/big.mp4")]
    statuses = sorted(json.loads(out)[0]["status"] for out, _ in outs)
    assert statuses == ["fetched", "skipped"]
    assert len(downloads) <= 2  # one probe of the direct link by yt-dlp, one download


def test_scenes_and_align_time_limits(tmp_path: Path) -> None:
    """A decode that takes too long is killed and reported in one line, exit 2."""
    from typer.testing import CliRunner

    from conftest import make_clip
    from filmdata.cli import app

    video, _ = make_clip(tmp_path / "v.mp4", (200, 200), size=(320, 240))
    runner = CliRunner()
    r = runner.invoke(app, ["scenes", str(video), "--timeout", "0.01", "--json"])
    assert r.exit_code == 2 and "took longer than" in r.output
    r = runner.invoke(app, ["align", str(video), str(video), "--timeout", "0.01", "--json"])
    assert r.exit_code == 2 and "took longer than" in r.output
    r = runner.invoke(app, ["scenes", str(video), "--json", "--timeout", "60"])
    assert r.exit_code == 0 and r.output.count("start_frame") == 2
