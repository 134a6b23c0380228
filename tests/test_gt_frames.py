"""Configs of one dataset never leak into each other: `synthetic` (synth) and `real` (pair
--export) cut their GT from the same HD files, and no GT frame of a file is in train of one
and validation of the other, whichever is written first; `verify` names a leak."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from filmdata.catalog import Catalog
from filmdata.cli import app
from filmdata.errors import RefusedError
from filmdata.gt_frames import Held
from filmdata.pairing.pair import export_real, pair
from filmdata.pairing.tapesim import TapeSpec, make_tape, render_footage
from filmdata.shards import read_record, read_shard, write_record, write_split
from filmdata.synth import synth
from filmdata.verify import verify
from filmdata.video import write_video
from filmdata.windows import Clip, plan_honouring

MANIFEST = """\
name: tapes
sources:
  - {id: song-vhs, path: song-vhs.mp4, kind: vhs}
  - {id: song-hd, path: song-hd.mp4, kind: hd}
  - {id: other-hd, path: other-hd.mp4, kind: hd}
pairs:
  - {id: song, lq: song-vhs, gt: song-hd}
"""
CLIP_LEN = 4


def _templates() -> Path:
    from filmdata.degrade.presets import bundled_dir

    return bundled_dir()


@pytest.fixture(scope="module")
def aligned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root whose catalog has two HD sources (song-hd, 90 frames, whose kept clip starts
    mid-source at frame 6; other-hd, 60 frames) and a tape of song-hd, aligned."""
    root = tmp_path_factory.mktemp("leak") / "root"
    raw = root / "raw" / "tapes"
    raw.mkdir(parents=True)
    write_video(raw / "song-hd.mp4", render_footage(192, 108, (30, 30, 30), seed=3), 24.0)
    write_video(raw / "other-hd.mp4", render_footage(192, 108, (30, 30), seed=5), 24.0)
    spec = TapeSpec(size=(160, 120), head=6, ident=3, start=2.4, blur=0.8, smear=2.0, seed=3)
    make_tape(raw / "song-hd.mp4", raw / "song-vhs.mp4", spec)
    with Catalog.at_root(root) as cat:
        for sid, frames in (("song-vhs", 0), ("song-hd", 90), ("other-hd", 60)):
            cat.upsert_source({"manifest": "tapes", "id": sid, "status": "fetched",
                               "kind": sid.split("-")[1], "path": f"raw/tapes/{sid}.mp4",
                               "sha256": f"{sid}-sha" if sid == "song-hd" else None,
                               "width": 192, "height": 108, "fps": 24.0})  # fmt: skip
            if not frames:
                continue
            a = 6 if sid == "song-hd" else 0  # a clip that starts mid-source
            cat.replace_many("clips", {"source": sid}, [
                {"id": f"{sid}.{a}-{frames}", "manifest": "tapes", "source": sid, "scene": 0,
                 "start_frame": a, "end_frame": frames, "fps": 24.0, "start_time": a / 24,
                 "end_time": frames / 24, "status": "kept"}])  # fmt: skip
    manifest = root / "tapes.yaml"
    manifest.write_text(MANIFEST)
    pair(root, [manifest], quiet=True)  # aligned once; each test exports
    return root


def _export(root: Path, name: str, fraction: float = 0.25) -> dict:
    with Catalog.at_root(root) as cat:
        return export_real(root, name, cat.pairs(status="aligned"), cat, False, CLIP_LEN, 64,
                           fraction)  # fmt: skip


def _synth(root: Path, name: str, **kw) -> dict:
    return synth(_templates(), "film", root=root, name=name, clip_len=CLIP_LEN, size=32,
                 device="cpu", quiet=True, **{"val_fraction": 0.3, **kw})  # fmt: skip


def _frames(dataset: Path) -> dict[tuple[str, str], dict[str, set[int]]]:
    """{(config, split): {GT source: its GT frames}} of every row."""
    out: dict[tuple[str, str], dict[str, set[int]]] = {}
    for shard in sorted((dataset / "data").glob("*/*.parquet")):
        config, split = shard.parent.name, shard.name.split("-")[0]
        for row in read_shard(shard).to_pylist():
            if config == "real":
                deg = json.loads(row["degradation"])
                source, frames = deg["gt"], set(deg["gt_frames"])
            else:
                source = row["source"]
                frames = set(range(row["start_frame"], row["start_frame"] + len(row["gt"])))
            out.setdefault((config, split), {}).setdefault(source, set()).update(frames)
    return out


