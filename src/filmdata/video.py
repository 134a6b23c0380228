"""Probing, decoding and encoding with PyAV (which ships FFmpeg).

Frames are numbered by decode order from the stream's start (frame 0 is the first decoded
frame), never rounded to keyframes: `iter_frames(path, start, end)` seeks to a keyframe before
`start` and decodes forward, dropping frames until `start`.

Frames are stood upright: a stream whose display matrix turns its pictures (a phone stores its
sensor's landscape pixels and the turn for the player) is decoded into the pictures players,
FFmpeg's command and OpenCV show (`turns`); sizes, boxes and crops are in their pixels.

Where a caller wants pictures rather than fields (`deinterlace=True`: the clean GT that synth,
`cut` and `pair --export` take), frames coded interlaced are deinterlaced, and the combed
pictures of a stream coded progressive field-matched (`_deinterlaced`).
"""

from __future__ import annotations

import bisect
import math
import multiprocessing as mp
import os
import re
from collections import deque
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from .errors import MediaError, RefusedError
from .paths import refuse_unless_file

VIDEO_EXTENSIONS = frozenset(
    {
        "mp4",
        "mkv",
        "webm",
        "mov",
        "avi",
        "m4v",
        "mpg",
        "mpeg",
        "ts",
        "m2ts",
        "mts",
        "flv",
        "ogv",
        "wmv",
        "3gp",
        "vob",
        "dv",
        "mxf",
        # what old capture software, DVD demuxers and early web video left behind
        "m2v",
        "m1v",
        "asf",
        "rm",
        "rmvb",
        "f4v",
        "divx",
        "y4m",
        "nut",
        "qt",
    }
)
AUDIO_EXTENSIONS = frozenset({"m4a", "mp3", "aac", "opus", "ogg", "wav", "flac"})


@dataclass(frozen=True)
class Probe:
    """What a media file holds. `frames` counts frames that decode; `declared_frames` is what
    the container claims (0 when it does not say); `width` and `height` are the pictures' as
    shown (a turned stream's swapped: `turns`), unless probed with `as_shown=False`."""

    container: str
    codec: str
    width: int
    height: int
    fps: float
    frames: int
    declared_frames: int
    duration: float
    audio: bool
    audio_codec: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def complete(self) -> float:
        """The fraction of declared frames that decode (1.0 when nothing is declared)."""
        if self.declared_frames <= 0:
            return 1.0
        return min(1.0, self.frames / self.declared_frames)


BAR_LUMA = 24.0  # rows/columns darker than this in every sample are letterbox bars


