"""Per-frame descriptors for temporal alignment, and the one decode pass that feeds them.

A descriptor is a small grey image of the frame, area-averaged (which removes most of the
difference in blur, noise and compression between a tape and its HD master), then made zero-mean
and unit-norm, so that the dot product of two descriptors is their normalised cross-correlation
(ZNCC): blind to brightness, contrast and colour. Coarse descriptors (about 32 px wide) compare
frames whose framing is not known yet; fine ones are sampled on the tape's grid through the
estimated GT->tape transform, so that they compare the same picture point by point.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

import av
import cv2
import numpy as np

from .._progress import progress
from ..errors import MediaError
from ..paths import refuse_unless_file
from ..video import _open, _video_stream, ffmpeg_reason, luma, refuse_short, stream_fps

_INTRA = av.video.frame.PictureType.I
_FORWARD = av.video.frame.PictureType.P


@dataclass
class GrayVideo:
    """A video decoded once: every frame small, and a few frames at working size."""

    path: str
    fps: float
    width: int  # full size
    height: int
    small: np.ndarray  # (N, h, w) uint8, every frame
    kept: dict[int, np.ndarray] = field(default_factory=dict)  # index -> (H', W') uint8
    kept_scale: float = 1.0  # working size / full size
    key: np.ndarray | None = None  # (N,) bool: intra-coded frames (no encoder lag)
    forward: np.ndarray | None = None  # (N,) bool: P-frames (predicted from earlier ones only)

    @property
    def frames(self) -> int:
        return int(self.small.shape[0])

    @property
    def small_scale(self) -> float:
        return self.small.shape[2] / self.width


def decode_gray(
    path: str | os.PathLike[str],
    small_width: int = 160,
    keep_every: int = 0,
    keep_width: int = 0,
    only: set[int] | None = None,
    keep_near: int = 0,
    quiet: bool = True,
    desc: str = "decode",
    threads: int = 0,
    halves: bool = False,
) -> GrayVideo:
    """Decode a video's luma once: all frames at `small_width`; every `keep_every`-th frame (or
    the frames in `only`, and then nothing else) at `keep_width` (0: full size), with the
    `keep_near` frames either side of each (the spatial stage tries a sample's neighbours,
    in case the temporal match is a frame off). `threads`: the decoder's threads (0:
    FFmpeg's choice; 1: one, for a stream decoded beside another). `halves`: decode the
    second half from its keyframe on a thread of its own, each half on one decoder thread
    (`_halves`), where the video allows it. (Skipping the decoder's deblocking filter, ~15%
    less CPU on a 720p GT, moved the path on a slow PAL benchmark tape: 0.964 -> 0.844.)

    Raises:
        MediaError: not a video, or nothing decodes.
    """
    path = str(path)
    refuse_unless_file(path, error=MediaError)
    with _open(path) as c:
        v = _video_stream(c, path)
        fps = stream_fps(v)
        total = int(v.frames or 0) or None
        sink = _Sink(small_width, keep_every, keep_width, only, keep_near)
        bar = progress(total, quiet, desc=desc, unit="f", leave=False)
        try:
            if halves and only is None and keep_every <= 1 and threads != 1:
                _halves(c, v, path, threads, sink, bar)
            else:
                _decode_into(c, v, path, threads, sink, bar)
        finally:
            bar.close()
        if only is None and not sink.small:
            raise MediaError(f"{path}: no frame decodes")
        if only is None:  # (with the container open: its stream's fields are read)
            refuse_short(path, v, c, fps, len(sink.small), sink.error, sink.end)
    arr = np.stack(sink.small) if sink.small else np.zeros((0, 2, 2), np.uint8)
    key_a, forward_a = np.array(sink.key, bool), np.array(sink.forward, bool)
    w, h, kw = sink.w, sink.h, sink.kw
    return GrayVideo(path, fps, w, h, arr, sink.kept, kw / w if w else 1.0, key_a, forward_a)


class _Sink:
    """What `decode_gray` keeps of each frame, frame by frame in order (`add`); `error`: the
    decoder error that ended them, if one did; `end`: the latest frame time (s) of them."""

    def __init__(
        self,
        small_width: int,
        keep_every: int,
        keep_width: int,
        only: set[int] | None,
        keep_near: int,
    ):
        self.small_width, self.keep_every, self.keep_width = small_width, keep_every, keep_width
        self.only, self.keep_near = only, keep_near
        self.last = max(only) if only else None
        self.small: list[np.ndarray] = []
        self.key: list[bool] = []
        self.forward: list[bool] = []
        self.kept: dict[int, np.ndarray] = {}
        self.w = self.h = self.sw = self.sh = self.kw = self.kh = 0
        self.error: Exception | None = None
        self.end: float | None = None
        self._sizing = threading.Lock()

    def add(self, i: int, frame: av.VideoFrame) -> bool:
        """Frame `i` described; False once nothing more is wanted."""
        self.extend(i, [self.describe(i, frame)])
        return self.last is None or i < self.last

    def describe(self, i: int, frame: av.VideoFrame) -> tuple:
        """What is kept of frame `i` (a thread of its own may make it, see `_halves`)."""
        y = luma(frame)
        if not self.kh:
            with self._sizing:  # the first frame's sizes, once, whichever half comes first
                if not self.kh:
                    h, w = y.shape
                    sw = min(self.small_width, w)
                    kw = min(self.keep_width or w, w)
                    self.h, self.w, self.sw, self.kw = h, w, sw, kw
                    self.sh = max(2, int(round(h * sw / w)))
                    self.kh = max(2, int(round(h * kw / w)))
        only, every = self.only, self.keep_every
        want = (only is not None and i in only) or (
            only is None and every > 0 and min(i % every, -i % every) <= self.keep_near
        )
        if only is not None:
            kept = np.ascontiguousarray(shrink(y, (self.kw, self.kh))) if want else None
            return (kept, None, False, False, None)
        # Every frame's small one from its working-size one (kept or not, so that all are made
        # alike): halvings are OpenCV's fast path, a 1080p frame to 160 px in 0.11 ms against
        # 0.43 by one area resize (the same box averages, rounded twice). A working size under
        # the small one (a GT under 160 px wide as stored, shown turned a quarter: `align`
        # sizes by the stored width) is kept at that size all the same (`kept_scale` says
        # it is), and the small one made from the frame itself.
        below = self.kw < self.sw  # the small one cannot come from the working-size one
        work = shrink(y, (self.kw, self.kh)) if self.kw < self.w and (want or not below) else y
        kept = np.ascontiguousarray(work) if want else None
        small = cv2.resize(y if below else work, (self.sw, self.sh), interpolation=cv2.INTER_AREA)
        intra = bool(frame.key_frame) or frame.pict_type == _INTRA
        return (kept, small, intra, frame.pict_type == _FORWARD, frame.time)

    def extend(self, first: int, described: list[tuple]) -> None:
        """Frames `first`, `first + 1`, ... as `describe` made them."""
        for i, (kept, small, intra, forward, time) in enumerate(described, first):
            if kept is not None:
                self.kept[i] = kept
            if small is not None:
                self.small.append(small)
                self.key.append(intra)
                self.forward.append(forward)
            if time is not None and (self.end is None or time > self.end):
                self.end = time


def _decode_into(c: Any, v: Any, path: str, threads: int, sink: _Sink, bar: Any) -> None:
    """Every frame of `v` into `sink`, in order, on `threads` decoder threads."""
    if threads == 1:
        v.thread_count = 1
    else:
        v.thread_type = "AUTO"
        v.thread_count = threads
    _rest(enumerate(c.decode(v)), path, sink, bar)


def _rest(
    frames: Iterator[tuple[int, Any]],
    path: str,
    sink: _Sink,
    bar: Any,
    until: Callable[[int, Any], bool] | None = None,
) -> tuple[int, Any] | None:
    """The (index, frame)s left in `frames` into `sink`; a decoder error ends them (raised
    where nothing decoded at all). `until(i, frame)`: true at the frame to stop before, which
    is returned (not added)."""
    try:
        for i, frame in frames:
            if until is not None and until(i, frame):
                return i, frame
            bar.update()
            if not sink.add(i, frame):
                break
    except (av.error.FFmpegError, ValueError) as e:
        if not sink.small and not sink.kept:
            raise MediaError(f"{path}: decode failed: {ffmpeg_reason(e)}") from None
        sink.error = e
    return None


#: `_halves` splits a video of at least this many seconds
HALVES_MIN_SECONDS = 4.0


def _halves(c: Any, v: Any, path: str, threads: int, sink: _Sink, bar: Any) -> None:
    """Every frame of `v` into `sink` in order, the first half here and the second, from the
    keyframe nearest the middle (`_middle_key`), on a thread of its own, each on one decoder
    thread.

    FFmpeg's frame threads wait for each other's reference frames and cost CPU of their own;
    two decoders running from two keyframes have nothing to wait for: a 30 s GT decoded
    beside its tape (2 cores), 720p 1.25 -> 1.09 s, 1080p 2.40 -> 2.16 s. The halves join
    where the second starts: the first stops at the keyframe's presentation time, where it
    must show the very picture the second decoded there; the second drops what it shows
    before it (an open GOP's leading pictures) and its frames are numbered on from the
    first's. Where the join does not hold (no timestamps, a seek that lands elsewhere, a
    keyframe the first half does not show at its time), the first half goes on to the end,
    as a plain decode would, and the second's work is dropped. A video with no keyframe but its
    first (a short clip of one shot) is decoded whole on `threads` decoder threads."""
    tb = v.time_base
    seconds = float(v.duration * tb) if v.duration and tb else (c.duration or 0) / 1e6
    middle = None
    if tb is not None and seconds >= HALVES_MIN_SECONDS:
        middle = _middle_key(path, (v.start_time or 0) + int(seconds / 2 / tb))
    if middle is None:
        _decode_into(c, v, path, threads, sink, bar)
        return
    v.thread_count = 1
    found: Future[int | None] = Future()
    second: list[tuple] = []
    stop = threading.Event()  # no join: the second half is not wanted

    def run_second() -> None:
        """Decode from the keyframe `middle`; its pts into `found` (None: none)."""
        try:
            with av.open(path, metadata_errors="ignore") as c2:
                v2 = _video_stream(c2, path)
                v2.thread_count = 1
                c2.seek(middle, stream=v2, backward=True)
                start: int | None = None
                for frame in c2.decode(v2):
                    if stop.is_set():
                        return
                    if start is None:
                        if frame.pts is None or not frame.key_frame or frame.pict_type != _INTRA:
                            continue  # an open GOP's leading pictures; no recovery points
                        start = frame.pts
                        found.set_result(start)
                    elif frame.pts is None or frame.pts <= start:
                        continue
                    # (the index does not matter: with keep_every <= 1 all or none are kept)
                    second.append(sink.describe(0, frame))
                    bar.update()
        except (av.error.FFmpegError, ValueError) as e:  # where a plain decode would stop too
            sink.error = e
        finally:
            if not found.done():
                found.set_result(None)

    worker = threading.Thread(target=run_second, name="decode second half", daemon=True)
    worker.start()

    def at_join(i: int, frame: Any) -> bool:
        """Whether the first half has reached the second's keyframe."""
        start = found.result() if found.done() and not stop.is_set() else None
        if start is None or frame.pts is None or frame.pts < start:
            return False
        if frame.pts == start and i > 0:
            return True
        stop.set()  # past it, or not at its time: no join, the rest here
        return False

    frames = enumerate(c.decode(v))
    at: tuple[int, Any] | None = None  # the first half's frame at the second's keyframe
    try:
        at = _rest(frames, path, sink, bar, until=at_join)
    finally:
        if at is None:
            stop.set()
        worker.join()
    if at is None:
        return
    i, frame = at
    if second and np.array_equal(sink.describe(i, frame)[1], second[0][1]):
        sink.extend(i, second)
        return
    bar.update()  # no join after all: the rest here, from that frame on
    sink.add(i, frame)
    _rest(frames, path, sink, bar)


