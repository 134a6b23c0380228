"""Parquet shards of paired windows, their record, and the dataset card.

A dataset folder holds `README.md` (the card) and `data/<config>/<split>-0000K-of-0000N.parquet`.
Every shard carries the Hugging Face features in its Parquet schema metadata (so `datasets`
decodes the image columns) and the card's YAML lists the configs and their data files (so
`datasets.load_dataset(path)` needs no script); DuckDB reads the same files.

The atomic protocol: a shard is written to `.<name>.tmp-<pid>` in its own folder, fsynced and
renamed; then `data/<config>/.shards.json` (the record, itself replaced atomically) gains the
shard's file, sha256, rows and window ids. A shard that is not in the record is not complete;
`clean_temporaries` removes what a killed writer left.
The pairing stage writes config `real` with `write_split` and then calls `write_card`, which
rescans every config and split.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import FilmdataError, RefusedError

# The record is a hidden file so that no reader of the folder takes it for data: a directory
# read of the config's folder (`pyarrow.dataset`, `pd.read_parquet(folder)`, Spark) skips names
# starting with "." or "_", and `datasets.load_dataset(path)` without a card (a run stopped
# before its first card is written) skips hidden files only (`datasets.data_files`): it took
# `_shards.json` for a one-row train split, and the `shards.json` of older datasets broke the
# directory readers. Those names are still read, and replaced on the next write.
RECORD = ".shards.json"
LEGACY_RECORDS = ("_shards.json", "shards.json")
SHARD_RE = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-(?P<index>\d{5})-of-(?P<n>\d{5})\.parquet$")
TARGET_SHARD_BYTES = 256 * 2**20  # "shards of a few hundred MB"

# The row schema of DESIGN.md, as Hugging Face features (written into each shard's metadata).
HF_FEATURES: dict[str, Any] = {
    "id": {"dtype": "string", "_type": "Value"},
    "source": {"dtype": "string", "_type": "Value"},
    "clip": {"dtype": "string", "_type": "Value"},
    "start_frame": {"dtype": "int32", "_type": "Value"},
    "fps": {"dtype": "float32", "_type": "Value"},
    "crop": {k: {"dtype": "int32", "_type": "Value"} for k in "xywh"},
    "gt": {"feature": {"_type": "Image"}, "_type": "List"},
    "lq": {"feature": {"_type": "Image"}, "_type": "List"},
    "degradation": {"dtype": "string", "_type": "Value"},
    "origin": {"dtype": "string", "_type": "Value"},
}
_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("clip", pa.string()),
        ("start_frame", pa.int32()),
        ("fps", pa.float32()),
        ("crop", pa.struct([(k, pa.int32()) for k in "xywh"])),
        ("gt", pa.list_(_IMAGE)),
        ("lq", pa.list_(_IMAGE)),
        ("degradation", pa.string()),
        ("origin", pa.string()),
    ],
    metadata={b"huggingface": json.dumps({"info": {"features": HF_FEATURES}}).encode()},
)
COLUMNS = tuple(SCHEMA.names)


def shard_count(rows: int, rows_per_shard: int) -> int:
    """How many shards `rows` rows make at `rows_per_shard` a shard (one at least)."""
    return max(1, -(-rows // rows_per_shard))


def shard_name(split: str, index: int, n: int) -> str:
    """`<split>-0000K-of-0000N.parquet` (index counts from 0)."""
    return f"{split}-{index:05d}-of-{n:05d}.parquet"


def sha256_file(path: str | os.PathLike[str], sync: bool = False) -> str:
    """The file's sha256; `sync`: and the file fsynced (one just written, read back from the
    page cache)."""
    h = hashlib.sha256()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with open(path, "rb") as f:
        while n := f.readinto(buf):
            h.update(view[:n])
        if sync:
            os.fsync(f.fileno())
    return h.hexdigest()


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary name in the same folder, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


# Rows ----------------------------------------------------------------------------------------


def encode_image(img: np.ndarray, fmt: str = "png") -> bytes:
    """(H, W, 3) RGB or (H, W) uint8 to PNG (lossless, fast settings) or JPEG (quality 95)."""
    import cv2

    if fmt == "png":
        return encode_png(img)
    if fmt not in ("jpeg", "jpg"):
        raise RefusedError(f"image format must be png or jpeg, got {fmt!r}")
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise FilmdataError(f"cannot encode a {img.shape} image as {fmt}")
    return buf.tobytes()


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR = {1: 0, 3: 2, 4: 6}  # grey, RGB, RGBA


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return b"".join(_png_chunk_parts(kind, data))


def _png_chunk_parts(kind: bytes, data: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """A PNG chunk as its four parts (length, type, data, CRC), joined once by the caller."""
    import struct

    from isal import isal_zlib  # its crc32 (carry-less multiply) is several times zlib's

    crc = isal_zlib.crc32(data, isal_zlib.crc32(kind))
    return struct.pack(">I", len(data)), kind, data, struct.pack(">I", crc)


@functools.cache
def _png_head(h: int, w: int, c: int) -> bytes:
    """The signature and IHDR chunk of an 8-bit (h, w, c) PNG."""
    import struct

    header = struct.pack(">IIBBBBB", w, h, 8, _PNG_COLOUR[c], 0, 0, 0)
    return _PNG_SIGNATURE + _png_chunk(b"IHDR", header)


_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_PNG_ROWS = threading.local()  # each encoding thread's filtered-rows buffer, reused


def _png_rows(h: int, row: int) -> np.ndarray:
    """This thread's (h, row + 1) buffer of filtered rows: the filter bytes are set once (the
    first row unfiltered, the others "Up"); the caller fills the rest."""
    raw = getattr(_PNG_ROWS, "buf", None)
    if raw is None or raw.shape != (h, row + 1):
        raw = np.empty((h, row + 1), np.uint8)
        raw[0, 0] = 0
        raw[1:, 0] = 2
        _PNG_ROWS.buf = raw
    return raw


#: How far back deflate looks for repeated bytes in PNG data, as log2 bytes: the whole 32 KB
#: window. (Looking back 8 bytes only, as the seventh session did, was a little faster, but
#: ISA-L's output then depends on memory it does not initialise: the same pixels came out as
#: other bytes, decoding right, in 2 of 10 runs that encoded 1 920 real 256^2 frames on two
#: threads (4 and 24 of them), and in 1 of 480 between two synth processes; a 256-byte window
#: in 1 of 16 runs. The whole window: the same bytes in all of 24 runs. Its LQ images are 14%
#: smaller for 0.09 ms more each, its GT 8% larger at the same speed.)
PNG_LOOKBACK_BITS = 15


def _png_data(raw: np.ndarray) -> bytes:
    """Filtered PNG rows deflated as a zlib stream (ISA-L level 1, `PNG_LOOKBACK_BITS`)."""
    from isal import igzip_lib

    return igzip_lib.compress(
        raw, 1, igzip_lib.COMP_ZLIB, igzip_lib.MEM_LEVEL_DEFAULT, PNG_LOOKBACK_BITS
    )


def encode_png(img: np.ndarray) -> bytes:
    """An 8-bit PNG of (H, W), (H, W, 3) RGB or (H, W, 4) RGBA uint8: every row filtered "Up"
    (numpy) and deflated by ISA-L at level 1 (`PNG_LOOKBACK_BITS`): the same pixels, the
    same bytes.

    Measured on 256^2 frames: 0.4-0.5 ms against OpenCV/libpng's 1.8-2.0 ms at its fastest
    settings, at about the same size (61 KB clean, 104 KB degraded, real 720p footage). ISA-L
    releases the GIL, so the encode threads run in parallel. The filtered rows go to a buffer
    the thread reuses and the file is joined in one copy (the same bytes as the chunks built
    one by one, 40 us less a frame).
    """

    if img.dtype != np.uint8 or img.ndim not in (2, 3) or img.size == 0:
        raise FilmdataError(f"cannot encode a {img.dtype} {img.shape} array as png")
    h, w = img.shape[:2]
    c = 1 if img.ndim == 2 else img.shape[2]
    if c not in _PNG_COLOUR:
        raise FilmdataError(f"cannot encode a {img.shape} array as png")
    rows = np.ascontiguousarray(img).reshape(h, w * c)
    raw = _png_rows(h, w * c)
    raw[0, 1:] = rows[0]  # the first row: no filter
    np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])  # "Up": minus the byte above, mod 256
    return b"".join((_png_head(h, w, c), *_png_chunk_parts(b"IDAT", _png_data(raw)), _PNG_IEND))


def decode_image(data: bytes) -> np.ndarray:
    """Image bytes to (H, W, 3) uint8 RGB. Raises FilmdataError when they do not decode."""
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if arr is None:
        raise FilmdataError("an image does not decode")
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


def _image_cell(v: Any) -> dict[str, Any]:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"bytes": bytes(v), "path": None}
    if isinstance(v, np.ndarray):
        return {"bytes": encode_image(v), "path": None}
    if isinstance(v, Mapping) and v.get("bytes") is not None:
        return {"bytes": bytes(v["bytes"]), "path": None}
    raise FilmdataError(f"an image must be bytes, an array or {{'bytes': ...}}, got {type(v)}")


def normalize_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row of the DESIGN.md schema; `gt`/`lq` frames may be bytes, arrays or image dicts."""
    missing = [c for c in COLUMNS if c not in row]
    if missing:
        raise FilmdataError(f"row {row.get('id')!r}: missing columns {missing}")
    out = {c: row[c] for c in COLUMNS}
    out["gt"] = [_image_cell(v) for v in row["gt"]]
    out["lq"] = [_image_cell(v) for v in row["lq"]]
    if len(out["gt"]) != len(out["lq"]):
        raise FilmdataError(f"row {row['id']!r}: {len(out['gt'])} gt frames, {len(out['lq'])} lq")
    if not isinstance(out["degradation"], str):
        out["degradation"] = json.dumps(out["degradation"], sort_keys=True)
    out["crop"] = {k: int(out["crop"][k]) for k in "xywh"}
    return out


