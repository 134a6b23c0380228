"""`filmdata preview` and `filmdata datasets`: look at a dataset, list the catalog's datasets.

A preview is a contact sheet (PNG): one line per window, its LQ frames on the left and its GT
frames on the right; or a side-by-side video (MP4) of LQ | GT, window after window.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FilmdataError, RefusedError
from .paths import refuse_unwritable_file

THUMB = 128  # contact-sheet cell side, pixels
GAP = 4


def read_rows(dataset: Path, split: str, n: int, config: str | None = None) -> list[dict]:
    """`n` rows spread over a split (id, fps, gt, lq), reading only the shards that hold them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .shards import scan

    found = scan(dataset)
    if not found:
        raise RefusedError(f"{dataset}: no complete shards")
    config = config or ("synthetic" if "synthetic" in found else next(iter(found)))
    if config not in found:
        raise RefusedError(f"{dataset}: no config {config!r} (have {', '.join(found)})")
    if split not in found[config]:
        raise RefusedError(
            f"{dataset}: config {config!r} has no split {split!r} (have {', '.join(found[config])})"
        )
    # n windows spread evenly over the split (not just its first scene), reading only the
    # shards that hold them.
    files = sorted((dataset / "data" / config).glob(f"{split}-*.parquet"))
    if not files:
        raise RefusedError(
            f"{dataset}: config {config!r} split {split!r}: its {found[config][split]['shards']} "
            "shard(s) in the record are missing; check the dataset with `filmdata verify`"
        )
    counts = [_num_rows(p) for p in files]
    total = sum(counts)
    want = sorted({int(i * total / n) for i in range(min(n, total))})
    rows: list[dict] = []
    start = 0
    for path, count in zip(files, counts):
        local = [i - start for i in want if start <= i < start + count]
        start += count
        if not local:
            continue
        try:
            table = pq.read_table(path, columns=["id", "fps", "gt", "lq"])
        except (OSError, pa.ArrowException) as e:
            raise _unreadable(path, e) from None
        rows += table.take(local).to_pylist()
    return rows


def _num_rows(path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as f:
            return int(f.metadata.num_rows)
    except (OSError, pa.ArrowException) as e:
        raise _unreadable(path, e) from None


def _unreadable(path: Path, e: Exception) -> RefusedError:
    """A shard that does not read (cut short, another file under its name), named in one line:
    it was pyarrow's traceback."""
    return RefusedError(
        f"{path}: not a readable Parquet shard ({e}); check the dataset with `filmdata verify`"
    )


def _frames(cells: list[dict]) -> list[np.ndarray]:
    from .shards import decode_image

    return [decode_image(c["bytes"]) for c in cells]


def contact_sheet(rows: list[dict], frames: int = 4, thumb: int = THUMB) -> np.ndarray:
    """(H, W, 3) uint8: per row, `frames` LQ thumbnails | `frames` GT thumbnails."""
    import cv2

    lines = []
    for row in rows:
        lq, gt = _frames(row["lq"]), _frames(row["gt"])
        k = min(frames, len(gt))
        pick = np.unique(np.linspace(0, len(gt) - 1, k).round().astype(int))

        def cell(img: np.ndarray) -> np.ndarray:
            h, w = img.shape[:2]
            s = thumb / max(h, w)
            out = np.full((thumb, thumb, 3), 24, np.uint8)
            small = cv2.resize(
                img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA
            )
            out[: small.shape[0], : small.shape[1]] = small
            return out

        sep = np.full((thumb, GAP, 3), 24, np.uint8)
        mid = np.full((thumb, 3 * GAP, 3), 255, np.uint8)
        left = [x for i in pick for x in (cell(lq[i]), sep)][:-1]
        right = [x for i in pick for x in (cell(gt[i]), sep)][:-1]
        lines.append(np.concatenate(left + [mid] + right, axis=1))
        lines.append(np.full((GAP, lines[-1].shape[1], 3), 24, np.uint8))
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0))) for line in lines]
    return np.concatenate(lines[:-1], axis=0)