def _middle_key(path: str, target: int) -> int | None:
    """The pts of the keyframe nearest `target` (the packets' flags, no decoding: ~10 ms for
    30 s of 1080p), None where it would be the first or there is none."""
    try:
        with av.open(path, metadata_errors="ignore") as c:
            v = _video_stream(c, path)
            keys = [p.pts for p in c.demux(v) if p.is_keyframe and p.pts is not None]
    except (av.error.FFmpegError, ValueError):
        return None
    if not keys:
        return None
    middle = min(keys, key=lambda k: abs(k - target))
    return None if middle <= min(keys) else middle


def shrink(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average `img` down to `size` (w, h): halvings first (OpenCV's fast path, several
    times faster than one resize by an odd or fractional factor), then the rest."""
    w, h = size
    while img.shape[1] >= 2 * w and img.shape[0] >= 2 * h:
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if img.shape[1] != w or img.shape[0] != h:
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return img


# a side of an activity profile whose lowest rows are under this part of the picture's level may
# hold a bar (`_span`); a heavy tape's noisy bar reaches a third of it
BAR_FLOOR = 0.5


def active_box(small: np.ndarray, rel: float = 0.2) -> tuple[int, int, int, int]:
    """The active picture (x, y, w, h) of (N, h, w) frames: letterbox and pillarbox bars are
    rows/columns that stay flat (the median over frames of their spatial std is low). In the
    columns what stays the same in every frame counts as flat too (each frame less the
    median frame): a TV station's logo recorded with the picture sits in a pillar or the
    picture's dark edge, and its own edges made the columns it covers look active."""
    n = small.shape[0]
    pick = small[np.linspace(0, n - 1, min(n, 200)).astype(int)].astype(np.float32)
    rows = np.median(pick.std(axis=2), axis=0)  # (h,)
    # a column's std runs over rows that include the bars: judge columns inside the rows
    r0, r1 = _span(rows, rel)
    band = pick[:, r0:r1]
    if len(pick) < 8:
        c0, c1 = _span(np.median(band.std(axis=1), axis=0), rel)
    else:
        c0, c1 = _span(np.median((band - np.median(band, axis=0)).std(axis=1), axis=0), rel)
        c0, c1 = _still_sides(band, c0, c1, rel)
    return c0, r0, c1 - c0, r1 - r0


def _still_sides(band: np.ndarray, c0: int, c1: int, rel: float) -> tuple[int, int]:
    """The columns c0..c1 of `band` (N, h, w) that change, widened over a side that is still
    picture: where the camera is locked off and only the middle moves, the still sides were
    cut off as bars (a tape's noise kept them in its own box), and the coarse match of the
    two boxes found nothing (a static background, the middle third moving: 0.2 of frames
    right). A side is picture where its columns vary down their rows (the median of each
    row's deviation from the column's median, over frames) at least half as much as those
    kept: a bar is flat there, and a logo in one covers too few of its rows."""
    if c0 <= 0 and c1 >= band.shape[2]:  # nothing cut off
        return c0, c1
    band = band[np.linspace(0, len(band) - 1, min(len(band), 64)).astype(int)]
    dev = np.abs(band - np.median(band, axis=1, keepdims=True))
    tex = np.median(np.median(dev, axis=1), axis=0)
    level = float(np.median(tex[c0:c1])) if c1 > c0 else 0.0
    if level <= 0:
        return c0, c1
    t0, t1 = _span(tex, rel)
    if c0 > 0 and np.median(tex[:c0]) >= 0.5 * level:
        c0 = min(c0, t0)
    if c1 < len(tex) and np.median(tex[c1:]) >= 0.5 * level:
        c1 = max(c1, t1)
    return c0, c1


def _span(act: np.ndarray, rel: float) -> tuple[int, int]:
    """The first and past-the-last active index of a profile: a bar is flat, but its noise
    (tape noise, line jitter) is not zero, so each side's threshold starts from its own floor,
    a `rel` part of the way up to the picture's level (the median). The edge is found where
    the profile first rises half way (a noisy bar's own peaks stay below that), then followed
    out while it stays above the `rel` level: a heavy tape's bottom bar (4-5 grey levels of
    noise at 160 px, peaks a third of the way up) was taken for picture, and with it in the
    box the coarse match found no GT at all (a procedural pans tape: 0 of 259 frames)."""
    n, med = act.size, float(np.median(act))
    ends = []
    for side in (act[: max(1, n // 2)], act[n // 2 :][::-1]):
        floor = float(side.min())
        if floor > BAR_FLOOR * med:  # nothing flat enough to be a bar on this side
            ends.append(0)
            continue
        on = np.nonzero(side > floor + 0.5 * (med - floor))[0]
        if not on.size:
            ends.append(0)
            continue
        k = int(on[0])
        while k > 0 and side[k - 1] > floor + rel * (med - floor):
            k -= 1
        ends.append(k)
    lo, hi = ends[0], n - ends[1]
    return (lo, hi) if hi > lo else (0, n)


def normalise(
    x: np.ndarray, sigma: float = 0.0, copy: bool = True, deviation: np.ndarray | None = None
) -> np.ndarray:
    """(N, h, w) -> (N, h*w) float32 rows with zero mean and unit norm (after a blur).
    `copy=False` may work in place on a float32 `x`. `deviation` (N,): where given, each
    row's standard deviation before it is scaled, written into it (its norm once centred,
    over the square root of its length)."""
    x = x.astype(np.float32, copy=copy)
    if sigma > 0:
        x = np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in x]) if len(x) else x
    x = x.reshape(len(x), -1)
    x -= x.mean(axis=1, keepdims=True)
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))
    if deviation is not None:
        np.divide(norm, np.float32(np.sqrt(max(1, x.shape[1]))), out=deviation)
    x /= norm[:, None] + np.float32(1e-6)
    return x


