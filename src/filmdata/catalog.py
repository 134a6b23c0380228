"""The SQLite catalog at `ROOT/catalog.sqlite`: sources, clips, pairs and datasets.

Stdlib sqlite3 in WAL mode with a busy timeout and short transactions, so that several
processes can share one root (two fetches, a fetch while a cut runs) without "database is
locked". The schema is versioned with `PRAGMA user_version`; `MIGRATIONS[i]` takes a database
from version i to i + 1, and opening a catalog applies whatever is missing.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ._json import dumps

MIGRATIONS: list[str] = [
    # v1: the four tables of DESIGN.md.
    """
    CREATE TABLE sources (
        manifest TEXT NOT NULL,
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        url TEXT,
        origin_path TEXT,
        title TEXT,
        year INTEGER,
        status TEXT NOT NULL DEFAULT 'pending',   -- pending | fetched | failed
        error TEXT,
        path TEXT,                                -- relative to the root: raw/<manifest>/<id>.<ext>
        sha256 TEXT,
        bytes INTEGER,
        container TEXT,
        codec TEXT,
        width INTEGER,
        height INTEGER,
        fps REAL,
        frames INTEGER,
        declared_frames INTEGER,
        duration REAL,
        audio INTEGER,
        audio_codec TEXT,
        truncated INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        info TEXT,                                -- JSON: what else we know (sections, extractor)
        updated_at REAL NOT NULL,
        PRIMARY KEY (manifest, id)
    );
    CREATE TABLE clips (
        id TEXT PRIMARY KEY,                      -- <source>.<start_frame>-<end_frame>
        manifest TEXT NOT NULL,
        source TEXT NOT NULL,
        scene INTEGER NOT NULL,
        start_frame INTEGER NOT NULL,             -- half-open [start_frame, end_frame)
        end_frame INTEGER NOT NULL,
        fps REAL NOT NULL,
        start_time REAL NOT NULL,
        end_time REAL NOT NULL,
        box_x INTEGER, box_y INTEGER, box_w INTEGER, box_h INTEGER,  -- active picture
        status TEXT NOT NULL,                     -- kept | dropped | failed
        reason TEXT,                              -- why dropped or failed
        phash TEXT,
        detector TEXT,
        path TEXT,                                -- exported clip, relative to the root
        stats TEXT,                               -- JSON: brightness, motion, ...
        updated_at REAL NOT NULL
    );
    CREATE INDEX clips_source ON clips (manifest, source);
    CREATE TABLE pairs (
        manifest TEXT NOT NULL,
        id TEXT NOT NULL,
        lq TEXT NOT NULL,
        gt TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',   -- pending | aligned | failed
        error TEXT,
        offset_s REAL,
        speed REAL,
        transform TEXT,                           -- JSON 3x3, GT pixel -> LQ pixel
        mapping TEXT,                             -- JSON list: GT frame per LQ frame or null
        confidence TEXT,                          -- JSON list
        quality TEXT,                             -- JSON
        updated_at REAL NOT NULL,
        PRIMARY KEY (manifest, id)
    );
    CREATE TABLE datasets (
        name TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        configs TEXT,                             -- JSON list
        splits TEXT,                              -- JSON {config: {split: rows}}
        bytes INTEGER,
        params TEXT,                              -- JSON: what made it
        updated_at REAL NOT NULL
    );
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
_JSON_COLUMNS = {
    "info",
    "stats",
    "transform",
    "mapping",
    "confidence",
    "quality",
    "configs",
    "splits",
    "params",
}