def rows_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Normalized rows as an Arrow table of `SCHEMA`, built from buffers.

    The same table as `pa.Table.from_pylist(rows, schema=SCHEMA)`, without its per-value
    conversion, and without the pandas import (0.3 s) that any `pa.array` of Python objects
    triggers in pyarrow: a short synth run pays neither.
    """
    n = len(rows)

    def flat(values: Sequence[Any], kind: pa.DataType) -> pa.Array:
        if kind in (pa.string(), pa.binary()):
            data = [v.encode() if isinstance(v, str) else bytes(v) for v in values]
            offsets = np.zeros(len(data) + 1, np.int64)
            np.cumsum([len(d) for d in data], out=offsets[1:])
            if offsets[-1] >= 2**31:
                raise FilmdataError(
                    f"a shard column holds {offsets[-1]} bytes; lower rows per shard"
                )
            buffers = [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(data))]
            return pa.Array.from_buffers(kind, len(data), buffers)
        array = np.asarray(values, dtype=kind.to_pandas_dtype())
        return pa.Array.from_buffers(kind, len(array), [None, pa.py_buffer(array)])

    def images(column: str) -> pa.Array:
        cells = [c for r in rows for c in r[column]]
        sizes = np.zeros(n + 1, np.int32)
        np.cumsum([len(r[column]) for r in rows], out=sizes[1:])
        paths = pa.Array.from_buffers(
            pa.string(),
            len(cells),
            [
                pa.py_buffer(np.zeros(-(-len(cells) // 8), np.uint8)),
                pa.py_buffer(sizes[:1].repeat(len(cells) + 1)),
                pa.py_buffer(b""),
            ],
            null_count=len(cells),
        )
        image = pa.StructArray.from_arrays(
            [flat([c["bytes"] for c in cells], pa.binary()), paths], fields=list(_IMAGE)
        )
        offsets = pa.Array.from_buffers(pa.int32(), n + 1, [None, pa.py_buffer(sizes)])
        return pa.ListArray.from_arrays(offsets, image, type=SCHEMA.field(column).type)

    columns = []
    for field in SCHEMA:
        if field.name in ("gt", "lq"):
            columns.append(images(field.name))
        elif field.name == "crop":
            parts = [flat([r["crop"][k] for r in rows], pa.int32()) for k in "xywh"]
            columns.append(pa.StructArray.from_arrays(parts, fields=list(field.type)))
        else:
            columns.append(flat([r[field.name] for r in rows], field.type))
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def write_shard(path: Path, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Write `rows` as one Parquet shard at `path`, atomically; returns its record entry."""
    with ShardWriter(path) as w:
        w.add(rows)
    return w.entry