def picture_box(frames: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """The active picture (x, y, w, h) in source pixels (`width` x `height`) of sampled gray
    frames (N, h, w), each sample pixel the average of its patch of the source: rows and
    columns darker than `BAR_LUMA` in every sample are letterbox or pillarbox bars, the box is
    what is left (the whole frame when nothing is, or when there are no samples).

    A bar rarely ends on a sample's border: the sample where it ends is part bar, part picture.
    Its picture part is read from its level between the bar's and the picture's next to it, and
    the edge is rounded inwards: no column or row of bar is left inside the box (a crop that
    touches it would carry a black sliver into a dataset's GT).

    Of four samples or more, one may be bright where the others have bars (a remaster's title
    card in full frame before the letterboxed film, a tape's head of snow): a row or column
    is picture where it is brighter than `BAR_LUMA` in two samples."""
    if len(frames) == 0:
        return (0, 0, width, height)
    f = frames.astype(np.float32)
    k = 2 if len(f) >= 4 else 1  # the k-th brightest mean of each row over the samples
    rows = _edges(np.sort(f.mean(2), axis=0)[-k], height)
    cols = _edges(np.sort(f.mean(1), axis=0)[-k], width)
    if rows is None or cols is None:
        return (0, 0, width, height)
    (y0, y1), (x0, x1) = rows, cols
    return (x0, y0, x1 - x0, y1 - y0)


def _edges(profile: np.ndarray, size: int) -> tuple[int, int] | None:
    """The picture's first and past-the-last source pixel along one axis, from the brightest
    level of each sample row or column (`picture_box`); None when all of it is bar."""
    on = np.flatnonzero(profile > BAR_LUMA)
    if len(on) == 0:
        return None
    s = size / len(profile)  # source pixels a sample
    a, b = int(on[0]), int(on[-1])
    lo, hi = a * s, (b + 1) * s
    if a > 0:  # a bar before: how much of sample a is picture
        lo = (a + 1 - _picture_share(profile[a], profile[a - 1], profile[min(a + 1, b)])) * s
    if b < len(profile) - 1:
        hi = (b + _picture_share(profile[b], profile[b + 1], profile[max(b - 1, a)])) * s
    lo_px, hi_px = int(np.ceil(lo - 1e-6)), int(np.floor(hi + 1e-6))
    return (lo_px, hi_px) if hi_px > lo_px else (int(a * s), int(np.ceil((b + 1) * s)))


def _picture_share(level: float, bar: float, inside: float) -> float:
    """The share of a boundary sample that is picture: where its level sits between the bar's
    beside it and the picture's inside it (1 when they do not differ)."""
    if inside - bar <= 1.0:
        return 1.0
    return float(np.clip((level - bar) / (inside - bar), 0.0, 1.0))


def key_samples(
    container: Any, stream: Any, count: int = 8, keys: Sequence[int] | None = None
) -> tuple[np.ndarray, int]:
    """Upright gray thumbnails (N, h, w) of keyframes of an open stream, where the picture may
    have black bars: one keyframe from the middle, and when its edges are dark, up to `count`
    spread over the stream (one seek and one decoded frame each: ~10-20 ms a 720p keyframe,
    against decoding the stream); and the frames' `turns` (its sizes as shown: swapped where
    odd). Empty and 0 when nothing decodes.

    `keys`, the stream's keyframe timestamps where the caller has demuxed it: a seek that
    would land on a keyframe sampled already is not made (a 10 s web clip has one or two
    keyframes for the eight places: each was decoded again, and thrown away)."""
    tb = stream.time_base
    start = stream.start_time or 0
    duration = stream.duration
    if duration is None and container.duration is not None and tb:
        duration = int(container.duration / av.time_base / tb)
    stream.thread_count = 1  # one frame wanted: frame threads would only delay it
    out: list[np.ndarray] = []
    seen: set[int | None] = set()
    turned = 0
    for k in [count // 2, *(i for i in range(count) if i != count // 2)] if duration else [0]:
        if len(out) == 1 and not _dark_edges(out[0]):
            break  # no bars: one sample says so
        target = start + int(duration * (k + 0.5) / count) if duration else start
        if keys:  # the keyframe a backward seek to `target` lands on
            lands = keys[max(0, bisect.bisect_right(keys, target) - 1)]
            if lands in seen:
                continue
        try:
            container.seek(target, stream=stream, backward=True, any_frame=False)
            frame = _landed_frame(container, stream)
        except (av.error.FFmpegError, ValueError, StopIteration):
            continue
        if frame is None or frame.pts in seen:
            continue  # the same keyframe again (a long GOP)
        seen.add(frame.pts)
        out.append(_thumb(frame))
        turned = turns(frame)
    return (np.stack(out) if out else np.zeros((0, 1, 1), np.uint8)), turned


def _landed_frame(container: Any, stream: Any) -> av.VideoFrame | None:
    """The first frame decoded after a seek: the keyframe it landed on, drained out of the
    decoder at once rather than after the frames its reordering holds back (two or three
    more packets decoded for nothing: x264's B-frames); the next seek flushes the decoder."""
    for pkt in container.demux(stream):
        if pkt.size == 0:  # the demuxer's end
            break
        frames = pkt.decode()
        if not frames and pkt.is_keyframe:
            frames = stream.codec_context.decode(None)  # drain: the keyframe comes out
        if frames:
            return frames[0]
    return None


# 8-bit formats whose first plane is Y
_LUMA_FORMATS = frozenset(
    {
        *(f"yuv{s}p" for s in ("420", "422", "444", "440", "411", "410")),
        *(f"yuvj{s}p" for s in ("420", "422", "444", "440", "411")),
        *("yuva420p", "yuva422p", "yuva444p", "nv12", "nv21", "nv16", "nv24", "gray"),
    }
)
# deeper ones: planar Y of 9-16 bits in the low bits of 16 (yuv420p10le, gray12le, ...), or
# in the high bits (p010le, p016le: the semi-planar layout of hardware decoders)
_DEEP_PLANAR = re.compile(r"^(?:yuva?(?:420|422|440|444)p|gray)(9|10|12|14|16)(le|be)$")
_DEEP_HIGH = re.compile(r"^p0(10|12|16)(le|be)$")


def turns(frame: av.VideoFrame) -> int:
    """Quarter turns, counter-clockwise (`np.rot90`'s k), that stand a decoded frame upright:
    its display matrix's rotation (the nearest quarter turn), as players, FFmpeg's command and
    OpenCV apply it; 0 without one."""
    r = getattr(frame, "rotation", 0) or 0
    return int(round(r / 90)) % 4


def upright(a: np.ndarray, k: int) -> np.ndarray:
    """An (H, W, ...) picture turned by `k` quarter turns counter-clockwise: `a` itself for 0,
    else a contiguous copy (OpenCV takes no negative strides)."""
    return a if k == 0 else np.ascontiguousarray(np.rot90(a, k))


def luma(frame: av.VideoFrame) -> np.ndarray:
    """A frame's Y plane (H, W) uint8 as coded (its range as coded, no colour conversion),
    upright (`turns`): a view of it for 8-bit YUV, its top 8 bits for deeper YUV (10-bit HEVC,
    AV1, ProRes, ...); any other format converted to gray."""
    name = frame.format.name
    p = frame.planes[0]
    if name in _LUMA_FORMATS:
        y = np.frombuffer(memoryview(p), np.uint8).reshape(p.height, p.line_size)
        return upright(y[:, : frame.width], turns(frame))
    m = _DEEP_PLANAR.match(name) or _DEEP_HIGH.match(name)
    if m:
        bits = 16 if m.re is _DEEP_HIGH else int(m.group(1))
        dtype = "<u2" if m.group(2) == "le" else ">u2"
        y = np.frombuffer(memoryview(p), dtype).reshape(p.height, p.line_size // 2)
        return upright((y[:, : frame.width] >> (bits - 8)).astype(np.uint8), turns(frame))
    return upright(frame.to_ndarray(format="gray"), turns(frame))


# coded luma of the limited ("TV") range, 16-235, as gray levels 0-255: swscale's own
# stretch for `to_ndarray(format="gray")`, to the level
_TV_GRAY = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)
_FULL_RANGE = 2  # AVCOL_RANGE_JPEG


def luma_as_gray(y: np.ndarray, frame: av.VideoFrame) -> np.ndarray:
    """`luma(frame)`'s samples (or an area resize of them) as gray levels, as
    `frame.to_ndarray(format="gray")` gives them: limited-range luma (nearly all video: black
    is 16) stretched to 0-255; full-range luma (`yuvj*`, JPEG range) and formats `luma`
    converts already are gray. Levels such as `BAR_LUMA` are gray levels: a tape's bars at
    coded luma 27 (gray 13, a little above video black) are bars."""
    import cv2

    name = frame.format.name
    coded = name in _LUMA_FORMATS or _DEEP_PLANAR.match(name) or _DEEP_HIGH.match(name)
    full = name.startswith("yuvj") or name == "gray" or frame.color_range == _FULL_RANGE
    return cv2.LUT(y, _TV_GRAY) if coded and not full else y


def _thumb(frame: av.VideoFrame, width: int = 64) -> np.ndarray:
    """A frame's luma averaged down by about `width` across: each pixel the mean of its patch
    (as `picture_box` reads its samples)."""
    import cv2

    y = luma(frame)
    k = max(1, y.shape[1] // width)
    if k == 1:
        return luma_as_gray(np.ascontiguousarray(y), frame)
    size = (max(1, round(y.shape[1] / k)), max(1, round(y.shape[0] / k)))
    return luma_as_gray(cv2.resize(y, size, interpolation=cv2.INTER_AREA), frame)


def _dark_edges(thumb: np.ndarray) -> bool:
    """Whether a thumbnail's first or last row or column is as dark as a bar."""
    t = thumb.astype(np.float32)
    return min(t[0].mean(), t[-1].mean(), t[:, 0].mean(), t[:, -1].mean()) <= BAR_LUMA


def file_key(path: str | os.PathLike[str]) -> tuple[str, int, int]:
    """(path, size, mtime): what the per-file memos know a file by (an edited file is another).
    Raises OSError where it is gone."""
    st = os.stat(path)
    return (str(path), st.st_size, st.st_mtime_ns)


def _open(path: str | os.PathLike[str]) -> Any:
    path = str(path)
    refuse_unless_file(path, error=MediaError)
    try:
        return av.open(path, metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise MediaError(f"{path}: cannot open as media: {ffmpeg_reason(e)}") from None


def ffmpeg_reason(e: BaseException) -> str:
    """Why FFmpeg failed, in its own words alone: an `av.error.FFmpegError`'s str() adds
    "[Errno N]", and the path or the name of the function that failed; other errors whole."""
    return getattr(e, "strerror", None) or str(e)


def _video_stream(container: Any, path: str | os.PathLike[str]) -> Any:
    """The file's video: its first video stream that is not a cover picture (`attached_pic`:
    a thumbnail a downloader embedded), the default one where several are left."""
    streams = [
        s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic
    ]
    if not streams:
        raise MediaError(f"{path}: no video stream")
    default = [s for s in streams if s.disposition & av.stream.Disposition.default]
    return (default or streams)[0]


#: HDR transfer characteristics (FFmpeg's color_trc values): their code values are not SDR
#: pixels, and nothing here tone-maps them
HDR_TRANSFERS = {16: "PQ, SMPTE ST 2084", 18: "HLG, ARIB STD-B67"}
#: how to make an SDR (BT.709) copy of an HDR video with the FFmpeg imageio-ffmpeg installs
TONE_MAP = (
    "ffmpeg -i HDR.mkv -vf zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,"
    "tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p SDR.mp4"
)


def hdr_transfer(stream: Any) -> str | None:
    """The HDR transfer a video stream declares (`HDR_TRANSFERS`: PQ or HLG), else None."""
    trc = getattr(stream.codec_context, "color_trc", None)
    return HDR_TRANSFERS.get(int(trc)) if trc is not None else None


def file_hdr(path: str | os.PathLike[str]) -> str | None:
    """`hdr_transfer` of a file's video; None where it does not open (its reader says why)."""
    try:
        with _open(path) as c:
            return hdr_transfer(_video_stream(c, path))
    except MediaError:
        return None


def pixel_aspect(stream: Any, turned: int = 0) -> float:
    """The width of a stream's pixel over its height as shown: its sample aspect ratio (a 16:9
    PAL DVD's 720x576 pictures are shown 1024 wide: 64/45), inverted for a stream turned a
    quarter (`turns` odd); 1 where the stream sets none."""
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    r = float(sar) if sar and sar.numerator > 0 and sar.denominator > 0 else 1.0
    return 1 / r if turned % 2 else r


#: sample aspect ratios closer to 1 than this count as square (a 0.5% stretch: a pixel over
#: 200 across)
SQUARE_SAR = 0.005


def file_aspect(path: str | os.PathLike[str]) -> float:
    """A file's `pixel_aspect` as shown, its turn read from its first frame only where the
    pixels are not square; 1 where the file does not open (its reader then says why)."""
    try:
        with _open(path) as c:
            v = _video_stream(c, path)
            sar = pixel_aspect(v)
            if abs(sar - 1) >= SQUARE_SAR and _first_turns(c, v) % 2:
                sar = 1 / sar
    except MediaError:
        return 1.0
    return sar


def stream_fps(stream: Any) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 25.0


#: a video's frames may end (a decoder error: a damaged tail, a capture stopped mid-write; or
#: quietly: a file cut short, which FFmpeg's frame threads end without an error) where at
#: least this share of its declared frames came before; earlier, the file is refused (as
#: `fetch` refuses a download with fewer: its MIN_COMPLETE)
MIN_DECODED = 0.95


def refuse_short(
    path: str, v: Any, c: Any, fps: float, got: int, error: Exception | None, last: float | None
) -> None:
    """Raise MediaError where the frames of `v` (in container `c`) decoded from its start
    ended after `got` (`error`: the decoder error that ended them, if one did), short of
    MIN_DECODED of those it declares (`_declared`; nothing declared: the frames decoded
    stand), unless the last one (`last`: its time, s; None: no times) reached MIN_DECODED of
    the way through the duration declared: then the count overstates them (a variable frame
    rate's duration at its average rate, a stream copy whose video starts late) and none
    are missing."""
    short = frames_short(v, c, fps, got, last)
    if short is not None:
        declared, why = short
        if error is not None:
            why = ffmpeg_reason(error)
        raise MediaError(f"{path}: decode failed after {got} of {declared} frames: {why}")


def frames_short(
    v: Any, c: Any, fps: float, got: int, last: float | None
) -> tuple[int, str] | None:
    """`refuse_short`'s rule: (the frames `v` declares, why they are short) where `got`
    frames, the last at `last` s, fall short of them; None where they do not."""
    declared, seconds, end = _declared(v, c, fps)
    cut = ts_packet_cut(c.name) if c.format.name == "mpegts" else None
    if cut is not None:
        return declared, cut
    if got >= MIN_DECODED * declared:
        return None
    if last is not None and end - (last + 1 / fps) <= (1 - MIN_DECODED) * seconds:
        return None
    if last is None:
        return declared, "the file ends there (cut short?)"
    return declared, f"its frames end at {last + 1 / fps:.2f} s of {end:.2f} (the file cut short?)"


#: MPEG-TS packet sizes and where the sync byte sits in each: plain; M2TS (AVCHD, Blu-ray:
#: a 4-byte arrival time before each packet); DVB with 16 bytes of Reed-Solomon parity after
_TS_PACKETS = ((188, 0), (192, 4), (204, 0))
_TS_SYNC = 0x47


def ts_packet_cut(path: str | os.PathLike[str]) -> str | None:
    """Why an MPEG transport stream is cut short: it ends part-way into a packet; None where
    it ends on a packet boundary, or is not a transport stream (no sync byte every 188, 192
    or 204 bytes at its start).

    A transport stream declares no length: its duration is read from its own last
    timestamps, so a copy cut short is self-consistent, every frame it still holds decodes,
    and no frame count can tell it from a whole one. Its packets are the one trace: muxers
    write whole packets, so a file that ends inside one was cut (a `head -c`, a download
    stopped part-way). A cut that falls on a packet boundary (1 in 188 of cuts at a random
    byte) leaves none."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None  # (its reader says why)
    for n, lead in _TS_PACKETS:
        first = _ts_first_sync(head, n, lead)
        if first is not None:
            tail = (size - (first - lead)) % n
            if not tail:
                return None
            return f"it ends {tail} bytes into a {n}-byte transport packet (the file cut short?)"
    return None


def _ts_first_sync(head: bytes, n: int, lead: int) -> int | None:
    """Where the first of the sync bytes that recur every `n` bytes (up to 8 times in
    `head`, at least twice) sits, at or after `lead` and within a packet of it; None where
    none do (as FFmpeg's mpegts probe finds the packet size)."""
    for first in range(lead, min(len(head), lead + n)):
        at = range(first, min(len(head), first + 8 * n), n)
        if len(at) >= 2 and all(head[i] == _TS_SYNC for i in at):
            return first
    return None


def later(last: float | None, frame: Any) -> float | None:
    """The latest frame time (s) so far, `frame`'s where it is later than `last`: what
    `refuse_short` takes as the time the frames reached (a clock that jumps back does not
    take it back)."""
    t = frame.time
    return t if t is not None and (last is None or t > last) else last


def file_short(path: str | os.PathLike[str], got: int, last: float | None) -> str | None:
    """`frames_short` of a file's video stream (opened again, not decoded), as one line
    naming the file and both counts; None where its frames are not short."""
    with _open(path) as c:
        v = _video_stream(c, path)
        short = frames_short(v, c, stream_fps(v), got, last)
    if short is None:
        return None
    return f"{path}: {got} of the {short[0]} frames it declares decode: {short[1]}"


def _declared(v: Any, c: Any, fps: float) -> tuple[int, float, float]:
    """The frames `v` declares, its duration and its end (s): its frame count or its duration
    at `fps`, the lower (an mp4 cut by `ffmpeg -ss T -c copy` counts the pre-roll its edit
    list skips); the duration its own (mp4, MPEG-TS), its Matroska DURATION tag (its end,
    written by FFmpeg and mkvmerge: the container's may be its sound's, longer), else the
    container's."""
    tb = v.time_base
    start = float(v.start_time * tb) if v.start_time is not None and tb else 0.0
    tag = _tag_seconds(v.metadata.get("DURATION"))
    if v.duration and tb:
        seconds = float(v.duration * tb)
        end = start + seconds
    elif tag is not None:
        end = tag
        seconds = max(0.0, end - start)
    else:
        seconds = (c.duration or 0) / 1e6
        end = (c.start_time or 0) / 1e6 + seconds
    counts = [n for n in (int(v.frames or 0), round(seconds * fps)) if n > 0]
    return min(counts, default=0), seconds, end


def _tag_seconds(tag: str | None) -> float | None:
    """Seconds of a Matroska duration tag ("HH:MM:SS.nnnnnnnnn"); None where it is not one."""
    try:
        h, m, s = (tag or "").split(":")
        return 3600 * int(h) + 60 * int(m) + float(s)
    except ValueError:
        return None


def probe(
    path: str | os.PathLike[str],
    *,
    count: bool = True,
    timeout: float | None = None,
    as_shown: bool = True,
) -> Probe:
    """Probe a media file; with `count`, decode every frame to count those that decode.

    Args:
        path: the file.
        count: decode the whole stream to count frames (catches truncated and corrupt files).
        timeout: seconds; when given, the probe runs in a child process that is killed past it.
        as_shown: width and height as the pictures are shown (`turns`; without `count`, the
            first frame is decoded to learn its turn: 8 ms at 720p, 23 at 1080p); False: as
            stored, for a caller that takes the sizes from the frames it decodes.

    Raises:
        MediaError: not media, no video stream, nothing decodes, or the time limit passed.
    """
    if timeout is not None:
        return run_limited(_probe, (str(path), count, as_shown), timeout, what=f"{path}: probe")
    return _probe(str(path), count, as_shown)


def _probe(path: str, count: bool, as_shown: bool = True) -> Probe:
    with _open(path) as c:
        v = _video_stream(c, path)
        fps = stream_fps(v)
        # the video's own duration (a capture's sound may run on past its pictures)
        declared, duration, _ = _declared(v, c, fps)
        audio = c.streams.audio[0] if c.streams.audio else None
        n = k = 0
        width, height = v.codec_context.width, v.codec_context.height
        if count:
            v.thread_type = "AUTO"
            try:
                for frame in c.decode(v):
                    if n == 0:
                        width, height, k = frame.width, frame.height, turns(frame)
                    n += 1
            except (av.error.FFmpegError, ValueError):
                pass  # a corrupt tail: count what decoded
            if n == 0:
                raise MediaError(f"{path}: no frame decodes")
        elif as_shown:
            k = _first_turns(c, v)
        if k % 2 and as_shown:
            width, height = height, width
        if not width or not height:
            raise MediaError(f"{path}: video stream has no picture size")
        return Probe(
            container=c.format.name,
            codec=v.codec_context.name,
            width=int(width),
            height=int(height),
            fps=fps,
            frames=n if count else declared,
            declared_frames=declared,
            duration=duration if duration > 0 else (n / fps if n else 0.0),
            audio=audio is not None,
            audio_codec=audio.codec_context.name if audio is not None else None,
        )


def _first_turns(container: Any, stream: Any) -> int:
    """`turns` of a stream's first frame (one frame decoded on one thread: 1.5 ms for a 480p
    tape, 8 for 720p, 23 for 1080p; the turn is the container's, not in its header's sizes);
    0 where nothing decodes (the caller's decode reports it)."""
    stream.thread_count = 1
    try:
        frame = next(container.decode(stream), None)
    except (av.error.FFmpegError, ValueError):
        return 0
    return turns(frame) if frame is not None else 0


def _child(conn: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        conn.send(("ok", fn(*args)))
    except BaseException as e:  # noqa: BLE001 - everything goes back to the parent
        conn.send(("err", e))
    finally:
        conn.close()


def run_limited(fn: Callable[..., Any], args: tuple[Any, ...], timeout: float, *, what: str) -> Any:
    """Run `fn(*args)` in a child process killed after `timeout` seconds (untrusted decodes;
    infinity: no limit).

    Raises:
        RefusedError: `timeout` is not more than 0 (NaN neither): the commands' --timeout.
        MediaError: `what` took longer than `timeout`, or the child died.
    """
    if not timeout > 0:  # (NaN too; Typer's min= lets it through)
        raise RefusedError(f"--timeout: must be more than 0 seconds, got {timeout}")
    ctx: Any = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(None if math.isinf(timeout) else timeout):
            proc.kill()
            raise MediaError(f"{what}: took longer than {timeout:g} s (killed)")
        try:
            status, value = parent.recv()
        except EOFError:
            raise MediaError(f"{what}: the decoder died (exit {proc.exitcode})") from None
    finally:
        proc.join(1)
        if proc.is_alive():
            proc.kill()
        parent.close()
    if status == "err":
        raise value
    return value


def iter_frames(
    path: str | os.PathLike[str],
    start: int = 0,
    end: int | None = None,
    *,
    gray: bool = False,
    size: tuple[int, int] | None = None,
    step: int = 1,
    also: Collection[int] = (),
    deinterlace: bool = False,
    whole: bool = False,
) -> Iterator[tuple[int, np.ndarray]]:
    """Decode frames `[start, end)` of the first video stream, frame-exact.

    Args:
        path: the video.
        start, end: half-open range of decoded frame indices (end None: to the last).
        gray: yield (H, W) uint8 luma instead of (H, W, 3) RGB.
        size: (width, height) to scale to in the decoder (area-like, fast), upright.
        step: yield every `step`-th frame.
        also: frame indices yielded besides (a pass that samples every `step`-th frame and
            wants a few frames between them: decoded on the way, where a read of each
            would seek and decode from a keyframe again).
        deinterlace: frames coded interlaced come deinterlaced (see `iter_decoded`).
        whole: read to its end (`end` None), a stream whose frames fall short of those it
            declares is refused (see `iter_decoded`).

    Yields:
        (index, frame) pairs, frame uint8 (H, W, 3) RGB or (H, W), upright (`turns`).

    Raises:
        ValueError: `step` under 1 (0 divided by zero; a negative one took every frame).
    """
    from av.video.reformatter import VideoReformatter

    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")

    kw: dict[str, Any] = {"format": "gray" if gray else "rgb24"}
    if size is not None:
        kw.update(width=size[0], height=size[1], interpolation="AREA")
    # One converter for the whole run: `frame.to_ndarray(format=...)` makes a new swscale
    # context for every frame (at 720p, full-size luma 0.58 ms a frame instead of 0.9; for RGB
    # and scaled output a few percent).
    convert = VideoReformatter()
    for index, frame in iter_decoded(path, start, end, deinterlace=deinterlace, whole=whole):
        if (index - start) % step and index not in also:
            continue
        k = turns(frame)
        # a quarter-turned stream is scaled as stored, to `size` turned back
        args = {**kw, "width": size[1], "height": size[0]} if k % 2 and size else kw
        yield index, upright(convert.reformat(frame, **args).to_ndarray(), k)


def iter_decoded(
    path: str | os.PathLike[str],
    start: int = 0,
    end: int | None = None,
    *,
    threads: int = 0,
    deinterlace: bool = False,
    whole: bool = False,
) -> Iterator[tuple[int, Any]]:
    """Decoded `av.VideoFrame`s `[start, end)`, numbered from the stream's first frame.

    Seeks to a keyframe a second before `start` (only when it is far from the start) and
    decodes forward, numbering each frame by the rank of its pts among the stream's (read
    from its packets: `_presentation`), so boundaries are never keyframe-rounded and the
    numbers are those of a decode from the start, at a variable frame rate too (a phone's
    recording, a capture card's dropped frames); by pts times the frame rate where the
    packets carry no pts. Where the seek lands past `start` (no index to seek by, as in
    MPEG-TS, and no keyframe before it), it decodes from the start. `threads`: FFmpeg's
    decoding threads (0: its choice, frame and slice threads). One thread costs about 25%
    less CPU per frame, for a caller whose other threads keep the cores busy. `deinterlace`:
    frames coded interlaced come deinterlaced (`_deinterlaced`). `whole`: read to its end
    (`end` None), a stream whose frames end short of those it declares (a file cut short: its
    decode ends quietly) raises MediaError (`refuse_short`, as `align` and the `film` scene
    detector refuse it), checked on the decode's own container after its last frame.
    """
    if deinterlace:
        yield from _deinterlaced(path, start, end, threads, whole)
        return
    landed = yield from _decoded(path, start, end, threads, seek=True, whole=whole)
    if not landed:
        # The seek landed past `start` (a stream without an index, such as MPEG-TS, and a long
        # GOP: no keyframe before it to land on) or nowhere: from the start instead.
        yield from _decoded(path, start, end, threads, seek=False, whole=whole)


#: FFmpeg's bwdif (w3fdif's filter with yadif's edge-directed interpolation), one picture per
#: frame, the field order from each frame, and frames not coded interlaced left as they are
DEINTERLACER = ("bwdif", "mode=send_frame:parity=auto:deint=interlaced")

#: Before `DEINTERLACER`, for a stream coded progressive whose pictures are combed all the same
#: (`combed_pictures`: a telecined film or interlaced video encoded without its flags, as web
#: re-encodes of DVDs and broadcasts often are): FFmpeg's fieldmatch (TFM's field matching)
#: rebuilds each frame from the fields of it and its neighbours that make one picture (a
#: telecined film's own frames, exactly), and marks as interlaced the frames no pairing un-combs
#: (true interlaced video), which `DEINTERLACER` then deinterlaces. One frame out for each frame
#: in: frame numbers stay the decode's. `combmatch=full`: every frame's combing is measured.
#: (fieldmatch takes 8-bit frames: deeper ones come through FFmpeg's conversion to 8 bits.)
FIELD_MATCHER = ("fieldmatch", "combmatch=full")

# Where `combed_pictures` looks: streams of interlaced video's frame heights (SD: 470-610
# lines; 1080) at its frame rates (25, 29.97, 30). 720p is progressive by definition; film
# rates (23.976, 24) and double rates (50, 59.94) come as whole pictures.
_COMBED_HEIGHTS = ((470, 610), (1070, 1090))
_COMBED_RATES = (24.5, 30.5)
# Frames read at the start, a third and two thirds in; a stream is combed where at least
# `_COMBED_MIN` of them and a tenth are (motion shows combs: a still stretch shows none).
_COMBED_SAMPLE, _COMBED_MIN = 12, 3
# fieldmatch's comb test (`comb_blocks`, its `cthresh`); a frame counts as combed where a
# 16x16 block is half full of combed pixels: moving edges of a woven frame fill blocks
# (210-256), a progressive picture's fine texture rarely a third of one (fieldmatch's own
# `combpel`, 80, is met by pixel-sized noise at full swing: 52-89).
_COMB_THRESHOLD, _COMB_PIXELS = 9, 128
_COMBED: dict[tuple[str, int, int], bool] = {}


def combed_pictures(path: str | os.PathLike[str]) -> bool:
    """Whether a stream coded progressive shows combed pictures (`FIELD_MATCHER`): 36 frames
    of it read (at the start, a third and two thirds in) where its frame height and rate are
    interlaced video's, and at least 3 of them, and a tenth, combed. False for a stream whose
    frames say they are interlaced (`DEINTERLACER` takes those as they come), and for a file
    that does not open or decode (its reader says why). Remembered for the file."""
    try:
        key = file_key(path)
    except OSError:
        return False  # (its reader says why)
    if key not in _COMBED:
        if len(_COMBED) > 4096:
            _COMBED.clear()
        try:
            _COMBED[key] = _look_for_combs(path)
        except (MediaError, av.error.FFmpegError):
            _COMBED[key] = False
    return _COMBED[key]


def _look_for_combs(path: str | os.PathLike[str]) -> bool:
    with _open(path) as c:
        v = _video_stream(c, path)
        height, fps, tb = v.codec_context.height, stream_fps(v), v.time_base
        if not any(lo <= height <= hi for lo, hi in _COMBED_HEIGHTS):
            return False
        if not _COMBED_RATES[0] <= fps <= _COMBED_RATES[1]:
            return False
        v.thread_count = 1
        seconds = float(v.duration * tb) if v.duration and tb else 0.0
        if not seconds and c.duration:
            seconds = c.duration / av.time_base
        combed = seen = 0
        for place in (0.0, 1 / 3, 2 / 3):
            if place and (seconds < 3 * _COMBED_SAMPLE / fps or tb is None):
                break  # too short to sample apart (or no time base to seek by)
            if place:
                try:
                    c.seek((v.start_time or 0) + int(seconds * place / tb), stream=v)
                except av.error.FFmpegError:
                    break  # no seeking in it: what was read decides
            taken = 0
            for frame in c.decode(v):
                if frame.interlaced_frame:
                    return False
                y = luma(frame)  # upright: a quarter turn makes the fields columns
                y = y.T if turns(frame) % 2 else y
                combed += comb_blocks(y) > _COMB_PIXELS
                taken += 1
                if taken == _COMBED_SAMPLE:
                    break
            seen += taken
    return combed >= max(_COMBED_MIN, seen / 10)


def comb_blocks(y: np.ndarray) -> int:
    """fieldmatch's combed score of a luma plane (of every 4th column where it is over 1000
    wide): the most combed pixels in a 16x16 block (blocks every 8 pixels). A pixel is combed
    where it differs from the lines above and below by more than `_COMB_THRESHOLD` levels and
    the vertical [1 -3 4 -3 1] filter at it exceeds 6 times that, and so do the pixels above and
    below it (a comb, not one bright line). Moving edges of a woven frame fill whole blocks; a
    progressive picture's texture rarely a third of one."""
    if y.shape[1] > 1000:
        y = y[:, ::4]
    y = y.astype(np.int16)
    c = _COMB_THRESHOLD
    cur, up, down = y[2:-2], y[1:-3], y[3:-1]
    mark = (np.abs(cur - up) > c) & (np.abs(cur - down) > c)
    mark &= np.abs(4 * cur - 3 * (up + down) + y[:-4] + y[4:]) > 6 * c
    comb = mark[1:-1] & mark[:-2] & mark[2:]
    h, w = (comb.shape[0] // 8) * 8, (comb.shape[1] // 8) * 8
    if h < 16 or w < 16:
        return 0
    cells = comb[:h, :w].reshape(h // 8, 8, w // 8, 8).sum(axis=(1, 3), dtype=np.int32)
    blocks = cells[:-1, :-1] + cells[1:, :-1] + cells[:-1, 1:] + cells[1:, 1:]
    return int(blocks.max())


def _deinterlaced(
    path: str | os.PathLike[str], start: int, end: int | None, threads: int, whole: bool = False
) -> Iterator[tuple[int, Any]]:
    """`iter_decoded`'s frames `[start, end)` with those coded interlaced (two fields of
    different instants woven into a frame: a 576i/480i DVD or broadcast master, a camcorder,
    a telecined transfer; FFmpeg's `interlaced_frame`) deinterlaced by `DEINTERLACER`; a
    progressive frame is the decoder's own. Otherwise the fields' combs on every motion would
    be cut into the clean GT (and blurred into ghosts by the area resize).

    A stream coded progressive whose pictures are combed all the same (`combed_pictures`) has
    its fields matched first (`FIELD_MATCHER`), every frame, and those left combed deinterlaced.

    bwdif makes frame i from frames i - 1, i and i + 1, so a range decodes one frame more on
    each side (two after fieldmatch) and the frames equal those of a decode from the start. The
    filter starts at the first interlaced frame (fed the frame before it): a progressive range
    is decoded as it is without it (the frame before it is decoded on the way from its keyframe
    anyway)."""
    matched = combed_pictures(path)
    # frames of context either side: bwdif looks one frame either way; after fieldmatch, which
    # does too, two
    lead = 2 if matched else 1
    graph: Any = None
    numbers: deque[int] = deque()  # the frames in the filter, oldest first
    before: Any = None  # the last frame, while no filter runs

    def pulled() -> Iterator[tuple[int, Any]]:
        while True:
            try:
                frame = graph.pull()
            except (BlockingIOError, EOFError):  # av.error's: none ready yet, or none left
                return
            i = numbers.popleft()
            if i >= start and (end is None or i < end):
                yield i, frame

    wide = None if end is None else end + lead
    try:
        decoded = iter_decoded(path, max(0, start - lead), wide, threads=threads, whole=whole)
        for i, frame in decoded:
            if graph is None and (matched or frame.interlaced_frame):
                graph = _deinterlacer(frame, matched)
                if before is not None:
                    graph.push(before)  # its output (itself: progressive) is not wanted
                    numbers.append(-1)
            if graph is None:
                if i >= start and (end is None or i < end):
                    yield i, frame
                if end is not None and i >= end - 1:
                    return  # all progressive: the frame past the range is not needed
                before = frame
                continue
            graph.push(frame)
            numbers.append(i)
            yield from pulled()
        if graph is not None:
            graph.push(None)  # the end: the last frame is made from what there is
            yield from pulled()
    except av.error.FFmpegError as e:
        raise MediaError(f"{path}: deinterlacing failed: {e}") from None


def _deinterlacer(frame: Any, matched: bool = False) -> Any:
    """A configured filter graph: frames like `frame` in, `DEINTERLACER`'s out (after
    `FIELD_MATCHER`'s where `matched`)."""
    g = av.filter.Graph()
    tb = frame.time_base or Fraction(1, 90000)
    last = g.add_buffer(
        width=frame.width, height=frame.height, format=frame.format.name, time_base=tb
    )
    for name, args in (FIELD_MATCHER, DEINTERLACER) if matched else (DEINTERLACER,):
        f = g.add(name, args)
        last.link_to(f)
        last = f
    last.link_to(g.add("buffersink"))
    g.configure()
    return g


def _decoded(
    path: str | os.PathLike[str],
    start: int,
    end: int | None,
    threads: int,
    seek: bool,
    whole: bool = False,
) -> Generator[tuple[int, Any], None, bool]:
    """`iter_decoded`'s frames, from a seek where `seek` and `start` is far; returns False,
    having yielded nothing, where a seek landed past `start` or no frame came after it.
    `whole`: `iter_decoded`'s."""
    with _open(path) as c:
        v = _video_stream(c, path)
        if threads == 1:
            v.thread_count = 1
        else:
            v.thread_type = "AUTO"
            v.thread_count = threads
        fps = stream_fps(v)
        tb = v.time_base
        first_pts: int | None = None
        order: np.ndarray | None = None
        # Seek only when far from the start: to the frame a second before `start` (`seek_lands`).
        seek = seek and start > SEEK_AFTER * fps and tb is not None
        if seek:
            order, steady = _presentation(path, c, v)
            if not steady:
                # Timestamps that jump back (recordings spliced or concatenated, a capture's
                # clock reset) place no frame: decoded from the start, numbered in order.
                return False
            if order is not None:
                first_pts = int(order[0])
                target = int(order[min(len(order) - 1, max(0, start - round(SEEK_LEAD * fps)))])
            else:
                for frame in c.decode(v):
                    first_pts = frame.pts
                    break
                target = (first_pts or 0) + int((start - SEEK_LEAD * fps) / fps / tb)
            c.seek(max(target, first_pts or 0), stream=v, backward=True)
        index = -1
        first = True
        last: float | None = None
        try:
            for frame in c.decode(v):
                last = later(last, frame)
                if seek and frame.pts is not None and tb is not None:
                    index = _rank(order, frame.pts)
                    if index < 0:
                        index = int(round(float((frame.pts - (first_pts or 0)) * tb) * fps))
                    if first and index > start:
                        return False
                else:
                    index += 1
                first = False
                if index < start:
                    continue
                if end is not None and index >= end:
                    break
                yield index, frame
        except av.error.FFmpegError as e:
            raise MediaError(
                f"{path}: decode failed at frame {index + 1}: {ffmpeg_reason(e)}"
            ) from None
        if seek and first:
            return False
        if whole and end is None:
            refuse_short(str(path), v, c, fps, index + 1, None, last)
        return True


# (path, size, mtime) -> (the pts of a stream's frames in presentation order, or None; whether
# they run forward) (`_presentation`)
_ORDERS: dict[tuple[str, int, int], tuple[np.ndarray | None, bool]] = {}
# (path, size, mtime) -> the frame numbers of its keyframes, where `_presentation` could rank
# them (`keyframe_frames`)
_KEYFRAMES: dict[tuple[str, int, int], np.ndarray] = {}
# How far back in a stream a packet's pts may fall behind those before it in decode order, in
# frames (B-frames reordered), before it is a jump back of the clock.
_REORDER = 32


def _presentation(
    path: str | os.PathLike[str], container: Any, stream: Any
) -> tuple[np.ndarray | None, bool]:
    """The pts of every frame of an open stream, sorted: one a packet, less those an edit list
    cuts away (`is_discard`: the decoder drops them) and those before the first frame a decode
    from the start gives (`_first_pts`: a capture cut mid-GOP begins with B-frames whose
    reference was cut off, which the decoder drops; counted, every frame after them would be
    numbered two or so past its place in a decode from the start), read by demuxing (no
    decoding but the first frame: ~10 ms for 30 s of 1080p), remembered for the file; None
    where a packet has no pts or two share one (no rank then). And whether the pts run
    forward in decode order (but for B-frames' reordering, `_REORDER` frames): False where the
    clock jumps back (two recordings spliced, a transport stream's timestamps reset), where no
    pts says which frame a packet is. The container is left at its end: the caller seeks."""
    key = file_key(path)
    if key not in _ORDERS:
        pts: list[int] = []
        keys: list[int] = []
        try:
            for pkt in container.demux(stream):
                if not pkt.size or pkt.is_discard:
                    continue
                if pkt.pts is None:
                    pts = []
                    break
                pts.append(pkt.pts)
                if pkt.is_keyframe:
                    keys.append(pkt.pts)
        except (av.error.FFmpegError, ValueError):
            pts = []
        coded = np.asarray(pts, np.int64)
        steady = True
        if len(coded) > 1 and stream.time_base:
            back = np.maximum.accumulate(coded)[:-1] - coded[1:]
            frame = 1 / (stream_fps(stream) * float(stream.time_base))
            steady = bool(back.max() <= _REORDER * frame)
        a = np.sort(coded)
        ok = len(a) > 0 and bool(np.all(np.diff(a) > 0))
        if ok and (first := _first_pts(path, stream.index)) is not None and first in a:
            a = a[a >= first]
        if len(_ORDERS) > 64:
            _ORDERS.clear()
            _KEYFRAMES.clear()
        _ORDERS[key] = (a if ok else None, steady)
        if ok and steady and keys:
            at = np.searchsorted(a, np.asarray(keys, np.int64))
            inside = at < len(a)
            found = at[inside][a[at[inside]] == np.asarray(keys, np.int64)[inside]]
            _KEYFRAMES[key] = np.unique(found)
        else:
            _KEYFRAMES.pop(key, None)
    return _ORDERS[key]


def keyframe_frames(path: str | os.PathLike[str]) -> tuple[np.ndarray, float] | None:
    """The frame numbers of a file's keyframes (numbered as `iter_decoded` numbers frames,
    sorted) and its frame rate, read by demuxing (`_presentation`, remembered for the file);
    None where they cannot be told (packets without pts, a clock that jumps back, a file
    that does not open: its reader says why).

    A seek lands on a keyframe (`iter_decoded`: the last one at least a second before the
    frame wanted), so a reader that wants frames further on knows whether decoding on from
    where it is costs less than seeking there (`windows.window_pictures`)."""
    try:
        with _open(path) as c:
            v = _video_stream(c, path)
            _presentation(path, c, v)
            found = _KEYFRAMES.get(file_key(path))
            return None if found is None else (found, stream_fps(v))
    except (MediaError, OSError, av.error.FFmpegError):
        return None


#: `iter_decoded` seeks for a frame more than SEEK_AFTER seconds in, to SEEK_LEAD seconds before it
SEEK_AFTER, SEEK_LEAD = 2.0, 1.0
#: frames a reader decodes on through rather than seek: the seek's own cost (the file opened
#: again, the decoder flushed and started at a keyframe)
DECODE_ON = 48


def seek_lands(keys: tuple[np.ndarray, float] | None, start: int) -> int:
    """The frame `iter_decoded`'s seek for frame `start` starts decoding at: the last keyframe
    (`keys`: `keyframe_frames`) SEEK_LEAD before it, none (0) where `start` is within
    SEEK_AFTER of the file's start; `start` itself where the keyframes are not known."""
    if keys is None:
        return start
    frames, fps = keys
    if start <= SEEK_AFTER * fps:
        return 0
    at = int(np.searchsorted(frames, start - round(SEEK_LEAD * fps), side="right")) - 1
    return int(frames[at]) if at >= 0 else 0


def decodes_on(keys: tuple[np.ndarray, float] | None, at: int, start: int) -> bool:
    """Whether a reader whose decode has reached frame `at` goes on decoding to frame `start`
    rather than seek there (`iter_decoded` again): where the seek would start decoding
    (`seek_lands`) no further on than `DECODE_ON` frames past `at`."""
    return seek_lands(keys, start) <= at + DECODE_ON


def _first_pts(path: str | os.PathLike[str], index: int) -> int | None:
    """The pts of the first frame a decode of stream `index` from the start gives (None where
    none comes or it has none). Packets before it in presentation order never become frames:
    open-GOP B-frames at the head of a cut (MPEG-2 in TS and PS: their reference is in the
    part cut away), which FFmpeg's decoder skips rather than show half-decoded."""
    try:
        with _open(path) as c:
            v = c.streams[index]
            v.thread_count = 1  # a frame or two: no threads to start
            for frame in c.decode(v):
                return None if frame.pts is None else int(frame.pts)
    except (MediaError, av.error.FFmpegError):
        pass  # (the reader says why)
    return None


def _rank(order: np.ndarray | None, pts: int) -> int:
    """The index of a frame whose pts is `pts` in `order`; -1 where it is not there."""
    if order is None:
        return -1
    i = int(np.searchsorted(order, pts))
    return i if i < len(order) and order[i] == pts else -1


def read_frames(
    path: str | os.PathLike[str], start: int = 0, end: int | None = None, **kw: Any
) -> np.ndarray:
    """`iter_frames` into one array (N, H, W, 3) or (N, H, W)."""
    frames = [f for _, f in iter_frames(path, start, end, **kw)]
    if not frames:
        raise MediaError(f"{path}: no frames in [{start}, {end})")
    return np.stack(frames)


def write_video(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    codec: str = "libx264",
    crf: int | None = 18,
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    sar: float = 1.0,
) -> int:
    """Encode (H, W, 3) uint8 RGB frames to a file; returns the frame count. `sar`: the width
    of a pixel over its height as the file is to be shown (`file_aspect` of the frames' source:
    a clip of an anamorphic DVD is shown as wide as the DVD).

    Writes to a temporary name beside `path` and renames it when complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    n = 0
    rate = Fraction(fps).limit_denominator(1001)
    try:
        with av.open(str(tmp), "w") as c:
            s: Any = None
            for img in frames:
                if img.ndim == 2:
                    img = np.repeat(img[..., None], 3, axis=2)
                if s is None:
                    s = c.add_stream(codec, rate=rate)
                    h, w = img.shape[:2]
                    even = pix_fmt.startswith("yuv420")
                    s.width, s.height = (w - w % 2, h - h % 2) if even else (w, h)
                    s.pix_fmt = pix_fmt
                    if abs(sar - 1) >= SQUARE_SAR:
                        s.codec_context.sample_aspect_ratio = Fraction(sar).limit_denominator(1000)
                    opts: dict[str, Any] = dict(options or {})
                    if crf is not None and codec in ("libx264", "libx265"):
                        opts.setdefault("crf", str(crf))
                    s.options = opts
                img = np.ascontiguousarray(img[: s.height, : s.width])
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                for pkt in s.encode(frame):
                    c.mux(pkt)
                n += 1
            if s is not None:
                for pkt in s.encode():
                    c.mux(pkt)
        if n == 0:
            raise MediaError(f"{path}: no frames to write")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n
