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
from conftest import make_clip  # noqa: E402
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


def test_fetch_on_ray(cluster: str, runner: CliRunner, tmp_path: Path) -> None:
    bodies = {}
    for i in range(4):
        p, _ = make_clip(tmp_path / f"s{i}.mp4", (10, 10), seed=10 + i)
        bodies[f"/s{i}.mp4"] = p.read_bytes()
    root = tmp_path / "root"
    with serve({k: Route(v) for k, v in bodies.items()}) as srv:
        m = tmp_path / "m.yaml"
        m.write_text("name: loop\nsources:\n" + "".join(
            f"  - id: s{i}\n    url: {srv.url(f'/s{i}.mp4')}\n" for i in range(4)))
        result = runner.invoke(app, ["fetch", str(m), "--root", str(root), "--backend", "ray",
                                     "--ray-address", cluster, "--json", "--quiet"])
        assert result.exit_code == 0, result.output
    rows = runner.invoke(app, ["sources", "--root", str(root), "--json"])
    got = {r["id"]: r for r in json.loads(rows.stdout)}
    for i in range(4):
        assert got[f"s{i}"]["status"] == "fetched"
        assert got[f"s{i}"]["sha256"] == hashlib.sha256(bodies[f"/s{i}.mp4"]).hexdigest()
    import ray

    jobs = ray.util.state.list_jobs() if hasattr(ray.util, "state") else []
    assert ray.is_initialized() and (not jobs or len(jobs) >= 1)
