"""`filmdata preview` and `filmdata datasets` on a dataset synth made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_clip
from filmdata.cli import app

TEMPLATES = Path(__file__).parents[1] / "degradations"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding one dataset, `mine`, that synth made (by name: under the root)."""
    from typer.testing import CliRunner

    tmp = tmp_path_factory.mktemp("preview")
    video, _ = make_clip(tmp / "in.mp4", (8,), size=(64, 48), seed=2)
    result = CliRunner().invoke(
        app,
        ["synth", "--templates", str(TEMPLATES), "--input", str(video), "--root", str(tmp / "root"),
         "--name", "mine", "--clip-len", "2", "--size", "16", "--device", "cpu", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return tmp / "root"


def test_a_listed_path_names_the_dataset_from_any_folder(
    root: Path, runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`datasets` lists each dataset's folder as a path that names it from anywhere: it was the
    catalog's path relative to the root ("datasets/mine"), which `preview` (and
    `datasets.load_dataset`) refused from any folder but the root."""
    monkeypatch.chdir(tmp_path)
    listed = runner.invoke(app, ["datasets", "--root", str(root), "--json"])
    assert listed.exit_code == 0, listed.output
    (ds,) = json.loads(listed.output)
    assert ds["name"] == "mine" and Path(ds["path"]) == root / "datasets" / "mine"
    out = tmp_path / "sheet.png"
    shown = runner.invoke(app, ["preview", ds["path"], "-o", str(out)])
    assert shown.exit_code == 0, shown.output
    assert out.stat().st_size > 0
    table = runner.invoke(app, ["datasets", "--root", str(root)])
    assert str(root / "datasets" / "mine") in table.output