def _assert_no_leak(dataset: Path) -> None:
    """No GT frame of a source in train of one config and within a window of validation of
    the other."""
    f = _frames(dataset)
    for a, b in (("synthetic", "real"), ("real", "synthetic")):
        train, val = f.get((a, "train"), {}), f.get((b, "validation"), {})
        for source in set(train) & set(val):
            near = min(abs(x - y) for x in train[source] for y in val[source])
            assert near > CLIP_LEN, (a, b, source, near)


@pytest.mark.parametrize("first", ["synthetic", "real"])
def test_both_configs_in_either_order_put_no_gt_frame_in_both_splits(
    aligned: Path, first: str
) -> None:
    """Before, synth held out one of the two HD sources whole (or put all of it in train)
    while the export held out song-hd's last stretch: song-hd's GT frames were in train of
    one config and validation of the other."""
    name = f"both-{first}"
    if first == "synthetic":
        s = _synth(aligned, name)
        out = _export(aligned, name)
    else:
        out = _export(aligned, name)
        s = _synth(aligned, name)
    dataset = aligned / "datasets" / name
    _assert_no_leak(dataset)
    f = _frames(dataset)
    assert f[("real", "train")] or f[("real", "validation")]
    assert sum(out["real"].values()) > 0 and sum(s["splits"]["synthetic"].values()) > 0
    # the windows near both splits of the other config are counted
    assert s["windows_left_out_across_configs"] >= 0
    assert out["windows_left_out_across_configs"] >= 0
    for config in ("synthetic", "real"):
        frames = read_record(dataset, config)["gt_frames"]
        assert set(frames["keys"]) >= {"song-hd-sha"}  # the catalog's sha256 names song-hd
    report = verify(dataset)
    assert report["ok"] and report["leaks"] == [], report["leaks"]


def test_synth_after_pair_honours_the_real_split_and_other_sources_split_alone(
    aligned: Path,
) -> None:
    """song-hd's windows follow the real config's split (its last stretch validation); the
    other HD source, which no other config uses, is split by synth's own rules."""
    _export(aligned, "after")
    _synth(aligned, "after")
    f = _frames(aligned / "datasets" / "after")
    real_val = min(f[("real", "validation")]["song-hd"])
    assert min(f[("synthetic", "validation")]["song-hd"]) >= real_val - CLIP_LEN
    assert max(f[("synthetic", "train")]["song-hd"]) < real_val - CLIP_LEN
    other = {s: f.get(("synthetic", s), {}).get("other-hd", set()) for s in ("train", "validation")}
    assert other["train"] and other["validation"]  # its last stretch, as from one source alone
    assert max(other["train"]) < min(other["validation"])


def test_a_resume_keeps_its_plan_and_refuses_when_the_other_config_now_leaks(
    aligned: Path,
) -> None:
    """A re-run of synth plans against the other configs' frames its record says it was
    planned against: unchanged, nothing is re-made; where another config changed since so
    that a frame synth holds in train is validation there, the resume is refused."""
    _export(aligned, "resume")
    first = _synth(aligned, "resume")
    dataset = aligned / "datasets" / "resume"
    again = _synth(aligned, "resume")
    assert again["windows_made"] == 0 and again["splits"] == first["splits"]
    # the real config rewritten by hand (as an older filmdata would): song-hd all validation
    record = read_record(dataset, "real")
    keys = record["gt_frames"]["keys"]
    keys["song-hd-sha"]["validation"] = [[0, 90]]
    keys["song-hd-sha"]["train"] = []
    write_record(dataset, "real", record)
    with pytest.raises(
        RefusedError, match=r"resume.*'real' changed since config 'synthetic'.*--overwrite"
    ):
        _synth(aligned, "resume")
    redone = _synth(aligned, "resume", overwrite=True)  # re-planned against the change
    assert redone["windows_made"] > 0
    assert "song-hd" not in _frames(dataset).get(("synthetic", "train"), {})