def preview(
    dataset: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    split: str = "train",
    n: int = 4,
    config: str | None = None,
    root: str | os.PathLike[str] | None = None,
) -> Path:
    """Write a contact sheet (`.png`) or a side-by-side video (`.mp4`) of LQ | GT windows.

    Args:
        dataset: the dataset folder or its name.
        out: the file to write (default `DATASET/preview.png`); `.png` or `.mp4`.
        split: which split. n: how many windows.
        config: which config; default `synthetic` where the dataset has it, else the first
            of its configs (with complete shards) by name.
        root: the data root (to find a dataset by name).

    Returns:
        The path written.
    """
    import cv2

    from .shards import atomic_write_bytes
    from .verify import resolve_dataset
    from .video import write_video

    if n < 1:
        raise RefusedError(f"--n must be >= 1, got {n}")
    path = resolve_dataset(dataset, root)
    target = Path(out) if out is not None else path / "preview.png"
    suffix = target.suffix.lower()
    if suffix not in (".png", ".mp4"):
        raise RefusedError(f"-o {target}: must end in .png (contact sheet) or .mp4 (video)")
    refuse_unwritable_file(target, "-o")
    rows = read_rows(path, split, n, config)
    if not rows:
        raise RefusedError(f"{path}: split {split!r} is empty")
    if suffix == ".png":
        sheet = contact_sheet(rows)
        ok, buf = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        atomic_write_bytes(target, buf.tobytes())
        return target

    pairs = []
    for row in rows:
        for lq, gt in zip(_frames(row["lq"]), _frames(row["gt"])):
            if lq.shape != gt.shape:
                lq = cv2.resize(lq, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_AREA)
            pairs.append(np.concatenate([lq, np.full((gt.shape[0], GAP, 3), 255, np.uint8), gt], 1))
    # one frame size for all: rows of other sizes (real pairs at the GT's own scale, pairs of
    # other tapes) padded to the largest, not cut to the first's
    h, w = (max(p.shape[k] for p in pairs) for k in (0, 1))
    frames = [np.pad(p, ((0, h - p.shape[0]), (0, w - p.shape[1]), (0, 0))) for p in pairs]
    write_video(target, frames, float(rows[0]["fps"] or 24.0))
    return target


def list_datasets(root: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """What the catalog knows of each dataset: name, path, whether its folder is there
    (`present`), the configs a run left part-made (`incomplete`: a re-run stopped part-way,
    whose rows are not the catalog's), configs, rows per split, bytes.

    `path` is absolute: the catalog keeps a dataset under the root relative to it (the root can
    move), but a path listed relative to the root names nothing from any other folder (not for
    `filmdata preview`, nor `datasets.load_dataset`).

    Raises:
        RefusedError: the root has no catalog (a mistyped path is not a root without datasets).
    """
    import contextlib

    from .catalog import Catalog
    from .paths import resolve_root
    from .shards import pending_files

    r = resolve_root(root)
    with Catalog.existing(r) as cat:
        rows = cat.datasets()
    out = []
    for row in rows:
        splits = row.get("splits") or {}
        path = Path(row["path"])
        path = path if path.is_absolute() else r / path
        present = (path / "data").is_dir()
        incomplete: list[str] = []
        if present:
            with contextlib.suppress(FilmdataError):  # (an unreadable record: `verify` says)
                incomplete = sorted(pending_files(path))
        out.append(
            {
                "name": row["name"],
                "path": str(path),
                # (the catalog keeps what was made: a folder deleted or moved since is gone)
                "present": present,
                "incomplete": incomplete,
                "configs": row.get("configs") or list(splits),
                "splits": splits,
                "rows": {f"{c}/{s}": k for c, sp in splits.items() for s, k in sp.items()},
                "bytes": row.get("bytes"),
                "updated_at": row.get("updated_at"),
            }
        )
    return out
