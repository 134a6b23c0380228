"""Remote sources through yt-dlp's Python API (never a shell, never a command line).

Every yt-dlp option is built here from our own typed values: the output template from the
source id (a slug), the format from an integer height, ranges from parsed numbers. Nothing of a
manifest string but the URL itself reaches yt-dlp, and the URL goes in as an argument, never
as an option. No external downloader, no `--exec`, no post-processor but yt-dlp's own merge, and
the ffmpeg it merges with is imageio-ffmpeg's. Runs inside the per-item worker process.
"""

from __future__ import annotations

import email.utils
import re
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yt_dlp
from yt_dlp.networking.exceptions import HTTPError
from yt_dlp.utils import DownloadError

from ..video import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS
from .errors import ItemError

MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | AUDIO_EXTENSIONS
UNKNOWN = "unknown_video"  # yt-dlp's extension for a direct link it cannot name
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524}
_TRANSIENT = re.compile(
    r"timed? ?out|connection (reset|refused|aborted)|incomplete ?read|remote end closed|"
    r"temporary failure|network is unreachable|broken pipe|giving up after|"
    r"did not get any data|unable to download video data|bytes read",
    re.I,
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _YDL(yt_dlp.YoutubeDL):
    """YoutubeDL that remembers the last `Retry-After` a host sent (the download phase turns
    an HTTP error into a bare message, and the header would be lost)."""

    retry_after: float | None = None

    def urlopen(self, req: Any) -> Any:
        try:
            return super().urlopen(req)
        except HTTPError as e:
            self.retry_after = _retry_after(e.response.headers)
            raise


class _Log:
    """yt-dlp's logger: keep errors and warnings for the reason, print nothing."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        self.warnings.append(msg)

    def error(self, msg: str) -> None:
        self.errors.append(msg)


#: yt-dlp's format sort, ahead of its defaults: standard dynamic range over any HDR
FORMAT_SORT = ("hdr:sdr",)


def format_spec(max_height: int | None) -> str:
    """The format selector: best video + best audio (merged), at most `max_height` lines."""
    if max_height is None:
        return "bv*+ba/b"
    h = int(max_height)
    # `?` keeps formats whose height is unknown (direct links); `w` when nothing is small enough.
    return f"bv*[height<=?{h}]+ba/b[height<=?{h}]/w"


def ydl_params(
    outtmpl: str,
    *,
    max_height: int | None,
    cookies: str | None,
    proxy: str | None,
    socket_timeout: float,
    sections: Sequence[tuple[float, float]],
    rejected: list[str],
    logger: _Log,
) -> dict[str, Any]:
    """yt-dlp's options, from our typed values only."""
    import imageio_ffmpeg
    from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    # yt-dlp asks "is ffmpeg there?" (sections) without its params: this is where it looks.
    FFmpegPostProcessor._ffmpeg_location.set(ffmpeg)

    def match_filter(info: dict[str, Any], *, incomplete: bool = False) -> str | None:
        # Called before each download with the chosen format: only media containers land,
        # and a playlist URL is not one source.
        if incomplete:
            return None
        if info.get("playlist_index") is not None or info.get("playlist_id") is not None:
            rejected.append("the URL is a playlist; list each video as its own source")
        else:
            ext = str(info.get("ext") or "").lower()
            # A direct link with no extension and no video MIME type: named from its probe.
            if ext not in MEDIA_EXTENSIONS and ext != UNKNOWN:
                rejected.append(f"refused: extension {ext or '(none)'!r} is not a video container")
        return rejected[-1] if rejected else None

    params: dict[str, Any] = {
        "outtmpl": {"default": outtmpl},
        "format": format_spec(max_height),
        # Standard dynamic range first, before resolution: yt-dlp prefers HDR by default (its
        # `hdr:12`), and an HDR10/HLG stream decoded as it is gives GT of washed-out PQ or HLG
        # code values (no tone mapping here); YouTube serves SDR beside every HDR format.
        "format_sort": list(FORMAT_SORT),
        "match_filter": match_filter,
        "noplaylist": True,
        "playlist_items": "1",
        "continuedl": True,  # resume `.part` files with an HTTP Range request
        "nopart": False,
        "overwrites": None,
        # Our per-item retries wrap extraction and download (with backoff and Retry-After);
        # yt-dlp's own retry only fragments of segmented streams.
        "retries": 0,
        "fragment_retries": 10,
        "extractor_retries": 0,
        "socket_timeout": socket_timeout,
        "ffmpeg_location": ffmpeg,
        "cachedir": False,
        "updatetime": False,
        "writeinfojson": False,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "color": {"stdout": "no_color", "stderr": "no_color"},
        "logger": logger,
        "restrictfilenames": True,
    }
    if cookies is not None:
        params["cookiefile"] = str(cookies)
    if proxy is not None:
        params["proxy"] = str(proxy)
    if sections:
        params["download_ranges"] = _ranges(tuple(sections))
    return params


def warm_up(urls: Sequence[str]) -> None:
    """Compile yt-dlp's URL patterns once in the parent, so each forked worker starts warm."""
    from yt_dlp.extractor import gen_extractor_classes

    for url in urls:
        for ie in gen_extractor_classes():
            if ie.suitable(url):
                break


def _ranges(sections: tuple[tuple[float, float], ...]) -> Any:
    def ranges(info: dict[str, Any], ydl: Any) -> Iterator[dict[str, Any]]:
        for k, (a, b) in enumerate(sections):
            yield {"start_time": a, "end_time": b, "index": k}

    return ranges


def download(
    url: str,
    staging: Path,
    stem: str,
    *,
    sections: Sequence[tuple[float, float]] = (),
    max_height: int | None = None,
    cookies: str | None = None,
    proxy: str | None = None,
    socket_timeout: float = 30.0,
) -> tuple[Path, dict[str, Any]]:
    """Download one URL into `staging/<stem>.<ext>` (resuming `<stem>.<ext>.part`).

    Returns:
        The file and what yt-dlp told us (extractor, page, remote title, format, duration).

    Raises:
        ItemError: retryable for HTTP 429/5xx and dropped connections (with `Retry-After`),
            final otherwise (404, unsupported URL, refused extension, bot check...).
    """
    staging.mkdir(parents=True, exist_ok=True)
    many = len(sections) > 1
    outtmpl = str(staging / (f"{stem}.s%(section_number)d.%(ext)s" if many else f"{stem}.%(ext)s"))
    rejected: list[str] = []
    log = _Log()
    params = ydl_params(
        outtmpl,
        max_height=max_height,
        cookies=cookies,
        proxy=proxy,
        socket_timeout=socket_timeout,
        sections=sections,
        rejected=rejected,
        logger=log,
    )
    ydl = _YDL(params)
    try:
        with ydl:
            info = ydl.extract_info(url, download=True)
    except (DownloadError, OSError, yt_dlp.utils.YoutubeDLError) as e:
        raise classify(e, log, retry_after=ydl.retry_after) from None
    if rejected:
        raise ItemError(rejected[0])
    if not info:
        raise ItemError("yt-dlp returned nothing for this URL")
    done = info.get("requested_downloads") or []
    files = [Path(d["filepath"]) for d in done if d.get("filepath")]
    files = [f for f in files if f.parent == staging and f.name.startswith(stem + ".")]
    if not files or not all(f.is_file() for f in files):
        raise ItemError("yt-dlp reported success but wrote no file", retryable=True)
    parts = [_packets(f) for f in files] if sections else []  # one pass over each part's packets
    if len(files) == len(sections):
        for (a, b), (shown, _) in zip(sections, parts):
            if not shown:
                for g in files:
                    g.unlink(missing_ok=True)
                length = f" (it lasts {_clock(info['duration'])})" if info.get("duration") else ""
                raise ItemError(
                    f"section {_clock(a)}-{_clock(b)}: no picture in what came: does it start "
                    f"past the video's end{length}?"
                )
    if many:
        for f, (_, preroll) in zip(files, parts):
            if isinstance(preroll, Exception):
                raise ItemError(f"section {f.name}: {preroll}")
        out = staging / f"{stem}.{files[0].suffix.lstrip('.')}"
        path = _concat(files, out, recode=any(preroll for _, preroll in parts))
    else:
        path = files[0]
    if path.suffix.lower().lstrip(".") not in MEDIA_EXTENSIONS | {UNKNOWN}:
        path.unlink(missing_ok=True)
        raise ItemError(f"refused: extension {path.suffix!r} is not a video container")
    summary = {
        k: info.get(k)
        for k in ("extractor_key", "webpage_url", "title", "format_id", "duration", "ext")
        if info.get(k) is not None
    }
    return path, summary


def _concat(parts: list[Path], out: Path, recode: bool) -> Path:
    """Join several downloaded sections, in order, into one file.

    yt-dlp cuts a section by stream copy from the keyframe before its start, and hides the
    frames before the start (the pre-roll) with the part's edit list; FFmpeg's concat demuxer
    copies those packets as pictures (the joined file held each pre-roll again, and its
    timing broke). Parts without pre-roll are joined by stream copy; otherwise (`recode`:
    some part holds pre-roll, `_packets`) the join decodes them (the pre-roll dropped) and
    encodes the pictures losslessly (x264 at qp 0, the sound as FLAC) into Matroska: `out`
    then ends in `.mkv`, and is returned.
    """
    import imageio_ffmpeg

    if recode:
        out = out.with_suffix(".mkv")
    lst = out.with_name(out.stem + ".concat.txt")
    lst.write_text("".join(f"file '{p.name}'\n" for p in parts), encoding="utf-8")
    tmp = out.with_name(out.stem + ".joining" + out.suffix)
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y"]
    cmd += ["-f", "concat", "-safe", "0", "-i", str(lst)]
    if recode:
        cmd += ["-map", "0:v:0", "-map", "0:a:0?", "-c:v", "libx264", "-qp", "0"]
        cmd += ["-preset", "veryfast", "-c:a", "flac"]
    else:
        cmd += ["-c", "copy"]
    cmd.append(str(tmp))
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise ItemError(f"joining {len(parts)} sections failed: {done.stderr.strip()[:200]}")
        tmp.replace(out)
    finally:
        lst.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    for p in parts:
        if p != out:
            p.unlink(missing_ok=True)
    return out


def _packets(part: Path) -> tuple[bool, bool | Exception]:
    """One pass over a downloaded part's packets: whether it holds a video packet to be shown
    (not only pre-roll), and whether it holds packets its container marks to be dropped
    (pre-roll), or the error that kept it from being read (unreadable or without video, it
    counts as shown: `verify_media` names what is wrong)."""
    import av

    try:
        with av.open(str(part)) as c:
            video = c.streams.video[0].index if c.streams.video else None
            shown, preroll = video is None, False
            for pkt in c.demux():
                if pkt.size:
                    preroll |= bool(pkt.is_discard)
                    shown |= pkt.stream.index == video and not pkt.is_discard
            return shown, preroll
    except av.FFmpegError as e:
        return True, e


def _clock(seconds: float | None) -> str:
    """Seconds as a manifest writes them: h:mm:ss or m:ss (fractions kept), or 'inf'."""
    if seconds is None or seconds == float("inf"):
        return "inf"
    whole = int(seconds)
    frac = f"{seconds - whole:.2f}"[1:].rstrip("0").rstrip(".")
    h, rest = divmod(whole, 3600)
    m, sec = divmod(rest, 60)
    return (f"{h}:{m:02d}" if h else f"{m}") + f":{sec:02d}{frac}"


def _chain(e: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [e]
    while todo:
        x = todo.pop()
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        yield x
        exc_info = getattr(x, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) > 1:
            todo.append(exc_info[1])
        cause = getattr(x, "cause", None)
        todo += [cause if isinstance(cause, BaseException) else None, x.__cause__, x.__context__]


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = str(value).strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _one_line(text: str) -> str:
    text = _ANSI.sub("", text).strip().removeprefix("ERROR:").strip()
    text = re.sub(r"^\[[^\]]+\] [^:]+: ", "", text.splitlines()[0] if text else "")
    text = re.sub(r" \(caused by .*\)$", "", text)
    return text[:300]


def classify(
    e: BaseException, log: _Log | None = None, retry_after: float | None = None
) -> ItemError:
    """A yt-dlp failure as an ItemError: retryable for 429/5xx and transport faults.

    `retry_after` is the host's last `Retry-After`, when the exception no longer carries it.
    """
    status: int | None = None
    transport = False
    for x in _chain(e):
        st = getattr(x, "status", None)
        if isinstance(st, int) and 100 <= st < 600:
            status = st
            response = getattr(x, "response", None)
            headers = getattr(response, "headers", None) or getattr(x, "headers", None)
            retry_after = _retry_after(headers) if headers is not None else retry_after
            break
        if type(x).__name__ in {"TransportError", "IncompleteRead", "ProxyError"} or isinstance(
            x, (TimeoutError, ConnectionError)
        ):
            transport = True
    message = _one_line(str(e)) or (log.errors[-1] if log and log.errors else type(e).__name__)
    if status is None:
        m = re.search(r"HTTP Error (\d{3})", message)
        status = int(m.group(1)) if m else None
    if "confirm you" in message.lower() and "bot" in message.lower():
        return ItemError(f"{message} (pass --cookies FILE from a signed-in browser)")
    if status is not None:
        return ItemError(message, retryable=status in _RETRY_STATUS, retry_after=retry_after)
    return ItemError(message, retryable=transport or bool(_TRANSIENT.search(message)))