class ShardWriter:
    """One Parquet shard written as its rows come, made visible only when complete.

        with ShardWriter(path) as w:
            w.add(rows)        # any number of times, in order
        w.entry                # {"file", "sha256", "bytes", "rows", "ids"}

    Rows go to `.<name>.tmp-<pid>` in row groups of `ROW_GROUP`, written by Arrow's own file
    (a Python file object in between costs a copy and the GIL on every write: 3x the writer's
    CPU); on a clean exit the file is fsynced and renamed, on an error it is removed. Its
    sha256 is taken as it grows: after each row group the bytes Arrow wrote are read back
    from the page cache and hashed, and every 32 MB written back to disk (`_Digest`), so
    closing a 200 MB shard hashes and syncs only its last few MB (0.2 s less at the end of a
    run, where nothing else overlaps it). A Parquet writer only appends, so the bytes hashed
    are final.
    """

    # Rows a row group (images are already compressed, so no Parquet compression): a few, so
    # that a row's images are written (and freed) soon after it is made, which keeps the
    # encode threads' heaps from fragmenting (fewer fresh pages: 16 rows faulted about 10%
    # more), and the last group, written after the last window, is short (0.04 s less at
    # the end of a run). A group of 256^2 PNG windows of 8 frames is still ~10 MB.
    ROW_GROUP = 4

    def __init__(self, path: Path):
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        self.rows: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self.entry: dict[str, Any] = {}
        self._file: Any = None
        self._writer: pq.ParquetWriter | None = None
        self._digest: _Digest | None = None

    def __enter__(self) -> ShardWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = pa.OSFile(str(self.tmp), "wb")
        self._digest = _Digest(self.tmp)
        self._writer = pq.ParquetWriter(
            self._file,
            SCHEMA,
            compression="none",
            use_dictionary=_DICTIONARY,
            write_statistics=_STATISTICS,
        )
        return self

    def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append rows (in order); full row groups are written at once."""
        for r in rows:
            self.rows.append(normalize_row(r))
            self.ids.append(str(r["id"]))
        while len(self.rows) >= self.ROW_GROUP:
            self._flush(self.ROW_GROUP)

    def _flush(self, n: int) -> None:
        assert self._writer is not None
        self._writer.write_table(rows_table(self.rows[:n]), row_group_size=n)
        del self.rows[:n]
        assert self._digest is not None
        self._digest.update()

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        try:
            if kind is None:
                if self.rows:  # (no rows: a file of the schema alone, no row group)
                    self._flush(len(self.rows))
                assert self._writer is not None
                self._writer.close()
                self._file.close()
                assert self._digest is not None
                digest = self._digest.finish()
                size = self.tmp.stat().st_size
                os.replace(self.tmp, self.path)
                _fsync_dir(self.path.parent)
                self.entry = {
                    "file": self.path.name,
                    "sha256": digest,
                    "bytes": size,
                    "rows": len(self.ids),
                    "ids": self.ids,
                }
        finally:
            if self._writer is not None and self._writer.is_open:
                with contextlib.suppress(Exception):  # an error is on its way already
                    self._writer.close()
            if self._file is not None and not self._file.closed:
                self._file.close()
            if self._digest is not None:
                self._digest.close()
            if self.tmp.exists():
                self.tmp.unlink()


class _Digest:
    """The sha256 of a file that another writer appends to, taken as it grows: `update()`
    hashes the bytes written since the last call (read back from the page cache) and, every
    `SYNC` bytes, writes them back to disk; `finish()` hashes the rest, fsyncs and returns the
    hex digest."""

    SYNC = 32 << 20

    def __init__(self, path: Path):
        self.fd = os.open(path, os.O_RDONLY)
        self.hash = hashlib.sha256()
        self.done = 0  # bytes hashed
        self.synced = 0  # bytes written back
        self.buf = bytearray(1 << 20)

    def update(self) -> None:
        view = memoryview(self.buf)
        while n := os.readv(self.fd, [self.buf]):
            self.hash.update(view[:n])
            self.done += n
        if self.done - self.synced >= self.SYNC:
            # Written back now (I/O wait in the writer thread, which nothing waits on),
            # rather than all of it at the final fsync.
            getattr(os, "fdatasync", os.fsync)(self.fd)
            self.synced = self.done

    def finish(self) -> str:
        self.update()
        os.fsync(self.fd)
        return self.hash.hexdigest()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# Dictionary encoding for the repeated strings only: for ids, records and images Arrow would
# hash every value before giving the dictionary up.
_DICTIONARY = ["source", "clip", "origin"]
# Min/max statistics for the columns a query filters on; not for the images and records, where
# Arrow would compare every value's bytes (half the writer's CPU) for statistics no one reads.
_STATISTICS = ["id", "source", "clip", "start_frame", "fps", "origin"]


def read_shard(path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> pa.Table:
    return pq.read_table(path, columns=list(columns) if columns else None)


# The record ----------------------------------------------------------------------------------


def config_dir(dataset: Path, config: str) -> Path:
    return Path(dataset) / "data" / config


def read_record(dataset: Path, config: str) -> dict[str, Any]:
    """`data/<config>/.shards.json` (or the `LEGACY_RECORDS` of a dataset made before), or an
    empty record when there is none yet."""
    path = record_path(dataset, config)
    if not path.exists():
        return {"version": 1, "config": config, "shards": {}}
    why: str | None
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        rec, why = None, e.strerror if isinstance(e, OSError) and e.strerror else str(e)
    else:
        why = _record_problem(rec)
    if why:
        raise FilmdataError(f"{path}: unreadable shard record ({why}); delete the dataset")
    rec.setdefault("shards", {})
    return rec


def _json_kind(v: Any) -> str:
    kinds = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
    return "null" if v is None else kinds.get(type(v), type(v).__name__)


def _record_problem(rec: Any) -> str | None:
    """What makes a parsed record one the readers cannot use (None when it is usable)."""
    if not isinstance(rec, dict):
        return f"a JSON {_json_kind(rec)}, not an object"
    entries = rec.get("shards", {})
    if not isinstance(entries, dict):
        return f"its shards are a JSON {_json_kind(entries)}, not an object"
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            return f"shard {name}: a JSON {_json_kind(entry)}, not an object"
        for key, kind in (("split", str), ("rows", int), ("bytes", int)):
            if not isinstance(entry.get(key), kind):
                return f"shard {name}: no {kind.__name__} {key!r}"
    return None


def record_path(dataset: Path, config: str) -> Path:
    """Where `config`'s record is: `RECORD`, or the first of `LEGACY_RECORDS` there where it
    is not (a dataset made before the renames)."""
    folder = config_dir(dataset, config)
    if (folder / RECORD).exists():
        return folder / RECORD
    return next((folder / n for n in LEGACY_RECORDS if (folder / n).is_file()), folder / RECORD)


def has_record(folder: Path) -> bool:
    """Whether a config folder holds a record (under any of its names)."""
    return any((folder / n).is_file() for n in (RECORD, *LEGACY_RECORDS))


def is_dataset(dataset: Path) -> bool:
    """Whether a folder is a filmdata dataset: one of its configs has a record
    (`data/<config>/.shards.json`, written before any shard)."""
    data = Path(dataset) / "data"
    return data.is_dir() and any(has_record(p) for p in data.iterdir() if p.is_dir())


def write_record(dataset: Path, config: str, record: Mapping[str, Any]) -> None:
    data = json.dumps(record, indent=1, sort_keys=True).encode()
    folder = config_dir(dataset, config)
    atomic_write_bytes(folder / RECORD, data)
    # records of the old names, now superseded (left, readers would take them for data)
    for name in LEGACY_RECORDS:
        (folder / name).unlink(missing_ok=True)


def clean_temporaries(folder: Path) -> list[Path]:
    """Remove the `.*.tmp-*` files a killed writer left in `folder`; returns them."""
    gone = []
    if folder.is_dir():
        for p in sorted(folder.glob(".*.tmp-*")):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                gone.append(p)
    return gone


@contextlib.contextmanager
def locked(dataset: Path) -> Iterator[None]:
    """Hold an exclusive lock on the dataset folder itself (no lock file is left behind; the
    OS releases it when the process dies, even by kill -9)."""
    dataset.mkdir(parents=True, exist_ok=True)
    with _flock(dataset, fcntl.LOCK_EX, "wait for it to finish"):
        clean_temporaries(dataset)  # a card or record a killed writer left half-written
        yield


@contextlib.contextmanager
def read_locked(dataset: Path) -> Iterator[None]:
    """Hold a shared lock on the dataset folder while reading it: a writer (`locked`) running
    now is refused as such (what it is making is not stale, nor missing)."""
    with _flock(dataset, fcntl.LOCK_SH, "verify it when that has finished"):
        yield


@contextlib.contextmanager
def _flock(dataset: Path, mode: int, then: str) -> Iterator[None]:
    """`mode` (exclusive or shared) on the folder, or refused while a writer holds it."""
    fd = os.open(dataset, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RefusedError(
                f"{dataset}: another process is writing this dataset; {then}"
            ) from None
        yield
    finally:
        os.close(fd)


def default_rows_per_shard(frames: int, size: int, fmt: str = "png") -> int:
    """Rows per shard that make shards of about `TARGET_SHARD_BYTES` (estimated, deterministic)."""
    per_pixel = 1.6 if fmt == "png" else 0.4  # bytes per RGB pixel of textured footage
    row = max(1.0, 2 * frames * size * size * per_pixel)
    return max(1, int(TARGET_SHARD_BYTES // row))


def write_split(
    dataset: str | os.PathLike[str],
    config: str,
    split: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    rows_per_shard: int = 64,
    total: int | None = None,
) -> list[dict[str, Any]]:
    """Write one split of one config as shards, atomically, and record them.

    Args:
        dataset: the dataset folder (`ROOT/datasets/NAME`).
        config: e.g. `real` or `synthetic`.
        split: e.g. `train`, `validation`.
        rows: rows of the DESIGN.md schema (`gt`/`lq` as bytes, uint8 arrays or image dicts).
        rows_per_shard: rows in each shard.
        total: how many rows come (needed for `-of-N`); a sequence gives it, an iterator is
            read into memory first when it is None.

    Returns:
        The record entries of the shards written. Shards of this split from an earlier run are
        replaced; call `write_card(dataset)` when every split is written.
    """
    dataset = Path(dataset)
    if rows_per_shard < 1:
        raise RefusedError(f"rows_per_shard must be >= 1, got {rows_per_shard}")
    if total is None:
        rows = rows if isinstance(rows, Sequence) else list(rows)
        total = len(rows)
    n = shard_count(total, rows_per_shard)
    folder = config_dir(dataset, config)
    with locked(dataset):
        clean_temporaries(folder)
        record = read_record(dataset, config)
        for name in [k for k, v in record["shards"].items() if v.get("split") == split]:
            del record["shards"][name]
            (folder / name).unlink(missing_ok=True)
        for p in folder.glob(f"{split}-*-of-*.parquet"):
            p.unlink()
        # planned before the first shard: until the last is written, the card names them all
        record.setdefault("plan", {})[split] = n
        write_record(dataset, config, record)
        entries: list[dict[str, Any]] = []
        batch: list[Mapping[str, Any]] = []

        def flush() -> None:
            entry = write_shard(folder / shard_name(split, len(entries), n), batch)
            entry.update(split=split, index=len(entries))
            entries.append(entry)
            record["shards"][entry["file"]] = entry
            record.setdefault("plan", {})[split] = n
            write_record(dataset, config, record)
            batch.clear()

        count = 0
        for row in rows:
            batch.append(row)
            count += 1
            if len(batch) == rows_per_shard:
                flush()
        if batch or not entries:
            flush()
        if count != total:
            raise FilmdataError(f"{folder}: {split}: expected {total} rows, got {count}")
    return entries


# The card ------------------------------------------------------------------------------------


def records(dataset: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Each config's record, read once: {config: record} (a synthetic one lists every window,
    so the readers of several of their parts take them from here)."""
    dataset = Path(dataset)
    data = dataset / "data"
    folders = sorted(p for p in data.iterdir() if p.is_dir()) if data.is_dir() else []
    return {f.name: read_record(dataset, f.name) for f in folders}


