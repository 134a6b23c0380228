"""Shards: the atomic writer, the record, the card, and round trips through `datasets`/DuckDB."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filmdata import shards
from filmdata.errors import FilmdataError


def _row(i: int, t: int, h: int, w: int, rng: np.random.Generator) -> dict:
    gt = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(t)]
    lq = [np.ascontiguousarray(255 - f) for f in gt]
    return {
        "id": f"src.0-10:{i}:0",
        "source": "src",
        "clip": "src.0-10",
        "start_frame": i,
        "fps": 24.0,
        "crop": {"x": i, "y": 1, "w": w, "h": h},
        "gt": gt,
        "lq": lq,
        "degradation": {"preset": "none", "seed": 0},
        "origin": "synthetic",
    }


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 7),
    per=st.integers(1, 3),
    t=st.integers(1, 3),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
)
def test_write_read_round_trip(tmp_path_factory: pytest.TempPathFactory, n, per, t, h, w) -> None:
    ds = tmp_path_factory.mktemp("ds")
    rng = np.random.default_rng(n * 100 + t)
    rows = [_row(i, t, h, w, rng) for i in range(n)]
    entries = shards.write_split(ds, "synthetic", "train", rows, rows_per_shard=per)
    assert len(entries) == -(-n // per)
    files = sorted((ds / "data" / "synthetic").glob("train-*.parquet"))
    assert [f.name for f in files] == [e["file"] for e in entries]
    assert files[-1].name.endswith(f"-of-{len(entries):05d}.parquet")
    got = []
    for f in files:
        got += shards.read_shard(f).to_pylist()
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    for a, b in zip(got, rows):
        assert a["crop"] == b["crop"] and a["start_frame"] == b["start_frame"]
        for cell, img in zip(a["gt"] + a["lq"], b["gt"] + b["lq"]):
            assert np.array_equal(shards.decode_image(cell["bytes"]), img)
        assert json.loads(a["degradation"]) == b["degradation"]
    rec = shards.read_record(ds, "synthetic")
    for e in entries:
        assert rec["shards"][e["file"]]["sha256"] == shards.sha256_file(
            ds / "data/synthetic" / e["file"]
        )
    assert not list(ds.rglob(".*.tmp-*"))


def test_shard_digest_taken_as_it_grows_is_the_files(tmp_path: Path) -> None:
    """A shard of several row groups is hashed as it is written: the recorded sha256 and size
    are the file's own; a writer that fails leaves nothing behind."""
    rng = np.random.default_rng(5)
    rows = [_row(i, 2, 6, 5, rng) for i in range(2 * shards.ShardWriter.ROW_GROUP + 3)]
    path = tmp_path / "train-00000-of-00001.parquet"
    with shards.ShardWriter(path) as w:
        for r in rows:
            w.add([r])
    assert w.entry["sha256"] == shards.sha256_file(path)
    assert w.entry["bytes"] == path.stat().st_size
    assert shards.read_shard(path).num_rows == len(rows)
    group = shards.ShardWriter.ROW_GROUP
    assert [g.num_rows for g in _row_groups(path)] == [group, group, 3]

    bad = tmp_path / "train-00000-of-00002.parquet"
    with pytest.raises(RuntimeError), shards.ShardWriter(bad) as w:
        w.add(rows[:20])
        raise RuntimeError("killed")
    assert not bad.exists() and not list(tmp_path.glob(".*.tmp-*"))


def _row_groups(path: Path) -> list:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i) for i in range(meta.num_row_groups)]


@settings(max_examples=10, deadline=None)
@given(n=st.integers(0, 6), t=st.integers(0, 3), size=st.integers(1, 5), seed=st.integers(0, 99))
def test_rows_table_equals_pyarrows_own_conversion(n, t, size, seed) -> None:
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    rows = [shards.normalize_row(_row(i, t, size, size, rng)) for i in range(n)]
    for r in rows:
        r["id"] += "\u00e9"  # non-ASCII text
    table = shards.rows_table(rows)
    table.validate(full=True)
    assert table.equals(pa.Table.from_pylist(rows, schema=shards.SCHEMA))
    assert table.schema.equals(shards.SCHEMA, check_metadata=True)


