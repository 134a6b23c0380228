"""Training windows streamed from a dataset's Parquet shards through `datasets`.

A dataset is a folder `NAME/` with a card `README.md` (YAML `configs:` listing `data_files` per
split) and `data/<config>/<split>-*.parquet` shards whose rows hold `gt` and `lq` lists of images.
Paired augmentation: ONE albumentations transform (random crop, flips) drawn per window and
replayed on every frame of LQ and GT alike, via `additional_targets`.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..errors import MediaError, RefusedError
from ..paths import datasets_dir, refuse_unless_input_folder, resolve_root


def resolve_dataset(data: str | os.PathLike[str], root: str | os.PathLike[str] | None) -> Path:
    """A dataset folder from a path, or a name under ROOT/datasets: a folder that holds a
    dataset (a card or data/) first, then the name, then a dataset of that name in the root's
    catalog (one written elsewhere with `synth --out`), then any folder of that path (`--data
    demo` where ./demo is the root itself is the root's dataset `demo`).

    Raises:
        RefusedError: neither exists, or the path is a file (and no such name).
    """
    from ..catalog import dataset_folder

    path = Path(data).expanduser()
    if (path / "data").is_dir() or (path / "README.md").is_file():
        return path.resolve()
    r = resolve_root(root)
    named = datasets_dir(r) / str(data)
    if named.is_dir():
        return named
    cataloged = dataset_folder(r, str(data))
    if cataloged is not None:
        return cataloged
    if path.is_dir():
        return path.resolve()
    hint = "pass a dataset folder or a name under ROOT/datasets"
    refuse_unless_input_folder(
        path, "dataset folder", name=f"--data {str(data)!r}", hint=hint, missing_ok=True
    )
    raise RefusedError(f"--data {str(data)!r}: no such dataset folder, and no {named}; {hint}")


def _card(path: Path) -> dict[str, Any]:
    card = path / "README.md"
    if not card.is_file():
        return {}
    text = card.read_text(encoding="utf-8")
    m = re.match(r"---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
    if not m:
        return {}
    try:
        meta = yaml.safe_load(m.group(1))  # safe loading only: python tags are refused
    except yaml.YAMLError as e:
        raise RefusedError(f"{card}: cannot read the card's YAML header: {e}") from None
    return meta if isinstance(meta, dict) else {}


def split_files(path: Path, split: str, config: str | None = None) -> list[str]:
    """The Parquet files of one split, from the card's `configs` (else `data/*/<split>-*`).

    With several configs and no `config`, every config that lists the split is used.

    Raises:
        RefusedError: the split (or config) has no shards.
    """
    files: list[str] = []
    have: set[str] = set()  # the splits the card lists (of `config`, where given)
    configs = _card(path).get("configs") or []
    names = [c.get("config_name") for c in configs if isinstance(c, dict)]
    if config is not None and configs and config not in names:
        raise RefusedError(f"{path}: no config {config!r}; the card lists {names}")
    for c in configs:
        if not isinstance(c, dict) or (config is not None and c.get("config_name") != config):
            continue
        data_files = c.get("data_files") or []
        if isinstance(data_files, dict):
            data_files = [{"split": k, "path": v} for k, v in data_files.items()]
        have |= {str(e["split"]) for e in data_files if isinstance(e, dict) and e.get("split")}
        for entry in data_files:
            if isinstance(entry, dict) and entry.get("split") == split:
                patterns = entry.get("path")
                for pat in [patterns] if isinstance(patterns, str) else patterns or []:
                    found = _inside(path, pat)
                    if not found and not glob.has_magic(pat):
                        # a file the card names (a run under way or stopped part-way names
                        # every planned shard): the dataset is not whole without it
                        raise RefusedError(
                            f"{path}: {pat}: missing: the dataset is not complete (a run "
                            "stopped part-way: re-run it; `filmdata verify` lists what is "
                            "missing)"
                        )
                    files += found
    if not configs:
        files = _inside(path, f"data/{config or '*'}/{split}-*.parquet")
    if not files:
        if not configs:
            from ..shards import SHARD_RE

            shards = Path(path).glob(f"data/{config or '*'}/*.parquet")
            have = {m["split"] for f in shards if (m := SHARD_RE.match(f.name))}
        # `synth`'s default --val-fraction 0 makes no validation split, which `eval` reads
        hint = (
            "; it holds no validation windows (--val-fraction 0, the default, makes none): "
            "pass --split train, or make it again with --val-fraction above 0"
            if split == "validation" and have
            else "; check the split name and the card's data_files"
        )
        raise RefusedError(
            f"{path}: no Parquet shards for split {split!r}"
            + (f" of config {config!r}" if config else "")
            + f" (it has: {', '.join(sorted(have)) or 'none'})"
            + hint
        )
    files = sorted(set(files))
    _refuse_unreadable(files)
    return files


def _refuse_unreadable(files: list[str]) -> None:
    """Refuse a shard whose footer does not read (a copy cut short, another file under a
    shard's name), naming it: `datasets` raised pyarrow's error as a traceback, in eval before
    any window and in training whenever the stream reached that shard.

    Raises:
        RefusedError: the first such file, with pyarrow's reason.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    for f in files:
        try:
            pq.ParquetFile(f).close()
        except (OSError, pa.ArrowException) as e:
            raise RefusedError(
                f"{f}: not a readable Parquet shard ({e}); check the dataset with `filmdata verify`"
            ) from None


def _inside(path: Path, pattern: str) -> list[str]:
    base = path.resolve()
    out = []
    for f in glob.glob(str(base / pattern)):
        if Path(f).resolve().is_relative_to(base) and f.endswith(".parquet"):
            out.append(f)
    return out


def load_split(path: Path, split: str, config: str | None = None, streaming: bool = True) -> Any:
    """The split as a `datasets` (Iterable)Dataset with decoded images."""
    return _load_files(split_files(path, split, config), split, streaming)


def _load_files(files: list[str], split: str, streaming: bool = True) -> Any:
    from datasets import load_dataset

    return load_dataset("parquet", data_files={split: files}, split=split, streaming=streaming)


def _buffer_shuffle(rows: Any, size: int, rng: np.random.Generator) -> Iterator[Any]:
    """Shuffle a stream in a buffer of `size` rows (the usual streaming approximation)."""
    buf: list[Any] = []
    for row in rows:
        if len(buf) < size:
            buf.append(row)
            continue
        i = int(rng.integers(size))
        yield buf[i]
        buf[i] = row
    rng.shuffle(buf)  # type: ignore[arg-type]
    yield from buf


def row_frames(row: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(lq, gt) of a row as (T, H, W, 3) uint8 arrays; its frames PIL images, or the cells of
    a split loaded without decoding ({"bytes": ...}).

    Raises:
        MediaError: a frame that does not decode, naming the row, column and frame.
        RefusedError: lq and gt differ in length or size.
    """
    lq = np.stack([_rgb(row, "lq", i, im) for i, im in enumerate(row["lq"])])
    gt = np.stack([_rgb(row, "gt", i, im) for i, im in enumerate(row["gt"])])
    if lq.shape != gt.shape:
        raise RefusedError(
            f"row {row.get('id')!r}: lq {lq.shape} and gt {gt.shape} differ; "
            "re-make the dataset (filmdata verify)"
        )
    return lq, gt


def _rgb(row: dict[str, Any], column: str, i: int, cell: Any) -> np.ndarray:
    import io

    from PIL import Image

    try:
        if not isinstance(cell, Image.Image):
            data = cell.get("bytes") if isinstance(cell, dict) else None
            if data is None:
                raise ValueError(f"no image bytes ({type(cell).__name__})")
            cell = Image.open(io.BytesIO(data))
        return np.asarray(cell.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as e:  # (PIL raises SyntaxError on some)
        raise MediaError(
            f"row {row.get('id')!r}: {column} frame {i} does not decode ({e}); "
            "check the dataset with `filmdata verify`"
        ) from None


def paired_transform(crop: int, frames: int) -> Any:
    """One albumentations pipeline for 2*`frames` images: lq frames as `image`, `image1`..., gt
    frames as `gt0`...; the same crop and flips apply to all."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # its import asks PyPI otherwise
    import albumentations as A

    targets = {f"image{i}": "image" for i in range(1, frames)}
    targets |= {f"gt{i}": "image" for i in range(frames)}
    return A.Compose(
        [
            A.PadIfNeeded(crop, crop, border_mode=4),  # cv2.BORDER_REFLECT_101
            A.RandomCrop(crop, crop),
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
        ],
        additional_targets=targets,
    )


def augment(transform: Any, lq: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply one draw of `transform` to every frame of lq and gt ((T, H, W, 3) each)."""
    T = len(lq)
    kw = {"image": lq[0]} | {f"image{i}": lq[i] for i in range(1, T)}
    kw |= {f"gt{i}": gt[i] for i in range(T)}
    out = transform(**kw)
    lq_out = np.stack([out["image"]] + [out[f"image{i}"] for i in range(1, T)])
    gt_out = np.stack([out[f"gt{i}"] for i in range(T)])
    return lq_out, gt_out


class Windows(torch.utils.data.IterableDataset):
    """Endless stream of augmented training windows: (lq, gt) float tensors (T, 3, crop, crop).

    Each shard row gives one window of `frames` consecutive frames (a random offset when the row
    is longer); rows are shuffled in a buffer, epoch after epoch. Randomness comes from `seed`,
    the epoch and the worker, so a run replays.
    """

    def __init__(
        self, path: Path, split: str, frames: int, crop: int, seed: int, buffer: int = 64
    ) -> None:
        super().__init__()
        self.path, self.split, self.frames, self.crop = path, split, frames, crop
        self.seed, self.buffer = seed, buffer
        # refuse early, in the caller's process: a DataLoader worker's error comes back as a
        # traceback, and one worker's files alone cannot tell whether the split has a window
        self.files = split_files(path, split)
        _check_sizes(self.files, crop)
        if not _has_window(self.files, frames):
            raise RefusedError(
                f"{path}: split {split!r} has no window of {frames} frames; "
                "use a config with a smaller window"
            )

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        wid = info.id if info is not None else 0
        rng = np.random.default_rng([self.seed, wid])
        transform = paired_transform(self.crop, self.frames)
        transform.set_random_seed(int(rng.integers(2**31)))
        # The shard order is drawn alike in every worker: in a DataLoader worker `datasets`
        # itself gives each worker every num_workers-th file of the order it is handed (the
        # one split of the rows), so the workers must be handed the same order.
        order_rng = np.random.default_rng(self.seed)
        seen = 0
        while True:
            # Shuffle the shard order, then rows in a buffer. (Not IterableDataset.shuffle: in
            # datasets 5 it sleeps 5 s on every pass for an Arrow thread-shutdown workaround.)
            order = [self.files[i] for i in order_rng.permutation(len(self.files))]
            # frames decoded in row_frames, row by row: one that does not decode is named
            # there (in `datasets`' batch decoding it was PIL's traceback)
            stream = _load_files(order, self.split).decode(False)
            for row in _buffer_shuffle(stream, self.buffer, rng):
                lq, gt = row_frames(row)
                if len(lq) < self.frames:
                    continue  # too short for a window
                o = int(rng.integers(0, len(lq) - self.frames + 1))
                lq, gt = augment(transform, lq[o : o + self.frames], gt[o : o + self.frames])
                seen += 1
                yield _to_tensor(lq), _to_tensor(gt)
            if seen == 0:
                return  # this worker's files hold no window (the split has some: __init__)


def loader(
    windows: Windows, batch_size: int, workers: int = 0, pin_memory: bool = False
) -> torch.utils.data.DataLoader:
    """A DataLoader of `windows` on at most one worker per shard file.

    `datasets` hands each DataLoader worker whole files; a worker beyond the number of files
    would get none (and `datasets` stops it with a warning), so more workers than files only
    cost processes.
    """
    return torch.utils.data.DataLoader(
        windows,
        batch_size=batch_size,
        num_workers=min(workers, len(windows.files)),
        pin_memory=pin_memory,
    )


def _check_sizes(files: list[str], crop: int | None = None) -> None:
    """Refuse GT frames of another size than the LQ's, or smaller than `crop` on both sides,
    judged on the first row of each config (one export makes a config whole, with one
    setting). The restorer predicts the GT as a residual over the LQ, pixel for pixel, and
    `filmdata pair --gt-scale` keeps the GT at its own scale. A crop is padded by mirroring
    where the frames are smaller (a 40x24 frame gives 32x32 crops); a crop beyond both sides
    would train on mirrored copies of the frame, and a huge one failed in cv2 allocating the
    padded frame. Found only when a window is decoded, either stopped a run already begun.

    Raises:
        RefusedError: the sizes differ, naming the file, the row and `--gt-scale`; or the
            crop is larger than the frames, naming the file and the largest crop they allow.
    """
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    firsts: dict[str, str] = {}
    for f in files:
        firsts.setdefault(os.path.dirname(f), f)
    for f in firsts.values():
        try:
            batch = next(pq.ParquetFile(f).iter_batches(batch_size=1, columns=["id", "lq", "gt"]))
            row = batch.to_pylist()[0]
            lq, gt = (Image.open(io.BytesIO(row[k][0]["bytes"])).size for k in ("lq", "gt"))
        except (StopIteration, IndexError, TypeError):
            continue  # an empty shard, or a row without frames: nothing to compare
        except (OSError, KeyError, pa.ArrowException) as e:
            raise RefusedError(
                f"{f}: cannot read its first row's lq/gt frames ({e}); "
                "re-make the dataset (filmdata verify)"
            ) from None
        if lq != gt:
            raise RefusedError(
                f"{f}: row {row['id']!r}: gt frames are {gt[0]}x{gt[1]}, lq {lq[0]}x{lq[1]}; "
                "the restorer needs the GT on the LQ grid, and `filmdata pair --gt-scale` keeps "
                "it at its own scale: export the pairs again without --gt-scale"
            )
        if crop is not None and crop > max(lq):
            raise RefusedError(
                f"{f}: row {row['id']!r}: frames are {lq[0]}x{lq[1]}, smaller than the config's "
                f"crop={crop}; use a config whose crop is at most {max(lq)}"
            )


def _has_window(files: list[str], frames: int) -> bool:
    """Whether some row of `files` has `frames` frames or more: list lengths read by pyarrow,
    no image decoded, stopping at the first such row."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    for f in files:
        try:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=64, columns=["lq"]):
                longest = pc.max(pc.list_value_length(batch.column(0))).as_py()
                if longest is not None and longest >= frames:
                    return True
        except (OSError, KeyError, pa.ArrowException) as e:
            raise RefusedError(
                f"{f}: cannot read its 'lq' column ({e}); re-make the dataset (filmdata verify)"
            ) from None
    return False


def _to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255
