"""`filmdata pair`: manifest pairs aligned through the catalog, failures recorded, export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import killed_at_write, loaded_ids, recorded_ids
from filmdata.catalog import Catalog
from filmdata.cli import app
from filmdata.errors import ItemsFailed
from filmdata.pairing.pair import pair
from filmdata.pairing.tapesim import TapeSpec, frame_accuracy, make_tape, render_footage
from filmdata.shards import RECORD, read_shard, scan
from filmdata.video import read_frames, write_video

MANIFEST = """\
name: tapes
sources:
  - {id: song-vhs, path: song-vhs.mp4, kind: vhs}
  - {id: song-hd, path: song-hd.mp4, kind: hd}
  - {id: other-vhs, path: other-vhs.mp4, kind: vhs}
  - {id: other-hd, path: other-hd.mp4, kind: hd}
pairs:
  - {id: song, lq: song-vhs, gt: song-hd}
  - {id: other, lq: other-vhs, gt: other-hd}
"""


@pytest.fixture
def catalog_root(root: Path) -> tuple[Path, Path, list[int | None]]:
    """A root whose catalog has a fetched tape and GT, and a pair that cannot be aligned (its
    tape's file is missing, its GT failed to fetch)."""
    raw = root / "raw" / "tapes"
    gt = raw / "song-hd.mp4"
    write_video(gt, render_footage(192, 108, (30, 30, 30), seed=3), 24.0)
    spec = TapeSpec(size=(160, 120), head=6, ident=3, start=2.4, blur=0.8, smear=2.0, seed=3)
    tape = make_tape(gt, raw / "song-vhs.mp4", spec)
    with Catalog.at_root(root) as cat:
        for sid, status in [
            ("song-vhs", "fetched"),
            ("song-hd", "fetched"),
            ("other-vhs", "fetched"),
            ("other-hd", "failed"),
        ]:
            cat.upsert_source(
                {
                    "manifest": "tapes",
                    "id": sid,
                    "kind": "vhs" if sid.endswith("vhs") else "hd",
                    "status": status,
                    "path": f"raw/tapes/{sid}.mp4" if status == "fetched" else None,
                }
            )
    manifest = root / "tapes.yaml"
    manifest.write_text(MANIFEST)
    return root, manifest, tape.mapping


def test_pair_through_the_catalog(
    runner: CliRunner, catalog_root: tuple[Path, Path, list[int | None]]
) -> None:
    root, manifest, truth = catalog_root
    r = runner.invoke(app, ["pair", "--root", str(root), "--manifest", str(manifest), "-q"])
    assert r.exit_code == 1, r.output  # one pair failed, the other is done
    assert "other" in r.output and "missing" in r.output  # other-vhs: no file on disk
    with Catalog.at_root(root) as cat:
        song = cat.row("pairs", {"manifest": "tapes", "id": "song"})
        other = cat.row("pairs", {"manifest": "tapes", "id": "other"})
    assert song is not None and other is not None
    assert song["status"] == "aligned" and song["error"] is None
    assert frame_accuracy(truth, song["mapping"]) >= 0.95
    assert np.array(song["transform"]).shape == (3, 3)
    assert len(song["confidence"]) == len(truth) and 1.0 < song["speed"] < 1.1
    assert isinstance(song["quality"], dict) and song["offset_s"] is not None
    assert other["status"] == "failed" and "other-vhs" in other["error"]


def test_pair_export_real_config(catalog_root: tuple[Path, Path, list[int | None]]) -> None:
    root, manifest, _ = catalog_root
    for gt_scale in (False, True):
        with pytest.raises(ItemsFailed) as e:
            pair(
                root, [manifest], export="real", gt_scale=gt_scale, clip_len=4, size=64, quiet=True
            )
        out = e.value.result  # type: ignore[attr-defined]
        assert out["dataset"]["real"]["train"] >= 3
        found = scan(root / "datasets" / "real")
        assert set(found) == {"real"} and "validation" in found["real"]
        shard = next((root / "datasets" / "real" / "data" / "real").glob("train-*.parquet"))
        rows = read_shard(shard).to_pylist()
        row = rows[0]
        assert row["origin"] == "real" and row["source"] == "song-vhs" and row["clip"] == "song"
        assert len(row["gt"]) == len(row["lq"]) == 4
        deg = json.loads(row["degradation"])
        assert deg["gt_scale"] is gt_scale and len(deg["gt_frames"]) == 4
        from filmdata.shards import decode_image

        lq = decode_image(row["lq"][0]["bytes"])
        gt = decode_image(row["gt"][0]["bytes"])
        assert lq.shape == (64, 64, 3)
        # `crop` is the box the export cut: of the tape (the GT warped onto its grid), or of
        # the GT at its own scale; the frames are those pixels exactly
        c, (x, y, s, _) = row["crop"], deg["lq_crop"]
        if gt_scale:
            source, frame, got = "song-hd", deg["gt_frames"][0], gt
            assert c["x"] + c["w"] <= 192 and c["y"] + c["h"] <= 108  # GT pixels
        else:
            source, frame, got = "song-vhs", row["start_frame"], lq
            assert c == {"x": x, "y": y, "w": s, "h": s}
        (whole,) = read_frames(root / "raw" / "tapes" / f"{source}.mp4", frame, frame + 1)
        assert got.shape == (c["h"], c["w"], 3)
        assert np.array_equal(got, whole[c["y"] : c["y"] + c["h"], c["x"] : c["x"] + c["w"]])
        if gt_scale:
            assert gt.shape[0] > 64 and gt.shape[1] > 64  # the GT keeps its finer scale
        else:
            assert gt.shape == lq.shape
            # on the LQ grid, the GT looks like the tape: correlated, not shifted
            a = lq.mean(2) - lq.mean()
            b = gt.mean(2) - gt.mean()
            assert float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())) > 0.8
    assert (root / "datasets" / "real" / "README.md").exists()


