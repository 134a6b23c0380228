"""Checking what landed: not executable, probes as video, enough frames decode, sha256.

Downloads are checked, not trusted: a host that closes the connection early without a
Content-Length makes yt-dlp report success with half a file, so every file is decoded to the
end and compared with the frame count its container declares.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from ..errors import MediaError
from ..video import probe, ts_packet_cut
from .errors import ItemError

#: At least this fraction of the declared frames must decode (else "truncated").
MIN_COMPLETE = 0.95

# Magic numbers of things that run: PE (MZ), ELF, scripts, Mach-O (both endians, fat).
_EXECUTABLE_MAGIC = {
    b"MZ": "a Windows executable (MZ header)",
    b"\x7fELF": "an ELF executable",
    b"#!": "a script (#!)",
    b"\xfe\xed\xfa\xce": "a Mach-O executable",
    b"\xfe\xed\xfa\xcf": "a Mach-O executable",
    b"\xce\xfa\xed\xfe": "a Mach-O executable",
    b"\xcf\xfa\xed\xfe": "a Mach-O executable",
    b"\xca\xfe\xba\xbe": "a Mach-O universal binary",
}


def sniff_executable(path: Path) -> str | None:
    """What kind of executable `path` is by its first bytes, or None when it is not one."""
    with open(path, "rb") as f:
        head = f.read(8)
    for magic, what in _EXECUTABLE_MAGIC.items():
        if head.startswith(magic):
            return what
    return None


def mp4_truncation(path: Path) -> str | None:
    """Why an MP4 is cut short, from its top-level boxes; None if it is whole (or not MP4).

    An MP4 written front to back keeps its index (`moov`) after the media (`mdat`): cut in
    half, it does not open at all, and FFmpeg only says "invalid data". The boxes say more.
    """
    size = os.path.getsize(path)
    seen: set[bytes] = set()
    with open(path, "rb") as f:
        if f.read(8)[4:8] != b"ftyp":
            return None
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            head = f.read(16)
            n, kind = int.from_bytes(head[:4], "big"), head[4:8]
            if n == 1 and len(head) == 16:
                n = int.from_bytes(head[8:16], "big")
            elif n == 0:
                n = size - pos  # "to the end of the file"
            if n < 8:
                return None  # not a box structure we can read
            if pos + n > size:
                return f"truncated: the MP4 ends at byte {size} of at least {pos + n}"
            seen.add(kind)
            pos += n
    if b"mdat" in seen and b"moov" not in seen:
        return "truncated: the MP4 has media but no index (moov)"
    return None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_media(
    path: Path,
    *,
    timeout: float,
    allow_truncated: bool = False,
    sections: bool = False,
    expected_seconds: float | None = None,
) -> dict[str, Any]:
    """Probe and hash one file; the catalog fields of a verified source.

    Args:
        path: the file (not yet at its final name).
        timeout: seconds for the probe, which decodes every frame in a child process.
        allow_truncated: keep a file where fewer than 95% of the declared frames decode.
        sections: the file is downloaded sections: the frames expected are then
            `expected_seconds` times the fps, not what the container declares (a stream copy
            cut at a keyframe declares its pre-roll packets too).
        expected_seconds: how long the sections last; None where one runs to the end of a
            source of unknown length ("0:12-inf" from a direct link): then the file's own
            duration, as nothing else says how long it should be.

    Returns:
        sha256, bytes, container, codec, width, height, fps, frames, declared_frames, duration,
        audio, audio_codec, truncated.

    Raises:
        ItemError: executable content, not a video, too few frames decode (or a transport
            stream ends inside a packet: `ts_packet_cut`), or the probe hung.
    """
    what = sniff_executable(path)
    if what is not None:
        raise ItemError(f"not a video: the file is {what}")
    try:
        p = probe(path, count=True, timeout=timeout)
    except MediaError as e:
        cut = mp4_truncation(path)
        if cut is not None:
            raise ItemError(cut) from None
        msg = str(e).replace(f"{path}: probe: ", "").replace(f"{path}: ", "")
        msg = msg.replace(f": '{path}'", "").replace(f"'{path}'", "the file")
        msg = re.sub(r"\[Errno -?\d+\] ", "", msg)
        raise ItemError(f"not a video: {msg}") from None
    declared = p.declared_frames
    seconds = (expected_seconds or p.duration) if sections else None
    if seconds is not None and seconds > 0:
        declared = int(round(seconds * p.fps))
    cut = ts_packet_cut(path) if p.container == "mpegts" else None
    truncated = cut is not None or (declared > 0 and p.frames < MIN_COMPLETE * declared)
    if truncated and not allow_truncated:
        raise ItemError(
            f"truncated: {p.frames} of {declared} frames decode" + (f": {cut}" if cut else "")
        )
    row = p.to_dict()
    row["declared_frames"] = declared
    row.update(sha256=sha256_file(path), bytes=os.path.getsize(path), truncated=int(truncated))
    return row