def test_png_is_lossless_and_standard() -> None:
    from PIL import Image

    rng = np.random.default_rng(3)
    for shape in [(1, 1, 3), (7, 5, 3), (64, 48, 3), (9, 4), (3, 8, 4)]:
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        data = shards.encode_png(img)
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # PIL checks every chunk's CRC
            assert np.array_equal(np.asarray(im), img)


def test_png_of_repeating_content_reads_back_everywhere() -> None:
    """Content that repeats near and far (matches a byte back and rows back): zlib, PIL and
    OpenCV read the same pixels, and encoding it again gives the same bytes."""
    import zlib

    import cv2
    from PIL import Image

    rng = np.random.default_rng(4)
    tile = rng.integers(0, 256, (16, 40, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, 200, dtype=np.uint8)[None, :, None]
    flat = np.full((128, 200, 3), 7, np.uint8)  # runs: matches one byte back
    for img in (np.ascontiguousarray(np.tile(tile, (8, 5, 1)) // 2 + ramp // 2), flat):
        data = shards.encode_png(img)
        assert shards.encode_png(img.copy()) == data
        start = data.index(b"IDAT") + 4
        idat = data[start : start + int.from_bytes(data[start - 8 : start - 4], "big")]
        assert len(zlib.decompress(idat)) == 128 * (200 * 3 + 1)
        with Image.open(io.BytesIO(data)) as im:
            assert np.array_equal(np.asarray(im), img)
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert np.array_equal(bgr[..., ::-1], img)


def test_load_dataset_and_duckdb(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    duckdb = pytest.importorskip("duckdb")
    rng = np.random.default_rng(0)
    ds = tmp_path / "ds"
    shards.write_split(
        ds, "synthetic", "train", [_row(i, 2, 8, 12, rng) for i in range(5)], rows_per_shard=2
    )
    shards.write_split(ds, "synthetic", "validation", [_row(9, 2, 8, 12, rng)], rows_per_shard=2)
    shards.write_split(
        ds, "real", "train", [_row(i, 3, 8, 12, rng) for i in range(3)], rows_per_shard=2
    )
    card = shards.write_card(ds)
    assert card.read_text().startswith("---\n")
    loaded = datasets.load_dataset(str(ds), cache_dir=str(tmp_path / "cache"))
    assert loaded.num_rows == {"train": 5, "validation": 1}
    first = loaded["train"][0]
    assert len(first["gt"]) == 2 and first["gt"][0].size == (12, 8)
    assert np.asarray(first["lq"][0]).shape == (8, 12, 3)
    real = datasets.load_dataset(str(ds), "real", cache_dir=str(tmp_path / "cache"))
    assert real["train"].num_rows == 3
    pattern = str(ds / "data" / "*" / "*.parquet")
    assert duckdb.sql(f"SELECT count(*) FROM '{pattern}'").fetchall()[0][0] == 9
    assert shards.scan(ds)["synthetic"]["train"]["rows"] == 5


def test_rewrite_split_replaces_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    ds = tmp_path / "ds"
    shards.write_split(
        ds, "real", "train", [_row(i, 1, 4, 4, rng) for i in range(4)], rows_per_shard=1
    )
    shards.write_split(
        ds, "real", "train", [_row(i, 1, 4, 4, rng) for i in range(2)], rows_per_shard=1
    )
    names = sorted(p.name for p in (ds / "data" / "real").glob("*.parquet"))
    assert names == ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    assert shards.scan(ds)["real"]["train"]["rows"] == 2


def test_bad_rows_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    row = _row(0, 2, 4, 4, rng)
    row["lq"] = row["lq"][:1]
    with pytest.raises(FilmdataError, match="2 gt frames, 1 lq"):
        shards.write_split(tmp_path / "ds", "real", "train", [row])
    del row["origin"]
    with pytest.raises(FilmdataError, match="missing columns"):
        shards.normalize_row(row)


def test_clean_temporaries(tmp_path: Path) -> None:
    (tmp_path / ".train-00000-of-00001.parquet.tmp-123").write_bytes(b"half")
    (tmp_path / "keep.parquet").write_bytes(b"x")
    gone = shards.clean_temporaries(tmp_path)
    assert [p.name for p in gone] == [".train-00000-of-00001.parquet.tmp-123"]
    assert (tmp_path / "keep.parquet").exists()


def test_statistics_only_for_the_columns_queries_filter_on(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    (entry,) = shards.write_split(
        tmp_path, "synthetic", "train", [_row(i, 2, 4, 4, rng) for i in range(3)]
    )
    meta = pq.ParquetFile(tmp_path / "data" / "synthetic" / entry["file"]).metadata.row_group(0)
    stats = {
        meta.column(i).path_in_schema: meta.column(i).is_stats_set for i in range(meta.num_columns)
    }
    assert stats["id"] and stats["source"] and stats["start_frame"]
    assert not stats["gt.list.element.bytes"] and not stats["degradation"]


def test_rows_per_shard_count_the_gt_and_the_lq_clip() -> None:
    # a row holds two clips (GT and LQ) of `frames` frames: about 1.6 bytes an RGB pixel in PNG
    frames, size = 8, 200
    for fmt, per_pixel in (("png", 1.6), ("jpeg", 0.4)):
        row = 2 * frames * size * size * per_pixel
        n = shards.default_rows_per_shard(frames, size, fmt)
        assert n * row <= shards.TARGET_SHARD_BYTES < (n + 1) * row, fmt


def test_a_record_without_shards_reads_as_one_with_none(tmp_path: Path) -> None:
    folder = shards.config_dir(tmp_path, "default")
    folder.mkdir(parents=True)
    (folder / shards.RECORD).write_text(json.dumps({"version": 1, "config": "default"}))
    assert shards.read_record(tmp_path, "default")["shards"] == {}


def test_a_config_folder_reads_as_parquet_with_pyarrow_and_pandas(tmp_path: Path) -> None:
    # `pd.read_parquet(folder)` and `pyarrow.dataset` read every file of a folder but those
    # named "_..." or "...": the record must not be taken for a shard.
    import pandas as pd
    import pyarrow.parquet as pq

    rng = np.random.default_rng(3)
    rows = [_row(i, 1, 4, 4, rng) for i in range(3)]
    shards.write_split(tmp_path, "synthetic", "train", rows, rows_per_shard=2)
    folder = shards.config_dir(tmp_path, "synthetic")
    assert pq.read_table(folder).num_rows == 3
    assert sorted(pd.read_parquet(folder, columns=["id"])["id"]) == [r["id"] for r in rows]


@pytest.mark.parametrize("old", shards.LEGACY_RECORDS)
def test_a_record_of_an_old_name_is_read_and_replaced(tmp_path: Path, old: str) -> None:
    rng = np.random.default_rng(4)
    shards.write_split(tmp_path, "real", "train", [_row(0, 1, 4, 4, rng)])
    folder = shards.config_dir(tmp_path, "real")
    (folder / shards.RECORD).rename(folder / old)  # a dataset made before
    assert shards.is_dataset(tmp_path)
    assert shards.scan(tmp_path)["real"]["train"]["rows"] == 1
    shards.write_split(tmp_path, "real", "validation", [_row(1, 1, 4, 4, rng)])
    assert not (folder / old).exists() and (folder / shards.RECORD).is_file()
    assert set(shards.read_record(tmp_path, "real")["shards"]) == {
        "train-00000-of-00001.parquet",
        "validation-00000-of-00001.parquet",
    }