def test_verify_names_a_leak_across_configs(aligned: Path, runner: CliRunner) -> None:
    """A dataset made by hand the way it was made before: synth's validation is the last
    stretch of song-hd (an --input), and real rows of a record without GT frames put those
    frames in train; verify finds them from the rows and names the dataset, both configs,
    the source and a frame."""
    dataset = aligned / "datasets" / "hand"
    gt = aligned / "raw" / "tapes" / "song-hd.mp4"
    synth(_templates(), "film", [gt], out=dataset, root=aligned, clip_len=CLIP_LEN, size=32,
          device="cpu", val_fraction=0.3, quiet=True)  # fmt: skip
    val = _frames(dataset)[("synthetic", "validation")]["song-hd"]
    frame = min(val)
    img = np.zeros((8, 8, 3), np.uint8)
    row = {
        "id": f"tapes.song.{frame}", "source": "song-vhs", "clip": "song",
        "start_frame": frame, "fps": 24.0, "crop": {"x": 0, "y": 0, "w": 8, "h": 8},
        "gt": [img] * CLIP_LEN, "lq": [img] * CLIP_LEN,
        "degradation": json.dumps({"origin": "real", "gt": "song-hd",
                                   "gt_frames": list(range(frame, frame + CLIP_LEN))}),
        "origin": "real",
    }  # fmt: skip
    write_split(dataset, "real", "train", [row])
    assert "gt_frames" not in read_record(dataset, "real")  # as made before
    report = verify(dataset, root=aligned)
    assert not report["ok"]
    (line,) = report["leaks"]
    assert str(dataset) in line and "'real' train" in line and "'synthetic' validation" in line
    assert "song-hd" in line and f"GT frame {frame} " in line
    r = runner.invoke(app, ["verify", str(dataset), "--root", str(aligned)])
    assert r.exit_code == 1
    assert "leak:" in r.output and "leak(s) across configs" in r.output


def test_plan_honouring_is_deterministic_and_counts_source_frames() -> None:
    """Windows of a clip that starts mid-source are matched by their source frames; the same
    inputs make the same plan."""
    clips = [
        Clip("a", "a.20-60", "/x/a.mp4", 20, 60, 24.0, (0, 0, 64, 64)),
        Clip("b", "b.0-40", "/x/b.mp4", 0, 40, 24.0, (0, 0, 64, 64)),
    ]
    keys = {"/x/a.mp4": "A", "/x/b.mp4": "B"}
    # another config: A's frames [0, 36) train, [42, 60) validation
    held = Held({"A": {"train": [[0, 36]], "validation": [[42, 60]]}}, 4, ("real",))
    kw = dict(clip_len=4, size=16, stride=None, seed=0, val_fraction=0.25)
    splits, left = plan_honouring(clips, held, keys, **kw)  # type: ignore[arg-type]
    assert (splits, left) == plan_honouring(clips, held, keys, **kw)  # type: ignore[arg-type]
    a = {s: [w.start_frame for w in ws if w.source == "a"] for s, ws in splits.items()}
    assert a["train"] == [20, 24, 28, 32]  # touch [0, 36) (frames 20-35: the source's)
    assert a["validation"] == [40, 44, 48, 52, 56]  # come within a window of [42, 60)
    assert [w.start_frame for w in left] == [36]  # [36, 40) touches both
    b = {s: [w.start_frame for w in ws if w.source == "b"] for s, ws in splits.items()}
    assert b["train"] and b["validation"] and max(b["train"]) + 8 <= min(b["validation"])


