"""`filmdata demo` on a fresh root: a dataset `datasets.load_dataset` opens, DuckDB counts."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

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

    # The tape transfer was aligned to its HD reel: 25/24 speed, the snow head unmapped.
    pairs = runner.invoke(app, ["sources", "--root", str(root), "--json"])
    assert pairs.exit_code == 0
    again = runner.invoke(app, ["demo", "--root", str(root), "--quiet", "--json"])
    assert again.exit_code == 0, again.output  # a re-run resumes: nothing lost, nothing refused
