"""`verify`: an intact dataset passes; a corrupted or missing shard is named, and repaired."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_clip
from filmdata.cli import app
from filmdata.synth import synth
from filmdata.verify import verify


def _templates() -> Path:
    from filmdata.degrade.presets import bundled_dir

    return bundled_dir()


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path, _ = make_clip(tmp_path / "v.mp4", (10, 10), (64, 48), seed=4)
    out = tmp_path / "ds"
    synth(
        _templates(),
        "film",
        [path],
        out=out,
        root=tmp_path / "root",
        clip_len=2,
        size=16,
        seed=2,
        device="cpu",
        rows_per_shard=2,
        max_windows=6,
        quiet=True,
    )
    return out


def test_verify_finds_and_repairs_a_corrupted_shard(dataset: Path, runner) -> None:
    ok = runner.invoke(app, ["verify", str(dataset), "--json"])
    assert ok.exit_code == 0, ok.output
    assert all(s["ok"] for s in json.loads(ok.output)["shards"])
    folder = dataset / "data" / "synthetic"
    good = {p.name: p.read_bytes() for p in folder.glob("*.parquet")}
    victim = folder / "train-00001-of-00003.parquet"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\0" * 64  # inside the image bytes
    victim.write_bytes(bytes(data))
    (folder / "train-00002-of-00003.parquet").unlink()
    bad = runner.invoke(app, ["verify", str(dataset)])
    assert bad.exit_code == 1
    assert "train-00001-of-00003.parquet" in bad.output
    assert "train-00002-of-00003.parquet" in bad.output
    report = verify(dataset)
    problems = {s["file"]: s["problems"] for s in report["shards"] if not s["ok"]}
    assert set(problems) == {"train-00001-of-00003.parquet", "train-00002-of-00003.parquet"}
    assert "missing" in problems["train-00002-of-00003.parquet"]
    assert any("sha256" in p for p in problems["train-00001-of-00003.parquet"])
    fixed = runner.invoke(app, ["verify", str(dataset), "--repair", "--device", "cpu"])
    assert fixed.exit_code == 0, fixed.output
    assert {p.name: p.read_bytes() for p in folder.glob("*.parquet")} == good
    assert verify(dataset)["ok"]


def test_repair_needs_the_source(dataset: Path, tmp_path: Path, runner) -> None:
    (dataset / "data" / "synthetic" / "train-00000-of-00003.parquet").unlink()
    (tmp_path / "v.mp4").unlink()
    result = runner.invoke(
        app, ["verify", str(dataset), "--repair", "--root", str(tmp_path / "root")]
    )
    assert result.exit_code == 2
    assert "source 'v'" in result.output


def test_verify_refuses_what_is_not_a_dataset(tmp_path: Path, runner) -> None:
    result = runner.invoke(app, ["verify", str(tmp_path / "nothing"), "--root", str(tmp_path)])
    assert result.exit_code == 2 and "not a dataset" in result.output