def scan(
    dataset: str | os.PathLike[str], recs: Mapping[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, dict[str, int]]]:
    """What the record of each config lists: {config: {split: {"rows", "bytes", "shards"}}}.
    `recs`: the records, where read already (`records`)."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for config, record in (records(dataset) if recs is None else recs).items():
        splits: dict[str, dict[str, int]] = {}
        for entry in record["shards"].values():
            s = splits.setdefault(entry["split"], {"rows": 0, "bytes": 0, "shards": 0})
            s["rows"] += entry["rows"]
            s["bytes"] += entry["bytes"]
            s["shards"] += 1
        if splits:
            out[config] = dict(sorted(splits.items(), key=lambda kv: _split_order(kv[0])))
    return out


def pending_files(
    dataset: str | os.PathLike[str], recs: Mapping[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, list[str]]]:
    """{config: {split: planned shard names}} of each config whose record plans shards (its
    `plan`: shards per split) that it does not list as complete: a run under way, or one
    stopped part-way. `recs`: the records, where read already (`records`)."""
    out: dict[str, dict[str, list[str]]] = {}
    for config, record in (records(dataset) if recs is None else recs).items():
        plan = record.get("plan") or {}
        planned = {s: [shard_name(s, k, int(n)) for k in range(int(n))] for s, n in plan.items()}
        if any(f not in record["shards"] for files in planned.values() for f in files):
            out[config] = dict(sorted(planned.items(), key=lambda kv: _split_order(kv[0])))
    return out


def record_plan(dataset: str | os.PathLike[str], config: str, plan: Mapping[str, int]) -> None:
    """Record that `config`'s splits will hold `plan` shards each (before they are written:
    until they all are, the card names them, `write_card`)."""
    dataset = Path(dataset)
    with locked(dataset):
        record = read_record(dataset, config)
        record["plan"] = {**(record.get("plan") or {}), **{s: int(n) for s, n in plan.items()}}
        write_record(dataset, config, record)


def _split_order(split: str) -> tuple[int, str]:
    return ({"train": 0, "validation": 1, "test": 2}.get(split, 3), split)


def write_card(
    dataset: str | os.PathLike[str],
    *,
    title: str | None = None,
    description: str = "",
    params: Mapping[str, Any] | None = None,
) -> Path:
    """(Re)write `README.md` from what the records list: configs, data files, splits, features.

    The YAML header is what `datasets.load_dataset(path)` reads (`configs:` with `data_files`
    per split); `dataset_info` carries the features and row counts.

    A config whose record plans shards it does not list as complete (`pending_files`: a run
    under way, or stopped part-way) has its `data_files` name every planned shard, so that
    until the last is there, loading it fails on the first one missing: a stopped run never
    loads as the whole dataset (with no card, `datasets` took whatever shards it found; a card
    rewritten by `verify --repair` offered them whole).
    """
    import yaml

    dataset = Path(dataset)
    recs = records(dataset)
    found, pending = scan(dataset, recs), pending_files(dataset, recs)
    if not found and not pending:
        raise FilmdataError(f"{dataset}: no complete shards to describe")
    configs, infos = [], []
    names = list(found) + [c for c in pending if c not in found]
    default = "synthetic" if "synthetic" in names else names[0]
    for config in names:
        entry: dict[str, Any] = {"config_name": config}
        if config in pending:
            entry["data_files"] = [
                {"split": s, "path": [f"data/{config}/{f}" for f in files]}
                for s, files in pending[config].items()
            ]
        else:
            entry["data_files"] = [
                {"split": s, "path": card_files(config, s)} for s in found[config]
            ]
        if config == default:
            entry["default"] = True
        configs.append(entry)
        if config not in found:
            continue
        splits = found[config]
        infos.append(
            {
                "config_name": config,
                "features": _yaml_features(),
                "splits": [
                    {"name": s, "num_bytes": v["bytes"], "num_examples": v["rows"]}
                    for s, v in splits.items()
                ],
                "download_size": sum(v["bytes"] for v in splits.values()),
            }
        )
    header = yaml.safe_dump(
        {"configs": configs, "dataset_info": infos, "tags": ["video", "restoration"]},
        sort_keys=False,
    )
    name = title or dataset.name
    lines = [
        f"# {name}",
        "",
        description
        or "Paired (degraded, clean) video windows for "
        "old-film and VHS restoration, made by filmdata.",
        "",
        "| config | split | rows | shards | bytes |",
        "| --- | --- | --- | --- | --- |",
    ]
    for config, splits in found.items():
        for s, v in splits.items():
            lines.append(f"| {config} | {s} | {v['rows']} | {v['shards']} | {v['bytes']} |")
    for config in pending:
        lines += [
            "",
            f"Config `{config}` is being made: it loads once all of its "
            f"{sum(len(f) for f in pending[config].values())} shards are written (a stopped "
            "run resumes them).",
        ]
    lines += [
        "",
        "Each row is one window: `gt` and `lq` are lists of frames (images) of equal length; "
        "`source`, `clip`, `start_frame` and `crop` (source pixels) say where the GT was cut "
        "from; `degradation` (JSON) holds the preset, the seed and every sampled parameter. "
        "Frames coded interlaced were deinterlaced (FFmpeg's bwdif, one picture per frame) "
        "before the GT was cut, and combed pictures coded progressive field-matched (FFmpeg's "
        "fieldmatch: a telecined film's own frames) and deinterlaced where still combed; "
        "crops are square as shown (of a source with non-square pixels, an anamorphic DVD's, "
        "`crop` is as many times taller than wide as its pixels are wider than high).",
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("{dataset}")',
        "```",
    ]
    for config in found:
        made_with = {**recs[config].get("params", {}), **(params or {})}
        if made_with:
            lines += [
                "",
                f"Config `{config}` was made with:",
                "",
                "```json",
                json.dumps(made_with, indent=1, sort_keys=True),
                "```",
            ]
    text = f"---\n{header}---\n\n" + "\n".join(lines) + "\n"
    atomic_write_bytes(dataset / "README.md", text.encode())
    return dataset / "README.md"


def card_files(config: str, split: str) -> str:
    """The pattern the card lists for a split's shards (relative to the dataset)."""
    return f"data/{config}/{split}-*.parquet"


