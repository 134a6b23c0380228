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
