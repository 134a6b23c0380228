from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from filmdata.catalog import SCHEMA_VERSION, Catalog


def test_migrates_and_wal(tmp_path: Path) -> None:
    with Catalog.at_root(tmp_path) as cat:
        assert cat.version == SCHEMA_VERSION
        mode = cat.db.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    with Catalog.at_root(tmp_path) as cat:  # re-open: nothing to migrate
        assert cat.version == SCHEMA_VERSION


def test_upsert_and_json(tmp_path: Path) -> None:
    with Catalog.at_root(tmp_path) as cat:
        cat.upsert_source({"manifest": "m", "id": "a", "kind": "film", "info": {"x": [1, 2]}})
        cat.upsert_source({"manifest": "m", "id": "a", "kind": "film", "status": "fetched"})
        (row,) = cat.sources()
        assert row["status"] == "fetched" and row["info"] == {"x": [1, 2]}
        assert cat.sources(status=["failed"]) == []


def _writer(path: str, manifest: str) -> None:
    with Catalog(path) as cat:
        for i in range(100):
            cat.upsert_source({"manifest": manifest, "id": f"s{i}", "kind": "film"})


def test_concurrent_writers(tmp_path: Path) -> None:
    path = str(tmp_path / "catalog.sqlite")
    Catalog(path).close()
    procs = [mp.get_context("spawn").Process(target=_writer, args=(path, m)) for m in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with Catalog(path) as cat:
        assert len(cat.sources()) == 200


def test_a_root_that_cannot_hold_a_catalog_is_refused(tmp_path: Path) -> None:
    """A file where the root should be, or a catalog.sqlite that is not a database, is refused
    in one line naming it (exit 2), not a traceback from mkdir or sqlite3."""
    import pytest

    from filmdata.errors import RefusedError

    a_file = tmp_path / "clip.mp4"
    a_file.write_bytes(b"not a folder")
    with pytest.raises(RefusedError, match=r"clip\.mp4: cannot make the data root"):
        Catalog.at_root(a_file)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "catalog.sqlite").write_text("garbage " * 100)
    with pytest.raises(RefusedError, match=r"bad/catalog\.sqlite: cannot open the catalog"):
        Catalog.at_root(tmp_path / "bad")
    (tmp_path / "dir" / "catalog.sqlite").mkdir(parents=True)
    with pytest.raises(RefusedError, match=r"dir/catalog\.sqlite: cannot open the catalog"):
        Catalog.at_root(tmp_path / "dir")


def test_drop_sources_takes_their_clips_and_pairs_and_nothing_of_another_manifest(
    tmp_path: Path,
) -> None:
    with Catalog.at_root(tmp_path) as cat:
        for manifest, sid in (("m", "a"), ("m", "b"), ("m", "c"), ("n", "a")):
            cat.upsert_source({"manifest": manifest, "id": sid, "kind": "film"})
            clip = {"manifest": manifest, "source": sid, "scene": 0, "start_frame": 0}
            clip |= {"end_frame": 1, "fps": 24.0, "start_time": 0.0, "end_time": 0.1}
            cat.replace_many(
                "clips",
                {"manifest": manifest, "source": sid},
                [{**clip, "id": f"{manifest}/{sid}.0-1", "status": "kept"}],
            )
        for manifest, pid, lq, gt in (
            ("m", "p", "b", "a"),
            ("m", "q", "b", "c"),
            ("n", "p", "a", "a"),
        ):
            cat.upsert_pair({"manifest": manifest, "id": pid, "lq": lq, "gt": gt})

        gone = cat.drop_sources("m", ["a", "nowhere"])
        assert [(r["manifest"], r["id"]) for r in gone["sources"]] == [("m", "a")]
        assert [r["id"] for r in gone["clips"]] == ["m/a.0-1"]
        assert [(r["manifest"], r["id"]) for r in gone["pairs"]] == [("m", "p")]
        assert [(r["manifest"], r["id"]) for r in cat.sources()] == [
            ("m", "b"),
            ("m", "c"),
            ("n", "a"),
        ]
        assert {c["id"] for c in cat.clips()} == {"m/b.0-1", "m/c.0-1", "n/a.0-1"}
        assert [(r["manifest"], r["id"]) for r in cat.pairs()] == [("m", "q"), ("n", "p")]
        assert cat.drop_sources("m", ["a"]) == {"sources": [], "clips": [], "pairs": []}
