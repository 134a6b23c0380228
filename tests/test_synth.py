"""`synth`: windows, crops, splits, seeds, replay, refusal and resume, on tiny footage."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import (
    film_frames,
    killed_at_write,
    loaded_ids,
    make_clip,
    recorded_ids,
    shard_rows,
    telecine,
    write_hdr,
    write_interlaced,
    write_spliced_ts,
    write_woven,
)
from filmdata import shards
from filmdata.cli import app
from filmdata.errors import RefusedError
from filmdata.replay import replay_row
from filmdata.shards import decode_image
from filmdata.synth import Clip, plan, synth
from filmdata.synthetic import render_shots
from filmdata.video import comb_blocks, read_frames, write_video

T, S = 3, 32


def _templates() -> Path:
    from filmdata.degrade.presets import bundled_dir

    return bundled_dir()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def _rows(dataset: Path, split: str | None = None) -> list[dict]:
    out = []
    for p in sorted((dataset / "data" / "synthetic").glob(f"{split or '*'}-*.parquet")):
        out += shards.read_shard(p).to_pylist()
    return out


def _shard_bytes(dataset: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((dataset / "data").rglob("*.parquet"))}


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _ = make_clip(tmp_path_factory.mktemp("synth") / "street.mp4", (14, 14), (80, 56), seed=3)
    return path


@pytest.fixture(scope="module")
def made(footage: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("made") / "ds"
    summary = synth(
        _templates(),
        "film",
        [footage],
        out=out,
        root=out.parent / "root",
        clip_len=T,
        size=S,
        stride=2,
        seed=5,
        device="cpu",
        batch_size=3,
        val_fraction=0.25,
        rows_per_shard=2,
        quiet=True,
    )
    return out, summary


def test_load_dataset_and_duckdb(made: tuple[Path, dict], tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    duckdb = pytest.importorskip("duckdb")
    out, summary = made
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert set(ds) == {"train", "validation"}
    assert ds.num_rows == summary["splits"]["synthetic"]
    row = ds["train"][0]
    assert len(row["gt"]) == len(row["lq"]) == T
    assert row["gt"][0].size == (S, S) and row["origin"] == "synthetic"
    assert set(row["crop"]) == {"x", "y", "w", "h"}
    n = duckdb.sql(f"SELECT count(*) FROM '{out}/data/*/*.parquet'").fetchall()[0][0]
    assert n == sum(ds.num_rows.values())


def test_gt_rederives_from_its_record_and_lq_is_degraded(
    made: tuple[Path, dict], footage: Path
) -> None:
    frames = read_frames(footage)
    psnrs, gt_psnrs = [], []
    for row in _rows(made[0]):
        c = row["crop"]
        for k, (g, q) in enumerate(zip(row["gt"], row["lq"])):
            src = frames[row["start_frame"] + k][c["y"] : c["y"] + c["h"], c["x"] : c["x"] + c["w"]]
            ref = cv2.resize(src, (S, S), interpolation=cv2.INTER_AREA)
            gt = decode_image(g["bytes"])
            gt_psnrs.append(_psnr(gt, ref))  # the very crop, resized by area
            psnrs.append(_psnr(decode_image(q["bytes"]), gt))
        deg = json.loads(row["degradation"])
        assert deg["seed"] == 5 and deg["preset"]["name"] == "film"
    assert min(gt_psnrs) > 45
    assert 8 < np.mean(psnrs) < 35


@pytest.mark.parametrize(
    ("fmt", "space", "full"),
    [
        ("yuv420p", 2, 1),
        ("yuv420p", 1, 1),
        ("yuvj420p", 2, 2),
        ("yuv420p", 5, 2),
        ("yuv420p10le", 1, 1),  # 10-bit remasters (HEVC, AV1, VP9)
        ("yuv420p10le", 9, 2),
        ("yuv422p10le", 1, 1),  # ProRes and FFV1 masters
        ("yuvj422p", 1, 2),
        ("yuv444p", 5, 1),
        ("yuv444p10le", 1, 1),
        ("yuv422p12le", 1, 1),
    ],
)
def test_resized_crops_match_an_area_resize_of_the_rgb_frame(
    fmt: str, space: int, full: int
) -> None:
    # The planes' fast path (luma by area, chroma bilinear, FFmpeg's own matrix for this colour
    # space and range) against the plain recipe: whole frame to RGB, crop, area resize.
    import av

    from filmdata.windows import _Picture, _yuv_to_rgb

    frames, _ = render_shots((2,), 320, 240, seed=3)
    for img in frames:
        f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format=fmt)
        f.colorspace, f.color_range = space, full
        rgb = f.to_ndarray(format="rgb24")
        pic = _Picture(f)
        assert _yuv_to_rgb(f) is not None  # the fast path, not the fallback
        for x, y, side, size in ((0, 0, 240, 160), (31, 17, 201, 128), (80, 3, 64, 64)):
            got = pic.resized(x, y, side, side, size)
            want = cv2.resize(
                rgb[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_AREA
            )
            assert got.shape == want.shape and _psnr(got, want) > 38


@pytest.mark.parametrize("fmt", ["yuv420p", "yuv420p10le", "yuv422p", "rgb24"])  # planes, RGB
def test_resized_into_a_given_array_makes_the_same_pixels(fmt: str) -> None:
    import av

    from filmdata.windows import _Picture

    frames, _ = render_shots((1,), 320, 240, seed=4)
    pic = _Picture(av.VideoFrame.from_ndarray(frames[0], format="rgb24").reformat(format=fmt))
    for x, y, side, size in ((0, 0, 240, 160), (31, 17, 201, 128), (80, 4, 64, 64)):
        want = pic.resized(x, y, side, side, size)
        frames_out = np.zeros((3, size, size, 3), np.uint8)
        got = pic.resized(x, y, side, side, size, out=frames_out[1])
        assert np.shares_memory(got, frames_out) and np.array_equal(frames_out[1], want)
        assert not frames_out[0].any() and not frames_out[2].any()
        strided = np.zeros((size, 2 * size, 3), np.uint8)[:, ::2]  # OpenCV cannot write here
        pic.resized(x, y, side, side, size, out=strided)
        assert np.array_equal(strided, want)


def test_crops_convert_like_whole_frames(tmp_path: Path) -> None:
    from filmdata.windows import _pictures

    path, _ = make_clip(tmp_path / "odd.mp4", (6,), (150, 90), seed=8)
    whole = read_frames(path)
    rng = np.random.default_rng(0)
    for index, pic in _pictures(str(path), 0, 6):
        for _ in range(8):
            w, h = int(rng.integers(1, 150)), int(rng.integers(1, 90))
            x, y = int(rng.integers(0, 151 - w)), int(rng.integers(0, 91 - h))
            assert np.array_equal(pic.crop(x, y, w, h), whole[index, y : y + h, x : x + w])


def test_splits_do_not_leak_and_leave_a_gap(made: tuple[Path, dict]) -> None:
    train, val = _rows(made[0], "train"), _rows(made[0], "validation")
    assert train and val
    last_train = max(r["start_frame"] + T for r in train)
    first_val = min(r["start_frame"] for r in val)
    assert last_train + T <= first_val  # a gap of at least one window


def test_plan_splits_by_source_and_by_clip() -> None:
    box = (0, 0, 64, 48)
    two = [Clip(f"s{i}", f"s{i}.0-40", f"/x/{i}.mp4", 0, 40, 24.0, box) for i in range(4)]
    sp = plan(two, clip_len=4, size=32, stride=None, seed=1, val_fraction=0.25)
    assert {w.source for w in sp["train"]}.isdisjoint({w.source for w in sp["validation"]})
    assert len(sp["validation"]) == 10
    clips = [Clip("s", f"s.{a}-{a + 20}", "/x/s.mp4", a, a + 20, 24.0, box) for a in (0, 20, 40)]
    sp = plan(clips, clip_len=4, size=32, stride=2, seed=1, val_fraction=0.3)
    assert {w.clip for w in sp["validation"]} == {"s.40-60"}
    assert {w.clip for w in sp["train"]} == {"s.0-20", "s.20-40"}
    for w in sp["train"] + sp["validation"]:
        x, y, cw, ch = w.crop
        assert cw == ch and 32 <= cw <= 48 and x + cw <= 64 and y + ch <= 48
    # Two sources: one whole source would be half the windows, so whole clips are held out.
    two_src = [
        Clip(s, f"{s}.{a}-{a + 20}", f"/x/{s}.mp4", a, a + 20, 24.0, box)
        for s in ("a", "b")
        for a in (0, 20, 40, 60)
    ]
    sp = plan(two_src, clip_len=4, size=32, stride=4, seed=1, val_fraction=0.25)
    assert len(sp["validation"]) == 10 and {w.clip for w in sp["validation"]} == {
        "a.60-80",
        "b.60-80",
    }
    # Two files of one clip each: the last stretch of each, a window's gap before it.
    files = [Clip(s, f"{s}.0-80", f"/x/{s}.mp4", 0, 80, 24.0, box) for s in ("a", "b")]
    sp = plan(files, clip_len=4, size=32, stride=4, seed=1, val_fraction=0.2)
    for s in ("a", "b"):
        val = [w.start_frame for w in sp["validation"] if w.source == s]
        train = [w.start_frame for w in sp["train"] if w.source == s]
        assert val == [64, 68, 72, 76] and max(train) + 2 * 4 <= 64
    capped = plan(clips, clip_len=4, size=32, stride=2, seed=1, val_fraction=0, max_windows=5)
    assert len(capped["train"]) == 5
    kw = dict(clip_len=4, size=32, stride=2, seed=1)
    with pytest.raises(RefusedError, match=r"--val-fraction must be in \[0, 1\), got -0.3"):
        plan(clips, **kw, val_fraction=-0.3)  # (was taken for 0)
    with pytest.raises(RefusedError, match="--max-windows must be >= 1, got 0"):
        plan(clips, **kw, val_fraction=0, max_windows=0)


def test_same_seed_same_rows_other_seed_other_pixels(
    made: tuple[Path, dict], footage: Path, tmp_path: Path
) -> None:
    kw = dict(
        clip_len=T,
        size=S,
        stride=2,
        device="cpu",
        batch_size=3,
        val_fraction=0.25,
        rows_per_shard=2,
        quiet=True,
        root=tmp_path / "root",
    )
    again = tmp_path / "again"
    synth(_templates(), "film", [footage], out=again, seed=5, **kw)
    assert shard_rows(again) == shard_rows(made[0])  # every field, every pixel
    other = tmp_path / "other"
    synth(_templates(), "film", [footage], out=other, seed=6, **kw)
    a, b = _rows(made[0])[0], _rows(other)[0]
    assert a["start_frame"] == b["start_frame"]
    assert not np.array_equal(decode_image(a["lq"][0]["bytes"]), decode_image(b["lq"][0]["bytes"]))


def test_replay_row_is_bit_exact(made: tuple[Path, dict]) -> None:
    for row in _rows(made[0])[:3]:
        lq = replay_row(row, _templates(), device="cpu")
        assert np.array_equal(lq, np.stack([decode_image(c["bytes"]) for c in row["lq"]]))


def test_replay_row_takes_a_row_as_load_dataset_gives_it(
    made: tuple[Path, dict], tmp_path: Path
) -> None:
    """The README loads rows with `datasets.load_dataset`, whose image columns are PIL images:
    replay_row redoes their LQ bit-exactly too (it raised TypeError on a PIL image)."""
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(str(made[0]), cache_dir=str(tmp_path / "cache"))
    for row in [ds["train"][0], ds["validation"][0]]:
        lq = replay_row(row, _templates(), device="cpu")
        assert np.array_equal(lq, np.stack([np.asarray(im.convert("RGB")) for im in row["lq"]]))


def test_vhs_preset_and_jpeg(footage: Path, tmp_path: Path) -> None:
    from filmdata.degrade import preset_names

    if "vhs" not in preset_names(_templates()):
        pytest.skip("the vhs preset has not landed in degradations/presets/ yet")
    out = tmp_path / "vhs"
    summary = synth(
        _templates(),
        "vhs",
        [footage],
        out=out,
        clip_len=2,
        size=24,
        seed=1,
        device="cpu",
        image_format="jpeg",
        max_windows=3,
        quiet=True,
        root=tmp_path / "root",
    )
    assert summary["splits"] == {"synthetic": {"train": 3}}
    row = _rows(out)[0]
    assert json.loads(row["degradation"])["preset"]["name"] == "vhs"
    assert row["gt"][0]["bytes"][:2] == b"\xff\xd8"


def test_replay_row_of_a_jpeg_row_says_it_is_approximate_or_cuts_the_gt_again(
    footage: Path, tmp_path: Path
) -> None:
    """A JPEG row's LQ was made from the GT before its JPEG encoding: replayed from the stored
    GT it is approximate, and a warning says so; with the source file the clean GT is cut
    again and the LQ, encoded as synth encodes it, is the stored bytes. PNG rows: no warning."""
    import warnings

    from filmdata.shards import encode_image

    out = tmp_path / "jpeg"
    synth(_templates(), "film", [footage], out=out, clip_len=2, size=24, seed=1, device="cpu",
          image_format="jpeg", max_windows=2, quiet=True, root=tmp_path / "root")  # fmt: skip
    for row in _rows(out):
        with pytest.warns(UserWarning, match="stored as JPEG.*approximate, not bit-exact"):
            near = replay_row(row, _templates(), device="cpu")
        stored = np.stack([decode_image(c["bytes"]) for c in row["lq"]])
        assert near.shape == stored.shape and _psnr(near, stored) > 25
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            exact = replay_row(row, _templates(), device="cpu", source_file=footage)
        assert [encode_image(f, "jpeg") for f in exact] == [c["bytes"] for c in row["lq"]]
    png = tmp_path / "png"
    synth(_templates(), "film", [footage], out=png, clip_len=2, size=24, seed=1, device="cpu",
          max_windows=1, quiet=True, root=tmp_path / "root")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        replay_row(_rows(png)[0], _templates(), device="cpu")


def test_refuses_to_overwrite_and_resumes(footage: Path, tmp_path: Path, runner) -> None:
    root = tmp_path / "root"
    args = [
        "synth",
        "--templates",
        str(_templates()),
        "--input",
        str(footage),
        "--root",
        str(root),
        "--name",
        "mine",
        "--clip-len",
        "2",
        "--size",
        "16",
        "--seed",
        "1",
        "--rows-per-shard",
        "2",
        "--max-windows",
        "6",
        "--device",
        "cpu",
        "--quiet",
    ]
    first = runner.invoke(app, args + ["--json"])
    assert first.exit_code == 0, first.output
    dataset = root / "datasets" / "mine"
    before = _shard_bytes(dataset)
    assert len(before) == 3
    # A crash: shard 1 gone from disk and record, a stale temporary left behind.
    folder = dataset / "data" / "synthetic"
    record = json.loads((folder / shards.RECORD).read_text())
    del record["shards"]["train-00001-of-00003.parquet"]
    (folder / shards.RECORD).write_text(json.dumps(record))
    (folder / "train-00001-of-00003.parquet").unlink()
    (folder / ".train-00001-of-00003.parquet.tmp-999").write_bytes(b"half a shard")
    resumed = runner.invoke(app, args + ["--json"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.output)["windows_made"] == 2
    assert _shard_bytes(dataset) == before
    assert not list(folder.glob(".*tmp*"))
    refused = runner.invoke(app, [a if a != "1" else "2" for a in args])
    assert refused.exit_code == 2
    assert "--overwrite" in refused.output
    assert _shard_bytes(dataset) == before
    replaced = runner.invoke(app, [a if a != "1" else "2" for a in args] + ["--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert _shard_bytes(dataset) != before
    listed = runner.invoke(app, ["datasets", "--root", str(root), "--json"])
    assert json.loads(listed.output)[0]["splits"] == {"synthetic": {"train": 6}}
    table = runner.invoke(app, ["datasets", "--root", str(root)])
    assert table.exit_code == 0 and "mine" in table.output and "synthetic/train=6" in table.output


def test_a_folder_of_the_users_with_a_data_folder_is_not_taken_over(
    footage: Path, tmp_path: Path, runner
) -> None:
    """`--out` at a folder of the user's that happens to hold `data/` (no filmdata record in
    it) is refused (exit 2) and left as it was: its README.md is not replaced, nor its
    data/synthetic/ removed. A filmdata dataset (a record in one of its configs) is added to."""
    mine = tmp_path / "project"
    (mine / "data" / "synthetic").mkdir(parents=True)
    (mine / "README.md").write_text("my project\n")
    (mine / "data" / "synthetic" / "important.csv").write_text("a,b\n1,2\n")
    before = {p: p.read_bytes() for p in mine.rglob("*") if p.is_file()}
    args = ["synth", "--templates", str(_templates()), "--input", str(footage), "--root",
            str(tmp_path / "root"), "--clip-len", "2", "--size", "16", "--max-windows", "2",
            "--device", "cpu", "--quiet"]  # fmt: skip
    result = runner.invoke(app, args + ["--out", str(mine)])
    assert result.exit_code == 2, result.output
    (line,) = [s for s in result.output.splitlines() if s.strip()]
    assert str(mine) in line and "not a filmdata dataset" in line and "--overwrite" in line
    assert {p: p.read_bytes() for p in mine.rglob("*") if p.is_file()} == before
    # A dataset with another config's record (a pair export's `real`): synth adds its own.
    ours = tmp_path / "paired"
    shards.write_record(ours, "real", {"version": 1, "config": "real", "shards": {}})
    stray = ours / "data" / "synthetic" / "important.csv"
    stray.parent.mkdir()
    stray.write_text("a,b\n")  # but not into a data/synthetic/ that synth did not make
    result = runner.invoke(app, args + ["--out", str(ours)])
    assert result.exit_code == 2 and f"no {shards.RECORD}" in result.output, result.output
    assert stray.read_text() == "a,b\n"
    stray.unlink()
    result = runner.invoke(app, args + ["--out", str(ours)])
    assert result.exit_code == 0, result.output
    assert len(_rows(ours)) == 2 and (ours / "data" / "real" / shards.RECORD).exists()


def test_preview_png_and_mp4(made: tuple[Path, dict], tmp_path: Path, runner) -> None:
    png = tmp_path / "sheet.png"
    result = runner.invoke(app, ["preview", str(made[0]), "-o", str(png), "--n", "2"])
    assert result.exit_code == 0, result.output
    sheet = cv2.imread(str(png))
    assert sheet is not None and sheet.shape[0] > 100 and sheet.shape[1] > 2 * sheet.shape[0]
    mp4 = tmp_path / "side.mp4"
    result = runner.invoke(
        app, ["preview", str(made[0]), "-o", str(mp4), "--split", "validation", "--n", "1"]
    )
    assert result.exit_code == 0, result.output
    assert read_frames(mp4).shape[0] == T
    bad = runner.invoke(app, ["preview", str(made[0]), "--split", "test"])
    assert bad.exit_code == 2 and "no split 'test'" in bad.output


def test_bad_options_are_refused(footage: Path, tmp_path: Path, runner) -> None:
    base = [
        "synth",
        "--templates",
        str(_templates()),
        "--input",
        str(footage),
        "--out",
        str(tmp_path / "x"),
        "--root",
        str(tmp_path / "root"),
        "--size",
        "32",
    ]
    for extra, needle in [
        (["--image-format", "gif"], "png or jpeg"),
        (["--clip-len", "500"], "no window"),
        (["--preset", "nope"], "nope"),
        # an 80x56 picture holds no 64 px crop: its GT would be upscaled
        (["--size", "64"], "(80x56) holds no --size 64 crop"),
        (["--max-windows", "-1"], "--max-windows must be >= 1, got -1"),
        (["--max-windows", "0"], "--max-windows must be >= 1, got 0"),
        (["--val-fraction", "-0.3"], "--val-fraction must be in [0, 1), got -0.3"),
        (["--val-fraction", "1"], "--val-fraction must be in [0, 1), got 1.0"),
        (["--size", "4000000"], "(80x56) holds no --size 4000000 crop"),
    ]:
        result = runner.invoke(app, base + extra)
        assert result.exit_code == 2, (extra, result.output)
        assert needle in result.output
        assert len([s for s in result.output.splitlines() if s.strip()]) == 1, result.output
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    for out in (a_file, a_file / "ds"):
        result = runner.invoke(app, base[:5] + ["--out", str(out)] + base[7:])
        assert result.exit_code == 2, result.output
        (line,) = [s for s in result.output.splitlines() if s.strip()]
        assert f"--out {out}: {a_file} is a file, not a folder" in line
    assert a_file.read_text() == "mine"
    assert not (tmp_path / "x").exists()  # nothing was made by the refusals
    result = runner.invoke(
        app,
        [
            "synth",
            "--templates",
            str(tmp_path / "none"),
            "--input",
            str(footage),
            "--out",
            str(tmp_path / "y"),
        ],
    )
    assert result.exit_code == 2 and "no such folder" in result.output
    # a file given as the degradations folder is a file, not missing
    args = [*base[:2], str(a_file), *base[3:5], "--out", str(tmp_path / "y"), *base[7:]]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    (line,) = [s for s in result.output.splitlines() if s.strip()]
    assert line == (
        f"error: --templates {a_file}: a file, not a degradations folder (presets/, templates/)"
    )
    assert a_file.read_text() == "mine" and not (tmp_path / "y").exists()


def test_scenes_without_input_is_refused(tmp_path: Path, runner) -> None:
    """`--scenes` cuts `--input` files; with none (the catalog's clips, already cut) it would
    do nothing, so it is refused (exit 2, one line naming it) before anything is made."""
    args = ["synth", "--templates", str(_templates()), "--scenes", "--out",
            str(tmp_path / "x"), "--root", str(tmp_path / "root"), "--device", "cpu"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    (line,) = [s for s in result.output.splitlines() if s.strip()]
    assert line.startswith("error: --scenes") and "--input" in line
    assert not (tmp_path / "x").exists()


def test_a_size_beyond_any_memory_is_planned_here_and_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A --size whose reader slots no memory holds (4 windows of 4 x 4e6 x 4e6 x 3 bytes) gets
    no forked reader (its mmap fails: ENOMEM): the windows are planned in this process, where
    the size is refused with its reason, not an OSError traceback."""
    from filmdata import _fork_reader
    from filmdata.synth import _planning_reader

    monkeypatch.setattr(_fork_reader, "can_fork", lambda: True)

    def planner() -> tuple[None, list]:
        raise AssertionError("no child was to be forked")

    assert _planning_reader(planner, 4, 4_000_000) is None


def test_from_catalog_clips_by_source(tmp_path: Path) -> None:
    from filmdata.catalog import Catalog

    root = tmp_path / "root"
    with Catalog.at_root(root) as cat:
        for i in range(4):  # s3 is a vhs capture: no clean GT
            rel = f"raw/m/s{i}.mp4"
            make_clip(root / rel, (12, 12), (72, 48), seed=i)
            cat.upsert_source(
                {
                    "manifest": "m",
                    "id": f"s{i}",
                    "kind": "vhs" if i == 3 else "film",
                    "status": "fetched",
                    "path": rel,
                    "width": 72,
                    "height": 48,
                    "fps": 24.0,
                }
            )
            cat.replace_many(
                "clips",
                {"source": f"s{i}"},
                [
                    {
                        "id": f"s{i}.{a}-{a + 12}",
                        "manifest": "m",
                        "source": f"s{i}",
                        "scene": k,
                        "start_frame": a,
                        "end_frame": a + 12,
                        "fps": 24.0,
                        "start_time": a / 24,
                        "end_time": (a + 12) / 24,
                        "box_x": 4,
                        "box_y": 2,
                        "box_w": 60,
                        "box_h": 40,
                        "status": "kept" if k == 0 or i == 0 or i == 1 else "dropped",
                    }
                    for k, a in enumerate((0, 12))
                ],
            )
    kw = dict(clip_len=4, size=16, seed=0, device="cpu", quiet=True)
    summary = synth(_templates(), "film", root=root, name="cat", val_fraction=0.3, **kw)
    dataset = root / "datasets" / "cat"
    rows = {s: _rows(dataset, s) for s in ("train", "validation")}
    assert summary["splits"]["synthetic"] == {s: len(r) for s, r in rows.items()}
    assert sum(map(len, rows.values())) == 5 * 3  # five kept clips of 12 frames, 3 windows each
    assert "s3" not in {r["source"] for r in rows["train"] + rows["validation"]}
    assert {r["source"] for r in rows["train"]}.isdisjoint(
        {r["source"] for r in rows["validation"]}
    )
    for r in rows["train"] + rows["validation"]:
        c = r["crop"]
        assert c["x"] >= 4 and c["y"] >= 2 and c["x"] + c["w"] <= 64 and c["y"] + c["h"] <= 42
        assert r["clip"] != "s2.12-24"  # dropped
    with Catalog.at_root(root) as cat:
        (ds,) = cat.datasets()
    assert ds["name"] == "cat" and ds["splits"] == summary["splits"] and ds["bytes"] > 0
    # a kind misspelt is named as such, not taken for "no clips of that kind: run cut first"
    with pytest.raises(RefusedError, match=r"--kind 'flim': no such kind of source; use film,"):
        synth(_templates(), "film", root=root, name="k", kinds=["film", "flim"], **kw)


def test_sharpen_gt_is_recorded_and_replays(footage: Path, tmp_path: Path) -> None:
    out = tmp_path / "sharp"
    synth(
        _templates(),
        "film",
        [footage],
        out=out,
        clip_len=2,
        size=16,
        seed=1,
        device="cpu",
        sharpen_gt=True,
        max_windows=2,
        quiet=True,
        root=tmp_path / "root",
    )
    row = _rows(out)[0]
    assert json.loads(row["degradation"])["gt_sharpen"] == {"sigma": 1.0, "amount": 0.5}
    lq = replay_row(row, _templates(), device="cpu", source_file=footage)
    assert np.array_equal(lq, np.stack([decode_image(c["bytes"]) for c in row["lq"]]))


def test_a_stuck_decoder_fails_the_run_instead_of_hanging() -> None:
    import time

    from filmdata.errors import ItemsFailed
    from filmdata.synth import Prefetch

    def stuck():
        yield 1
        time.sleep(5)  # a decoder that never returns
        yield 2

    ahead = Prefetch(stuck(), depth=2, timeout=0.3)
    assert next(ahead) == 1
    t = time.monotonic()
    with pytest.raises(ItemsFailed, match="took longer than 0.3 s"):
        next(ahead)
    assert time.monotonic() - t < 3


def test_the_reader_sees_its_backlog() -> None:
    """Each item is shaped in the reader's thread knowing how many wait before it (the reader
    cuts crops itself when the workers fall behind)."""
    import time

    from filmdata.synth import Prefetch

    ahead = Prefetch(iter(range(6)), depth=6, backlog=lambda item, waiting: (item, waiting))
    deadline = time.monotonic() + 10
    while ahead.q.qsize() < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert list(ahead) == [(i, i) for i in range(6)]


def test_cut_and_uncut_windows_make_the_same_gt(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    # The reader leaves 2 * workers + 2 windows uncut, then cuts: 4 here, on any machine.
    monkeypatch.setattr(sys.modules["filmdata.synth"], "_cpu_workers", lambda: 1)

    from filmdata.synth import _gt, _reader
    from filmdata.windows import cut_windows, input_clips, plan

    footage, _ = make_clip(tmp_path / "a.mp4", (24, 24), (96, 64), 24.0, seed=3)
    wins = plan(input_clips([footage]), clip_len=4, size=32, stride=None, seed=0, val_fraction=0)[
        "train"
    ]
    # Nothing taken until the reader is done: past the first windows, it cut them itself.
    ahead = _reader(wins, 4, 32, 96 * 64)
    deadline = time.monotonic() + 10
    while ahead.q.qsize() < len(wins) + 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    got = list(ahead)
    kinds = {type(item).__name__ for _, item in got}
    assert kinds == {"list", "ndarray"}
    for (w, item), (w2, gt) in zip(got, cut_windows(wins, 4, 32), strict=True):
        assert w == w2
        assert np.array_equal(_gt(w, item, 32), gt)


def test_a_closed_reader_stops_even_if_nothing_was_taken() -> None:
    import threading
    import time

    from filmdata.synth import Prefetch

    made = []

    def endless():
        while True:
            made.append(1)
            yield len(made)

    before = threading.active_count()
    ahead = Prefetch(endless(), depth=2)
    time.sleep(0.2)
    ahead.close()  # as a refused run closes the reader it started early
    deadline = time.monotonic() + 3
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == before
    assert len(made) <= 4  # it stopped at the queue's depth, not later
    with pytest.raises(StopIteration):
        next(ahead)


def test_a_reader_error_mid_shard_keeps_finished_shards_and_no_temporaries(
    footage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error that is not a window's media (a bug, a stuck reader) stops the run: the
    shards finished are kept and recorded, the one being written leaves no temporary."""
    module = sys.modules["filmdata.windows"]
    real = module.window_pictures

    def breaks_after_three(*a, **k):
        for i, item in enumerate(real(*a, **k)):
            if i == 3:
                raise RuntimeError("the reader broke")
            yield item

    monkeypatch.setattr(module, "window_pictures", breaks_after_three)
    out = tmp_path / "ds"
    kw = dict(clip_len=T, size=S, device="cpu", rows_per_shard=2, quiet=True)
    with pytest.raises(RuntimeError, match="the reader broke"):
        synth(_templates(), "film", [footage], out=out, root=tmp_path / "root", **kw)
    folder = out / "data" / "synthetic"
    done = [p.name for p in folder.glob("*.parquet")]
    assert len(done) == 1 and done[0].startswith("train-00000-of-")  # windows 0 and 1
    assert not list(folder.glob(".*.tmp-*"))  # the second shard's temporary is gone
    assert list(shards.read_record(out, "synthetic")["shards"]) == done


def test_a_window_that_does_not_decode_fails_alone(
    footage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decode error mid-run (`MediaError`) fails that window only: the windows after it are
    decoded and made, the card is written, and the run ends with `ItemsFailed` (exit 1)
    naming the file and the window, which its shard's record entry lists with the reason."""
    from filmdata.errors import ItemsFailed

    victim = _fail_the_fourth_window(monkeypatch)
    out = tmp_path / "ds"
    kw = dict(clip_len=T, size=S, device="cpu", rows_per_shard=2, quiet=True)
    with pytest.raises(ItemsFailed) as failed:
        synth(_templates(), "film", [footage], out=out, root=tmp_path / "root", **kw)
    assert "1 of 9 windows failed" in str(failed.value)  # 28 frames, windows of 3
    assert f"input.mp4: decode failed at frame 7 (window {victim[0]})" in str(failed.value)
    rows = _rows(out)
    assert len(rows) == 8 and victim[0] not in {r["id"] for r in rows}
    record = shards.read_record(out, "synthetic")
    assert len(record["shards"]) == 5 and (out / "README.md").exists()
    (entry,) = [e for e in record["shards"].values() if e.get("failed")]
    assert list(entry["failed"]) == [victim[0]] and entry["rows"] == 1
    assert not list((out / "data" / "synthetic").glob(".*.tmp-*"))


def test_a_ray_shard_that_fails_is_recorded_and_the_card_written(
    footage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Ray driver's side, without Ray (`map_items` runs each shard's task here): a task
    that fails as a whole (its function raised, or its worker died past the retries: an
    `ItemError`) is recorded as a shard whose windows all failed, each named with the error;
    the other shards are made, the card is written, and synth ends with `ItemsFailed` (exit
    1) naming the file and a window, as on the local backend. A re-run makes that shard."""
    from filmdata import backend
    from filmdata.backend import ItemError
    from filmdata.errors import ItemsFailed

    def one_task_fails(fn, items, **kw):
        for i, job in enumerate(items):
            yield i, ItemError("ray task failed: the worker died") if job.index == 1 else fn(job)

    kw = dict(clip_len=T, size=S, device="cpu", rows_per_shard=2, quiet=True)
    kw.update(root=tmp_path / "root")
    synth(_templates(), "film", [footage], out=tmp_path / "local", **kw)
    monkeypatch.setattr(backend, "map_items", one_task_fails)
    out = tmp_path / "ds"
    with pytest.raises(ItemsFailed) as failed:
        synth(_templates(), "film", [footage], out=out, backend="ray", **kw)
    record = shards.read_record(out, "synthetic")
    entry = record["shards"]["train-00001-of-00005.parquet"]
    first = entry["windows"][0]["id"]
    assert "2 of 9 windows failed" in str(failed.value)  # 28 frames, windows of 3
    why = "its shard train-00001-of-00005.parquet failed on Ray: ray task failed: the worker died"
    assert f"{footage.resolve()}: {why} (window {first})" in str(failed.value)
    assert (out / "README.md").exists() and len(record["shards"]) == 5
    assert entry["rows"] == 0 and list(entry["failed"]) == [w["id"] for w in entry["windows"]]
    local = {r["id"]: r for r in _rows(tmp_path / "local")}
    rows = _rows(out)
    assert len(rows) == 7 and all(r == local[r["id"]] for r in rows)
    assert not list((out / "data" / "synthetic").glob(".*.tmp-*"))
    monkeypatch.setattr(backend, "map_items", lambda fn, items, **kw: enumerate(map(fn, items)))
    summary = synth(_templates(), "film", [footage], out=out, backend="ray", **kw)
    assert summary["windows_made"] == 2 and summary["windows_failed"] == 0
    assert _rows(out) == _rows(tmp_path / "local")


def test_an_edit_list_trimmed_file_is_counted_by_its_decoded_frames(
    footage: Path, tmp_path: Path
) -> None:
    # `ffmpeg -ss X -c copy` (as trimmed downloads are made) keeps the packets from the
    # keyframe before X and an edit list that discards them: they are never decoded.
    import subprocess

    import imageio_ffmpeg

    from filmdata.video import read_frames
    from filmdata.windows import input_clips

    trimmed = tmp_path / "trimmed.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-ss", "0.3", "-i",
         str(footage), "-c", "copy", str(trimmed)],
        check=True,
    )  # fmt: skip
    frames = len(read_frames(trimmed))
    assert frames < len(read_frames(footage))  # the edit list took effect
    assert input_clips([trimmed])[0].end == frames
    out = tmp_path / "ds"
    summary = synth(
        _templates(), "film", [trimmed], out=out, clip_len=T, size=S, device="cpu",
        quiet=True, root=tmp_path / "root",
    )  # fmt: skip
    assert summary["windows_made"] == frames // T


def test_the_command_ends_at_once_with_its_output_and_exit_code(
    footage: Path, tmp_path: Path
) -> None:
    """`filmdata synth` as a process: it skips the interpreter's teardown of torch, and its
    JSON, its shards, its errors and its exit codes are all there."""
    import subprocess

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code = "import sys; from filmdata.cli import main; sys.argv[0] = 'filmdata'; main()"
        return subprocess.run(
            [sys.executable, "-c", code, "synth", "--templates", str(_templates()), *args],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    out = tmp_path / "ds"
    root = str(tmp_path / "r")
    done = run("--input", str(footage), "--out", str(out), "--clip-len", str(T), "--size",
               str(S), "--device", "cpu", "--quiet", "--json", "--root", root)  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["windows_made"] > 0
    assert len(_rows(out)) == summary["windows_made"]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(footage.read_bytes()[:2000])  # a header, then nothing that decodes
    failed = run("--input", str(broken), "--out", str(tmp_path / "ds2"), "--device", "cpu",
                 "--quiet", "--root", root)  # fmt: skip
    assert failed.returncode in (1, 2), failed.stderr
    assert failed.stderr.startswith("error: ") and str(broken) in failed.stderr


def test_rows_record_their_device_and_auto_replays_there(
    made: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    import filmdata.replay as module

    row = _rows(made[0])[0]
    assert json.loads(row["degradation"])["device"] == "cpu"
    assert shards.read_record(made[0], "synthetic")["params"]["device"] == "cpu"
    # auto: the recorded kind when this machine has it, else what auto picks.
    monkeypatch.setattr(module, "has_cuda", lambda: True)
    assert module.making_device("cpu") == "cpu" and module.making_device("cuda:1") == "cuda"
    assert module.making_device("cpu", "cpu") == "cpu"
    monkeypatch.setattr(module, "has_cuda", lambda: False)
    assert module.making_device("cuda") == module.pick_device("auto")
    assert module.making_device(None) == module.pick_device("auto")


def test_decode_threads_follow_the_bit_rate_and_give_the_same_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from filmdata.video import write_video
    from filmdata.windows import cut_windows, decode_threads, input_clips, plan

    rng = np.random.default_rng(0)
    noisy = tmp_path / "noisy.mp4"  # grain-like noise at a high quality: a high bit rate
    write_video(noisy, rng.integers(0, 256, (24, 64, 96, 3), dtype=np.uint8), 24.0, crf=8)
    flat = tmp_path / "flat.mp4"
    write_video(flat, np.full((24, 64, 96, 3), 128, np.uint8), 24.0)
    assert decode_threads(str(noisy), 32, 2) == 2  # the decoder would be the bottleneck
    assert decode_threads(str(flat), 32, 2) == 1
    assert decode_threads(str(noisy), 32, 1) == 1
    assert decode_threads(str(tmp_path / "missing.mp4"), 32, 2) == 1
    wins = plan(input_clips([noisy]), clip_len=4, size=32, stride=None, seed=0, val_fraction=0)
    wins = wins["train"]
    module = sys.modules["filmdata.windows"]
    got = {}
    for threads in (1, 2):  # frame threads decode the very same pictures
        monkeypatch.setattr(module, "decode_threads", lambda *a, n=threads: n)
        got[threads] = list(cut_windows(wins, 4, 32))
    assert len(got[1]) == len(wins) > 2
    for (w1, gt1), (w2, gt2) in zip(got[1], got[2], strict=True):
        assert w1 == w2 and np.array_equal(gt1, gt2)


def test_windows_spread_over_a_long_gop_are_decoded_in_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--max-windows` spreads windows over a file; where its keyframes are far apart (x264's
    default: 250 frames) a seek to each window decodes from the same keyframe again and
    again. The reader decodes on through instead, with the same pictures."""
    from dataclasses import replace

    from filmdata import video
    from filmdata.video import iter_frames, keyframe_frames, write_video
    from filmdata.windows import Window, window_pictures

    rng = np.random.default_rng(3)
    path = tmp_path / "long-gop.mp4"
    frames = rng.integers(0, 256, (200, 48, 64, 3), dtype=np.uint8)
    write_video(path, frames, 24.0, options={"g": "250"})
    keys = keyframe_frames(path)
    assert keys is not None and list(keys[0]) == [0] and keys[1] == pytest.approx(24.0)
    starts = [0, 60, 110, 150, 190]  # gaps of 40-50 frames: seeks land on frame 0
    wins = [
        Window(f"w{k}", "s", "c", str(path), start, 24.0, (0, 0, 64, 48), (64, 48))
        for k, start in enumerate(starts)
    ]
    runs = []
    real = video.iter_decoded

    def counted(*a: object, **kw: object) -> object:
        if kw.get("deinterlace"):  # (the deinterlacer's own decode calls it again)
            runs.append(a[1] if len(a) > 1 else kw.get("start", 0))
        return real(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(video, "iter_decoded", counted)
    got = [
        (w.start_frame, [p.frame.to_ndarray(format="rgb24") for p in pics])
        for w, pics in window_pictures(wins, 4, 32)
    ]
    assert runs == [0]  # one pass, not a decode from frame 0 for each window
    want = dict(enumerate(f for _, f in iter_frames(path)))
    for start, pics in got:
        assert len(pics) == 4
        for k, pic in enumerate(pics):
            assert np.array_equal(pic, want[start + k])
    # keyframes every 12 frames: a seek lands near each window, cheaper than decoding on
    dense = tmp_path / "short-gop.mp4"
    write_video(dense, frames, 24.0, options={"g": "12"})
    runs.clear()
    far = [replace(w, path=str(dense)) for w in wins[::2]]  # 0, 110, 190
    assert [w.start_frame for w, _ in window_pictures(far, 4, 32)] == [0, 110, 190]
    assert runs == [0, 110, 190]


def test_the_same_templates_moved_elsewhere_resume_the_dataset(
    footage: Path, tmp_path: Path
) -> None:
    import shutil

    moved = tmp_path / "moved-templates"
    shutil.copytree(_templates(), moved)
    kw = dict(clip_len=T, size=S, device="cpu", quiet=True, root=tmp_path / "root")
    out = tmp_path / "ds"
    first = synth(_templates(), "film", [footage], out=out, **kw)
    again = synth(moved, "film", [footage], out=out, **kw)  # the same pack: nothing to redo
    assert again["windows_made"] == 0 and again["windows_skipped"] == first["windows_made"] > 0
    # The same file names, other pixels (one template edited): another pack, not mixed in.
    png = sorted((moved / "templates" / "dust").glob("*.png"))[0]
    img = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(png), 255 - img)
    before = _shard_bytes(out)
    with pytest.raises(RefusedError, match="templates_fingerprint"):
        synth(moved, "film", [footage], out=out, **kw)
    assert _shard_bytes(out) == before


def _cuda_build() -> bool:
    from importlib.util import find_spec

    spec = find_spec("torch")
    assert spec is not None and spec.submodule_search_locations
    lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
    return any(lib.glob("libtorch_cuda*"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="dlopen preloading is Linux-only")
@pytest.mark.skipif(_cuda_build(), reason="a CUDA build of torch loads its own way")
def test_torch_preload_loads_its_libraries_off_the_gil_and_torch_then_works() -> None:
    """In a fresh process: `preload_torch` loads libtorch_cpu before `import torch`, while the
    calling thread keeps running Python, and torch imports and computes afterwards."""
    import subprocess

    code = """
import sys, time
from filmdata._torch_start import _preloading, await_preload, preload_torch
assert "torch" not in sys.modules
n, t = 0, time.perf_counter()  # (from before the thread starts: a load holding the GIL
preload_torch()                 # from its start stops this thread before the loop's first)
loading = _preloading[-1]
while loading.is_alive():
    n += 1  # runs only while the loading thread leaves the GIL free
took = time.perf_counter() - t
await_preload()
# the same loop as long again, nothing loading: the machine's rate now (a loaded machine
# slows both alike)
m, t = 0, time.perf_counter()
while loading.is_alive() or time.perf_counter() - t < took:
    m += 1
maps = open("/proc/self/maps").read()
assert "libtorch_cpu.so" in maps and "torch" not in sys.modules, "not preloaded"
import torch
assert torch.arange(4).sum().item() == 6
print("ok", n / took, m / took)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    ok, rate, free = out.stdout.split()
    # While the libraries load, the loop runs at about its free rate (the loading thread left
    # the GIL; the other core loads); where the load holds the GIL (a ctypes.CDLL in this
    # thread's stead) it runs at a hundredth of it, switching every 5 ms.
    assert ok == "ok" and float(rate) > 0.2 * float(free), (rate, free)


@pytest.mark.parametrize("black", [0, 14])
def test_input_crops_stay_inside_a_pillarboxed_picture(tmp_path: Path, black: int) -> None:
    """A 4:3 film pillarboxed in a 16:9 frame (as old films are uploaded): the `--input` clip's
    box is the picture, found on a few keyframes, so no window crops the black bars; a video
    without bars keeps its whole frame, from one keyframe. Bars a little above video black
    (gray 14, coded luma 28: a transfer's lifted black) are bars too: read as coded luma
    against a gray level, they were picture."""
    import av

    from filmdata.video import key_samples, write_video
    from filmdata.windows import input_clips

    frames, _ = render_shots((24, 24), 96, 72, seed=4)
    bars = np.full((72, 16, 3), black, np.uint8)
    boxed = tmp_path / "boxed.mp4"
    write_video(boxed, (np.hstack([bars, f, bars]) for f in frames), 24.0,
                options={"g": "12"})  # fmt: skip
    (clip,) = input_clips([boxed])
    x, y, w, h = clip.box
    assert 16 <= x <= 20 and 108 <= x + w <= 112 and (y, h) == (0, 72), clip.box
    wins = plan([clip], clip_len=4, size=32, stride=2, seed=0, val_fraction=0)["train"]
    assert wins and all(x <= c.crop[0] and c.crop[0] + c.crop[2] <= x + w for c in wins)
    plain = tmp_path / "plain.mp4"
    write_video(plain, frames, 24.0, options={"g": "12"})
    assert input_clips([plain])[0].box == (0, 0, 96, 72)
    with av.open(str(plain)) as c:
        assert len(key_samples(c, c.streams.video[0])[0]) == 1  # its edges are not dark


def test_input_bars_are_found_past_a_full_frame_opening(tmp_path: Path) -> None:
    """A remaster that opens on a full-frame title card, then shows the film letterboxed:
    the keyframe sampled in the card is bright where the bars are, and one bright sample made
    every row picture, so windows cropped the bars into the GT. One sample may differ."""
    from filmdata.video import write_video
    from filmdata.windows import input_clips

    shots, _ = render_shots((12, 40, 44), 96, 72, seed=9)
    framed = shots.copy()
    framed[12:, :12] = 0
    framed[12:, 60:] = 0
    path = tmp_path / "remaster.mp4"
    write_video(path, framed, 24.0, options={"g": "12"})
    (clip,) = input_clips([path])
    x, y, w, h = clip.box
    assert (x, w) == (0, 96) and 12 <= y <= 14 and 58 <= y + h <= 60, clip.box


@pytest.mark.parametrize(
    ("codec", "pix_fmt", "name"),
    [("ffv1", "yuv422p10le", "master.mkv"), ("libx265", "yuv420p10le", "remaster.mp4")],
)
def test_deep_footage_makes_windows_whose_gt_rederives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: str, pix_fmt: str, name: str
) -> None:
    """A 10-bit master (FFV1 4:2:2) or remaster (HEVC 4:2:0) in, the GT windows cut from its
    planes: each re-derives from its record (FFmpeg's RGB of the frame, cropped, resized by
    area) within rounding."""
    import av

    from filmdata import windows
    from filmdata.video import write_video

    maps: list[bool] = []  # crop by crop: the planes' path tried, FFmpeg's map found
    fitted = windows._yuv_to_rgb

    def seen(frame: av.VideoFrame) -> np.ndarray | None:
        m = fitted(frame)
        maps.append(m is not None)
        return m

    monkeypatch.setattr(windows, "_yuv_to_rgb", seen)
    try:
        av.codec.Codec(codec, "w")
    except ValueError:  # UnknownCodecError (PyAV's wheels ship both encoders)
        pytest.skip(f"this FFmpeg has no {codec} encoder")

    frames, _ = render_shots((12,), 128, 96, seed=6)
    path = tmp_path / name
    opts = {"x265-params": "log-level=none"} if codec == "libx265" else {}
    write_video(path, frames, 24.0, codec=codec, crf=None, pix_fmt=pix_fmt, options=opts)
    with av.open(str(path)) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert c.streams.video[0].codec_context.pix_fmt == pix_fmt
    out = tmp_path / "ds"
    synth(_templates(), "film", [path], out=out, root=tmp_path / "root", clip_len=4, size=32,
          seed=1, device="cpu", quiet=True)  # fmt: skip
    rows = _rows(out)
    assert len(rows) == 3 and len(maps) == 12 and all(maps)
    for row in rows:
        x, y, w, h = (row["crop"][key] for key in "xywh")
        for k, g in enumerate(row["gt"]):
            src = decoded[row["start_frame"] + k][y : y + h, x : x + w]
            ref = cv2.resize(src, (32, 32), interpolation=cv2.INTER_AREA)
            assert _psnr(decode_image(g["bytes"]), ref) > 35  # (real footage: 47-53 dB)


def test_an_in_process_run_leaves_the_callers_objects_out_of_full_collections(
    footage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With torch loaded by the caller, the objects alive at the start are frozen for the run
    (a full collection would walk torch's million, holding the GIL), and given back after."""
    import gc
    import importlib

    import torch  # noqa: F401 - loaded by the caller, as a notebook or the benchmark does

    mod = importlib.import_module("filmdata.synth")
    seen: list[int] = []
    degrade = mod.Degrader.degrade

    def watched(self, x, deg):  # type: ignore[no-untyped-def]
        seen.append(gc.get_freeze_count())
        return degrade(self, x, deg)

    monkeypatch.setattr(mod.Degrader, "degrade", watched)
    # what this process froze before (a test beside this one in a pytest-xdist worker: 375
    # objects on the H100 machine) would make the run leave the collector as it is
    gc.unfreeze()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    synth(_templates(), "film", [footage], out=tmp_path / "ds", root=tmp_path / "root",
          clip_len=T, size=S, device="cpu", quiet=True)  # fmt: skip
    assert seen and min(seen) > 1000  # the caller's objects, frozen while windows were made
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_clip_recorded_turned_makes_upright_windows(tmp_path: Path) -> None:
    """A phone's clip (pictures stored turned, a display matrix turning them back): windows
    are cut from the pictures as shown, and every GT re-derives from its record against the
    frames OpenCV (like a player) shows."""
    from conftest import write_turned

    shown, _ = render_shots((20,), 72, 96, seed=9)  # upright: 72 wide, 96 tall
    path = write_turned(tmp_path / "phone.mp4", shown, 90)
    out = tmp_path / "ds"
    synth(_templates(), "film", [path], out=out, root=tmp_path / "root", clip_len=T, size=S,
          seed=1, device="cpu", quiet=True)  # fmt: skip
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1][:, :, ::-1])
    assert frames[0].shape == (96, 72, 3)
    rows = _rows(out)
    assert rows
    for row in rows:
        c = row["crop"]
        assert c["x"] + c["w"] <= 72 and c["y"] + c["h"] <= 96
        for k, g in enumerate(row["gt"]):
            src = frames[row["start_frame"] + k][c["y"] : c["y"] + c["h"], c["x"] : c["x"] + c["w"]]
            ref = cv2.resize(src, (S, S), interpolation=cv2.INTER_AREA)
            assert _psnr(decode_image(g["bytes"]), ref) > 45


@pytest.mark.parametrize("master", ["576i", "telecined"])
def test_an_interlaced_master_makes_gt_of_pictures_not_fields(tmp_path: Path, master: str) -> None:
    """A 576i master's frames weave two instants (and a telecined film coded progressive, as a
    web re-encode of an NTSC DVD, weaves two film frames in two of five): its windows' GT are
    cut from its pictures (no combs: a clean target), and each re-derives from its record
    exactly."""
    from filmdata.replay import rederive_gt

    if master == "576i":
        path = write_interlaced(tmp_path / "576i.mp4", 96, 64, frames=24)
    else:
        path = write_woven(tmp_path / "telecined.mp4", telecine(film_frames(24)), 30000 / 1001)
        assert max(comb_blocks(f) for f in read_frames(path, gray=True, deinterlace=True)) < 32
    out = tmp_path / "ds"
    synth(_templates(), "film", [path], out=out, root=tmp_path / "root", clip_len=T, size=S,
          seed=2, device="cpu", quiet=True)  # fmt: skip
    pictures = read_frames(path, deinterlace=True)
    rows = _rows(out)
    assert rows
    for row in rows:
        c = row["crop"]
        gt = np.stack([decode_image(g["bytes"]) for g in row["gt"]])
        for k, g in enumerate(gt):
            pic = pictures[row["start_frame"] + k]
            src = pic[c["y"] : c["y"] + c["h"], c["x"] : c["x"] + c["w"]]
            assert _psnr(g, cv2.resize(src, (S, S), interpolation=cv2.INTER_AREA)) > 45
        assert np.array_equal(rederive_gt(row, path=path), gt)


@pytest.mark.parametrize("sar", [(64, 45), (8, 9)])
def test_a_source_of_non_square_pixels_makes_windows_square_as_shown(
    tmp_path: Path, sar: tuple[int, int]
) -> None:
    """A DVD's pictures are stored 720 wide and shown 1024 (16:9 PAL: pixels 64/45 as wide as
    high) or 640 (4:3 NTSC: 8/9): a window is a square of the picture as shown (its crop
    `h / w` the pixel aspect, so a check pattern of squares as shown stays square in the GT),
    never shrunk below `size` either way, and its GT re-derives from the record."""
    from fractions import Fraction

    import av

    from filmdata.replay import rederive_gt
    from filmdata.video import file_aspect
    from filmdata.windows import input_clips

    aspect = sar[0] / sar[1]
    width, height = 180, 144
    # squares of 16 rows as shown: 16 / aspect stored columns wide
    cols = (np.arange(width) * aspect // 16).astype(int)
    rows = np.arange(height) // 16
    checks = np.where((rows[:, None] + cols[None, :]) % 2, 200, 40).astype(np.uint8)
    path = tmp_path / "dvd.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = width, height, "yuv444p"
        s.codec_context.sample_aspect_ratio = Fraction(*sar)
        s.options = {"crf": "0"}
        for _ in range(9):
            pic = np.repeat(checks[:, :, None], 3, axis=2)
            out.mux(s.encode(av.VideoFrame.from_ndarray(pic, format="rgb24")))
        out.mux(s.encode())
    (clip,) = input_clips([path])
    assert clip.sar == pytest.approx(aspect)
    assert file_aspect(path) == pytest.approx(aspect)  # a catalog source's, the same
    out = tmp_path / "ds"
    synth(_templates(), "film", [path], out=out, root=tmp_path / "root", clip_len=T, size=S,
          seed=3, device="cpu", quiet=True)  # fmt: skip
    rows_ = _rows(out)
    assert rows_
    for row in rows_:
        c = row["crop"]
        assert min(c["w"], c["h"]) >= S
        assert c["h"] / c["w"] == pytest.approx(aspect, abs=2.5 / c["w"])  # even sides
        gt = np.stack([decode_image(g["bytes"]) for g in row["gt"]])
        assert np.array_equal(rederive_gt(row, path=path), gt)
        # as shown, the checks are squares: as many edges across as down
        light = gt[0, :, :, 0] > 120
        across = np.count_nonzero(np.diff(light[S // 2].astype(int)))
        down = np.count_nonzero(np.diff(light[:, S // 2].astype(int)))
        assert abs(across - down) <= 1, (c, across, down)


def test_a_picture_size_changing_mid_stream_fails_its_windows_not_the_run(
    tmp_path: Path, runner
) -> None:
    """Two recordings of different sizes spliced into one file: the windows were planned on
    the first size, so a window whose frames are smaller fails, with a one-line message naming
    the file, the frame and the window (not a traceback from deep in OpenCV). The other
    windows are made and the card written (exit 1: some items failed, the rest done); the
    failed ones are named in the record, and a re-run tries them again rather than stopping
    at them."""
    path = write_spliced_ts(tmp_path / "spliced.ts", ((160, 96), (64, 48)), frames=24)
    out = tmp_path / "ds"
    args = _spliced_args(path, out)
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    (line,) = [s for s in result.stderr.splitlines() if s.strip()]
    assert str(path) in line and "frame 24 is 64x48" in line and "mid-stream" in line
    assert ":000024:" in line  # the window
    assert (out / "README.md").exists()
    rows = _rows(out)
    starts = sorted(r["start_frame"] for r in rows)
    assert starts[:6] == [0, 4, 8, 12, 16, 20]
    record = shards.read_record(out, "synthetic")
    failed = {k: v for e in record["shards"].values() for k, v in e.get("failed", {}).items()}
    assert failed and all(str(path) in why for why in failed.values())
    assert len(rows) + len(failed) == 12  # 48 frames, windows of 4: each made or named
    assert not list((out / "data" / "synthetic").glob(".*.tmp-*"))
    made = {p.name: p.read_bytes() for p in (out / "data" / "synthetic").glob("*.parquet")}
    again = runner.invoke(app, args)  # tried again, failed again; the rest stay as they are
    assert again.exit_code == 1 and again.stderr == result.stderr
    assert {p.name: p.read_bytes() for p in (out / "data" / "synthetic").glob("*.parquet")} == made
    assert runner.invoke(app, ["verify", str(out)]).exit_code == 1  # not the whole plan


def _spliced_args(path: Path, out: Path) -> list[str]:
    """`filmdata synth` of a spliced file: windows of 4 at 32 px, a shard a row."""
    return ["synth", "--templates", str(_templates()), "--input", str(path), "--out", str(out),
            "--clip-len", "4", "--size", "32", "--quiet", "--device", "cpu",
            "--rows-per-shard", "1"]  # fmt: skip


@pytest.mark.parametrize(
    "sizes",
    [((96, 64), (80, 64)), ((64, 48), (160, 96))],
    ids=["crops-fit-the-smaller", "every-crop-fits-the-larger"],
)
def test_frames_of_another_size_fail_their_windows_even_where_the_crop_fits(
    tmp_path: Path, runner, sizes: tuple[tuple[int, int], tuple[int, int]]
) -> None:
    """A spliced file whose second recording's frames hold the planned crop (5 of the 6
    windows past the change at 80x64; all of them at 160x96): that crop was placed on the
    first picture, so cut from the other recording's frames it is not the recorded crop of
    the planned picture. Every window past the change fails, naming the file, the frame and
    both sizes; the windows before it are made (exit 1)."""
    (pw, ph), (fw, fh) = sizes
    path = write_spliced_ts(tmp_path / "spliced.ts", sizes, frames=24)
    out = tmp_path / "ds"
    args = _spliced_args(path, out)
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    (line,) = [s for s in result.stderr.splitlines() if s.strip()]
    assert "6 of 12 windows failed" in line, line
    assert f"{path}: frame 24 is {fw}x{fh}, not the {pw}x{ph}" in line and "mid-stream" in line
    assert (out / "README.md").exists()
    assert sorted(r["start_frame"] for r in _rows(out)) == [0, 4, 8, 12, 16, 20]
    record = shards.read_record(out, "synthetic")
    failed = {k: v for e in record["shards"].values() for k, v in e.get("failed", {}).items()}
    assert sorted(int(k.split(":")[1]) for k in failed) == [24, 28, 32, 36, 40, 44]
    for k, why in failed.items():
        start = int(k.split(":")[1])
        assert why.startswith(f"{path}: frame {start} is {fw}x{fh}, not the {pw}x{ph}"), why
    windows = [w for e in record["shards"].values() for w in e["windows"]]
    assert all(w["picture"] == [pw, ph] for w in windows)  # kept for `verify --repair`


def test_clips_smaller_than_the_size_are_left_out_and_counted(tmp_path: Path) -> None:
    """A clip whose picture holds no `size` crop would give upscaled GT (not the source's
    pixels): its windows are not made, the others are, and the summary counts it."""
    big, _ = make_clip(tmp_path / "big.mp4", (12,), (96, 64))
    small, _ = make_clip(tmp_path / "small.mp4", (12,), (48, 40), seed=1)
    kw = dict(clip_len=T, size=S + 16, seed=1, device="cpu", quiet=True, root=tmp_path / "root")
    summary = synth(_templates(), "film", [big, small], out=tmp_path / "ds", **kw)
    assert summary["clips_too_small"] == 1
    assert {r["source"] for r in _rows(tmp_path / "ds")} == {"big"}


def test_clips_left_out_are_named(tmp_path: Path, runner) -> None:
    """Of several --input files, the ones left out (too small for --size, too short for
    --clip-len) are named, in the summary and in the command's output: a count alone left the
    user to guess which file gave no windows."""
    big, _ = make_clip(tmp_path / "big.mp4", (12,), (96, 64))
    small, _ = make_clip(tmp_path / "small.mp4", (12,), (48, 40), seed=1)
    short, _ = make_clip(tmp_path / "short.mp4", (T - 1,), (96, 64), seed=2)
    res = runner.invoke(app, ["synth", "--templates", str(_templates()), "--input", str(big),
                              "--input", str(small), "--input", str(short), "-q", "--json",
                              "--out", str(tmp_path / "ds"), "--clip-len", str(T),
                              "--size", str(S + 16), "--device", "cpu",
                              "--root", str(tmp_path / "root")])  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["clips_too_small"] == 1 and summary["clips_too_small_ids"] == ["small.0-12"]
    assert summary["clips_too_short"] == 1
    assert summary["clips_too_short_ids"] == [f"short.0-{T - 1}"]
    res = runner.invoke(app, ["synth", "--templates", str(_templates()), "--input", str(big),
                              "--input", str(small), "--input", str(short), "-q",
                              "--out", str(tmp_path / "ds"), "--clip-len", str(T),
                              "--size", str(S + 16), "--device", "cpu",
                              "--root", str(tmp_path / "root")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert f"smaller than --size {S + 16} left out (their GT would be upscaled): small.0-12" in (
        res.output
    )
    assert f"left out (no window fits): short.0-{T - 1}" in res.output


def test_clips_shorter_than_the_clip_len_are_counted(tmp_path: Path, runner) -> None:
    """A clip shorter than --clip-len holds no window: with others that do, it was left out
    without a word (summary and output silent). The summary counts it and the command says so."""
    long, _ = make_clip(tmp_path / "long.mp4", (12,), (96, 64))
    short, _ = make_clip(tmp_path / "short.mp4", (T - 1,), (96, 64), seed=1)
    kw = dict(clip_len=T, size=S, seed=1, device="cpu", quiet=True, root=tmp_path / "root")
    summary = synth(_templates(), "film", [long, short], out=tmp_path / "ds", **kw)
    assert summary["clips_too_short"] == 1 and summary["clips_too_small"] == 0
    assert {r["source"] for r in _rows(tmp_path / "ds")} == {"long"}
    res = runner.invoke(app, ["synth", "--templates", str(_templates()), "--input", str(long),
                              "--input", str(short), "--out", str(tmp_path / "ds2"), "-q",
                              "--clip-len", str(T), "--size", str(S), "--device", "cpu",
                              "--root", str(tmp_path / "root")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert f"1 clip(s) shorter than --clip-len {T} left out" in res.output


def test_scenes_cut_each_input_so_that_no_window_spans_a_change_of_shot(tmp_path: Path) -> None:
    """A whole video of three shots given as --input: on its own each window of 5 frames runs
    on from where the last ended, across the cuts; with `scenes` the file is cut at them first
    (the film detector), each scene a clip, and no window spans a change of shot."""
    path, cuts = make_clip(tmp_path / "three.mp4", (15, 15, 15))
    assert cuts == [15, 30]
    kw = dict(clip_len=5, size=S, seed=1, device="cpu", quiet=True, root=tmp_path / "root")

    def spans(rows: list[dict]) -> list[int]:
        return [
            r["start_frame"]
            for r in rows
            if any(r["start_frame"] < c < r["start_frame"] + 5 for c in cuts)
        ]

    whole = synth(_templates(), "film", [path], out=tmp_path / "whole", stride=4, **kw)
    assert whole["clips_too_small"] == 0
    assert spans(_rows(tmp_path / "whole"))  # [12, 17) and [28, 33) cross the cuts
    synth(_templates(), "film", [path], out=tmp_path / "cut", stride=4, scenes=True, **kw)
    rows = _rows(tmp_path / "cut")
    assert not spans(rows)
    assert {r["clip"] for r in rows} == {"three.0-15", "three.15-30", "three.30-45"}


@pytest.mark.parametrize("transfer", [16, 18])
def test_an_hdr_input_is_refused_with_how_to_make_it_sdr(tmp_path: Path, runner, transfer) -> None:
    """An HDR video's code values (PQ or HLG, BT.2020) are not SDR pixels: GT cut from them
    would look washed out. The input is refused (exit 2), naming the file and its transfer and
    saying how to make an SDR copy."""
    path = write_hdr(tmp_path / "master.mkv", transfer)
    args = ["synth", "--templates", str(_templates()), "--input", str(path), "--out",
            str(tmp_path / "ds"), "--size", "32", "--quiet"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    name = "PQ" if transfer == 16 else "HLG"
    assert str(path) in result.output and f"HDR video ({name}" in result.output
    assert "tonemap" in result.output and not (tmp_path / "ds" / "data").exists()


def test_a_folder_given_as_input_is_refused_as_a_folder(tmp_path: Path, runner) -> None:
    """--input takes video files: a folder was refused as "no such file", though it exists.
    It is refused (exit 2, one line) saying it is a folder and what to give instead."""
    folder = tmp_path / "clips"
    folder.mkdir()
    make_clip(folder / "a.mp4", (12,))
    args = ["synth", "--templates", str(_templates()), "--input", str(folder), "--out",
            str(tmp_path / "ds"), "--size", "32", "--quiet"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    (line,) = [s for s in result.output.splitlines() if s.strip()]
    assert line.startswith(f"error: --input {folder}: a folder, not a video file")
    assert "no such file" not in line and not (tmp_path / "ds" / "data").exists()


def test_one_file_given_twice_is_refused(tmp_path: Path, runner) -> None:
    """The same file twice (or under a link) would be two sources whose frames could land in
    both splits: refused, naming both."""
    path, _ = make_clip(tmp_path / "a.mp4", (12,))
    (tmp_path / "b.mp4").hardlink_to(path)
    for again in (path, tmp_path / "b.mp4"):
        args = ["synth", "--templates", str(_templates()), "--input", str(path), "--input",
                str(again), "--out", str(tmp_path / "ds"), "--size", "32", "--quiet"]  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert f"--input {again}: the same file as --input {path}" in result.output


def test_an_input_cut_short_is_refused_naming_it(tmp_path: Path, runner) -> None:
    """A Matroska file cut in half (a copy stopped part-way) still declares all its frames,
    but its packets end at the cut: `synth --input` made windows of its first half as the
    whole file (exit 0), though `--scenes`, `scenes`, `align` and `fetch` refuse it. Refused
    (exit 2, one line naming the file and both counts) before anything is written."""
    frames, _ = render_shots((40, 40, 40), 96, 64, seed=2)
    whole = tmp_path / "whole.mkv"
    write_video(whole, frames, 24)
    half = tmp_path / "half.mkv"
    half.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    for scenes in ([], ["--scenes"]):
        args = ["synth", "--templates", str(_templates()), "--input", str(half), "--out",
                str(tmp_path / "ds"), "--size", "32", "--quiet", *scenes]  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        (line,) = [s for s in result.output.splitlines() if s.strip()]
        assert line.startswith(f"error: {half}: decode failed after "), line
        assert " of 120 frames" in line and not (tmp_path / "ds" / "data").exists()


def test_an_interrupted_first_run_does_not_load_as_complete(
    footage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first run stopped after some of its shards (Ctrl-C, a crash) had written no card:
    `datasets.load_dataset` found the finished shards by itself and loaded them as the whole
    dataset. While shards are still to come, the card names every planned shard, so loading
    fails on the first missing one; the resumed run writes the usual card."""
    import datasets

    from filmdata.synth import Degrader

    calls = {"n": 0}
    real = Degrader.degrade

    def stop_at_the_third_window(self: Degrader, *a: object, **k: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:  # the first shard (two windows) made: stop there
            raise KeyboardInterrupt
        return real(self, *a, **k)

    kw = dict(clip_len=2, size=16, seed=1, rows_per_shard=2, max_windows=6, quiet=True)
    out = tmp_path / "ds"
    monkeypatch.setattr(Degrader, "degrade", stop_at_the_third_window)
    with pytest.raises(KeyboardInterrupt):
        synth(_templates(), "film", [footage], out=out, root=tmp_path / "root", **kw)
    assert len(list((out / "data" / "synthetic").glob("*.parquet"))) < 3  # (not all made)
    with pytest.raises(FileNotFoundError, match=r"train-0000\d-of-00003"):  # (one not made)
        datasets.load_dataset(str(out))
    # nor after `verify --repair`, which cannot make them (it rewrote the card from the
    # complete shards: the dataset then loaded as whole)
    from filmdata.verify import verify

    monkeypatch.undo()
    assert not verify(out, repair=True, root=tmp_path / "root", quiet=True)["ok"]
    with pytest.raises(FileNotFoundError, match=r"train-0000\d-of-00003"):
        datasets.load_dataset(str(out))
    synth(_templates(), "film", [footage], out=out, root=tmp_path / "root", **kw)
    assert len(datasets.load_dataset(str(out))["train"]) == 6


def _catalog_source(root: Path, i: int) -> None:
    """Source `s<i>` in `root`'s catalog: a film of two kept 12-frame clips."""
    from filmdata.catalog import Catalog

    rel = f"raw/m/s{i}.mp4"
    make_clip(root / rel, (12, 12), (72, 48), seed=i)
    with Catalog.at_root(root) as cat:
        cat.upsert_source({"manifest": "m", "id": f"s{i}", "kind": "film", "status": "fetched",
                           "path": rel, "width": 72, "height": 48, "fps": 24.0})  # fmt: skip
        clips = [
            {"id": f"s{i}.{a}-{a + 12}", "manifest": "m", "source": f"s{i}", "scene": k,
             "start_frame": a, "end_frame": a + 12, "fps": 24.0, "start_time": a / 24,
             "end_time": (a + 12) / 24, "box_x": 4, "box_y": 2, "box_w": 60, "box_h": 40,
             "status": "kept"}
            for k, a in enumerate((0, 12))
        ]  # fmt: skip
        cat.replace_many("clips", {"source": f"s{i}"}, clips)


@pytest.mark.parametrize("remake", ["grown catalog", "overwrite"])
def test_a_remake_killed_between_any_two_writes_never_loads_both_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remake: str
) -> None:
    """A synthetic config made again over an earlier one and killed between any two writes
    (after its first new shard, before the record lists it; ...) leaves a dataset that
    `load_dataset` refuses or loads as one run's rows, all old or all new; a plain re-run
    completes it. Both re-makes plan shards of the same names as the first run's: a re-run of
    the same options after more clips were cut (`--max-windows`: as many windows, others), and
    `--overwrite` with another --seed. The first kept the old shards of the names it re-made
    listed as complete, so the card loaded the new first shard beside the old second one."""
    from filmdata.verify import verify

    kw = dict(clip_len=4, size=16, device="cpu", max_windows=4, rows_per_shard=2, quiet=True)
    again = dict(seed=0) if remake == "grown catalog" else dict(seed=1, overwrite=True)
    for step in range(16):
        root = tmp_path / f"{step}"
        _catalog_source(root, 0)
        _catalog_source(root, 1)
        synth(_templates(), "film", root=root, name="ds", seed=0, **kw)
        dataset = root / "datasets" / "ds"
        old = loaded_ids(dataset, tmp_path / "hf")
        assert old is not None and len(old["synthetic"]["train"]) == 4
        if remake == "grown catalog":
            _catalog_source(root, 2)
        with monkeypatch.context() as m:
            killed_at_write(m, step, dead=True)
            try:
                synth(_templates(), "film", root=root, name="ds", **again, **kw)
            except KeyboardInterrupt:
                pass
            else:
                break
        stopped = loaded_ids(dataset, tmp_path / "hf")
        synth(_templates(), "film", root=root, name="ds", **again, **kw)  # (as it was run)
        new = loaded_ids(dataset, tmp_path / "hf")
        assert new == recorded_ids(dataset) and new != old, step
        assert verify(dataset, root=root)["ok"], step
        assert stopped in (None, old, new), step
    assert step > 3


def test_a_preset_named_by_its_path_resumes_a_run_named_by_name(
    footage: Path, tmp_path: Path
) -> None:
    """`--preset film` and `--preset .../presets/film.yaml` make the same rows (the preset's
    sha256 is recorded and compared), but the names differed, so the second run was refused
    ("other parameters ... pass --overwrite") instead of resuming. An edited copy still is."""
    from filmdata.degrade import bundled_dir

    kw = dict(clip_len=2, size=16, seed=1, rows_per_shard=2, max_windows=4, quiet=True)
    out, root = tmp_path / "ds", tmp_path / "root"
    synth(_templates(), "film", [footage], out=out, root=root, **kw)
    film = bundled_dir() / "presets" / "film.yaml"
    again = synth(_templates(), str(film), [footage], out=out, root=root, **kw)
    assert again["windows_made"] == 0 and again["windows_skipped"] == 4
    edited = tmp_path / "film.yaml"
    edited.write_text(film.read_text().replace("p: 0.95", "p: 0.9", 1))
    with pytest.raises(RefusedError, match=r"preset '.*film.yaml' -> '.*film.yaml'"):
        synth(_templates(), str(edited), [footage], out=out, root=root, **kw)
    with pytest.raises(RefusedError, match=r"preset '.*film.yaml' -> 'vhs'"):
        synth(_templates(), "vhs", [footage], out=out, root=root, **kw)


def test_an_out_on_a_read_only_file_system_is_refused(
    footage: Path, tmp_path: Path, runner, read_only
) -> None:
    """--out on a read-only file system (or in a folder without write permission) was an
    OSError traceback from the dataset folder's mkdir (exit 1), after the inputs were probed;
    it is refused in one line (exit 2)."""
    (tmp_path / "mine").mkdir()
    ro = read_only(tmp_path / "mine")
    args = ["synth", "--templates", str(_templates()), "--input", str(footage), "--size", "32"]
    args += ["--out", str(ro / "ds"), "--root", str(tmp_path / "root"), "--device", "cpu"]
    result = runner.invoke(app, [*args, "-q", "--json"])
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, OSError), result.exception
    (line,) = [s for s in result.output.splitlines() if s.strip()]
    assert f"--out {ro / 'ds'}: {ro} is on a read-only file system" in line, line


def _fail_the_fourth_window(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the fourth window of the run's first batch fail to decode (`MediaError`); returns
    the list that holds its id once the run has started."""
    from filmdata.errors import MediaError

    module = sys.modules["filmdata.windows"]
    real = module.window_pictures
    victim: list[str] = []

    def fails_the_fourth(windows, *a, **k):
        victim.append(victim[0] if victim else windows[3].id)
        for w, pictures in real(windows, *a, **k):
            if w.id == victim[0]:
                raise MediaError("input.mp4: decode failed at frame 7")
            yield w, pictures

    monkeypatch.setattr(module, "window_pictures", fails_the_fourth)
    return victim


def test_json_and_the_table_are_printed_where_some_windows_failed(
    footage: Path, tmp_path: Path, runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose windows partly fail (exit 1: the others made, the card written) printed
    nothing on stdout: under --json no JSON at all (fetch, cut, pair, verify and eval print
    theirs before exit 1), without it no table. Now the summary, then the one-line error."""
    import json

    _fail_the_fourth_window(monkeypatch)
    args = ["synth", "--templates", str(_templates()), "--input", str(footage), "--size", "32"]
    args += ["--clip-len", "3", "--root", str(tmp_path / "root"), "--device", "cpu", "-q"]
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--json"])
    assert r.exit_code == 1, r.output
    summary = json.loads(r.stdout)
    assert summary["windows_made"] == 8 and summary["windows_failed"] == 1
    (line,) = [s for s in r.stderr.splitlines() if s.strip()]
    assert line.startswith("error: ") and "1 of 9 windows failed" in line
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "b")])
    assert r.exit_code == 1, r.output
    assert "8 windows made" in r.stdout and "load it:" in r.stdout


def test_an_input_replaced_at_its_path_is_refused_as_other_parameters(
    tmp_path: Path, runner
) -> None:
    """A resume keeps the shards whose record entry lists the same window ids; an --input
    replaced at its path by other content (re-encoded, re-captured, another clip of the same
    name) has the same ids, so a re-run kept the GT cut from the old file and made the missing
    shards from the new one: a dataset of two files' pixels, silently. The inputs' content is
    recorded (size and the sha256 of each file's ends): other content is other parameters,
    refused (exit 2, one line naming the file) without --overwrite; the same bytes, touched or
    copied back, still resume."""
    import os
    import shutil

    path, _ = make_clip(tmp_path / "clip.mp4", (14, 14), (80, 56), seed=3)
    kept = shutil.copy(path, tmp_path / "a.mp4")
    root = tmp_path / "root"
    args = ["synth", "--templates", str(_templates()), "--input", str(path), "--root", str(root),
            "--name", "ds", "--clip-len", "2", "--size", "16", "--seed", "1", "--rows-per-shard",
            "2", "--max-windows", "4", "--device", "cpu", "--quiet", "--json"]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    dataset = root / "datasets" / "ds"
    folder = dataset / "data" / "synthetic"
    # a stopped run: the second shard not made yet
    record = json.loads((folder / shards.RECORD).read_text())
    del record["shards"]["train-00001-of-00002.parquet"]
    (folder / shards.RECORD).write_text(json.dumps(record))
    (folder / "train-00001-of-00002.parquet").unlink()
    before = _shard_bytes(dataset)
    make_clip(path, (14, 14), (80, 56), seed=4)  # other pixels, the same frames: the same ids
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    (line,) = [s for s in result.output.splitlines() if s.strip()]
    assert "other parameters" in line and str(path) in line and "--overwrite" in line, line
    assert _shard_bytes(dataset) == before
    # the same bytes again, touched: the stopped run resumes
    shutil.copy(kept, path)
    os.utime(path, (1e9, 1e9))
    resumed = runner.invoke(app, args)
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["windows_made"] == 2
    # other content, --overwrite: every row made from it
    make_clip(path, (14, 14), (80, 56), seed=4)
    assert runner.invoke(app, args).exit_code == 2
    replaced = runner.invoke(app, [*args, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert json.loads(replaced.stdout)["windows_made"] == 4
    frames = read_frames(path)
    for row in _rows(dataset):
        c, a = row["crop"], row["start_frame"]
        src = frames[a][c["y"] : c["y"] + c["h"], c["x"] : c["x"] + c["w"]]
        ref = cv2.resize(src, (16, 16), interpolation=cv2.INTER_AREA)
        assert _psnr(decode_image(row["gt"][0]["bytes"]), ref) > 40
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and json.loads(again.stdout)["windows_made"] == 0


def test_a_record_without_input_content_still_resumes(footage: Path, tmp_path: Path) -> None:
    """A dataset made before the inputs' content was recorded resumes as before: its content
    is unknown, the rest of its parameters are compared."""
    kw = dict(clip_len=2, size=16, seed=1, rows_per_shard=2, max_windows=4, quiet=True)
    out, root = tmp_path / "ds", tmp_path / "root"
    synth(_templates(), "film", [footage], out=out, root=root, device="cpu", **kw)
    folder = out / "data" / "synthetic"
    record = json.loads((folder / shards.RECORD).read_text())
    del record["params"]["input_content"]
    (folder / shards.RECORD).write_text(json.dumps(record))
    again = synth(_templates(), "film", [footage], out=out, root=root, device="cpu", **kw)
    assert again["windows_made"] == 0 and again["windows_skipped"] == 4
    with pytest.raises(RefusedError, match=r"seed 1 -> 2"):
        synth(_templates(), "film", [footage], out=out, root=root, **{**kw, "seed": 2})


@pytest.mark.parametrize("sha256", [False, True])
def test_a_catalog_source_refetched_with_other_content_is_refused(
    tmp_path: Path, sha256: bool
) -> None:
    """The catalog's clips alike: a source fetched again with other content (its catalog
    sha256 changed; or, where the catalog has none, its file) under the same clip ids is other
    parameters, named by its file; another source added to the catalog is not."""
    from filmdata.catalog import Catalog

    root = tmp_path / "root"
    _catalog_source(root, 0)
    _catalog_source(root, 1)

    def fetched(i: int, sha: str) -> None:
        with Catalog.at_root(root) as cat, cat.transaction() as db:
            db.execute("UPDATE sources SET sha256 = ? WHERE id = ?", (sha * 64, f"s{i}"))

    if sha256:
        fetched(0, "0")
        fetched(1, "1")
    kw = dict(clip_len=4, size=16, seed=0, device="cpu", rows_per_shard=2, quiet=True)
    synth(_templates(), "film", root=root, name="ds", **kw)
    _catalog_source(root, 2)  # more sources since: not refused (their shards are made)
    grown = synth(_templates(), "film", root=root, name="ds", **kw)
    assert grown["windows_made"] + grown["windows_skipped"] == 18
    assert synth(_templates(), "film", root=root, name="ds", **kw)["windows_made"] == 0
    make_clip(root / "raw/m/s1.mp4", (12, 12), (72, 48), seed=7)  # re-fetched: other pixels
    if sha256:
        fetched(1, "7")
    with pytest.raises(RefusedError, match=r"raw/m/s1\.mp4.*--overwrite"):
        synth(_templates(), "film", root=root, name="ds", **kw)
    assert (
        synth(_templates(), "film", root=root, name="ds", overwrite=True, **kw)["windows_made"]
        == 18
    )


def test_a_fetched_source_not_cut_is_named_as_left_out(tmp_path: Path, runner) -> None:
    """A synth from the catalog takes kept clips: a source fetched and not cut yet (or fetched
    again with other content, its old clips gone) was left out of the dataset without a word.
    The summary names it (`sources_not_cut`), and the command says so in one line; a source
    cut with every clip dropped, or of a kind not taken, is not named."""
    from filmdata.catalog import Catalog

    root = tmp_path / "root"
    for i in range(2):
        _catalog_source(root, i)
    with Catalog.at_root(root) as cat:
        for sid, kind in (("fresh", "film"), ("tape", "vhs")):
            make_clip(root / f"raw/m/{sid}.mp4", (12,), (72, 48), seed=5)
            cat.upsert_source({"manifest": "m", "id": sid, "kind": kind, "status": "fetched",
                               "path": f"raw/m/{sid}.mp4", "width": 72, "height": 48,
                               "fps": 24.0})  # fmt: skip
        cat.replace_many("clips", {"source": "s1"}, [
            {**c, "status": "dropped", "reason": "dark"} for c in cat.clips(source="s1")
        ])  # fmt: skip
    kw = dict(clip_len=4, size=16, seed=0, device="cpu", quiet=True)
    summary = synth(_templates(), "film", root=root, name="cat", **kw)
    assert summary["sources_not_cut"] == ["fresh"]
    args = ["synth", "--templates", str(_templates()), "--root", str(root), "--name", "cat2",
            "--clip-len", "4", "--size", "16", "--device", "cpu", "--quiet"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 fetched source(s) with no clips left out (run `filmdata cut`): fresh" in (
        result.output.splitlines()
    ), result.output


def test_a_template_pack_missing_a_kind_the_preset_draws_is_named(
    footage: Path, tmp_path: Path, runner
) -> None:
    """A pack without hair or edge templates (one extracted from a user's dust-and-scratches
    overlay footage) made datasets without that damage, and nobody was told. The summary
    names the kinds missing (`templates_missing`), and the command says so in one line; the
    bundled pack, which has every kind, names none, and a pack missing only a kind the
    preset never draws (its count 0) names none either."""
    import shutil

    pack = tmp_path / "pack"
    shutil.copytree(_templates(), pack)
    for kind in ("hair", "edge"):
        shutil.rmtree(pack / "templates" / kind)
    kw = dict(clip_len=T, size=S, device="cpu", quiet=True, root=tmp_path / "root", max_windows=1)
    assert (
        synth(_templates(), "film", [footage], out=tmp_path / "a", **kw)["templates_missing"] == []
    )
    assert synth(pack, "film", [footage], out=tmp_path / "b", **kw)["templates_missing"] == [
        "edge",
        "hair",
    ]
    args = ["synth", "--templates", str(pack), "--input", str(footage), "--out",
            str(tmp_path / "c"), "--root", str(tmp_path / "root"), "--clip-len", str(T),
            "--size", str(S), "--device", "cpu", "--max-windows", "1", "--quiet"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    line = f"--templates {pack}: no edge, hair templates; that part of the preset's damage is "
    assert f"{line}left out" in result.output.splitlines(), result.output
    # a preset that draws no hair (and no edge): nothing of it is missing
    preset = tmp_path / "nohair.yaml"
    preset.write_text(
        "name: nohair\nops:\n  - op: damage\n    p: 1.0\n    hair: [0, 0]\n    edge: 0.0\n"
    )
    assert synth(pack, str(preset), [footage], out=tmp_path / "d", **kw)["templates_missing"] == []
