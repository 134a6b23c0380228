"""Pickles planted in a run folder never execute during `train --resume`, `restore` and `eval`.

Each payload creates a file when unpickled; the file must never appear. A pickle in place of a
safetensors file or of config.json is refused with exit 2.
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from filmdata.cli import app  # noqa: E402
from filmdata.synthetic import render_shots  # noqa: E402
from filmdata.video import write_video  # noqa: E402
from restorer_fixtures import toy_dataset, toy_run  # noqa: E402, F401


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def _plant(run: Path, marker: Path) -> None:
    data = pickle.dumps(_Payload(marker))
    for name in ("model.pt", "model.pth", "optimizer.pt", "pytorch_model.bin", "ema.ckpt",
                 "state.pkl", "training_args.bin", "rng_state.pth"):  # fmt: skip
        (run / name).write_bytes(data)
    torch.save({"weights": _Payload(marker)}, run / "checkpoint.pt")


@pytest.fixture
def planted(toy_run: Path, tmp_path: Path) -> tuple[Path, Path]:  # noqa: F811
    run = tmp_path / "run"
    shutil.copytree(toy_run, run)
    marker = tmp_path / "PWNED"
    _plant(run, marker)
    return run, marker


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frames, _ = render_shots([4], 48, 32, seed=9)
    path = tmp_path_factory.mktemp("pickles") / "in.mp4"
    write_video(path, frames, 24.0)
    return path


def test_pickle_payload_is_live(tmp_path: Path) -> None:
    """The control: unpickling the payload does create the marker."""
    marker = tmp_path / "live"
    pickle.loads(pickle.dumps(_Payload(marker)))  # noqa: S301 - on purpose
    assert marker.exists()


def test_planted_pickles_never_run(
    runner: CliRunner,
    planted: tuple[Path, Path],
    toy_dataset: Path,  # noqa: F811
    video: Path,
    tmp_path: Path,
) -> None:
    run, marker = planted
    r = runner.invoke(
        app,
        ["train", "--data", str(toy_dataset), "--out", str(run), "--resume", "--steps", "8",
         "--quiet", "--device", "cpu"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app,
        ["restore", str(video), "-o", str(tmp_path / "out.mp4"), "--checkpoint", str(run),
         "--steps", "1", "--quiet"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app,
        ["eval", str(run), "--data", str(toy_dataset), "--steps", "1", "--limit", "1", "--json",
         "--quiet"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert not marker.exists()


@pytest.mark.parametrize("target", ["model.safetensors", "ema.safetensors", "config.json"])
def test_pickle_in_place_of_weights_is_refused(
    runner: CliRunner,
    planted: tuple[Path, Path],
    video: Path,
    tmp_path: Path,
    target: str,
) -> None:
    run, marker = planted
    (run / target).write_bytes(pickle.dumps(_Payload(marker)))
    if target == "model.safetensors":
        (run / "ema.safetensors").unlink()  # restore reads EMA first; make it read the model
    r = runner.invoke(
        app,
        ["restore", str(video), "-o", str(tmp_path / "out.mp4"), "--checkpoint", str(run),
         "--quiet"],
    )  # fmt: skip
    assert r.exit_code == 2, r.output
    assert "refused" in r.output or "cannot read" in r.output
    assert not marker.exists()
