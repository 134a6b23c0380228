"""`restore`: a whole video through a trained run, at its own size, frame count and fps."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..devices import pick_device
from ..errors import MediaError, RefusedError
from ..paths import refuse_unless_file, refuse_unwritable_file
from ..video import file_aspect, iter_frames, probe, write_video
from .checkpoint import load_model
from .sampling import restore_stream

#: Containers that hold H.264 4:4:4, the restored video's codec (chosen by the output's
#: extension; WebM, for one, holds no H.264, and a name without one says no container).
CONTAINERS = (".mp4", ".mkv", ".mov")


@dataclass(frozen=True)
class RestoreResult:
    """The restored video and how it was made."""

    out: Path
    frames: int
    width: int
    height: int
    fps: float
    seconds: float
    frames_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in self.__dict__.items()}


def restore(
    video: str | os.PathLike[str],
    out: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str],
    *,
    steps: int | None = None,
    window: int | None = None,
    overlap: int | None = None,
    tile: int = 256,
    device: str = "auto",
    root: str | os.PathLike[str] | None = None,
    quiet: bool = False,
    seed: int = 0,
) -> RestoreResult:
    """Restore `video` into `out` with the run `checkpoint`.

    Overlapping temporal windows of `window` frames (default: the run's) sharing `overlap` frames
    (default window // 2) are blended with linear ramps; frames larger than `tile` pixels are cut
    into overlapping tiles. The output keeps the frame count, fps and size (odd sizes too:
    H.264 4:4:4, which has no even-size constraint).

    Raises:
        RefusedError: a bad run, window/overlap, device or output name (or a folder, or a path
            under a file); MediaError: the video is not there, is a folder, or does not
            decode.
    """
    import time

    refuse_unless_file(video, error=MediaError)  # (before the run is loaded)
    out_path = Path(out)
    if out_path.suffix.lower() not in CONTAINERS:
        got = f"{out_path.suffix!r}" if out_path.suffix else "no extension"
        raise RefusedError(
            f"-o {out}: the restored video is H.264 4:4:4, which needs a "
            f"{', '.join(CONTAINERS)} file; got {got}"
        )
    refuse_unwritable_file(out_path, "-o")  # (not after the whole video is restored)
    if out_path.exists() and Path(video).exists() and os.path.samefile(out_path, video):
        raise RefusedError(f"-o {out}: is the input video; write the restoration to another file")
    dev = pick_device(device)
    model, cfg, _ = load_model(checkpoint, root, device=dev)
    T = window or cfg.window
    K = T // 2 if overlap is None else overlap
    if T < 1 or not 0 <= K < T:
        raise RefusedError(f"--window {T} --overlap {K}: use window >= 1 and 0 <= overlap < window")
    if tile < 16:
        raise RefusedError(f"tile={tile}: use 16 pixels or more")
    info = probe(video, count=False)
    t0 = time.perf_counter()
    frames = (f for _, f in iter_frames(video))  # (H, W, 3) uint8, streamed
    restored = restore_stream(
        model, frames, cfg, steps=steps, window=T, overlap=K, tile=tile, device=dev, seed=seed
    )
    total = info.declared_frames or None
    with tqdm(restored, total=total, desc="restore", unit="frame", disable=quiet) as bar:
        n = write_video(out_path, bar, info.fps, pix_fmt="yuv444p", crf=12, sar=file_aspect(video))
    seconds = time.perf_counter() - t0
    w, h = info.width, info.height
    return RestoreResult(out_path, n, w, h, info.fps, seconds, n / max(seconds, 1e-9))
