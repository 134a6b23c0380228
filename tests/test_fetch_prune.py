"""`fetch --prune`: sources a manifest no longer names leave the catalog, their clips, pairs and
raw files with them; other manifests' sources, and datasets already made, are left alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import make_clip
from filmdata.catalog import Catalog
from filmdata.cli import app
from filmdata.scenes.cut import cut, list_clips
from filmdata.synth import synth


def _manifest(path: Path, name: str, sources: dict[str, str], pairs: dict[str, tuple]) -> Path:
    """A manifest of local captures: `sources` id -> kind (the capture is `caps/<id>.mp4`)."""
    lines = [f"name: {name}", "sources:"]
    for sid, kind in sources.items():
        lines += [f"  - id: {sid}", f"    path: caps/{sid}.mp4", f"    kind: {kind}"]
    if pairs:
        lines.append("pairs:")
        for pid, (lq, gt) in pairs.items():
            lines += [f"  - id: {pid}", f"    lq: {lq}", f"    gt: {gt}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _fetch(runner: CliRunner, root: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["fetch", *args, "--root", str(root)])
    return result.exit_code, result.stdout, result.stderr


def _keys(rows: list[dict], col: str = "id") -> set[str]:
    return {f"{r['manifest']}/{r[col]}" for r in rows}


X_SOURCES = {"keep": "film", "bad": "film", "bad.v2": "film", "tape": "vhs"}
X_PAIRS = {"p-bad": ("tape", "bad"), "p-keep": ("tape", "keep")}


@pytest.fixture
def fetched(runner: CliRunner, root: Path, tmp_path: Path) -> dict[str, Path]:
    """x: keep, bad, bad.v2 (a dotted id that starts like `bad`), tape, and pairs of tape with
    keep and bad; y: another `bad`. All fetched, cut with --export."""
    for folder, seed in (("xs", 1), ("ys", 9)):
        (tmp_path / folder / "caps").mkdir(parents=True)
        for i, sid in enumerate(X_SOURCES):
            make_clip(tmp_path / folder / "caps" / f"{sid}.mp4", (12, 12), (72, 48), seed=seed + i)
    x = _manifest(tmp_path / "xs" / "x.yaml", "x", X_SOURCES, X_PAIRS)
    y = _manifest(tmp_path / "ys" / "y.yaml", "y", {"bad": "film"}, {})
    code, out, err = _fetch(runner, root, str(x), str(y), "--quiet")
    assert code == 0, out + err
    assert cut(root, min_len=0.25, export=True, quiet=True).failed == []
    # what a yt-dlp download leaves beside it, and an interrupted one in its staging folder
    (root / "raw/x/bad.info.json").write_text("{}", encoding="utf-8")
    (root / "raw/x/.incoming/bad").mkdir(parents=True)
    (root / "raw/x/.incoming/bad/bad.mp4.part").write_bytes(b"half")
    return {"x": x, "y": y}


def test_prune_removes_what_the_manifest_no_longer_names(
    runner: CliRunner, root: Path, fetched: dict[str, Path]
) -> None:
    x = fetched["x"]
    with Catalog.at_root(root) as cat:
        assert {"x/bad", "y/bad"} <= _keys(cat.sources())
        x_bad_exports = [c["path"] for c in cat.clips(manifest="x", source="bad") if c["path"]]
    assert x_bad_exports and all((root / p).is_file() for p in x_bad_exports)
    made = synth(_templates(), "film", root=root, name="before", **SYNTH)
    assert made["splits"]

    sources = dict(X_SOURCES)
    del sources["bad"]
    _manifest(x, "x", sources, {"p-keep": X_PAIRS["p-keep"]})

    code, out, err = _fetch(runner, root, str(x), "--prune", "--json", "--quiet")
    assert code == 0, out + err
    got = json.loads(out)
    pruned = [i for i in got if i["status"] == "pruned"]
    assert [(i["manifest"], i["id"]) for i in pruned] == [("x", "bad")]
    assert pruned[0]["reason"].startswith(f"no longer in {x.name}: ")
    assert {i["id"] for i in got if i["status"] != "pruned"} == set(sources)

    with Catalog.at_root(root) as cat:
        assert _keys(cat.sources()) == {f"x/{s}" for s in sources} | {"y/bad"}
        assert not cat.clips(manifest="x", source="bad")
        assert cat.clips(manifest="y", source="bad")  # another manifest's is not touched
        assert _keys(cat.pairs()) == {"x/p-keep"}
        (ds,) = cat.datasets()  # a dataset already made is a record of what was made
    assert ds["name"] == "before" and (root / "datasets" / "before").is_dir()
    raw = root / "raw" / "x"
    assert not list(raw.glob("bad.mp4")) and not (raw / "bad.info.json").exists()
    assert not (raw / ".incoming" / "bad").exists()
    assert not (raw / ".incoming" / "bad.lock").exists()
    assert (raw / "bad.v2.mp4").is_file() and (root / "raw/y/bad.mp4").is_file()
    assert not any((root / p).exists() for p in x_bad_exports)
    assert all((root / c["path"]).is_file() for c in list_clips(root) if c["path"])

    # The listings, cut and synth no longer see it.
    listed = runner.invoke(app, ["sources", "--root", str(root), "--json"])
    assert "x/bad" not in _keys(json.loads(listed.stdout))
    listed = runner.invoke(app, ["clips", "--root", str(root), "--json"])
    assert "x/bad" not in _keys(json.loads(listed.stdout), "source")
    report = cut(root, min_len=0.25, quiet=True)
    assert ("x", "bad") not in {(r.manifest, r.source) for r in report.sources}
    synth(_templates(), "film", root=root, name="after", **SYNTH)
    from filmdata.shards import read_shard

    rows = [
        r
        for p in (root / "datasets/after/data/synthetic").glob("*.parquet")
        for r in read_shard(p).to_pylist()
    ]
    clips = {c["id"]: c for c in list_clips(root)}
    assert rows and all(clips[r["clip"]]["manifest"] != "x" or r["source"] != "bad" for r in rows)
    assert {r["source"] for r in rows} >= {"keep", "bad"}  # (y's bad)

    # Idempotent: nothing more to prune, and no hint.
    code, out, err = _fetch(runner, root, str(x), "--prune", "--json")
    got = json.loads(out)
    assert code == 0 and "no longer" not in err
    assert got and not [i for i in got if i["status"] == "pruned"]


def test_without_prune_one_hint_line_and_nothing_removed(
    runner: CliRunner, root: Path, fetched: dict[str, Path]
) -> None:
    x = fetched["x"]
    _manifest(x, "x", {"keep": "film", "bad.v2": "film"}, {})
    code, out, err = _fetch(runner, root, str(x), "--json")
    assert code == 0
    assert not [i for i in json.loads(out) if i["status"] == "pruned"]
    (hint,) = [line for line in err.splitlines() if "no longer" in line]
    assert hint == (
        f"2 sources and 2 pairs of {x} no longer in it (bad, tape; pair p-bad, p-keep): "
        "fetch --prune removes them"
    )
    with Catalog.at_root(root) as cat:
        assert {"x/bad", "x/tape"} <= _keys(cat.sources())
        assert cat.clips(manifest="x", source="bad") and len(cat.pairs()) == 2
    assert (root / "raw/x/bad.mp4").is_file()
    code, out, err = _fetch(runner, root, str(x), "--quiet")
    assert code == 0 and "no longer" not in err + out
    # y names all of its own: no hint for it, whatever x holds
    code, out, err = _fetch(runner, root, str(fetched["y"]))
    assert code == 0 and "no longer" not in err


def test_pruned_lines_for_people_and_quiet(
    runner: CliRunner, root: Path, fetched: dict[str, Path]
) -> None:
    x = fetched["x"]
    _manifest(x, "x", {"keep": "film", "bad.v2": "film", "tape": "vhs"}, {})
    code, out, err = _fetch(runner, root, str(x), "--prune")
    assert code == 0, out + err
    lines = [line for line in out.splitlines() if line.split()[2:3] == ["pruned"]]
    assert [line.split()[:2] for line in lines] == [["x", "bad"], ["x", "p-keep"]]
    assert "1 pair" in lines[0] and "a pair no longer in" in lines[1]
    assert out.rstrip().endswith("fetched 0, skipped 3, failed 0, pruned 2")

    _manifest(x, "x", {"keep": "film", "bad.v2": "film"}, {})
    code, out, err = _fetch(runner, root, str(x), "--prune", "--quiet")
    assert code == 0, out + err
    assert out.rstrip().endswith("pruned 1")  # (--quiet: no bars, the table as ever)
    with Catalog.at_root(root) as cat:
        assert _keys(cat.sources()) == {"x/keep", "x/bad.v2", "y/bad"} and not cat.pairs()


def test_prune_with_only_is_refused(
    runner: CliRunner, root: Path, fetched: dict[str, Path]
) -> None:
    x = fetched["x"]
    _manifest(x, "x", {"keep": "film"}, {})
    code, out, err = _fetch(runner, root, str(x), "--prune", "--only", "keep")
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert "--prune" in line and "--only" in line
    with Catalog.at_root(root) as cat:
        assert "x/bad" in _keys(cat.sources())


def _templates() -> Path:
    from filmdata.degrade.presets import bundled_dir

    return bundled_dir()


SYNTH = dict(clip_len=4, size=16, seed=0, device="cpu", quiet=True)


def test_a_pair_no_longer_named_is_pruned_with_its_sources_kept(
    runner: CliRunner, root: Path, fetched: dict[str, Path]
) -> None:
    """A pair taken out of the manifest, both of its sources still in it: `pair` would align
    it and `pair --export` export it for ever. The hint names it; --prune removes it alone."""
    x = fetched["x"]
    _manifest(x, "x", X_SOURCES, {"p-keep": X_PAIRS["p-keep"]})
    code, out, err = _fetch(runner, root, str(x), "--quiet", "--json")
    assert code == 0 and "no longer" not in err  # (--quiet: no hint either)
    code, out, err = _fetch(runner, root, str(x), "--json")
    (hint,) = [line for line in err.splitlines() if "no longer" in line]
    assert hint == f"1 pair of {x} no longer in it (pair p-bad): fetch --prune removes it"
    with Catalog.at_root(root) as cat:
        assert _keys(cat.pairs()) == {"x/p-bad", "x/p-keep"}
    code, out, err = _fetch(runner, root, str(x), "--prune", "--json")
    assert code == 0 and "no longer" not in err
    pruned = [(i["id"], i["reason"]) for i in json.loads(out) if i["status"] == "pruned"]
    assert pruned == [("p-bad", f"a pair no longer in {x.name}: removed")]
    with Catalog.at_root(root) as cat:
        assert _keys(cat.pairs()) == {"x/p-keep"}
        assert {"x/tape", "x/bad"} <= _keys(cat.sources())  # its sources are still named


def test_clips_dropped_as_duplicates_of_removed_clips_are_kept_again(
    runner: CliRunner, root: Path, tmp_path: Path
) -> None:
    """A pruned source's clips took with them the clips they had made duplicates of (the
    same footage's worse copy, left dropped and naming a clip that no longer exists, until a
    `cut` the user had to be told to run): fetch decides them again at once, keeps them,
    exports them again where their source's clips are, and names them in one line."""
    import cv2

    from filmdata.synthetic import render_shots
    from filmdata.video import probe, write_video

    caps = tmp_path / "caps"
    caps.mkdir()
    shots, _ = render_shots((30, 30, 30), 192, 144, seed=8)
    write_video(caps / "hd.mp4", shots[:60], 24)  # the first two shots: the better copy
    small = [cv2.resize(f, (96, 72), interpolation=cv2.INTER_AREA) for f in shots]
    write_video(caps / "copy.mp4", small, 24)  # all three, its third shot its own
    x = _manifest(tmp_path / "x.yaml", "x", {"copy": "film", "hd": "film"}, {})
    code, out, err = _fetch(runner, root, str(x), "--quiet")
    assert code == 0, out + err
    assert cut(root, min_len=0.5, export=True, quiet=True).failed == []
    dropped = sorted(c["id"] for c in list_clips(root, sources=("copy",), status="dropped"))
    assert dropped == ["copy.0-30", "copy.30-60"]
    assert sorted(p.name for p in (root / "clips/copy").glob("*.mp4")) == ["copy.60-90.mp4"]
    _manifest(x, "x", {"copy": "film"}, {})
    code, out, err = _fetch(runner, root, str(x), "--prune")
    assert code == 0, out + err
    line = (
        "2 clip(s) of other sources decided again as near-duplicates, clips they duplicated "
        "gone (kept again, or a duplicate of one kept again; see `filmdata clips`): "
        "copy.0-30, copy.30-60"
    )
    assert line in err.splitlines(), err
    assert "run `filmdata cut`" not in err
    clips = list_clips(root)
    assert {c["status"] for c in clips} == {"kept"} and {c["reason"] for c in clips} == {None}
    for c in clips:  # exported again, frame-exact
        assert c["path"] and probe(root / c["path"]).frames == c["end_frame"] - c["start_frame"]
    code, out, err = _fetch(runner, root, str(x), "--prune")  # nothing removed: no line
    assert code == 0 and "duplicates" not in err, err
