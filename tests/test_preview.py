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


def test_preview_config_help_says_what_the_default_is(root: Path, runner, tmp_path: Path) -> None:
    """A dataset with no `synthetic` config is previewed from its first config without
    --config, and `--config`'s help says so (it said "default synthetic" alone)."""
    import shutil

    copy = tmp_path / "real-only"
    shutil.copytree(root / "datasets" / "mine", copy)
    (copy / "data" / "synthetic").rename(copy / "data" / "other")
    shown = runner.invoke(app, ["preview", str(copy), "-o", str(tmp_path / "s.png")])
    assert shown.exit_code == 0, shown.output
    assert (tmp_path / "s.png").stat().st_size > 0
    import typer.main

    command = typer.main.get_command(app).commands["preview"]  # type: ignore[attr-defined]
    (option,) = [p for p in command.params if p.name == "config"]
    assert "default: synthetic where the dataset has it, else the first of its configs" in (
        option.help
    )


@pytest.mark.parametrize("json_", [[], ["--json"]])
def test_datasets_refuses_a_root_without_a_catalog(
    root: Path, runner, tmp_path: Path, json_: list[str]
) -> None:
    """A mistyped --root is refused in one line naming it (exit 2), as `sources`, `clips` and
    `cut` refuse it: `datasets` printed an empty list and exited 0, as if the root held none."""
    typo = tmp_path / "roto"
    res = runner.invoke(app, ["datasets", "--root", str(typo), *json_])
    assert res.exit_code == 2, res.output
    assert res.stderr.strip().splitlines() == [
        f"error: --root {typo}: no catalog (catalog.sqlite) there; check the path, or run "
        "`filmdata fetch` into it first"
    ]
    assert res.stdout == "" and not typo.exists()
    assert runner.invoke(app, ["datasets", "--root", str(root), *json_]).exit_code == 0