def resize_all(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, h, w) -> (N, size[1], size[0]) by area averaging."""
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def coarse(small: np.ndarray, box: tuple[int, int, int, int], grid: tuple[int, int]) -> np.ndarray:
    """Coarse descriptors of the box (x, y, w, h) of every frame, on a `grid` (w, h)."""
    x, y, w, h = box
    return normalise(resize_all(np.ascontiguousarray(small[:, y : y + h, x : x + w]), grid), 0.7)


def coarse_similarity(
    lq_small: np.ndarray,
    gt_small: np.ndarray,
    width: int = 32,
    boxes: tuple[tuple[int, int, int, int], tuple[int, int, int, int]] | None = None,
) -> tuple[np.ndarray, tuple[int, int, int, int], tuple[int, int, int, int]]:
    """The coarse similarity (n_lq, n_gt) of two videos' small frames, each on its active
    picture (`active_box`: a tape's letterbox, and an HD remaster's own bars, left out; or
    `boxes`, the tape's and the GT's), on a grid `width` across in the GT picture's shape;
    and the two boxes (small pixels)."""
    bl, bg = boxes or (active_box(lq_small), active_box(gt_small))
    grid = (width, max(8, round(width * bg[3] / bg[2])))
    return coarse(lq_small, bl, grid) @ coarse(gt_small, bg, grid).T, bl, bg


def fine(
    frames: np.ndarray | list[np.ndarray],
    m: np.ndarray,
    size: tuple[int, int],
    out: np.ndarray | None = None,
    pool: Executor | None = None,
    only: np.ndarray | None = None,
    norms: np.ndarray | None = None,
) -> np.ndarray:
    """Fine descriptors, (N, w*h) float32: each frame sampled through the 3x3 `m` (output
    pixel -> input pixel) on `size` (w, h), band-passed (`band_pass`: keeps the detail that
    tells neighbouring frames apart, drops the noise below it and the shading above it) and
    normalised; frame by frame into `out` when its shape fits (a caller re-running this
    reuses its buffer: a fresh array of this size costs more in page faults than the work
    itself). With `pool`, in two halves on its threads (OpenCV and numpy release the GIL).
    `only`: the indices of the frames to describe; the other rows of a fresh `out` are
    zeros (pages the kernel never has to make), of a reused one left as they were. `norms`
    (N,) float32: where given, each described frame's standard deviation before it is
    normalised (its contrast in the band), written into it."""
    n, d = len(frames), size[0] * size[1]
    if out is None or out.shape != (n, d) or out.dtype != np.float32:
        out = np.empty((n, d), np.float32) if only is None else np.zeros((n, d), np.float32)
    affine = bool(np.allclose(m[2], (0, 0, 1)))  # once, not per frame (47 us a call)

    def describe(k: int) -> None:  # band-passed, not normalised yet
        w = _warp(frames[k], m, size, affine).astype(np.float32)
        band_pass(w, out[k].reshape(w.shape))

    if only is not None:

        def some(ks: np.ndarray) -> None:
            for k in ks:
                describe(k)
                dev = None if norms is None else norms[k : k + 1]
                normalise(out[k : k + 1], copy=False, deviation=dev)

        if pool is None:
            some(np.asarray(only, int))
        else:
            list(pool.map(some, np.array_split(np.asarray(only, int), 2)))
        return out

    def rows(a: int, b: int) -> None:
        for k in range(a, b):
            describe(k)
        normalise(out[a:b], copy=False, deviation=None if norms is None else norms[a:b])

    if pool is None or n < 2:
        rows(0, n)
    else:
        half = n // 2
        list(pool.map(lambda ab: rows(*ab), ((0, half), (half, n))))
    return out


#: `band_pass`'s sigma-4 blur, made at half size: the sigma there (half pixels) that, with the
#: sigma-1 blur before it and the two 5-tap binomial filters of `pyrDown` and `pyrUp` (a
#: variance of 1 px^2 each), makes a variance of 16 px^2
LOW_HALF_SIGMA = math.sqrt(16.0 - 3.0) / 2
#: px of the sigma-1 blur mirrored past each side before the half-size blur (as the full-size
#: blur's border mirrors the picture: a grid's last pixel is not always on the half-size one)
LOW_PAD = 16


def band_pass(w: np.ndarray, out: np.ndarray) -> None:
    """A difference of Gaussians of the float32 image `w` into `out`: sigma 1 less sigma 4,
    the sigma-4 blur made from the sigma-1 one through a Gaussian pyramid's level (`pyrDown`,
    a blur of the rest at half size, `pyrUp`: 0.45 ms instead of 0.95 for a 453 x 272 sharp
    descriptor). Binomial filters are not Gaussians: normalised, its descriptors differ from
    the plain difference of Gaussians by 5e-4 (random detail at any scale; a 720p GT's
    frames at the tape's grid likewise), the ZNCC of neighbouring frames of a pan by at most
    6e-6 (against their differences of 5e-3). (Cheaper low-passes moved paths on benchmark
    tapes: one made at half size from an area-averaged frame, a difference of 2.8e-2, took
    a crf-45 tape from 0.913 to 0.802; the sigma-4 kernel cut at 3 sigma, 5.2e-3, the 3:2
    pulldown pans tape from 0.980 to 0.943.)"""
    fine = cv2.GaussianBlur(w, (0, 0), 1.0)
    h, width = fine.shape
    pad = LOW_PAD
    big = cv2.copyMakeBorder(fine, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    half = cv2.GaussianBlur(cv2.pyrDown(big), (0, 0), LOW_HALF_SIGMA)
    low = cv2.pyrUp(half, dstsize=(big.shape[1], big.shape[0]))
    cv2.subtract(fine, low[pad : pad + h, pad : pad + width], out)


def _warp(f: np.ndarray, m: np.ndarray, size: tuple[int, int], affine: bool) -> np.ndarray:
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    if affine:
        return cv2.warpAffine(f, m[:2], size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    return cv2.warpPerspective(f, m, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)


def scale_matrix(s: float) -> np.ndarray:
    """Pixel-centre scaling: x' + 0.5 = s (x + 0.5)."""
    return np.array([[s, 0, 0.5 * s - 0.5], [0, s, 0.5 * s - 0.5], [0, 0, 1.0]])
