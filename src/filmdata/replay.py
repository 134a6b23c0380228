"""Replay: a shard row's LQ redone from its GT and its recorded degradation, and its clean GT
cut again from its source (`synth` made both; `verify --repair` and users call these)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FilmdataError
from .synth import has_cuda, lq_to_uint8, pick_device
from .windows import Window, cut_windows


def making_device(recorded: str | None, device: str = "auto") -> str:
    """Where to redo degradations made on `recorded` (cpu | cuda[:N], or None if unrecorded):
    `device` itself unless it is auto; for auto the recorded kind when this machine has it
    (only there are the bytes the same), else what auto picks."""
    if device != "auto" or recorded is None:
        return pick_device(device)
    if recorded == "cpu" or (recorded.startswith("cuda") and has_cuda()):
        return recorded.split(":")[0]
    return pick_device("auto")


def replay_row(
    row: dict[str, Any],
    templates: str | os.PathLike[str],
    *,
    device: str = "auto",
    root: str | os.PathLike[str] | None = None,
    source_file: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """Redo a row's LQ from its GT: (T, H, W, 3) uint8.

    Bit-exact on the device kind that made it for PNG rows (`--image-format png`, the
    default), whose stored GT is the very pixels the LQ was made from. A JPEG row stores the
    JPEG of those pixels, and of its LQ: a replay from the stored GT is approximate (off by
    about JPEG's error twice over), and warns so (`UserWarning`). Given `source_file` or
    `root`, a JPEG row's clean GT is cut again from its source instead: the result is then
    the LQ before its encoding, which `shards.encode_image(frame, "jpeg")` turns into the
    stored bytes exactly.

    Args:
        row: a shard row (`gt` frames as image bytes, `{"bytes": ...}` or the PIL images of
            `datasets.load_dataset`; `degradation` JSON).
        templates: the degradations folder the row was made with.
        device: auto (the device kind recorded in the row, when here) | cpu | cuda[:N].
        root, source_file: with `--sharpen-gt` the stored GT is sharpened, so the clean GT is
            cut again from the source: `source_file`, else the catalog's file under `root`;
            likewise for a JPEG row when either is given.
    """
    import warnings

    import torch

    from .degrade import frames_to_clip, load_templates, replay

    deg = row["degradation"]
    deg = json.loads(deg) if isinstance(deg, str) else dict(deg)
    dev = making_device(deg.pop("device", None), device)
    jpeg = _is_jpeg(row["gt"][0])
    if deg.pop("gt_sharpen", None) is not None or (
        jpeg and (source_file is not None or root is not None)
    ):
        gt = rederive_gt(row, root=root, path=source_file)
    else:
        gt = np.stack([_pixels(c) for c in row["gt"]])
        if jpeg:
            warnings.warn(
                f"row {row.get('id')!r}: its GT is stored as JPEG and its LQ was made from "
                "the GT before that encoding, so this replay is approximate, not bit-exact; "
                "pass source_file= or root= to cut the clean GT again (exact), or make the "
                "dataset with --image-format png",
                UserWarning,
                stacklevel=2,
            )
    bank = load_templates(Path(templates), dev)
    x = frames_to_clip(gt)[None].to(dev)
    with torch.no_grad():
        lq = replay(x, deg, bank)
    return lq_to_uint8(lq[0].float().cpu().numpy())


def _bytes(cell: Any) -> bytes:
    return cell["bytes"] if isinstance(cell, dict) else cell


def _is_pil(cell: Any) -> bool:
    # a row as `datasets.load_dataset` gives it holds PIL images, decoded from the stored bytes
    return hasattr(cell, "convert") and hasattr(cell, "format")


def _is_jpeg(cell: Any) -> bool:
    if _is_pil(cell):
        return cell.format == "JPEG"
    return _bytes(cell)[:2] == b"\xff\xd8"  # (JPEG's start-of-image marker)


def _pixels(cell: Any) -> np.ndarray:
    """A stored frame (bytes, `{"bytes": ...}` or a PIL image) as (H, W, 3) uint8 RGB."""
    from .shards import decode_image

    if _is_pil(cell):
        return np.asarray(cell.convert("RGB"))
    return decode_image(_bytes(cell))


def rederive_gt(
    row: dict[str, Any],
    *,
    root: str | os.PathLike[str] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """Cut a row's clean GT again from its source: (T, S, S, 3) uint8."""
    t = len(row["gt"])
    size = decode_image_size(row["gt"][0])
    crop = row["crop"]
    src = path or source_path(row["source"], root=root)
    win = Window(
        row["id"],
        row["source"],
        row["clip"],
        str(src),
        int(row["start_frame"]),
        float(row["fps"]),
        (crop["x"], crop["y"], crop["w"], crop["h"]),
    )
    return next(cut_windows([win], t, size))[1]


def decode_image_size(cell: Any) -> int:
    return int(_pixels(cell).shape[0])


def source_path(source: str, *, root: str | os.PathLike[str] | None = None) -> Path:
    """The file of a catalog source id under `root`."""
    from .catalog import Catalog
    from .paths import resolve_root

    r = resolve_root(root)
    if (r / "catalog.sqlite").exists():
        with Catalog.at_root(r) as cat:
            for s in cat.sources(id=source):
                if s.get("path") and (r / s["path"]).exists():
                    return r / s["path"]
    raise FilmdataError(
        f"source {source!r}: no file in the catalog at {r}; fetch it again "
        "(`filmdata fetch`) or pass its path"
    )


__all__ = ["making_device", "rederive_gt", "replay_row", "source_path"]
