"""`--backend ray`: the same per-item functions on a Ray cluster on loopback give the local rows."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from _ray import ENV

# Ray reads these when it is imported: set them before anything imports it.
for _k, _v in ENV.items():
    os.environ.setdefault(_k, _v)

from _http import Route, serve  # noqa: E402
from _ray import ray_head  # noqa: E402
from conftest import make_clip, shard_rows  # noqa: E402
from filmdata.cli import app  # noqa: E402

pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    old = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    try:
        with ray_head(tmp_path_factory.mktemp("rayhead")) as address:
            yield address
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _on_ray(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The indices of the items `backend` ran as Ray tasks (and none on the local pool)."""
    from filmdata import backend

    ran: list[int] = []
    remote = backend._map_ray

    def counted(*args, **kw):  # type: ignore[no-untyped-def]
        for i, out in remote(*args, **kw):
            ran.append(i)
            yield i, out

    def local(*args, **kw):  # type: ignore[no-untyped-def]
        raise AssertionError("ran on the local backend")

    monkeypatch.setattr(backend, "_map_ray", counted)
    monkeypatch.setattr(backend, "_map_local", local)
    return ran


def test_fetch_on_ray(
    cluster: str, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = {}
    for i in range(4):
        p, _ = make_clip(tmp_path / f"s{i}.mp4", (10, 10), seed=10 + i)
        bodies[f"/s{i}.mp4"] = p.read_bytes()
    root = tmp_path / "root"
    ran = _on_ray(monkeypatch)
    with serve({k: Route(v) for k, v in bodies.items()}) as srv:
        m = tmp_path / "m.yaml"
        m.write_text(
            "name: loop\nsources:\n"
            + "".join(f"  - id: s{i}\n    url: {srv.url(f'/s{i}.mp4')}\n" for i in range(4))
        )
        result = runner.invoke(
            app,
            [
                "fetch",
                str(m),
                "--root",
                str(root),
                "--backend",
                "ray",
                "--ray-address",
                cluster,
                "--json",
                "--quiet",
            ],
        )
        assert result.exit_code == 0, result.output
    rows = runner.invoke(app, ["sources", "--root", str(root), "--json"])
    got = {r["id"]: r for r in json.loads(rows.stdout)}
    for i in range(4):
        assert got[f"s{i}"]["status"] == "fetched"
        assert got[f"s{i}"]["sha256"] == hashlib.sha256(bodies[f"/s{i}.mp4"]).hexdigest()
    assert sorted(ran) == [0, 1, 2, 3]  # every item a Ray task


def _rows(dataset: Path) -> dict[str, list[dict]]:
    """Every shard's rows by file, images as pixels (`shard_rows`)."""
    return shard_rows(dataset / "data")


def test_synth_on_ray_gives_the_local_rows(cluster: str, runner: CliRunner, tmp_path: Path) -> None:
    video, _ = make_clip(tmp_path / "in.mp4", (20, 20), size=(96, 64), seed=3)
    templates = Path(__file__).parents[1] / "degradations"
    common = [
        "synth",
        "--templates",
        str(templates),
        "--input",
        str(video),
        "--size",
        "32",
        "--clip-len",
        "4",
        "--rows-per-shard",
        "2",
        "--val-fraction",
        "0.25",
        "--quiet",
        "--device",
        "cpu",
        "--root",
        str(tmp_path / "root"),
    ]
    local = runner.invoke(app, [*common, "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    remote = runner.invoke(
        app, [*common, "--out", str(tmp_path / "ray"), "--backend", "ray", "--ray-address", cluster]
    )
    assert remote.exit_code == 0, remote.output
    a, b = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    assert a and a == b
    assert not list((tmp_path / "ray").rglob("*.tmp*"))


def test_synth_on_ray_records_a_failed_shard_and_writes_the_card(
    cluster: str, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shard whose Ray task fails as a whole: its windows are recorded as failed with the
    task's error, the other shards are made (the local rows), the card is written, and
    synth exits 1 naming the file and a window, as locally; a re-run makes that shard."""
    import importlib

    from filmdata import shards

    module = importlib.import_module("filmdata.synth_ray")

    class Failing(module.RayShards):  # (defined here: Ray ships it to the workers by value)
        def __call__(self, job):
            if job.index == 1:
                raise RuntimeError("the decoder crashed")
            return super().__call__(job)

    video, _ = make_clip(tmp_path / "in.mp4", (20, 20), size=(96, 64), seed=5)
    templates = Path(__file__).parents[1] / "degradations"
    common = ["synth", "--templates", str(templates), "--input", str(video), "--size", "32",
              "--clip-len", "4", "--rows-per-shard", "2", "--quiet", "--device", "cpu",
              "--root", str(tmp_path / "root")]  # fmt: skip
    local = runner.invoke(app, [*common, "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    out = tmp_path / "ray"
    args = [*common, "--out", str(out), "--backend", "ray", "--ray-address", cluster]
    monkeypatch.setattr(module, "RayShards", Failing)
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    (line,) = [s for s in result.stderr.splitlines() if s.strip()]
    assert "2 of 10 windows failed" in line, line  # 40 frames, windows of 4
    shard = "train-00001-of-00005.parquet"
    why = "RuntimeError: the decoder crashed"  # (the exception's type: `backend._message`)
    assert f"{video.resolve()}: its shard {shard} failed on Ray: {why}" in line
    assert (out / "README.md").exists()
    entry = shards.read_record(out, "synthetic")["shards"][shard]
    assert entry["rows"] == 0 and list(entry["failed"]) == [w["id"] for w in entry["windows"]]
    made, want = _rows(out), _rows(tmp_path / "local")
    assert made.pop(f"synthetic/{shard}", []) == [] and made == {
        k: v for k, v in want.items() if not k.endswith(shard)
    }
    monkeypatch.undo()
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert _rows(out) == want
    assert not list(out.rglob("*.tmp*"))


def test_synth_survives_a_killed_worker(cluster: str, tmp_path: Path) -> None:
    import signal
    import threading
    import time

    from _ray import _processes
    from filmdata.synth import synth

    video, _ = make_clip(tmp_path / "in.mp4", (30, 30), size=(96, 64), seed=4)
    templates = Path(__file__).parents[1] / "degradations"
    kw = dict(
        inputs=[video],
        size=32,
        clip_len=4,
        rows_per_shard=1,
        quiet=True,
        device="cpu",
        root=tmp_path / "root",
    )
    synth(templates, out=tmp_path / "local", **kw)
    killed: list[int] = []

    def killer() -> None:
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            for pid, (_, cmd) in _processes().items():
                if cmd.startswith(b"ray::_call"):  # a worker busy with a shard
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.05)

    t = threading.Thread(target=killer)
    t.start()
    synth(templates, out=tmp_path / "ray", backend="ray", ray_address=cluster, **kw)
    t.join()
    assert killed, "no busy worker was seen"
    assert _rows(tmp_path / "local") == _rows(tmp_path / "ray")
    assert not list((tmp_path / "ray").rglob("*.tmp*"))


def test_cut_on_ray_gives_the_local_clips(
    cluster: str, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(2):
        make_clip(tmp_path / f"cap{i}.mp4", (30, 30, 30), size=(96, 64), seed=20 + i)
    m = tmp_path / "m.yaml"
    m.write_text(
        "name: caps\nsources:\n"
        + "".join(f"  - id: cap{i}\n    path: cap{i}.mp4\n" for i in range(2))
    )
    clips = {}
    for backend in ("local", "ray"):
        root = tmp_path / backend
        assert runner.invoke(app, ["fetch", str(m), "--root", str(root), "-q"]).exit_code == 0
        args = ["cut", "--root", str(root), "--min-len", "0.5", "-q", "--backend", backend]
        if backend == "ray":
            args += ["--ray-address", cluster]
            ran = _on_ray(monkeypatch)
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        if backend == "ray":
            assert sorted(ran) == [0, 1]  # each source a Ray task
            monkeypatch.undo()
        listing = runner.invoke(app, ["clips", "--root", str(root), "--json"])
        rows = json.loads(listing.stdout)
        clips[backend] = [{k: v for k, v in r.items() if k != "updated_at"} for r in rows]
    assert clips["local"] and clips["local"] == clips["ray"]


def test_synth_refuses_a_dataset_folder_the_workers_cannot_see(
    runner: CliRunner, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`--out` off the shared filesystem (the root on it): the workers wrote the shards into a
    folder of their own, the driver recorded them as made, and synth exited 0 with a card of
    4 rows and no shard here. Refused up front instead, as a root the workers cannot see."""
    import subprocess

    import ray

    video, _ = make_clip(tmp_path / "in.mp4", (8,), size=(96, 64), seed=6)
    hidden = tmp_path / "hidden"  # seen here, an empty tmpfs for the head and its workers
    ray.shutdown()  # (connected to the module's cluster by the tests before)
    try:
        # (a short folder: a socket's path in it must fit in 107 bytes)
        with ray_head(tmp_path_factory.mktemp("rayhide"), hide=hidden) as address:
            result = runner.invoke(
                app,
                ["synth", "--templates", str(Path(__file__).parents[1] / "degradations"),
                 "--input", str(video), "--size", "32", "--clip-len", "4", "--rows-per-shard",
                 "1", "--quiet", "--device", "cpu", "--root", str(tmp_path / "root"),
                 "--out", str(hidden / "ds"), "--backend", "ray", "--ray-address", address],
            )  # fmt: skip
    except subprocess.CalledProcessError as e:
        pytest.skip(f"cannot start a head in a mount namespace here: {e.stderr!r}")
    finally:
        ray.shutdown()
    assert result.exit_code == 2, result.output
    (line,) = [s for s in result.stderr.splitlines() if s.strip() and "INFO" not in s]
    assert f"{hidden / 'ds'}" in line and "not visible from the Ray workers" in line, line