def test_an_export_refuses_when_synth_wrote_between_its_planning_and_its_writing(
    aligned: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pair --export reads the other configs' GT frames before it plans, outside the dataset's
    lock: a synth run that finishes meanwhile (planned without the export's frames) is checked
    under the lock before the export records its plan, as synth checks. Before, the export
    wrote its plan against no `synthetic` config: song-hd's last stretch validation here and
    train there (verify: a leak)."""
    import filmdata.pairing.pair as pairing

    planned, calls = pairing.held_by_others, []

    def synth_meanwhile(dataset: Path, config: str, root: Path | None) -> Held:
        held = planned(dataset, config, root)
        if not calls:  # the plan's read: synth finishes after it
            calls.append(_synth(aligned, "race"))
        return held

    monkeypatch.setattr(pairing, "held_by_others", synth_meanwhile)
    dataset = aligned / "datasets" / "race"
    with pytest.raises(RefusedError, match=r"race.*'synthetic'.*GT frame .*export again"):
        _export(aligned, "race")
    assert "real" not in {p.name for p in (dataset / "data").iterdir()}  # nothing written
    monkeypatch.undo()
    out = _export(aligned, "race")  # again: planned against synth's frames
    assert sum(out["real"].values()) > 0
    _assert_no_leak(dataset)
    assert verify(dataset)["leaks"] == []


def test_an_export_says_why_a_gt_has_no_validation_when_synth_holds_it_all_in_train(
    aligned: Path, runner: CliRunner
) -> None:
    """synth's default --val-fraction 0 puts every song-hd frame in train; an export after it
    (default --val-fraction 0.1) honours that and has no validation split: correct, and said.
    Before, the summary and the CLI showed `real {'train': 21}` and nothing else."""
    _synth(aligned, "noval", val_fraction=0.0)
    args = ["pair", "--root", str(aligned), "--export", "noval", "--clip-len", str(CLIP_LEN)]
    r = runner.invoke(app, [*args, "--size", "64", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "real {'train':" in r.output and "validation" in r.output  # no validation split...
    (line,) = [x for x in r.output.splitlines() if x.startswith("no validation")]
    assert "'song-hd'" in line and "'synthetic'" in line and "train" in line  # ...and why
    out = _export(aligned, "noval")
    assert "validation" not in out["real"]
    assert len(out["no_validation_across_configs"]) == 1
    assert _export(aligned, "noval", fraction=0.0)["no_validation_across_configs"] == []


def test_synth_says_why_a_source_has_no_validation_when_the_export_holds_it_in_train(
    aligned: Path, runner: CliRunner
) -> None:
    """The other order: an export at --val-fraction 0 holds every song-hd frame in train; synth
    of song-hd at --val-fraction 0.3 honours that and has no validation split: said. Before,
    the CLI showed `synthetic train 22` and nothing else."""
    _export(aligned, "noval2", fraction=0.0)
    gt = aligned / "raw" / "tapes" / "song-hd.mp4"
    args = ["synth", "--root", str(aligned), "--name", "noval2", "--input", str(gt)]
    args += ["--templates", str(_templates()), "--preset", "film", "--clip-len", str(CLIP_LEN)]
    r = runner.invoke(app, [*args, "--size", "32", "--device", "cpu", "--val-fraction", "0.3"])
    assert r.exit_code == 0, r.output
    (line,) = [x for x in r.output.splitlines() if x.startswith("no validation")]
    assert "'song-hd'" in line and "'real'" in line and "train" in line
    summary = _synth(aligned, "noval2", inputs=[gt])  # (a resume: the same plan)
    assert "validation" not in summary["splits"]["synthetic"]
    assert len(summary["no_validation_across_configs"]) == 1


def test_the_note_on_validation_does_not_refuse_a_plan_that_honours_the_others(
    tmp_path: Path,
) -> None:
    """Whether a source would have validation windows alone is a note only: planned alone, a
    clip of two windows at --val-fraction 0.5 cannot keep a train split ("too few windows"),
    but the plan that honours another config (its frames all train there) is whole, and was
    refused with that other plan's message."""
    from filmdata.synth import _plan_windows

    clip = tmp_path / "two.mp4"
    write_video(clip, render_footage(64, 48, (8,), seed=4), 24.0)
    key = str(clip.resolve())
    held = Held({key: {"train": [[0, 8]], "validation": []}}, 4, ("real",))
    kw = dict(clip_len=4, size=16, stride=None, seed=0, val_fraction=0.5, max_windows=None)
    planned, windows = _plan_windows([clip], tmp_path, (), kw, held=held)
    assert [len(planned.splits[s]) for s in planned.splits] == [2] and len(windows) == 2
    assert planned.no_validation == []  # (alone it has no plan at all: nothing to say)
