"""`restore`: a whole video through a trained run, at its own size, frame count and fps."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..devices import pick_device
from ..errors import MediaError, RefusedError
from ..paths import refuse_unless_file, refuse_unwritable_file
from ..video import file_aspect, file_short, iter_decoded, probe, turns, upright, write_video
from .checkpoint import load_run, warn_part_way
from .config import check_steps
from .sampling import restore_stream

#: Containers that hold H.264 4:4:4, the restored video's codec (chosen by the output's
#: extension; WebM, for one, holds no H.264, and a name without one says no container).
CONTAINERS = (".mp4", ".mkv", ".mov")


#: Sound codecs each container takes as they are (copied, not re-encoded); others are encoded
#: to AAC. Matroska takes any.
COPY_SOUND = {
    ".mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
    ".mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s16be", "pcm_s24le"},
}

LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 8: "7.1"}


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
    declared_frames: int = 0  # what the input's container claims (0: it does not say)
    # why the input's frames ended well before those it declares (a capture stopped
    # mid-write, a truncated copy: `video.frames_short`, align's rule), else None
    short: str | None = None
    # the run's checkpoint step and its config's steps (fewer: stopped part-way, or training)
    step: int = 0
    train_steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in self.__dict__.items()}

    @property
    def cut_short(self) -> bool:
        return self.short is not None


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
    overwrite: bool = False,
) -> RestoreResult:
    """Restore `video` into `out` with the run `checkpoint`.

    Overlapping temporal windows of `window` frames (default: the run's) sharing `overlap` frames
    (default window // 2) are blended with linear ramps; frames larger than `tile` pixels are cut
    into overlapping tiles. The output keeps the frame count, fps and size (odd sizes too:
    H.264 4:4:4, which has no even-size constraint), and the sound tracks (`_add_sound`). An
    existing `out` is replaced only with `overwrite` (a restoration can take hours: the last
    one is not lost to the same command run again). A file whose frames end early is
    restored as far as it decodes (`RestoreResult.cut_short`).

    Raises:
        RefusedError: a bad run, window/overlap, device or output name (or a folder, or a path
            under a file, or a file that exists, without `overwrite`); MediaError: the video
            is not there, is a folder, or does not decode.
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
    if out_path.exists() and not overwrite:
        raise RefusedError(
            f"-o {out}: exists; pass --overwrite to replace it, or pick another file"
        )
    dev = pick_device(device)
    model, cfg, run_dir, step = load_run(checkpoint, root, device=dev)
    check_steps(cfg, steps, run_dir)
    T = window or cfg.window
    K = T // 2 if overlap is None else overlap
    if T < 1 or not 0 <= K < T:
        # (a window not given is the run's: said so, not shown as if the user had given it)
        given = f"--window {T}" if window else f"the run's window {T}"
        raise RefusedError(f"--overlap {K} with {given}: use 0 <= overlap < window")
    if tile < 16:
        raise RefusedError(f"tile={tile}: use 16 pixels or more")
    warn_part_way(run_dir, cfg, step, "restoring with")  # (once the input is taken)
    info = probe(video, count=False)
    t0 = time.perf_counter()
    clock: list[float] = []  # the latest frame time seen (`_one_size`)
    frames = _one_size(video, clock)  # (H, W, 3) uint8, streamed
    restored = restore_stream(
        model, frames, cfg, steps=steps, window=T, overlap=K, tile=tile, device=dev, seed=seed
    )
    total = info.declared_frames or None
    # with sound, the pictures go to a file of their own first, then into `out` with the
    # input's sound tracks (each written under a temporary name: `out` appears when whole)
    pictures = out_path.with_name(f".{out_path.stem}.pictures{out_path.suffix}")
    target = pictures if info.audio else out_path
    try:
        with tqdm(restored, total=total, desc="restore", unit="frame", disable=quiet) as bar:
            n = write_video(
                target, bar, info.fps, pix_fmt="yuv444p", crf=12, sar=file_aspect(video)
            )
        if info.audio:
            _add_sound(pictures, Path(video), out_path)
    finally:
        pictures.unlink(missing_ok=True)
    seconds = time.perf_counter() - t0
    w, h = info.width, info.height
    short = file_short(video, n, clock[-1] if clock else None)
    return RestoreResult(
        out_path,
        n,
        w,
        h,
        info.fps,
        seconds,
        n / max(seconds, 1e-9),
        info.declared_frames,
        short,
        step=step,
        train_steps=cfg.steps,
    )


def _one_size(video: str | os.PathLike[str], clock: list[float]) -> Iterator[np.ndarray]:
    """The frames of `video` (as `iter_frames` gives them), refusing a picture size that
    changes part-way (the windows and the output are of one size): it was restore_stream's
    ValueError, as a traceback. `clock` gets the latest frame time (s) seen, at its end.

    Raises:
        MediaError: naming the file, the frame and both sizes.
    """
    from av.video.reformatter import VideoReformatter

    convert = VideoReformatter()  # (one converter for the run, as `iter_frames`)
    first: tuple[int, ...] | None = None
    for i, decoded in iter_decoded(video):
        if decoded.time is not None and (not clock or decoded.time > clock[-1]):
            clock[:] = [decoded.time]
        frame = upright(convert.reformat(decoded, format="rgb24").to_ndarray(), turns(decoded))
        if first is None:
            first = frame.shape
        elif frame.shape != first:
            raise MediaError(
                f"{video}: frame {i} is {frame.shape[1]}x{frame.shape[0]}, the first "
                f"{first[1]}x{first[0]}: a picture size that changes part-way is not restored; "
                "cut the file where it changes and restore each part"
            )
        yield frame


def _add_sound(pictures: Path, source: Path, out: Path) -> None:
    """Write `out`: the restored `pictures` (copied) and every sound track of `source` (copied
    where `out`'s container takes its codec, else encoded to AAC), its timing kept against the
    source's pictures. Written under a temporary name and renamed when complete."""
    import heapq

    import av

    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    copyable = COPY_SOUND.get(out.suffix.lower())
    try:
        with (
            av.open(str(pictures)) as vin,
            av.open(str(source)) as ain,
            av.open(str(tmp), "w") as o,
        ):
            vs = vin.streams.video[0]
            outs: dict[int, Any] = {vs.index: o.add_stream_from_template(vs)}
            src_v = ain.streams.video[0]
            tb = src_v.time_base
            start = float(src_v.start_time * tb) if src_v.start_time and tb else 0.0
            encode: dict[int, Any] = {}
            for a in ain.streams.audio:
                if copyable is None or a.codec_context.name in copyable:
                    outs[a.index] = o.add_stream_from_template(a)
                else:
                    enc = o.add_stream("aac", rate=a.codec_context.sample_rate)
                    # (a layout the file leaves unnamed, "1 channels", is refused by the AAC
                    # encoder: the usual one of that many channels)
                    enc.layout = LAYOUTS.get(a.codec_context.channels, a.codec_context.layout)
                    outs[a.index] = encode[a.index] = enc

            def sound() -> Any:
                for pkt in ain.demux(*ain.streams.audio):
                    shift = round(start / pkt.time_base) if pkt.time_base else 0
                    if pkt.stream.index in encode:
                        enc = encode[pkt.stream.index]
                        frame: Any
                        for frame in pkt.decode():
                            if frame.pts is not None and frame.time_base:
                                frame.pts -= round(start / frame.time_base)
                            yield from enc.encode(frame)
                        continue
                    if pkt.size == 0:
                        continue  # (the demuxer's end)
                    if pkt.dts is not None:
                        pkt.dts -= shift
                    if pkt.pts is not None:
                        pkt.pts -= shift
                    pkt.stream = outs[pkt.stream.index]
                    yield pkt
                for enc in encode.values():
                    yield from enc.encode(None)

            def picture() -> Any:
                for pkt in vin.demux(vs):
                    if pkt.size:  # (not the demuxer's end; Matroska gives no dts, pts only)
                        pkt.stream = outs[vs.index]
                        yield pkt

            def when(pkt: Any) -> float:
                t = pkt.dts if pkt.dts is not None else pkt.pts
                return float(t * pkt.time_base) if t is not None else 0.0

            for pkt in heapq.merge(picture(), sound(), key=when):
                o.mux(pkt)
        os.replace(tmp, out)
    except av.FFmpegError as e:
        raise MediaError(f"{source}: its sound does not go into {out} ({e})") from None
    finally:
        tmp.unlink(missing_ok=True)
