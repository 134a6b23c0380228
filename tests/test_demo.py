"""`filmdata demo` on a fresh root: a dataset `datasets.load_dataset` opens, DuckDB counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from filmdata.catalog import Catalog
from filmdata.cli import app


def test_demo_end_to_end(runner: CliRunner, tmp_path: Path) -> None:
    import datasets
    import duckdb

    root = tmp_path / "root"
    result = runner.invoke(app, ["demo", "--root", str(root), "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    dataset = Path(summary["dataset"])
    assert dataset == root / "datasets" / "demo" and (dataset / "README.md").exists()
    assert (dataset / "preview.png").stat().st_size > 0

    ds = datasets.load_dataset(str(dataset))
    assert set(ds) == {"train", "validation"}
    row = ds["train"][0]
    assert len(row["lq"]) == len(row["gt"]) == 8
    assert row["lq"][0].size == row["gt"][0].size
    train_ids, val_ids = set(ds["train"]["id"]), set(ds["validation"]["id"])
    assert train_ids and val_ids and not train_ids & val_ids

    files = str(dataset / "data" / "**" / "*.parquet")
    ((count,),) = duckdb.sql(f"SELECT count(*) FROM read_parquet('{files}')").fetchall()
    assert count == len(ds["train"]) + len(ds["validation"])

    # The tape transfer was aligned to its HD reel: 25/24 speed (the reel at 24 fps played at
    # 25), its 12 frames of snow unmapped (scripts/make_samples.py), the picture after mapped.
    assert summary["pair"]["pairs"] == [
        {"manifest": "demo", "id": "reel-photos", "status": "aligned", "error": None}
    ]
    with Catalog.at_root(root) as cat:
        pair = cat.row("pairs", {"manifest": "demo", "id": "reel-photos"})
    assert pair is not None and pair["speed"] == pytest.approx(25 / 24, rel=2e-3)
    head, picture = pair["mapping"][:12], pair["mapping"][12:]
    assert head == [None] * 12
    assert picture[0] is not None and sum(m is not None for m in picture) > 0.95 * len(picture)
    again = runner.invoke(app, ["demo", "--root", str(root), "--quiet", "--json"])
    assert again.exit_code == 0, again.output  # a re-run resumes: nothing lost, nothing refused
