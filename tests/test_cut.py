"""`cut`, `filmdata cut` and `filmdata clips`: curation recorded, idempotent, exact export."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from filmdata.catalog import Catalog
from filmdata.cli import app
from filmdata.errors import RefusedError
from filmdata.scenes.cut import cut, list_clips
from filmdata.synthetic import render_shots
from filmdata.video import probe, write_video

BAR = 12  # letterbox bar height in pixels (96x72 frames)


def _film(path: Path, seed: int = 5) -> Path:
    """Shot A (30), black (30), shot B (30), shot A again (30): letterboxed, 24 fps."""
    shots, _ = render_shots((30, 30), 96, 72, seed=seed)
    a, b = shots[:30], shots[30:]
    black = np.zeros_like(a)
    frames = np.concatenate([a, black, b, a])
    frames[:, :BAR] = 0
    frames[:, -BAR:] = 0
    write_video(path, frames, 24)
    return path


def _add_source(root: Path, sid: str, rel: str) -> None:
    with Catalog.at_root(root) as cat:
        cat.upsert_source(
            {"manifest": "m", "id": sid, "kind": "film", "status": "fetched", "path": rel}
        )


@pytest.fixture
def film_root(root: Path) -> Path:
    (root / "raw" / "m").mkdir(parents=True)
    _film(root / "raw" / "m" / "reel.mp4")
    _add_source(root, "reel", "raw/m/reel.mp4")
    return root


def test_curation_is_recorded(film_root: Path) -> None:
    report = cut(film_root, min_len=0.5, max_len=10, quiet=True)
    assert report.failed == []
    clips = list_clips(film_root)
    spans = [(c["start_frame"], c["end_frame"]) for c in clips]
    assert spans == [(0, 30), (30, 60), (60, 90), (90, 120)]
    by_start = {c["start_frame"]: c for c in clips}
    assert by_start[0]["status"] == "kept" and by_start[60]["status"] == "kept"
    assert by_start[30]["status"] == "dropped" and by_start[30]["reason"].startswith("black")
    dup = by_start[90]
    assert dup["status"] == "dropped" and dup["reason"].startswith("duplicate of reel.0-30")
    # The letterbox bars are found: the active picture is the middle band.
    kept = by_start[0]
    assert kept["box_x"] == 0 and kept["box_w"] == 96
    assert abs(kept["box_y"] - BAR) <= 2 and abs(kept["box_h"] - (72 - 2 * BAR)) <= 3
    assert kept["id"] == "reel.0-30" and kept["detector"] == "film" and kept["phash"]


def test_long_scenes_split_and_short_dropped(film_root: Path) -> None:
    """--max-len 0.5 s (12 frames) splits each 30-frame scene; near-equal thirds (10 frames,
    0.42 s) would all be under --min-len 0.45 s, so 12-frame windows are cut from its start
    and the 6-frame rest is dropped as short."""
    cut(film_root, min_len=0.45, max_len=0.5, quiet=True)
    clips = list_clips(film_root)
    assert all(c["end_frame"] - c["start_frame"] <= 12 for c in clips)
    # Windows tile each scene exactly.
    spans = sorted((c["start_frame"], c["end_frame"]) for c in clips)
    assert spans[:3] == [(0, 12), (12, 24), (24, 30)]
    by_span = {(c["start_frame"], c["end_frame"]): c for c in clips}
    assert by_span[(0, 12)]["status"] == "kept"
    assert by_span[(24, 30)]["reason"].startswith("short:")


def _long_gop_reel(root: Path, lengths: tuple[int, ...], seed: int) -> Path:
    """A catalogued source of shots of `lengths` frames, one keyframe in 250 (none at cuts)."""
    shots, _ = render_shots(lengths, 96, 72, seed=seed)
    (root / "raw" / "m").mkdir(parents=True)
    path = root / "raw" / "m" / "reel.mp4"
    write_video(path, shots, 24, options={"g": "250", "sc_threshold": "0"})
    _add_source(root, "reel", "raw/m/reel.mp4")
    return path


def _decodes_counted(monkeypatch: pytest.MonkeyPatch, deinterlaced: bool = False) -> list[int]:
    """The start frame of each `video.iter_decoded` call from now on (with `deinterlaced`, of
    those asking for deinterlaced frames only)."""
    from filmdata import video

    starts: list[int] = []
    real = video.iter_decoded

    def counted(*a: object, **kw: object) -> object:
        if kw.get("deinterlace") or not deinterlaced:
            starts.append(int(a[1]) if len(a) > 1 else int(kw.get("start", 0)))  # type: ignore[call-overload]
        return real(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(video, "iter_decoded", counted)
    return starts


def test_a_flash_cut_is_sampled_in_the_one_pass(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window holding fewer than two of the pass's samples (every 6th frame; an 8-frame flash
    cut at 62 holds one) had its own frames read by a seek, decoded again from a keyframe at
    least a second before it (here, on a 250-frame GOP, from frame 0). They come from the same
    pass now, the same pixels."""
    from filmdata import video
    from filmdata.scenes import curate

    path = _long_gop_reel(root, (62, 8, 40), seed=3)
    starts = _decodes_counted(monkeypatch)
    cut(root, min_len=0.2, max_len=10, quiet=True)
    assert starts == [0]  # the samples' pass alone: no seek to the flash cut
    monkeypatch.undo()
    flash = {(c["start_frame"], c["end_frame"]): c for c in list_clips(root)}[62, 70]
    own = video.read_frames(path, 62, 70, gray=True, size=(96, 72), step=2)  # (a read of it)
    assert flash["stats"] == curate.stats(own) and flash["phash"] == curate.phash(own)


