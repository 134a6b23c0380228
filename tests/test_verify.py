"""`verify`: an intact dataset passes; a corrupted or missing shard is named, and repaired."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import killed_at_write, loaded_ids, make_clip, recorded_ids
from filmdata.cli import app
from filmdata.shards import RECORD, write_card
from filmdata.synth import synth
from filmdata.verify import verify


def _templates() -> Path:
    from filmdata.degrade.presets import bundled_dir

    return bundled_dir()


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    make_clip(tmp_path / "v.mp4", (10, 10), (64, 48), seed=4)
    out = tmp_path / "ds"
    _synth(out, tmp_path)
    return out


def _synth(out: Path, tmp_path: Path) -> None:
    """The fixture's synth run (of tmp_path/v.mp4 into `out`)."""
    synth(
        _templates(),
        "film",
        [tmp_path / "v.mp4"],
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


def test_verify_and_preview_refuse_a_file_as_a_file(tmp_path: Path, runner) -> None:
    """A file given as the dataset was "not a dataset folder (with data/) nor a dataset name";
    it is refused (exit 2, one line) saying it is a file."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    for cmd in ("verify", "preview"):
        result = runner.invoke(app, [cmd, str(a_file), "--root", str(tmp_path)])
        assert result.exit_code == 2, result.output
        (line,) = result.output.strip().splitlines()
        assert line.startswith(f"error: dataset {str(a_file)!r}: a file, not a dataset folder")
    assert a_file.read_text() == "mine"


@pytest.mark.parametrize("edit", ["templates", "preset"])
def test_repair_refuses_templates_or_a_preset_other_than_the_records(
    tmp_path: Path, runner, edit: str
) -> None:
    """The pack or preset at the recorded place changed since the dataset was made (a template
    edited, a preset value changed): repair would re-make a missing shard of other rows and
    call it repaired. It is refused (exit 2, one line naming the dataset and the field), and
    nothing is touched."""
    import shutil

    import cv2

    pack = tmp_path / "pack"
    shutil.copytree(_templates(), pack)
    preset = tmp_path / "mine.yaml"
    shutil.copy(pack / "presets" / "film.yaml", preset)
    path, _ = make_clip(tmp_path / "v.mp4", (10,), (64, 48), seed=4)
    out = tmp_path / "ds"
    synth(pack, str(preset), [path], out=out, root=tmp_path / "root", clip_len=2, size=16,
          seed=2, device="cpu", rows_per_shard=2, max_windows=4, quiet=True)  # fmt: skip
    folder = out / "data" / "synthetic"
    (folder / "train-00001-of-00002.parquet").unlink()
    (folder / "stray.parquet").write_bytes(b"not ours")
    if edit == "templates":
        png = sorted((pack / "templates" / "dust").glob("*.png"))[0]
        cv2.imwrite(str(png), 255 - cv2.imread(str(png), cv2.IMREAD_UNCHANGED))
        field = "templates_fingerprint"
    else:
        preset.write_text(preset.read_text().replace("name: film", "name: film-edited"))
        field = "preset_sha256"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = runner.invoke(app, ["verify", str(out), "--repair", "--device", "cpu"])
    assert result.exit_code == 2, result.output
    (line,) = [s for s in result.output.splitlines() if s.strip()]
    assert str(out) in line and f"{field}:" in line
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def _real_rows(n: int, first: int = 0) -> list[dict]:
    import numpy as np

    frame = np.zeros((4, 4, 3), np.uint8)
    return [
        {
            "id": f"m.p.{i}",
            "source": "tape",
            "clip": "p",
            "start_frame": i,
            "fps": 25.0,
            "crop": {"x": 0, "y": 0, "w": 4, "h": 4},
            "gt": [frame],
            "lq": [frame],
            "degradation": "{}",
            "origin": "real",
        }
        for i in range(first, first + n)
    ]


@pytest.mark.parametrize("damage", ["flip", "cut"])
def test_a_broken_png_is_named_by_verify_alone_no_libpng_line(
    tmp_path: Path, runner, capfd: pytest.CaptureFixture[str], damage: str
) -> None:
    """A PNG damaged in a readable shard (a byte changed, or cut short): decoding it, libpng
    printed "libpng error: ..." on stderr beside verify's own line. Now only ours names it,
    with Pillow's reason (`datasets` opens the images with Pillow too)."""
    import numpy as np

    from filmdata import shards

    png = shards.encode_png(np.random.default_rng(0).integers(0, 255, (8, 8, 3), np.uint8))
    at = len(png) // 2  # inside IDAT's deflate stream
    broken = png[:at] + bytes([png[at] ^ 0xFF]) + png[at + 1 :] if damage == "flip" else png[:at]
    rows = _real_rows(2)
    rows[1]["lq"] = [broken]
    ds = tmp_path / "ds"
    shards.write_split(ds, "real", "train", rows)
    shards.write_card(ds)
    capfd.readouterr()
    report = verify(ds)
    (shard,) = report["shards"]
    (problem,) = shard["problems"]
    assert problem.startswith("row m.p.1: image 1 does not decode ("), problem
    result = runner.invoke(app, ["verify", str(ds)])
    assert result.exit_code == 1 and "row m.p.1: image 1 does not decode" in result.output
    err = capfd.readouterr().err
    assert "libpng" not in err and "grfmt_png" not in err, err


def test_verify_finds_and_rewrites_a_card_that_lacks_what_the_records_list(
    tmp_path: Path, runner
) -> None:
    """An export killed after a split's shards but before its card: `load_dataset` would not
    offer that split (nor, card gone, any config), though every shard is good."""
    from filmdata import shards

    ds = tmp_path / "ds"
    shards.write_split(ds, "real", "train", _real_rows(3))
    shards.write_card(ds)
    assert verify(ds)["ok"]
    shards.write_split(ds, "real", "validation", _real_rows(1, 10))  # ... and killed here
    report = verify(ds)
    assert not report["ok"] and all(s["ok"] for s in report["shards"])
    assert report["card"]["problems"] == [
        "config 'real' split 'validation' has complete shards but is not in README.md"
    ]
    shards.write_split(ds, "real", "train", _real_rows(2))  # another row count
    assert "README.md says 3 rows, the record 2" in verify(ds)["card"]["problems"][0]
    result = runner.invoke(app, ["verify", str(ds)])
    assert result.exit_code == 1 and "README.md" in result.output, result.output
    # the summary names the card alone, not "bad shards: none" (which read as all well)
    (summary,) = [s for s in result.output.splitlines() if s.startswith("error:")]
    assert summary.startswith(f"error: {ds}: README.md does not list what the records do")
    assert "bad shards" not in summary, summary
    (ds / "README.md").unlink()
    assert "README.md missing" in verify(ds)["card"]["problems"][0]
    fixed = verify(ds, repair=True)
    assert fixed["ok"] and fixed["card"]["repaired"]
    assert verify(ds)["ok"] and not verify(ds)["card"]["problems"]
    import yaml

    header = yaml.safe_load((ds / "README.md").read_text().split("---\n")[1])
    assert [d["split"] for d in header["configs"][0]["data_files"]] == ["train", "validation"]


def test_verify_finds_a_card_whose_features_are_not_the_shards(tmp_path: Path, runner) -> None:
    """The card's `dataset_info` features are what `load_dataset` casts the shards to: edited
    (a `gt` of strings), loading fails, so verify must not pass it; repair rewrites it."""
    from filmdata import shards

    ds = tmp_path / "ds"
    shards.write_split(ds, "real", "train", _real_rows(2))
    shards.write_card(ds)
    assert verify(ds)["ok"]
    card = ds / "README.md"
    card.write_text(card.read_text().replace("list: image", "list: string", 1))
    report = verify(ds)
    assert not report["ok"]
    assert report["card"]["problems"] == [
        "config 'real': README.md's features are not the shards' (`load_dataset` would fail "
        "casting them)"
    ]
    result = runner.invoke(app, ["verify", str(ds)])
    assert result.exit_code == 1 and "features" in result.output, result.output
    assert verify(ds, repair=True)["card"]["repaired"]
    assert verify(ds)["ok"] and "list: string" not in card.read_text()


@pytest.mark.parametrize(
    "damage",
    [
        "{",  # cut short
        "[]",
        '{"shards": null}',
        '{"shards": {"train-00000-of-00003.parquet": 3}}',
        '{"shards": {"train-00000-of-00003.parquet": {"split": "train"}}}',
        None,  # a folder where the file was
    ],
)
def test_verify_reports_a_damaged_record(dataset: Path, runner, damage: str | None) -> None:
    """A record (`.shards.json`) that is not one `verify` can read is a problem of the dataset
    it names (exit 1, a line naming the file), not a traceback nor a refusal."""
    record = dataset / "data" / "synthetic" / RECORD
    record.unlink()
    if damage is None:
        record.mkdir()
    else:
        record.write_text(damage)
    result = runner.invoke(app, ["verify", str(dataset)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert any(RECORD in s and "BAD" in s for s in result.output.splitlines())
    report = verify(dataset)
    assert not report["ok"]
    (bad,) = [s for s in report["shards"] if not s["ok"]]
    assert bad["file"] == RECORD
    assert "unreadable shard record" in bad["problems"][0], bad
    preview = runner.invoke(app, ["preview", str(dataset), "-o", str(dataset / "p.png")])
    assert preview.exit_code == 2 and RECORD in preview.output, preview.output


def test_verify_prints_each_problem_whole_on_a_line_naming_its_file(dataset: Path, runner) -> None:
    """What is wrong must be readable: a problem cut at a table's column width ("unreadable
    Parquet: Arrow...") does not say it."""
    folder = dataset / "data" / "synthetic"
    victim = folder / "train-00000-of-00003.parquet"
    victim.write_bytes(victim.read_bytes()[:5000])
    (folder / "stray.parquet").write_bytes((folder / "train-00001-of-00003.parquet").read_bytes())
    report = verify(dataset)
    problems = [(s["file"], p) for s in report["shards"] for p in s["problems"]]
    assert {f for f, _ in problems} == {victim.name, "stray.parquet"}
    assert any(len(p) > 60 for _, p in problems)
    result = runner.invoke(app, ["verify", str(dataset)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    for file, p in problems:
        assert any(file in line and p in line for line in lines), (p, result.output)


def test_verify_names_a_deleted_record(dataset: Path, runner) -> None:
    """With the record gone, every shard read "not in the record (an unfinished write...)"
    and repair's note called the config not synthetic: the record's loss was named nowhere."""
    from filmdata import shards

    shards.write_split(dataset, "real", "train", _real_rows(2))  # (the card is rewritable)
    shards.write_card(dataset)
    folder = dataset / "data" / "synthetic"
    (folder / RECORD).unlink()
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    card = (dataset / "README.md").read_text()
    report = verify(dataset)
    assert not report["ok"]
    (rec,) = [s for s in report["shards"] if s["file"] == RECORD]
    assert not rec["ok"] and "missing" in rec["problems"][0]
    result = runner.invoke(app, ["verify", str(dataset), "--repair", "--device", "cpu"])
    assert result.exit_code == 1
    assert f"data/synthetic/{RECORD}: missing" in result.output, result.output
    assert "not synthetic" not in result.output, result.output
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert (dataset / "README.md").read_text() == card  # repair did not drop the config


def test_verify_fails_a_dataset_with_nothing_left(dataset: Path, runner) -> None:
    """Its config folders and card deleted, nothing was left to disagree: verify passed (exit
    0) a dataset that `load_dataset` cannot load."""
    import shutil

    shutil.rmtree(dataset / "data" / "synthetic")
    (dataset / "README.md").unlink()
    report = verify(dataset)
    assert not report["ok"]
    result = runner.invoke(app, ["verify", str(dataset)])
    assert result.exit_code == 1 and "no complete shards" in result.output, result.output


def test_repair_and_preview_of_a_read_only_dataset_say_so(dataset: Path, runner, read_only) -> None:
    """On a read-only file system `verify --repair` and `preview` (its default -o is inside
    the dataset) ended in an OSError traceback; now one line, exit 2, nothing changed."""
    (dataset / "data" / "synthetic" / "train-00001-of-00003.parquet").unlink()
    ro = read_only(dataset)
    before = sorted(p.name for p in (ro / "data" / "synthetic").iterdir())
    for args in (["verify", str(ro), "--repair", "--device", "cpu"], ["preview", str(ro)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert not isinstance(result.exception, OSError), result.exception
        (line,) = [s for s in result.output.splitlines() if s.startswith("error:")]
        assert str(ro) in line and "read-only" in line.lower(), line
    assert sorted(p.name for p in (ro / "data" / "synthetic").iterdir()) == before
    assert runner.invoke(app, ["verify", str(ro)]).exit_code == 1  # checking needs no writes


def test_repair_removes_a_stray_shard_of_a_real_config(tmp_path: Path, runner) -> None:
    """A shard not in the record (another dataset's, dropped in under a split's name) is read
    by `load_dataset` (the card's `train-*.parquet`); verify says `--repair` removes it, which
    it did only in a synthetic config: in `real` it was left, with a note to re-export."""
    from filmdata import shards

    ds = tmp_path / "ds"
    shards.write_split(ds, "real", "train", _real_rows(2))
    shards.write_card(ds)
    folder = ds / "data" / "real"
    good = folder / "train-00000-of-00001.parquet"
    (folder / "train-00001-of-00002.parquet").write_bytes(good.read_bytes())
    assert not verify(ds)["ok"]
    fixed = runner.invoke(app, ["verify", str(ds), "--repair"])
    assert fixed.exit_code == 0, fixed.output
    assert sorted(p.name for p in folder.glob("*.parquet")) == [good.name]
    assert verify(ds)["ok"]
    (folder / RECORD).write_text('{"config": "real", "shards": {}}')  # emptied
    assert runner.invoke(app, ["verify", str(ds), "--repair"]).exit_code == 1
    assert sorted(p.name for p in folder.glob("*.parquet")) == [good.name]  # not removed


def test_verify_while_a_writer_runs_says_so(dataset: Path, runner) -> None:
    """A synth still writing holds the dataset's lock: its shard being written was called a
    "stale temporary" and its shards to come "never completed" (exit 1, run --repair)."""
    from filmdata import shards

    with shards.locked(dataset):
        tmp = dataset / "data" / "synthetic" / ".train-00002-of-00003.parquet.tmp-1"
        tmp.write_bytes(b"being written")
        result = runner.invoke(app, ["verify", str(dataset)])
        assert result.exit_code == 2, result.output
        assert "another process is writing" in result.output and "stale" not in result.output
    tmp.unlink()
    assert verify(dataset)["ok"]


def test_synth_over_a_record_that_is_not_an_object_says_so(dataset: Path, tmp_path: Path) -> None:
    """A record reduced to a bare JSON number: synth's first read of it (before its fork) was
    a TypeError traceback; now the record's one-line error."""
    from filmdata.errors import FilmdataError

    (dataset / "data" / "synthetic" / RECORD).write_text("3")
    with pytest.raises(FilmdataError, match=rf"{RECORD}: unreadable shard record"):
        _synth(dataset, tmp_path)


def test_verify_advises_repair_only_where_it_can_mend(dataset: Path, runner) -> None:
    """A stopped run's never-made shard (no record of its rows) is the run's to resume:
    verify advised `--repair` all the same, which then could not mend it. It says so now;
    a damaged shard whose rows are recorded still gets the advice (and `repairable`)."""
    folder = dataset / "data" / "synthetic"
    record = json.loads((folder / RECORD).read_text())
    del record["shards"]["train-00002-of-00003.parquet"]  # never completed
    (folder / RECORD).write_text(json.dumps(record))
    (folder / "train-00002-of-00003.parquet").unlink()
    write_card(dataset)  # as the run wrote it before its first shard: naming all three
    out = runner.invoke(app, ["verify", str(dataset)])
    assert out.exit_code == 1
    assert "--repair cannot mend" in out.stderr and "run `filmdata verify --repair`" not in (
        out.stderr
    )
    assert [s["repairable"] for s in verify(dataset)["shards"] if not s["ok"]] == [False]
    victim = folder / "train-00001-of-00003.parquet"
    victim.write_bytes(victim.read_bytes()[:100])  # cut short: its rows are recorded
    out = runner.invoke(app, ["verify", str(dataset)])
    assert out.exit_code == 1 and "run `filmdata verify --repair`" in out.stderr
    report = {s["file"]: s["repairable"] for s in verify(dataset)["shards"] if not s["ok"]}
    assert report == {"train-00001-of-00003.parquet": True, "train-00002-of-00003.parquet": False}


def test_repair_writes_the_card_of_a_run_stopped_before_its_first_card(
    tmp_path: Path, runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A synth (or `pair --export`) killed between its first record and its first card leaves
    the record alone: `load_dataset` took `_shards.json` for the data (a one-row train split;
    the record is hidden now, and loading fails).
    verify advised `--repair`, which wrote no card (no shard complete) and advised it again;
    it now writes the card naming the planned shards, so loading fails on the first missing."""
    import datasets

    from filmdata import shards

    def killed(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    make_clip(tmp_path / "v.mp4", (10, 10), (64, 48), seed=4)
    out = tmp_path / "ds"
    with monkeypatch.context() as m:
        m.setattr(shards, "write_card", killed)
        with pytest.raises(KeyboardInterrupt):
            _synth(out, tmp_path)
    assert not (out / "README.md").exists() and not list(out.rglob("*.parquet"))
    checked = runner.invoke(app, ["verify", str(out)])
    assert checked.exit_code == 1 and "run `filmdata verify --repair`" in checked.stderr
    repaired = verify(out, repair=True)
    assert repaired["card"]["repaired"], repaired["card"]
    with pytest.raises(FileNotFoundError, match="train-00000"):
        datasets.load_dataset(str(out))
    _synth(out, tmp_path)  # the run resumes and the dataset loads whole
    assert verify(out)["ok"]


def test_a_synth_killed_between_any_two_writes_never_loads_wrong_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between any two writes of its record and card, a synth run leaves a folder that
    `load_dataset` either refuses or loads as the whole dataset the run completes, and that
    `verify` reports as not ok; the re-run completes it. Killed between its first record and
    its first card, the folder held the record alone, which `load_dataset` took for a one-row
    train split of the data."""
    from filmdata import shards
    from filmdata.errors import RefusedError

    make_clip(tmp_path / "v.mp4", (10, 10), (64, 48), seed=4)
    cache = tmp_path / "hf"
    for step in range(64):
        out = tmp_path / f"ds{step}"
        with monkeypatch.context() as m:
            killed_at_write(m, step)
            try:
                _synth(out, tmp_path)
            except KeyboardInterrupt:
                pass
            else:
                break
        before = loaded_ids(out, cache)
        if shards.is_dataset(out):
            assert not verify(out)["ok"], step
        else:
            with pytest.raises(RefusedError):
                verify(out)
        _synth(out, tmp_path)
        assert before in (None, recorded_ids(out)), step
        assert loaded_ids(out, cache) == recorded_ids(out) and verify(out)["ok"], step
    assert step > 4 and verify(out)["ok"]


def test_verify_does_not_advise_repair_for_a_deleted_record(dataset: Path, runner) -> None:
    """With a config's record gone, `verify` advised `verify --repair` (for the card, and on
    every shard), which mends nothing there: it now names the command that made the config."""
    from filmdata import shards

    shards.write_split(dataset, "real", "train", _real_rows(2))
    shards.write_card(dataset)
    (dataset / "data" / "synthetic" / RECORD).unlink()
    result = runner.invoke(app, ["verify", str(dataset)])
    assert result.exit_code == 1
    assert "--repair" not in result.output.replace("--repair cannot mend", ""), result.output
    assert "--repair cannot mend these" in result.output, result.output
    report = verify(dataset)
    assert not report["card"]["repairable"]
    assert not any(s["repairable"] for s in report["shards"])


def test_repair_refuses_an_input_replaced_at_its_path(
    dataset: Path, tmp_path: Path, runner
) -> None:
    """The --input file replaced at its path since the dataset was made (another capture saved
    under the name): repair re-made a missing shard by cutting its GT from the new file, beside
    every other shard's from the old one, and verify then called the dataset good. Its repair
    is refused now (exit 1, one line naming the file), the dataset left as it was; plain verify
    does not advise `--repair`; with the old content back the repair is made."""
    import shutil

    folder = dataset / "data" / "synthetic"
    good = {p.name: p.read_bytes() for p in folder.glob("*.parquet")}
    video = tmp_path / "v.mp4"
    shutil.copy(video, tmp_path / "v.orig")
    (folder / "train-00001-of-00003.parquet").unlink()
    make_clip(video, (10, 10), (64, 48), seed=5)  # same frames and size: same window ids
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    card = (dataset / "README.md").read_text()
    result = runner.invoke(app, ["verify", str(dataset), "--repair", "--device", "cpu"])
    assert result.exit_code == 1, result.output
    (line,) = [s for s in result.output.splitlines() if "other content" in s]
    assert line.startswith("data/synthetic/train-00001-of-00003.parquet: not repaired: ")
    assert str(video.resolve()) in line and "--overwrite" in line, line
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert (dataset / "README.md").read_text() == card
    plain = runner.invoke(app, ["verify", str(dataset)])
    assert plain.exit_code == 1 and "--repair cannot mend these" in plain.stderr, plain.output
    report = verify(dataset)
    assert not report["ok"] and not any(s["repairable"] for s in report["shards"])
    shutil.copy(tmp_path / "v.orig", video)  # the file that made it, back at its path
    fixed = runner.invoke(app, ["verify", str(dataset), "--repair", "--device", "cpu"])
    assert fixed.exit_code == 0, fixed.output
    assert {p.name: p.read_bytes() for p in folder.glob("*.parquet")} == good


@pytest.mark.parametrize("sha256", [False, True])
def test_repair_refuses_a_catalog_source_replaced_at_its_path(
    tmp_path: Path, runner, sha256: bool
) -> None:
    """A catalog source's file replaced under the root (by hand: the catalog's sha256 is still
    the old file's; or, where the catalog has none, its file's ends) is refused alike."""
    import hashlib
    import shutil

    from filmdata.catalog import Catalog

    root = tmp_path / "root"
    rel = "raw/m/s0.mp4"
    make_clip(root / rel, (12, 12), (72, 48), seed=0)
    sha = hashlib.sha256((root / rel).read_bytes()).hexdigest() if sha256 else None
    with Catalog.at_root(root) as cat:
        cat.upsert_source({"manifest": "m", "id": "s0", "kind": "film", "status": "fetched",
                           "path": rel, "width": 72, "height": 48, "fps": 24.0,
                           "sha256": sha})  # fmt: skip
        cat.replace_many("clips", {"source": "s0"}, [
            {"id": f"s0.{a}-{a + 12}", "manifest": "m", "source": "s0", "scene": k,
             "start_frame": a, "end_frame": a + 12, "fps": 24.0, "start_time": a / 24,
             "end_time": (a + 12) / 24, "box_x": 4, "box_y": 2, "box_w": 60, "box_h": 40,
             "status": "kept"}
            for k, a in enumerate((0, 12))
        ])  # fmt: skip
    synth(_templates(), "film", root=root, name="ds", clip_len=4, size=16, seed=0,
          device="cpu", rows_per_shard=2, max_windows=4, quiet=True)  # fmt: skip
    dataset = root / "datasets" / "ds"
    folder = dataset / "data" / "synthetic"
    good = {p.name: p.read_bytes() for p in folder.glob("*.parquet")}
    victim = sorted(good)[0]
    (folder / victim).unlink()
    shutil.copy(root / rel, tmp_path / "s0.orig")
    make_clip(root / rel, (12, 12), (72, 48), seed=7)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    args = ["verify", str(dataset), "--repair", "--device", "cpu", "--root", str(root)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    (line,) = [s for s in result.output.splitlines() if "other content" in s]
    assert line.startswith(f"data/synthetic/{victim}: not repaired: ") and rel in line, line
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    shutil.copy(tmp_path / "s0.orig", root / rel)
    fixed = runner.invoke(app, args)
    assert fixed.exit_code == 0, fixed.output
    assert {p.name: p.read_bytes() for p in folder.glob("*.parquet")} == good