def test_an_export_stopped_part_way_does_not_load_as_complete(
    catalog_root: tuple[Path, Path, list[int | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export stopped after its train split (Ctrl-C before validation) wrote no card, and
    `datasets.load_dataset` took the train shards it found as the whole dataset. The card now
    names every planned shard until the export ends."""
    import datasets

    from filmdata import shards

    real = shards.write_split

    def stop_before_validation(dataset: Path, config: str, split: str, *a: Any, **k: Any) -> Any:
        if split == "validation":
            raise KeyboardInterrupt
        return real(dataset, config, split, *a, **k)

    root, manifest, _ = catalog_root
    monkeypatch.setattr(shards, "write_split", stop_before_validation)
    with pytest.raises(KeyboardInterrupt):
        pair(root, [manifest], export="real", clip_len=4, size=64, quiet=True)
    dataset = root / "datasets" / "real"
    assert list((dataset / "data" / "real").glob("train-*.parquet"))
    with pytest.raises(FileNotFoundError, match="validation-00000"):
        datasets.load_dataset(str(dataset))
    # `verify` names the command that resumes it: this export, not synth (which makes
    # another config, and said so here)
    from filmdata.verify import verify

    report = verify(dataset)
    (missing,) = [s for s in report["shards"] if s["file"].startswith("validation-")]
    (problem,) = missing["problems"]
    assert "filmdata pair --export real" in problem and "synth" not in problem, problem


def test_an_export_killed_after_its_first_record_write_is_mended_by_verify(
    catalog_root: tuple[Path, Path, list[int | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed just after the export's first record write (its GT frames), before the plan and
    the card: `_shards.json` alone, which `load_dataset` took for the data (a one-row train
    split), and `verify --repair` had no plan to write the card from. The plan goes in that
    first write now, so the repaired card names the planned shards."""
    import datasets

    from filmdata import shards
    from filmdata.verify import verify

    real = shards.write_record

    def killed_after(*a: Any, **k: Any) -> None:
        real(*a, **k)
        raise KeyboardInterrupt

    root, manifest, _ = catalog_root
    monkeypatch.setattr(shards, "write_record", killed_after)
    with pytest.raises(KeyboardInterrupt):
        pair(root, [manifest], export="real", clip_len=4, size=64, quiet=True)
    monkeypatch.undo()
    dataset = root / "datasets" / "real"
    assert not (dataset / "README.md").exists()
    assert verify(dataset, repair=True)["card"]["repaired"]
    with pytest.raises(FileNotFoundError, match="train-00000"):
        datasets.load_dataset(str(dataset))


def test_an_export_killed_between_any_two_writes_never_loads_wrong_rows(
    catalog_root: tuple[Path, Path, list[int | None]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Killed between any two writes of its record and card, `pair --export` leaves a dataset
    that `load_dataset` either refuses or loads as the whole dataset the export completes, and
    that `verify` reports as not ok; the re-run completes it. Killed between its
    first record and its first card, `load_dataset` took the record for a one-row train split
    of the data."""
    from filmdata.shards import is_dataset
    from filmdata.verify import verify

    root, manifest, _ = catalog_root
    dataset = root / "datasets" / "real"

    def export() -> None:
        with pytest.raises(ItemsFailed):  # (the fixture's other pair cannot be aligned)
            pair(root, [manifest], export="real", clip_len=4, size=64, val_fraction=0.25,
                 quiet=True)  # fmt: skip

    for step in range(64):
        with monkeypatch.context() as m:
            killed_at_write(m, step)
            try:
                export()
            except KeyboardInterrupt:
                pass
            else:
                break
        before = loaded_ids(dataset, tmp_path / "hf")
        assert not is_dataset(dataset) or not verify(dataset)["ok"], step
        export()
        assert before in (None, recorded_ids(dataset)), step
        assert loaded_ids(dataset, tmp_path / "hf") == recorded_ids(dataset), step
        assert verify(dataset)["ok"], step
        shutil.rmtree(dataset)
    assert step > 4 and set(scan(dataset)["real"]) == {"train", "validation"}


def loaded_sizes(dataset: Path, cache: Path) -> set[int] | None:
    """The sides of the LQ frames of every row `load_dataset(dataset)` gives (all configs and
    splits), or None where it fails, saying why (as `loaded_ids`)."""
    import datasets
    from datasets.data_files import EmptyDatasetError
    from datasets.exceptions import NonMatchingSplitsSizesError

    cache = cache / f"{len(list(cache.glob('*'))) if cache.is_dir() else 0}"  # (none reused)
    try:
        loaded = [
            datasets.load_dataset(str(dataset), config, cache_dir=str(cache))
            for config in datasets.get_dataset_config_names(str(dataset))
        ]
    except (FileNotFoundError, EmptyDatasetError, NonMatchingSplitsSizesError, ValueError) as e:
        assert str(e), e
        return None
    return {im.size[0] for d in loaded for s in d for row in d[s] for im in row["lq"]}


def test_a_re_export_killed_between_any_two_writes_never_loads_both_exports(
    catalog_root: tuple[Path, Path, list[int | None]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Exported again with another --size (the same rows, other pixels) and killed between any
    two writes, a re-export leaves a dataset that `load_dataset` refuses or loads as one export,
    all old or all new (the old card's patterns took the new train shards beside the old
    validation shards, silently: their row counts agree); the re-run completes it and `verify`
    passes. `verify` passes none of them but the old export whole, and its repair loads no mix
    either."""
    from filmdata.verify import verify

    root, manifest, _ = catalog_root
    dataset = root / "datasets" / "real"

    def export(size: int) -> None:
        with pytest.raises(ItemsFailed):  # (the fixture's other pair cannot be aligned)
            pair(root, [manifest], export="real", clip_len=4, size=size, val_fraction=0.25,
                 quiet=True)  # fmt: skip

    for step in range(64):
        export(64)
        assert loaded_sizes(dataset, tmp_path / "hf") == {64}
        with monkeypatch.context() as m:
            killed_at_write(m, step)
            try:
                export(48)
            except KeyboardInterrupt:
                pass
            else:
                break
        sizes = loaded_sizes(dataset, tmp_path / "hf")
        assert sizes in (None, {64}, {48}), step
        assert not verify(dataset)["ok"] or sizes == {64}, step  # ok: the old export, whole
        verify(dataset, repair=True)  # (its card, rewritten from the record, names no old shard)
        assert loaded_sizes(dataset, tmp_path / "hf") in (None, {64}, {48}), step
        export(48)
        assert loaded_sizes(dataset, tmp_path / "hf") == {48}, step
        assert loaded_ids(dataset, tmp_path / "hf") == recorded_ids(dataset), step
        assert verify(dataset)["ok"], step
        shutil.rmtree(dataset)
    assert step > 4 and set(scan(dataset)["real"]) == {"train", "validation"}


def test_re_export_without_validation_drops_the_old_split(
    catalog_root: tuple[Path, Path, list[int | None]],
) -> None:
    """Exported again with --val-fraction 0, the windows held out before are in train now: the
    old validation shards, their record and the card's mention of them must go."""
    root, manifest, _ = catalog_root
    ds = root / "datasets" / "real"
    for fraction in (0.25, 0.0):
        with pytest.raises(ItemsFailed):  # (the fixture's other pair cannot be aligned)
            pair(root, [manifest], export="real", clip_len=4, size=64, val_fraction=fraction,
                 quiet=True)  # fmt: skip
        if fraction:
            assert "validation" in scan(ds)["real"]
    assert set(scan(ds)["real"]) == {"train"}
    assert not list((ds / "data" / "real").glob("validation-*"))
    record = json.loads((ds / "data" / "real" / RECORD).read_text())
    assert set(record["plan"]) == {"train"}
    assert "validation" not in (ds / "README.md").read_text()


def test_an_export_with_nothing_to_export_is_a_failed_item(
    runner: CliRunner, catalog_root: tuple[Path, Path, list[int | None]]
) -> None:
    """The pairs were aligned and recorded, so nothing to export is not a refusal: exit 1 with
    the table and why, the pair kept as aligned; with no pair at all, refused (exit 2)."""
    root, manifest, _ = catalog_root
    args = ["pair", "--root", str(root), "-m", str(manifest), "--export", "real", "-q"]
    r = runner.invoke(app, [*args, "--clip-len", "1000"])
    assert r.exit_code == 1, r.output
    assert "song" in r.output and "aligned" in r.output  # the table
    assert "song: no window of 1000 aligned frames" in r.output
    assert "nothing exported" in r.output
    assert not (root / "datasets" / "real" / "data").exists()
    with Catalog.at_root(root) as cat:
        assert cat.row("pairs", {"manifest": "tapes", "id": "song"})["status"] == "aligned"
    empty = root / "none.yaml"
    empty.write_text("name: none\nsources: []\n")
    r = runner.invoke(app, ["pair", "--root", str(root), "-m", str(empty), "--export", "x"])
    assert r.exit_code == 2 and "no pairs in the manifests" in r.output


def test_pair_refuses_bad_options(runner: CliRunner, root: Path) -> None:
    r = runner.invoke(app, ["pair", "--root", str(root), "--clip-len", "0"])
    assert r.exit_code == 2 and r.output.startswith("error:")
    r = runner.invoke(app, ["pair", "--root", str(root), "--manifest", str(root / "no.yaml")])
    assert r.exit_code == 2 and "no such file" in r.output
    missing = root / "mistyped"
    r = runner.invoke(app, ["pair", "--root", str(missing), "--json"])
    assert r.exit_code == 2 and f"--root {missing}: no catalog" in r.output, r.output
    assert not missing.exists()


def test_an_export_name_that_is_no_dataset_name_is_refused_before_aligning(
    runner: CliRunner, catalog_root: tuple[Path, Path, list[int | None]]
) -> None:
    """`--export NAME` names a folder under ROOT/datasets, as synth's --name does: a path
    ('../x' wrote a dataset outside the root) or a name a file holds (a FileExistsError
    traceback after the alignment) is refused before any pair is aligned (exit 2)."""
    root, manifest, _ = catalog_root
    (root / "datasets").mkdir()
    (root / "datasets" / "taken").write_text("a file")
    for name, says in [("../escape", "--export must be a slug"), ("taken", "is a file")]:
        args = ["pair", "--root", str(root), "-m", str(manifest), "--export", name, "-q"]
        r = runner.invoke(app, args)
        assert r.exit_code == 2 and says in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1, r.output
    assert not (root.parent / "escape").exists()
    with Catalog.at_root(root) as cat:  # refused before anything was aligned
        assert cat.row("pairs", {"manifest": "tapes", "id": "song"}) is None


def test_a_pair_whose_gt_is_hdr_is_left_out_of_the_export(root: Path) -> None:
    """An aligned pair whose GT is an HDR video (PQ code values, not SDR pixels) makes no real
    rows: it is left out of the export, saying why (and, none left, nothing is written)."""
    from conftest import write_hdr
    from filmdata.pairing.pair import export_real

    raw = root / "raw" / "m"
    raw.mkdir(parents=True)
    write_hdr(raw / "master.mkv", 16, frames=24)
    write_hdr(raw / "tape.mkv", 1, frames=24)  # (transfer 1: BT.709, an SDR tape)
    with Catalog.at_root(root) as cat:
        for sid, kind in (("master", "hd"), ("tape", "vhs")):
            cat.upsert_source({"manifest": "m", "id": sid, "kind": kind, "status": "fetched",
                               "path": f"raw/m/{sid}.mkv"})  # fmt: skip
        pairs = [{"manifest": "m", "id": "song", "lq": "tape", "gt": "master",
                  "mapping": list(range(24)), "transform": np.eye(3).tolist()}]  # fmt: skip
        out = export_real(root, "real", pairs, cat, False, 4, 32, 0.0)
    assert out["real"] == {} and len(out["left_out"]) == 1
    assert out["left_out"][0].startswith("song: GT master is an HDR video (PQ")
    assert not (root / "datasets" / "real" / "data").exists()


TWO_TAPES = """\
name: m
sources:
  - {id: tape-a, path: a.mp4, kind: vhs}
  - {id: tape-b, path: b.mp4, kind: vhs}
  - {id: master, path: c.mp4, kind: hd}
pairs:
  - {id: a, lq: tape-a, gt: master}
  - {id: b, lq: tape-b, gt: master}
"""


def _two_tapes_of_one_master(root: Path) -> Path:
    """A root with one master and two tapes of it (the second stops halfway), fetched; the
    manifest pairing each with it."""
    raw = root / "raw" / "m"
    master = raw / "master.mp4"
    write_video(master, render_footage(192, 108, (30, 30, 30), seed=3), 24.0)
    kw = dict(size=(160, 120), head=6, ident=3, start=2.4, blur=0.8, smear=2.0)
    make_tape(master, raw / "tape-a.mp4", TapeSpec(seed=3, **kw))  # type: ignore[arg-type]
    make_tape(master, raw / "tape-b.mp4", TapeSpec(seed=4, frames=50, **kw))  # type: ignore[arg-type]
    with Catalog.at_root(root) as cat:
        for sid in ("tape-a", "tape-b", "master"):
            cat.upsert_source({"manifest": "m", "id": sid, "status": "fetched",
                               "kind": "hd" if sid == "master" else "vhs",
                               "path": f"raw/m/{sid}.mp4"})  # fmt: skip
    manifest = root / "m.yaml"
    manifest.write_text(TWO_TAPES)
    return manifest


def test_two_tapes_of_one_master_put_no_gt_frame_in_both_splits(root: Path) -> None:
    """Held out per pair, the second tape's last stretch (the master's middle: it stops
    halfway) was validation while the first tape's windows of the same GT frames were train.
    The split is made on the master's timeline, over both tapes' windows."""
    manifest = _two_tapes_of_one_master(root)
    out = pair(root, [manifest], export="ds", clip_len=4, size=64, val_fraction=0.25, quiet=True)
    assert out["dataset"]["real"]["validation"] >= 3
    seen: dict[str, set[int]] = {"train": set(), "validation": set()}
    tapes: dict[str, set[str]] = {"train": set(), "validation": set()}
    for shard in (root / "datasets" / "ds" / "data" / "real").glob("*.parquet"):
        split = shard.name.split("-")[0]
        for row in read_shard(shard).to_pylist():
            seen[split] |= set(json.loads(row["degradation"])["gt_frames"])
            tapes[split].add(row["source"])
    assert seen["train"] and seen["validation"]
    assert not seen["train"] & seen["validation"]
    assert max(seen["train"]) < min(seen["validation"])  # the master's last stretch
    assert tapes["train"] == {"tape-a", "tape-b"}


def test_an_export_beside_a_synthetic_config_keeps_it_in_the_catalog(
    runner: CliRunner, catalog_root: tuple[Path, Path, list[int | None]]
) -> None:
    """`pair --export NAME` into a dataset synth made: the catalog's record of the dataset
    lists both configs and keeps synth's params beside the export's (the export replaced it
    with its own params alone, and no configs or splits)."""
    from filmdata.degrade.presets import bundled_dir
    from filmdata.synth import synth

    root, manifest, _ = catalog_root
    gt = root / "raw" / "tapes" / "song-hd.mp4"
    synth(bundled_dir(), "film", [gt], name="both", root=root, clip_len=4, size=32,
          device="cpu", max_windows=3, quiet=True)  # fmt: skip
    with pytest.raises(ItemsFailed):  # (the fixture's other pair cannot be aligned)
        pair(root, [manifest], export="both", clip_len=4, size=64, quiet=True)
    with Catalog.at_root(root) as cat:
        (ds,) = cat.datasets()
    assert set(ds["configs"]) == {"synthetic", "real"}
    assert ds["splits"]["synthetic"] == {"train": 3} and ds["splits"]["real"]["train"] >= 3
    assert ds["params"]["synthetic"]["preset"] == "film"
    assert ds["params"]["real"] == {"gt_scale": False, "clip_len": 4, "size": 64}
    listed = runner.invoke(app, ["datasets", "--root", str(root), "--json"])
    assert json.loads(listed.output)[0]["configs"] == ["real", "synthetic"]
    card = (root / "datasets" / "both" / "README.md").read_text()
    assert "config_name: synthetic" in card and "config_name: real" in card


def test_the_pairs_of_a_fetched_manifest_are_aligned_without_naming_it_again(
    runner: CliRunner, tmp_path: Path
) -> None:
    """One manifest: `fetch` records its pairs, so `pair` alone aligns them (before, it
    printed "(none)": only `pair --manifest` told the catalog of them). Fetching the manifest
    again keeps an aligned pair's result; a pair given another tape is aligned afresh."""
    src = tmp_path / "captures"
    src.mkdir()
    write_video(src / "song-hd.mp4", render_footage(192, 108, (30, 30, 30), seed=3), 24.0)
    spec = TapeSpec(size=(160, 120), head=6, ident=3, start=2.4, blur=0.8, smear=2.0, seed=3)
    truth = make_tape(src / "song-hd.mp4", src / "song-vhs.mp4", spec).mapping
    manifest = src / "tapes.yaml"
    text = (
        "name: tapes\nsources:\n"
        "  - {id: song-vhs, path: song-vhs.mp4, kind: vhs}\n"
        "  - {id: song-hd, path: song-hd.mp4, kind: hd}\n"
        "  - {id: song-vhs2, path: song-vhs.mp4, kind: vhs}\n"
        "pairs:\n  - {id: song, lq: song-vhs, gt: song-hd}\n"
    )
    manifest.write_text(text)
    root = tmp_path / "root"
    r = runner.invoke(app, ["fetch", str(manifest), "--root", str(root), "-q"])
    assert r.exit_code == 0, r.output
    with Catalog.at_root(root) as cat:
        assert [(p["id"], p["status"]) for p in cat.pairs()] == [("song", "pending")]

    r = runner.invoke(app, ["pair", "--root", str(root), "-q"])
    assert r.exit_code == 0, r.output
    with Catalog.at_root(root) as cat:
        song = cat.row("pairs", {"manifest": "tapes", "id": "song"})
    assert song is not None and song["status"] == "aligned"
    assert frame_accuracy(truth, song["mapping"]) >= 0.95

    r = runner.invoke(app, ["fetch", str(manifest), "--root", str(root), "-q"])
    assert r.exit_code == 0, r.output
    with Catalog.at_root(root) as cat:
        assert cat.row("pairs", {"manifest": "tapes", "id": "song"}) == song

    manifest.write_text(text.replace("lq: song-vhs,", "lq: song-vhs2,"))
    r = runner.invoke(app, ["fetch", str(manifest), "--root", str(root), "-q"])
    assert r.exit_code == 0, r.output
    with Catalog.at_root(root) as cat:
        again = cat.row("pairs", {"manifest": "tapes", "id": "song"})
    assert again is not None and again["lq"] == "song-vhs2"
    assert again["status"] == "pending" and again["mapping"] is None


def test_pair_with_no_pairs_says_where_they_come_from(runner: CliRunner, root: Path) -> None:
    with Catalog.at_root(root):
        pass
    r = runner.invoke(app, ["pair", "--root", str(root), "-q"])
    assert r.exit_code == 0, r.output
    assert "fetch a manifest with pairs, or pass --manifest" in r.output


def test_a_pair_whose_tape_matches_no_gt_frame_fails(runner: CliRunner, root: Path) -> None:
    """A tape paired with the wrong GT (another programme): no frame matched, yet the pair was
    recorded `aligned` and `pair` exited 0. It fails, saying no frame matched and naming both
    files; the alignment is kept in the catalog for a look."""
    raw = root / "raw" / "tapes"
    write_video(raw / "song-hd.mp4", render_footage(192, 108, (30, 30, 30), seed=3), 24.0)
    spec = TapeSpec(size=(160, 120), head=6, ident=3, start=2.4, blur=0.8, smear=2.0, seed=3)
    make_tape(raw / "song-hd.mp4", raw / "song-vhs.mp4", spec)
    write_video(raw / "other-hd.mp4", render_footage(192, 108, (45, 45), seed=11), 24.0)
    with Catalog.at_root(root) as cat:
        for sid in ("song-vhs", "other-hd"):
            cat.upsert_source(
                {
                    "manifest": "tapes",
                    "id": sid,
                    "kind": "vhs" if sid.endswith("vhs") else "hd",
                    "status": "fetched",
                    "path": f"raw/tapes/{sid}.mp4",
                }
            )
    manifest = root / "wrong.yaml"
    manifest.write_text(
        "name: tapes\nsources:\n  - {id: song-vhs, path: song-vhs.mp4, kind: vhs}\n"
        "  - {id: other-hd, path: other-hd.mp4, kind: hd}\n"
        "pairs:\n  - {id: wrong, lq: song-vhs, gt: other-hd}\n"
    )
    r = runner.invoke(app, ["pair", "--root", str(root), "--manifest", str(manifest), "-q"])
    assert r.exit_code == 1, r.output
    with Catalog.at_root(root) as cat:
        row = cat.row("pairs", {"manifest": "tapes", "id": "wrong"})
    assert row is not None and row["status"] == "failed", row
    assert "no frame of song-vhs.mp4 matched other-hd.mp4" in row["error"]
    assert row["mapping"] is not None and not any(m is not None for m in row["mapping"])


def test_an_export_says_which_pairs_have_windows_smaller_than_size(
    runner: CliRunner, catalog_root: tuple[Path, Path, list[int | None]]
) -> None:
    """A --size larger than a tape's picture gives that pair windows as large as the picture:
    said in the output (and the JSON), where it used to be silent."""
    root, manifest, _ = catalog_root
    args = ["pair", "--root", str(root), "--manifest", str(manifest), "-q", "--clip-len", "4"]
    r = runner.invoke(app, [*args, "--export", "big", "--size", "512"])
    assert r.exit_code == 1, r.output  # (the other pair fails, as above)
    (line,) = [s for s in r.output.splitlines() if s.startswith("note: ")]
    assert "song: windows of" in line and "--size 512" in line
    side = int(line.split("windows of ")[1].split()[0])
    row = read_shard(next((root / "datasets" / "big" / "data" / "real").glob("*.parquet")))
    assert row.to_pylist()[0]["crop"]["w"] == side < 512
    r = runner.invoke(app, [*args, "--export", "small", "--size", "64", "--json"])
    assert json.loads(r.stdout)["dataset"]["smaller"] == []


@pytest.mark.parametrize("loose", [0, 1])
def test_export_windows_stay_inside_a_letterbox_found_on_small_frames(loose: int) -> None:
    """The tape's active box is found on frames 160 px wide: on a 480 px tape its edges are
    small pixels (3 tape px) that hold the picture's edge, and a heavy tape's noisy bar may
    add one more (a 2.35:1 remaster in 720p, its PAL tape at crf 45: box top 66, the picture
    from 69.4). The exported window stays inside the picture, not over the bars."""
    from filmdata.pairing.pair import _crop
    from filmdata.pairing.tapesim import tape_transform

    t = tape_transform(TapeSpec(size=(480, 360)), 1280, 720)
    # the remaster's own bars: its picture is rows 88..631 (1280x544 in 1280x720)
    top, bottom = (t[1, 1] * r + t[1, 2] for r in (87.5, 631.5))  # tape px: 69.4, 288.8
    k = 3  # tape px a small pixel
    y0 = k * (np.floor(top / k) - loose)
    y1 = k * (np.ceil(bottom / k) + loose)
    x, y, s = _crop([t], (1280, 720), (480, 360), [0.0, y0, 480.0, y1 - y0], 256)
    assert y - 0.5 >= top and y + s - 0.5 <= bottom, (y, s, top, bottom)
    assert s >= bottom - top - 2 * (2 * k + 1)  # a margin, not a window made much smaller
    # a tape whose one part is named twice (its transform and one segment) is cut the same
    twice = _crop([t, t.copy()], (1280, 720), (480, 360), [0.0, y0, 480.0, y1 - y0], 256)
    assert twice == (x, y, s)


def test_export_windows_stay_inside_the_picture_of_every_part_of_a_relocked_tape() -> None:
    """A tape whose picture moves part-way (a re-locked capture: `quality.segments`) is cut
    with one LQ crop for all its windows: it stays inside each part's picture, its bars moved
    with it (tapesim's `relock` of a 2.35:1 remaster in 720p: the picture 12 px right and 8 px
    up halfway, the active box found over both halves [9, 60, 471, 222]; the first half's
    windows held 3.9 px of its top bar)."""
    from filmdata.pairing.pair import _crop
    from filmdata.pairing.tapesim import tape_transform

    t0 = tape_transform(TapeSpec(size=(480, 360)), 1280, 720)
    t1 = np.array([[1, 0, 12.0], [0, 1, -8.0], [0, 0, 1]]) @ t0
    box = [9.0, 60.0, 471.0, 222.0]
    for first in (t0, t1):  # either part's geometry the pair's own transform
        second = t1 if first is t0 else t0
        x, y, s = _crop([first, second], (1280, 720), (480, 360), box, 256)
        for t in (t0, t1):
            # the picture of this part: the remaster's rows 88..631, all its columns
            left, top = t[0, 0] * -0.5 + t[0, 2], t[1, 1] * 87.5 + t[1, 2]
            right, bottom = t[0, 0] * 1279.5 + t[0, 2], t[1, 1] * 631.5 + t[1, 2]
            assert y - 0.5 >= top and y + s - 0.5 <= bottom, (y, s, top, bottom)
            assert x - 0.5 >= left and x + s - 0.5 <= right, (x, s, left, right)