def test_cut_is_idempotent(film_root: Path) -> None:
    cut(film_root, min_len=0.5, quiet=True)
    first = [(c["id"], c["status"], c["reason"]) for c in list_clips(film_root)]
    cut(film_root, min_len=0.5, quiet=True)
    assert [(c["id"], c["status"], c["reason"]) for c in list_clips(film_root)] == first


def test_export_is_frame_exact(film_root: Path) -> None:
    cut(film_root, min_len=0.5, export=True, quiet=True)
    kept = list_clips(film_root, status="kept")
    assert kept
    for c in kept:
        assert c["path"] == f"clips/reel/{c['id']}.mp4"
        assert probe(film_root / c["path"]).frames == c["end_frame"] - c["start_frame"]
    assert all(c["path"] is None for c in list_clips(film_root, status="dropped"))


def test_export_decodes_a_sources_clips_in_one_pass(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A seek to each clip decoded from a keyframe at least a second before it: on a 250-frame
    GOP, from frame 0 for every clip. The clips are decoded on, one after the other, and get
    the very frames a read of each gives."""
    from filmdata import video
    from filmdata.scenes import cut as cut_module

    path = _long_gop_reel(root, (60, 60, 60), seed=2)
    # the exports' reads (the curation's pass is not deinterlaced)
    starts = _decodes_counted(monkeypatch, deinterlaced=True)
    written: dict[str, list[np.ndarray]] = {}
    real_write = cut_module.write_video

    def kept(target: Path, frames: object, *a: object, **kw: object) -> int:
        written[Path(target).stem] = list(frames)  # type: ignore[call-overload]
        return real_write(target, iter(written[Path(target).stem]), *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(cut_module, "write_video", kept)
    assert cut(root, min_len=1.0, export=True, quiet=True).failed == []
    monkeypatch.undo()
    clips = list_clips(root, status="kept")
    assert [(c["start_frame"], c["end_frame"]) for c in clips] == [(0, 60), (60, 120), (120, 180)]
    assert starts == [0]  # one pass, not a decode from frame 0 again for each clip
    for c in clips:
        own = video.read_frames(path, c["start_frame"], c["end_frame"], deinterlace=True)
        assert np.array_equal(np.stack(written[c["id"]]), own)


def test_a_recut_leaves_no_clip_file_the_catalog_does_not_name(film_root: Path) -> None:
    """A re-cut replaces a source's clip rows, and its exported files with them: a window of
    the last cut that is no longer a clip (other --max-len, dropped, not exported this time)
    does not stay in clips/ beside the new ones."""

    def on_disk() -> set[str]:
        return {str(p.relative_to(film_root)) for p in (film_root / "clips").rglob("*.mp4")}

    def named() -> set[str]:
        return {c["path"] for c in list_clips(film_root) if c["path"]}

    cut(film_root, min_len=0.5, max_len=10, export=True, quiet=True)
    assert on_disk() == named() == {"clips/reel/reel.0-30.mp4", "clips/reel/reel.60-90.mp4"}
    cut(film_root, min_len=0.5, max_len=1, export=True, quiet=True)  # 30 frames: two windows
    assert "clips/reel/reel.0-15.mp4" in named()
    assert on_disk() == named()
    cut(film_root, min_len=0.5, max_len=1, quiet=True)  # no export: no clip has a file
    assert named() == set() and on_disk() == set()


def test_clips_of_a_source_no_longer_fetched_go_on_the_next_cut(film_root: Path) -> None:
    """A source whose re-fetch failed (its file removed, as `fetch` does) keeps no kept clips:
    `synth` would take them and refuse the whole run for a file that is not there."""
    cut(film_root, min_len=0.5, export=True, quiet=True)
    assert list_clips(film_root, status="kept")
    with Catalog.at_root(film_root) as cat:
        cat.upsert_source(
            {
                "manifest": "m",
                "id": "reel",
                "kind": "film",
                "status": "failed",
                "error": "HTTP Error 404",
                "path": None,
            }
        )
    (film_root / "raw" / "m" / "reel.mp4").unlink()
    report = cut(film_root, min_len=0.5, export=True, quiet=True)
    assert report.failed == []
    assert list_clips(film_root) == []
    assert not list((film_root / "clips").rglob("*.mp4"))


def test_bad_source_fails_alone(runner: CliRunner, film_root: Path) -> None:
    (film_root / "raw" / "m" / "junk.mp4").write_bytes(b"\x00junk" * 100)
    _add_source(film_root, "junk", "raw/m/junk.mp4")
    res = runner.invoke(app, ["cut", "--root", str(film_root), "--min-len", "0.5", "-q"])
    assert res.exit_code == 1
    assert res.stderr.strip().splitlines()[-1].startswith("error: 1 source(s) failed: junk")
    failed = list_clips(film_root, sources=("junk",))
    assert (
        len(failed) == 1 and failed[0]["status"] == "failed" and "junk.mp4" in failed[0]["reason"]
    )
    assert list_clips(film_root, sources=("reel",), status="kept")


@pytest.mark.parametrize("detector", ["film", "content"])
def test_a_source_cut_short_fails_alone(detector: str, runner: CliRunner, film_root: Path) -> None:
    """A source file cut short (a Matroska file cut in half: it still declares all its
    frames, its decode ends quietly at the cut) was cut into the clips of its first half as
    if whole (exit 0), with the `film` detector and, after it failed there, with `--detector
    content`. It fails (exit 1), its reason naming the file and both counts, as a source that
    does not decode; the others are cut."""
    whole = _film(film_root / "raw" / "m" / "whole.mkv")
    data = whole.read_bytes()
    (film_root / "raw" / "m" / "half.mkv").write_bytes(data[: len(data) // 2])
    _add_source(film_root, "half", "raw/m/half.mkv")
    args = ["cut", "--root", str(film_root), "--min-len", "0.5", "-q", "--detector", detector]
    res = runner.invoke(app, args)
    assert res.exit_code == 1, res.output
    assert res.stderr.strip().splitlines()[-1].startswith("error: 1 source(s) failed: half")
    (failed,) = list_clips(film_root, sources=("half",))
    assert failed["status"] == "failed", failed
    assert "half.mkv: decode failed after " in failed["reason"], failed
    assert " of 120 frames" in failed["reason"], failed
    assert list_clips(film_root, sources=("reel",), status="kept")


def test_cli_cut_and_clips_json(runner: CliRunner, film_root: Path) -> None:
    res = runner.invoke(app, ["cut", "--root", str(film_root), "--min-len", "0.5", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["failed"] == [] and out["sources"][0]["kept"] == 2
    res = runner.invoke(app, ["clips", "--root", str(film_root), "--json"])
    rows = json.loads(res.stdout)
    assert len(rows) == 4 and {"id", "status", "reason", "box_w", "phash"} <= set(rows[0])
    res = runner.invoke(app, ["clips", "--root", str(film_root)])
    assert res.exit_code == 0 and "reel.0-30" in res.stdout


def test_refused_options(film_root: Path) -> None:
    with pytest.raises(RefusedError, match="--source"):
        cut(film_root, sources=("nope",))
    with pytest.raises(RefusedError, match="--min-len"):
        cut(film_root, min_len=5, max_len=1)
    for lo, hi in ((float("nan"), 10.0), (1.0, float("inf")), (1.0, float("nan"))):
        with pytest.raises(RefusedError, match="--min-len"):  # not one failure per source
            cut(film_root, min_len=lo, max_len=hi)
    with pytest.raises(RefusedError, match="--detector"):
        cut(film_root, detector="nope")


def test_clips_of_an_unknown_source_are_refused(runner: CliRunner, film_root: Path) -> None:
    """`clips --source` with an id the catalog does not know (a typo) listed nothing, exit 0,
    as if the source had no clips, where `cut --source` refuses it; now one line naming the
    id (exit 2). A known source with no clips (not cut yet) still lists none."""
    res = runner.invoke(app, ["clips", "--root", str(film_root), "--source", "reeel", "--json"])
    assert res.exit_code == 2, res.output
    (line,) = [s for s in res.output.splitlines() if s.strip()]
    assert line == "error: --source: no source 'reeel' in the catalog; see `filmdata sources`"
    assert list_clips(film_root, sources=("reel",)) == []
    assert list_clips(film_root, sources=("m/reel",)) == []


def test_an_hdr_source_gives_no_clean_clips(root: Path) -> None:
    """An HDR source is not cut (its code values are not SDR pixels: no clean GT until it is
    tone-mapped): it fails, the reason saying so and how to make an SDR copy, before any
    decoding."""
    from conftest import write_hdr

    (root / "raw" / "m").mkdir(parents=True)
    write_hdr(root / "raw" / "m" / "hdr.mkv", 16, frames=48)
    _add_source(root, "hdr", "raw/m/hdr.mkv")
    report = cut(root, min_len=0.5, max_len=10, quiet=True)
    assert report.failed == ["hdr"]
    (clip,) = list_clips(root)
    assert clip["status"] == "failed" and "an HDR video (PQ" in clip["reason"]
    assert "tonemap" in clip["reason"]


def test_bad_threshold_is_refused_before_any_clip_changes(
    runner: CliRunner, film_root: Path
) -> None:
    """A threshold the detector refuses is bad input (exit 2), not a failure of every source:
    the clips an earlier cut recorded stay as they were."""
    cut(film_root, min_len=0.5, quiet=True)
    before = [(c["id"], c["status"]) for c in list_clips(film_root)]
    with pytest.raises(RefusedError, match="--threshold 5"):
        cut(film_root, threshold=5.0, min_len=0.5, quiet=True)
    res = runner.invoke(app, ["cut", "--root", str(film_root), "--threshold", "-1", "-q"])
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [
        "error: --threshold -1.0: refused by detector 'film': "
        "threshold: expected a value in (0, 2), got -1.0"
    ]
    assert [(c["id"], c["status"]) for c in list_clips(film_root)] == before


def test_one_source_id_in_two_manifests(film_root: Path) -> None:
    """fetch keeps `raw/<manifest>/<id>` apart, so two manifests may share a source id: their
    clips are then named `<manifest>/<id>.<a>-<b>` (clip ids are the catalog's key), exported
    under `clips/<manifest>/<id>/`; a source no other manifest shares keeps its plain ids."""
    (film_root / "raw" / "m2").mkdir()
    _film(film_root / "raw" / "m2" / "reel.mp4", seed=6)
    _film(film_root / "raw" / "m2" / "solo.mp4", seed=7)
    with Catalog.at_root(film_root) as cat:
        for sid in ("reel", "solo"):
            row = {"manifest": "m2", "id": sid, "kind": "film", "status": "fetched"}
            cat.upsert_source({**row, "path": f"raw/m2/{sid}.mp4"})
    report = cut(film_root, min_len=0.5, export=True, quiet=True)
    assert report.failed == []
    kept = list_clips(film_root, status="kept")
    assert {c["id"] for c in kept if c["manifest"] == "m"} == {"m/reel.0-30", "m/reel.60-90"}
    assert {c["source"] for c in kept if c["manifest"] == "m2"} == {"reel", "solo"}
    for c in kept:
        if c["source"] == "reel":
            name = c["id"].removeprefix(f"{c['manifest']}/")
            assert c["path"] == f"clips/{c['manifest']}/reel/{name}.mp4"
        else:
            assert c["id"].startswith("solo.") and c["path"] == f"clips/solo/{c['id']}.mp4"
        assert (film_root / c["path"]).is_file()
    # A failed source's one record is qualified too.
    (film_root / "raw" / "m2" / "reel.mp4").write_bytes(b"junk")
    assert cut(film_root, min_len=0.5, quiet=True).failed == ["reel"]
    assert [c["id"] for c in list_clips(film_root, status="failed")] == ["m2/reel.failed"]


def test_source_named_by_manifest_where_two_share_its_id(film_root: Path) -> None:
    """`--source` takes `manifest/id` too, as `fetch --only` does: where two manifests share
    an id, one of them can be cut alone (a bare id takes both)."""
    (film_root / "raw" / "m2").mkdir()
    _film(film_root / "raw" / "m2" / "reel.mp4", seed=6)
    with Catalog.at_root(film_root) as cat:
        row = {"manifest": "m2", "id": "reel", "kind": "film", "status": "fetched"}
        cat.upsert_source({**row, "path": "raw/m2/reel.mp4"})
    report = cut(film_root, sources=("m2/reel",), min_len=0.5, quiet=True)
    assert [(r.manifest, r.source) for r in report.sources] == [("m2", "reel")]
    assert {c["manifest"] for c in list_clips(film_root)} == {"m2"}
    assert list_clips(film_root, sources=("m/reel",)) == []  # (m's not cut yet)
    report = cut(film_root, sources=("reel",), min_len=0.5, quiet=True)
    assert sorted(r.manifest for r in report.sources) == ["m", "m2"]
    with pytest.raises(RefusedError, match="m3/reel"):
        cut(film_root, sources=("m3/reel",), quiet=True)


def test_export_failure_fails_its_source(
    runner: CliRunner, film_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kept clip that cannot be written (disk full) fails its source: exit 1, not 0."""
    from filmdata.errors import MediaError

    def full(*args: object, **kwargs: object) -> int:
        raise MediaError("disk full")

    monkeypatch.setattr("filmdata.scenes.cut.write_video", full)
    res = runner.invoke(app, ["cut", "--root", str(film_root), "--min-len", "0.5", "--export"])
    assert res.exit_code == 1
    assert res.stderr.strip().splitlines()[-1] == "error: 1 source(s) failed: reel"
    report = cut(film_root, min_len=0.5, export=True, quiet=True)
    (rep,) = report.sources
    assert rep.status == "failed" and rep.error == "clip reel.0-30: export: disk full (and 1 more)"
    failed = list_clips(film_root, status="failed")
    assert [c["id"] for c in failed] == ["reel.0-30", "reel.60-90"]


@pytest.mark.parametrize("command", ["cut", "clips", "sources"])
def test_a_root_without_a_catalog_is_refused(
    runner: CliRunner, film_root: Path, command: str
) -> None:
    """A mistyped --root is refused in one line naming it (exit 2), not made a new, empty root
    that the command then reports as having nothing in it."""
    typo = film_root.parent / "roto"
    res = runner.invoke(app, [command, "--root", str(typo)])
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [
        f"error: --root {typo}: no catalog (catalog.sqlite) there; check the path, or run "
        "`filmdata fetch` into it first"
    ]
    assert not typo.exists()
    assert runner.invoke(app, [command, "--root", str(film_root)]).exit_code == 0


def test_a_fetched_file_gone_missing_says_fetch_it_again(film_root: Path) -> None:
    """A source whose raw file was deleted after `fetch` failed with "...: no such file",
    naming the file but not what to do; it says to fetch it again."""
    (film_root / "raw" / "m" / "reel.mp4").unlink()
    report = cut(film_root, min_len=0.5, quiet=True)
    assert report.failed == ["reel"]
    (failed,) = list_clips(film_root)
    assert failed["status"] == "failed"
    assert failed["reason"].endswith(
        "reel.mp4: missing; fetch it again (`filmdata fetch` of its manifest)"
    )


def _copies(root: Path) -> None:
    """Two sources of the same three shots: `a-copy`, an old transfer (96x72, softened and
    noisy), first in catalog order; `hd`, the original at 192x144."""
    import cv2

    shots, _ = render_shots((30, 30, 30), 192, 144, seed=8)
    rng = np.random.default_rng(0)
    small = np.stack([cv2.resize(f, (96, 72), interpolation=cv2.INTER_AREA) for f in shots])
    small = np.stack([cv2.GaussianBlur(f, (0, 0), 0.8) for f in small]).astype(np.float32)
    small = (small + rng.normal(0, 4, small.shape)).clip(0, 255).astype(np.uint8)
    (root / "raw" / "m").mkdir(parents=True, exist_ok=True)
    write_video(root / "raw" / "m" / "hd.mp4", shots, 24)
    write_video(root / "raw" / "m" / "a-copy.mp4", small, 24)
    with Catalog.at_root(root) as cat:
        for sid, (w, h) in (("a-copy", (96, 72)), ("hd", (192, 144))):
            path = root / "raw" / "m" / f"{sid}.mp4"
            cat.upsert_source(
                {"manifest": "m", "id": sid, "kind": "film", "status": "fetched",
                 "path": f"raw/m/{sid}.mp4", "width": w, "height": h, "fps": 24.0,
                 "duration": 90 / 24, "bytes": path.stat().st_size}
            )  # fmt: skip


def _statuses(root: Path) -> dict[str, tuple[str, str | None]]:
    return {
        c["id"]: (c["status"], c["reason"] and c["reason"].split(" (")[0]) for c in list_clips(root)
    }


@pytest.mark.parametrize("order", [("a-copy", "hd"), ("hd", "a-copy"), None])
def test_near_duplicates_across_sources_keep_the_better_copy(
    root: Path, order: tuple[str, str] | None
) -> None:
    """The same footage fetched twice (an HD original and an old low-resolution transfer of
    it) kept the first source's clips in catalog order: the HD original was dropped as a
    duplicate of its old copy. The copy with more picture is kept, whatever order the
    sources are cut in (one after the other, either way, or both at once)."""
    _copies(root)
    kw = dict(min_len=0.5, max_len=10, quiet=True)
    if order is None:
        cut(root, **kw)
    else:
        for sid in order:
            cut(root, sources=(sid,), **kw)
    got = _statuses(root)
    spans = ("0-30", "30-60", "60-90")
    assert {got[f"hd.{s}"] for s in spans} == {("kept", None)}, got
    for s in spans:
        assert got[f"a-copy.{s}"] == ("dropped", f"duplicate of hd.{s}"), got


def test_a_letterboxed_transfer_is_a_duplicate_of_the_wide_original(root: Path) -> None:
    """The same footage as a wide HD original (192x108) and an old transfer letterboxed in a
    4:3 frame (128x96, bars above and below): their pHashes were of the whole frame, bars
    and all, so neither was seen as a duplicate of the other and both were kept. Hashed
    inside the bars, the transfer (less picture) is dropped as the original's duplicate."""
    import cv2

    shots, _ = render_shots((30, 30, 30), 192, 108, seed=8)
    boxed = np.zeros((len(shots), 96, 128, 3), np.uint8)
    boxed[:, 12:84] = [cv2.resize(f, (128, 72), interpolation=cv2.INTER_AREA) for f in shots]
    (root / "raw" / "m").mkdir(parents=True)
    write_video(root / "raw" / "m" / "hd.mp4", shots, 24)
    write_video(root / "raw" / "m" / "a-boxed.mp4", boxed, 24)  # (first in catalog order)
    _add_source(root, "hd", "raw/m/hd.mp4")
    _add_source(root, "a-boxed", "raw/m/a-boxed.mp4")
    assert cut(root, min_len=0.5, max_len=10, quiet=True).failed == []
    got = _statuses(root)
    spans = ("0-30", "30-60", "60-90")
    assert {got[f"hd.{s}"] for s in spans} == {("kept", None)}, got
    for s in spans:
        assert got[f"a-boxed.{s}"] == ("dropped", f"duplicate of hd.{s}"), got
    assert {c["box_h"] for c in list_clips(root, sources=("a-boxed",))} <= set(range(70, 73))


def test_a_clip_whose_duplicate_went_is_kept_again(root: Path) -> None:
    """A clip dropped as a duplicate of another source's stayed dropped, naming a clip that
    no longer exists, when that source went (its re-fetch failed, or it was re-cut into
    other clips). Every cut decides again: it is kept, and exported again where its source's
    clips are exported; the report names it."""
    _copies(root)
    kw = dict(min_len=0.5, max_len=10, quiet=True, export=True)
    cut(root, **kw)
    assert not list((root / "clips" / "a-copy").glob("*.mp4"))
    # the HD original re-cut into 1 s windows: the copy's clips name ids that are gone
    report = cut(root, sources=("hd",), **{**kw, "max_len": 0.5, "min_len": 0.2})
    got = _statuses(root)
    copy = {k: v for k, v in got.items() if k.startswith("a-copy.")}
    assert any(v[0] == "dropped" for v in copy.values()), got
    for _status, reason in copy.values():  # each names a clip there is, or is kept
        assert reason is None or got[reason.removeprefix("duplicate of ")] == ("kept", None)
    assert report.redecided == sorted(copy)  # kept again, or naming the clip there is now
    before = copy
    # the HD original no longer fetched: the copy's clips are kept again, files and all
    with Catalog.at_root(root) as cat:
        cat.upsert_source({"manifest": "m", "id": "hd", "kind": "film", "status": "failed",
                           "error": "HTTP Error 404", "path": None})  # fmt: skip
    # (any cut decides again: here one of a third source alone)
    _film(root / "raw" / "m" / "z.mp4", seed=9)
    _add_source(root, "z", "raw/m/z.mp4")
    report = cut(root, sources=("z",), **kw)
    assert report.failed == []
    got = _statuses(root)
    copy = {k: v for k, v in got.items() if k.startswith("a-copy.")}
    assert set(copy.values()) == {("kept", None)}, got
    assert report.redecided == sorted(k for k, v in before.items() if v[0] == "dropped")
    for c in list_clips(root, sources=("a-copy",)):
        assert c["path"] and probe(root / c["path"]).frames == c["end_frame"] - c["start_frame"]


def _held(root: Path) -> int:
    """Take the root's lock on deciding duplicates here, as another `cut` would hold it."""
    import fcntl

    fd = os.open(root / ".cut.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _waits(fn: Any, ready: Any = lambda: True) -> Any:
    """Start `fn` in a thread (while this test holds the lock) and give it until `ready()`
    and half a second more: the thread, and the list its result goes into when it returns."""
    import threading
    import time

    done: list[Any] = []
    t = threading.Thread(target=lambda: done.append(fn()), daemon=True)
    t.start()
    deadline = time.monotonic() + 60
    while not ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    return t, done


def test_near_duplicates_are_decided_one_process_at_a_time(root: Path) -> None:
    """Two cuts of one root at once each read the catalog, decided the near-duplicates and
    wrote them back with nothing in between: the one that wrote last wrote decisions made on
    a catalog without the other's write (both copies kept, or a clip kept again that the
    other had dropped). Deciding holds a lock on the root: while another process holds it,
    a cut detects and exports its source (the slow part), then waits to decide and write;
    let go, it decides on the catalog as the holder left it. So does fetch's settling."""
    from filmdata.scenes.cut import settle_duplicates

    _copies(root)
    kw: dict[str, Any] = dict(min_len=0.5, max_len=10, quiet=True)
    cut(root, sources=("a-copy",), **kw)
    assert set(_statuses(root).values()) == {("kept", None)}
    fd = _held(root)
    try:
        exported = lambda: len(list((root / "clips" / "hd").glob("*.mp4"))) == 3  # noqa: E731
        t, done = _waits(lambda: cut(root, sources=("hd",), export=True, **kw), exported)
        assert exported() and not done  # detected and exported, waiting to decide
        assert list_clips(root, sources=("hd",)) == []
        assert set(_statuses(root).values()) == {("kept", None)}
    finally:
        os.close(fd)
    t.join(60)
    assert done and done[0].redecided == ["a-copy.0-30", "a-copy.30-60", "a-copy.60-90"]
    got = _statuses(root)
    assert got["a-copy.0-30"] == ("dropped", "duplicate of hd.0-30"), got
    # fetch's settling too: the HD original gone, the copy is kept again once let go
    with Catalog.at_root(root) as cat:
        cat.replace_many("clips", {"manifest": "m", "source": "hd"}, [])
    fd = _held(root)
    try:
        with Catalog.at_root(root) as cat:
            t, done = _waits(lambda: settle_duplicates(root, cat))
            assert not done
            os.close(fd)
            fd = -1
            t.join(60)
    finally:
        if fd >= 0:
            os.close(fd)
    assert done == [["a-copy.0-30", "a-copy.30-60", "a-copy.60-90"]]
    assert set(_statuses(root).values()) == {("kept", None)}


def test_cut_names_the_other_sources_clips_it_decided_again(runner: CliRunner, root: Path) -> None:
    """Cutting a better copy drops an earlier source's clips: the command says which, in one
    line, and `--json` lists them."""
    _copies(root)
    base = ["cut", "--root", str(root), "--min-len", "0.5", "--quiet"]
    assert runner.invoke(app, [*base, "--source", "a-copy"]).exit_code == 0
    r = runner.invoke(app, [*base, "--source", "hd"])
    assert r.exit_code == 0, r.output
    line = "3 clip(s) of other sources decided again as near-duplicates (see `filmdata clips`): "
    assert f"{line}a-copy.0-30, a-copy.30-60, a-copy.60-90" in r.output.splitlines(), r.output
    r = runner.invoke(app, [*base, "--source", "hd", "--json"])
    assert json.loads(r.stdout)["redecided"] == []  # (decided already)