def _encode(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if k in _JSON_COLUMNS and v is not None and not isinstance(v, str):
            v = dumps(v)  # (strict: NaN as null)
        elif isinstance(v, bool):
            v = int(v)
        out[k] = v
    return out


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for k in _JSON_COLUMNS & out.keys():
        if isinstance(out[k], str):
            with suppress(ValueError):
                out[k] = json.loads(out[k])
    return out


class Catalog:
    """One connection to `ROOT/catalog.sqlite`, migrated on open.

    Each write is its own short transaction; use one `Catalog` per process or thread.
    """

    def __init__(self, path: str | Path, *, timeout: float = 60.0):
        """Open (making it and its folder where missing) and migrate the catalog at `path`.

        Raises:
            RefusedError: the folder cannot be made (a file is in its place, no permission)
                or `path` is not an SQLite database (another file, a folder).
        """
        from .errors import RefusedError

        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            why = "a file is in the way" if isinstance(e, FileExistsError) else e.strerror or e
            raise RefusedError(
                f"--root {self.path.parent}: cannot make the data root: {why}"
            ) from None
        try:
            self.db = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise RefusedError(f"{self.path}: cannot open the catalog: {e}") from None
        try:
            self.db.row_factory = sqlite3.Row
            self.db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._retrying(lambda: self.db.execute("PRAGMA journal_mode = WAL"))
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as e:
            self.db.close()
            if isinstance(e, sqlite3.OperationalError) and ("locked" in str(e) or "busy" in str(e)):
                raise  # contention, not a bad file
            raise RefusedError(f"{self.path}: cannot open the catalog: {e}") from None
        except BaseException:
            self.db.close()
            raise

    @classmethod
    def at_root(cls, root: str | Path) -> Catalog:
        return cls(Path(root) / "catalog.sqlite")

    @classmethod
    def existing(cls, root: str | Path) -> Catalog:
        """The catalog of a root that has one (only `fetch` makes a root): a mistyped `--root`
        given to a command that reads the catalog is refused, not made a new, empty root.

        Raises:
            RefusedError: `root` has no `catalog.sqlite`.
        """
        from .errors import RefusedError

        path = Path(root) / "catalog.sqlite"
        if not path.is_file():
            raise RefusedError(
                f"--root {root}: no catalog ({path.name}) there; check the path, or run "
                "`filmdata fetch` into it first"
            )
        return cls(path)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _retrying(fn: Any, tries: int = 50) -> Any:
        # busy_timeout covers most contention; a lock upgrade race (SQLITE_BUSY without waiting)
        # can still surface, so retry briefly instead of failing a long job.
        for i in range(tries):
            try:
                return fn()
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e) or i == tries - 1:
                    raise
                time.sleep(0.05 * (1 + i % 10))
        return None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction (BEGIN IMMEDIATE takes the write lock up front)."""
        self._retrying(lambda: self.db.execute("BEGIN IMMEDIATE"))
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    def _migrate(self) -> None:
        with self.transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                from .errors import FilmdataError

                raise FilmdataError(
                    f"{self.path}: catalog schema v{version} is newer than this filmdata "
                    f"(v{SCHEMA_VERSION}); upgrade filmdata"
                )
            for v in range(version, SCHEMA_VERSION):
                for stmt in MIGRATIONS[v].split(";"):
                    if stmt.strip():
                        db.execute(stmt)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @property
    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    # Generic row access -------------------------------------------------------------------

    def upsert(self, table: str, row: Mapping[str, Any], keys: Sequence[str]) -> None:
        """Insert `row`, or update the columns it names where `keys` match."""
        row = _encode({**row, "updated_at": time.time()})
        cols = list(row)
        sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in keys)
        sql = (
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)}) "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
        )
        with self.transaction() as db:
            db.execute(sql, [row[c] for c in cols])

    def replace_many(
        self, table: str, where: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Delete the rows matching `where`, insert `rows`, in one transaction."""
        cond = " AND ".join(f"{k} = ?" for k in where) or "1"
        now = time.time()
        with self.transaction() as db:
            db.execute(f"DELETE FROM {table} WHERE {cond}", list(where.values()))
            for r in rows:
                r = _encode({**r, "updated_at": now})
                cols = list(r)
                db.execute(
                    f"INSERT INTO {table} ({', '.join(cols)}) "
                    f"VALUES ({', '.join('?' for _ in cols)})",
                    [r[c] for c in cols],
                )

    def rows(
        self, table: str, where: Mapping[str, Any] | None = None, order: str = "rowid"
    ) -> list[dict[str, Any]]:
        """Rows of `table` whose columns equal `where` (a list value means IN)."""
        clauses, args = [], []
        for k, v in (where or {}).items():
            if isinstance(v, (list, tuple, set)):
                v = list(v)
                clauses.append(f"{k} IN ({', '.join('?' for _ in v)})" if v else "0")
                args += v
            else:
                clauses.append(f"{k} = ?")
                args.append(v)
        sql = f"SELECT * FROM {table}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY {order}"
        return [_decode(r) for r in self.db.execute(sql, args).fetchall()]

    def row(self, table: str, where: Mapping[str, Any]) -> dict[str, Any] | None:
        found = self.rows(table, where)
        return found[0] if found else None

    # Typed conveniences -------------------------------------------------------------------

    def upsert_source(self, row: Mapping[str, Any]) -> None:
        self.upsert("sources", row, ("manifest", "id"))

    def source(self, manifest: str, source_id: str) -> dict[str, Any] | None:
        return self.row("sources", {"manifest": manifest, "id": source_id})

    def sources(self, **where: Any) -> list[dict[str, Any]]:
        return self.rows("sources", where, order="manifest, id")

    def clips(self, **where: Any) -> list[dict[str, Any]]:
        return self.rows("clips", where, order="manifest, source, start_frame")

    def drop_sources(self, manifest: str, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Delete these sources of `manifest`, their clips and the manifest's pairs that name
        them (as LQ or GT), in one transaction. Another manifest's rows are not touched, nor
        are datasets (records of what was made).

        Returns:
            The rows deleted, by table: {"sources": [...], "clips": [...], "pairs": [...]}
            (the clips' `path` names their exported files).
        """
        ids = list(ids)
        marks = ", ".join("?" for _ in ids) or "NULL"
        where = {
            "sources": f"manifest = ? AND id IN ({marks})",
            "clips": f"manifest = ? AND source IN ({marks})",
            "pairs": f"manifest = ? AND (lq IN ({marks}) OR gt IN ({marks}))",
        }
        gone: dict[str, list[dict[str, Any]]] = {}
        with self.transaction() as db:
            for table, cond in where.items():
                args = [manifest, *ids] + (ids if table == "pairs" else [])
                rows = db.execute(f"SELECT * FROM {table} WHERE {cond} ORDER BY rowid", args)
                gone[table] = [_decode(r) for r in rows.fetchall()]
                db.execute(f"DELETE FROM {table} WHERE {cond}", args)
        return gone

    def drop_pairs(self, manifest: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Delete these pairs of `manifest` (their alignments with them); the rows deleted."""
        ids = list(ids)
        cond = f"manifest = ? AND id IN ({', '.join('?' for _ in ids) or 'NULL'})"
        with self.transaction() as db:
            rows = db.execute(f"SELECT * FROM pairs WHERE {cond} ORDER BY rowid", [manifest, *ids])
            gone = [_decode(r) for r in rows.fetchall()]
            db.execute(f"DELETE FROM pairs WHERE {cond}", [manifest, *ids])
        return gone

    def upsert_pair(self, row: Mapping[str, Any]) -> None:
        self.upsert("pairs", row, ("manifest", "id"))

    def pairs(self, **where: Any) -> list[dict[str, Any]]:
        return self.rows("pairs", where, order="manifest, id")

    def upsert_dataset(self, row: Mapping[str, Any]) -> None:
        self.upsert("datasets", row, ("name",))

    def datasets(self, **where: Any) -> list[dict[str, Any]]:
        return self.rows("datasets", where, order="name")


def dataset_folder(root: Path, name: str) -> Path | None:
    """The folder (one with data/) of the dataset `name` that the catalog at `root` records,
    wherever it was written (`synth --out`); None where there is no catalog or no such one."""
    if not (root / "catalog.sqlite").exists():
        return None
    with Catalog.at_root(root) as cat:
        for row in cat.datasets(name=name):
            p = Path(row["path"])
            p = p if p.is_absolute() else root / p
            if (p / "data").is_dir():
                return p
    return None