def card_problems(dataset: str | os.PathLike[str]) -> list[str]:
    """How the card (`README.md`) disagrees with what the records list (empty when it agrees):
    a config or split with complete shards that `load_dataset` would not offer, one it would
    offer that has none, another row count. The card is rewritten after every run; a run killed
    before that (a `pair --export` between its splits and its card) leaves it stale."""
    import yaml

    dataset = Path(dataset)
    recs = records(dataset)
    found = scan(dataset, recs)
    card = dataset / "README.md"
    if not card.is_file():
        if not found and pending_files(dataset, recs):  # a run stopped before its first card
            return [
                "README.md missing (a run stopped before its first card): `load_dataset` "
                "finds no data"
            ]
        if not found:  # (the shards' own problems say why, when there are any)
            return ["no complete shards and no README.md: `load_dataset` finds nothing"]
        return ["README.md missing: `load_dataset` finds no configs"]
    text = card.read_text(errors="replace")
    try:
        header = yaml.safe_load(text.split("---\n", 2)[1]) if text.startswith("---\n") else None
    except (IndexError, yaml.YAMLError):
        header = None
    if not isinstance(header, dict):
        return ["README.md has no readable YAML header"]
    files: dict[str, dict[str, str]] = {}
    for c in header.get("configs") or []:
        files[c.get("config_name")] = {
            d.get("split"): d.get("path") for d in c.get("data_files") or []
        }
    rows: dict[str, dict[str, int]] = {}
    features: dict[str, Any] = {}
    for i in header.get("dataset_info") or []:
        rows[i.get("config_name")] = {
            s.get("name"): s.get("num_examples") for s in i.get("splits") or []
        }
        features[i.get("config_name")] = i.get("features")
    problems = []
    pending = pending_files(dataset, recs)
    for config in sorted(set(found) | set(files) | set(pending), key=str):
        have, listed = found.get(config, {}), files.get(config, {})
        if config in pending:  # (its missing shards are the shards' own problems)
            want = {s: [f"data/{config}/{f}" for f in fs] for s, fs in pending[config].items()}
            if listed != want:
                made = recs[config]["shards"]
                missing = sum(f not in made for fs in pending[config].values() for f in fs)
                problems.append(
                    f"config {config!r}: README.md offers it, though {missing} of its planned "
                    "shards are not complete"
                )
            continue
        if config not in files:
            problems.append(f"config {config!r} has complete shards but is not in README.md")
            continue
        if config in features and config in found and features[config] != _yaml_features():
            # `load_dataset` casts the shards to the card's features: others fail it
            problems.append(
                f"config {config!r}: README.md's features are not the shards' "
                "(`load_dataset` would fail casting them)"
            )
        for split in sorted(set(have) | set(listed), key=str):
            where = f"config {config!r} split {split!r}"
            if split not in listed:
                problems.append(f"{where} has complete shards but is not in README.md")
            elif split not in have:
                problems.append(f"{where} is in README.md but has no complete shard")
            elif listed[split] != card_files(config, split):
                problems.append(f"{where}: README.md lists files {listed[split]!r}")
            elif rows.get(config, {}).get(split) != have[split]["rows"]:
                n = rows.get(config, {}).get(split)
                problems.append(
                    f"{where}: README.md says {n} rows, the record {have[split]['rows']}"
                )
    return problems