def test_a_video_of_rows_of_two_sizes_shows_each_whole(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows of another size than the first (real pairs kept at the GT's scale, pairs of other
    tapes): every frame is padded to the largest, not cut to the first row's size (which lost
    a larger GT's right and bottom)."""
    import importlib

    import numpy as np

    from filmdata.shards import encode_png
    from filmdata.video import read_frames

    def row(h: int, w: int, level: int) -> dict:
        cells = [{"bytes": encode_png(np.full((h, w, 3), level, np.uint8))} for _ in range(2)]
        return {"lq": cells, "gt": cells, "fps": 24.0}

    module = importlib.import_module("filmdata.preview")  # (the package exports the function)
    rows = [row(16, 16, 200), row(32, 48, 120)]
    monkeypatch.setattr(module, "read_rows", lambda *a, **k: rows)
    out = module.preview(root / "datasets" / "mine", tmp_path / "side.mp4")
    frames = read_frames(out)
    assert len(frames) == 4 and frames[0].shape[:2] == (32, 48 + module.GAP + 48)
    last = frames[-1].astype(int)
    assert abs(last[28, -4].mean() - 120) < 12  # the larger GT's bottom right, shown
    assert last[28, 4].mean() > 100 and frames[0][28, 4].mean() < 30  # the small row padded


def test_an_output_that_is_a_folder_or_under_a_file_is_refused(
    root: Path, runner, tmp_path: Path
) -> None:
    """-o naming a folder, or a path under a file, is refused in one line (exit 2): it was an
    IsADirectoryError traceback at the rename (.mp4) or a FileExistsError from mkdir (.png)."""
    (tmp_path / "a.mp4").mkdir()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    for out, why in [
        (tmp_path / "a.mp4", "is a folder"),
        (a_file / "sheet.png", f"{a_file} is a file, not a folder"),
    ]:
        r = runner.invoke(app, ["preview", "mine", "--root", str(root), "-o", str(out)])
        assert r.exit_code == 2, r.output
        (line,) = [s for s in r.output.splitlines() if s.strip()]
        assert line.startswith(f"error: -o {out}: {why}"), line
    assert a_file.read_text() == "mine" and not list((tmp_path / "a.mp4").iterdir())


def test_a_cut_shard_is_refused_in_one_line_naming_it(root: Path, runner, tmp_path: Path) -> None:
    """A shard cut short (a copy interrupted: its footer gone) is refused in one line naming
    the file and `filmdata verify` (exit 2): preview ended in pyarrow's traceback (exit 1)."""
    import shutil

    copy = tmp_path / "cut"
    shutil.copytree(root / "datasets" / "mine", copy)
    shard = sorted(copy.glob("data/*/train-*.parquet"))[0]
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    r = runner.invoke(app, ["preview", str(copy), "-o", str(tmp_path / "sheet.png")])
    assert r.exit_code == 2, r.output
    (line,) = r.stderr.strip().splitlines()
    assert str(shard) in line and "filmdata verify" in line, line
    assert not (tmp_path / "sheet.png").exists()


def test_datasets_prints_a_long_path_whole(root: Path, runner, tmp_path: Path) -> None:
    """The listed path is for copying into `preview` or `load_dataset`: cut at a table's
    column width ("/home/.../filmdata-roo...") it named nothing."""
    import shutil

    moved = tmp_path / ("a-folder-name-long-enough-to-pass-sixty-characters" * 2) / "root"
    shutil.copytree(root, moved)
    table = runner.invoke(app, ["datasets", "--root", str(moved)])
    assert table.exit_code == 0, table.output
    assert str(moved / "datasets" / "mine") in table.output.split(), table.output


def test_datasets_says_which_dataset_folder_is_gone(root: Path, runner, tmp_path: Path) -> None:
    """A dataset deleted (or moved) since it was made stays in the catalog: listed with its
    rows as if there, `preview` and `load_dataset` of its path then found nothing."""
    import shutil

    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    shutil.rmtree(copy / "datasets" / "mine")
    listed = runner.invoke(app, ["datasets", "--root", str(copy), "--json"])
    assert listed.exit_code == 0, listed.output
    (ds,) = json.loads(listed.output)
    assert ds["name"] == "mine" and ds["present"] is False
    table = runner.invoke(app, ["datasets", "--root", str(copy)])
    (line,) = [s for s in table.output.splitlines() if s.startswith("mine")]
    assert "missing" in line, table.output
    here = runner.invoke(app, ["datasets", "--root", str(root), "--json"])
    assert json.loads(here.output)[0]["present"] is True


def test_datasets_says_which_dataset_a_run_left_part_made(
    root: Path, runner, tmp_path: Path
) -> None:
    """A re-run stopped part-way (`synth --overwrite` killed after removing the old shards, a
    re-export) leaves the catalog's rows of the run before: listed as present with them, though
    `load_dataset` fails on its first missing shard. The folder is "incomplete" now."""
    import shutil

    from filmdata import shards

    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    dataset = copy / "datasets" / "mine"
    record = shards.read_record(dataset, "synthetic")
    name = sorted(record["shards"])[0]
    del record["shards"][name]  # planned, not made yet
    shards.write_record(dataset, "synthetic", record)
    (shards.config_dir(dataset, "synthetic") / name).unlink()
    shards.write_card(dataset)
    listed = runner.invoke(app, ["datasets", "--root", str(copy), "--json"])
    assert listed.exit_code == 0, listed.output
    (ds,) = json.loads(listed.output)
    assert ds["present"] is True and ds["incomplete"] == ["synthetic"], ds
    table = runner.invoke(app, ["datasets", "--root", str(copy)])
    (line,) = [s for s in table.output.splitlines() if s.startswith("mine")]
    assert "incomplete" in line and "present" not in line, table.output
    here = runner.invoke(app, ["datasets", "--root", str(root), "--json"])
    assert json.loads(here.output)[0]["incomplete"] == []


def test_preview_of_a_split_whose_shards_are_gone_says_so(
    root: Path, runner, tmp_path: Path
) -> None:
    """Its shards deleted, a split the record lists with rows was called empty."""
    import shutil

    ds = tmp_path / "mine"
    shutil.copytree(root / "datasets" / "mine", ds)
    for p in (ds / "data" / "synthetic").glob("train-*.parquet"):
        p.unlink()
    result = runner.invoke(app, ["preview", str(ds), "-o", str(tmp_path / "p.png")])
    assert result.exit_code == 2, result.output
    assert "empty" not in result.output and "missing" in result.output, result.output
    assert "filmdata verify" in result.output