def _yaml_features() -> list[dict[str, Any]]:
    return [
        {"name": "id", "dtype": "string"},
        {"name": "source", "dtype": "string"},
        {"name": "clip", "dtype": "string"},
        {"name": "start_frame", "dtype": "int32"},
        {"name": "fps", "dtype": "float32"},
        {"name": "crop", "struct": [{"name": k, "dtype": "int32"} for k in "xywh"]},
        {"name": "gt", "list": "image"},
        {"name": "lq", "list": "image"},
        {"name": "degradation", "dtype": "string"},
        {"name": "origin", "dtype": "string"},
    ]


def dataset_bytes(dataset: Path) -> int:
    return sum(p.stat().st_size for p in Path(dataset).rglob("*.parquet"))


def register_dataset(
    root: str | os.PathLike[str], dataset: str | os.PathLike[str]
) -> dict[str, Any]:
    """Record a dataset in the catalog's `datasets` table (when the root has a catalog, or the
    dataset lives under the root): configs, rows per split, bytes, and each config's params.

    Returns:
        {"name", "path", "configs", "splits": {config: {split: rows}}, "bytes"}.
    """
    from .catalog import Catalog

    root, dataset = Path(root), Path(dataset)
    recs = records(dataset)
    found = scan(dataset, recs)
    summary: dict[str, Any] = {
        "name": dataset.name,
        "path": str(dataset),
        "configs": list(found),
        "splits": {c: {s: v["rows"] for s, v in sp.items()} for c, sp in found.items()},
        "bytes": dataset_bytes(dataset),
    }
    if (root / "catalog.sqlite").exists() or dataset.is_relative_to(root):
        rel = dataset.relative_to(root) if dataset.is_relative_to(root) else dataset
        with Catalog.at_root(root) as cat:
            old = cat.row("datasets", {"name": dataset.name}) or {}
            kept = old.get("params")
            params: dict[str, Any] = dict(kept) if isinstance(kept, dict) else {}
            for c in found:  # each config's record says what made it; keep what others noted
                made = recs[c].get("params")
                if made is not None or c not in params:
                    params[c] = made
            cat.upsert_dataset({**summary, "path": str(rel), "params": params})
    return summary
