"""Local captures (`path:` sources): copied, or hard-linked with `--link`, into the staging area."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..paths import refuse_unless_file
from ..video import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS
from .errors import ItemError


def capture_ext(capture: Path) -> str:
    """The capture's container extension, lower case; refused unless it is a media container."""
    ext = capture.suffix.lower().lstrip(".")
    if ext not in VIDEO_EXTENSIONS | AUDIO_EXTENSIONS:
        raise ItemError(
            f"capture {capture.name!r}: extension {ext or '(none)'!r} is not a video container "
            f"(use one of {', '.join(sorted(VIDEO_EXTENSIONS))})"
        )
    return ext


def import_capture(capture: Path, dest: Path, *, link: bool = False) -> bool:
    """Copy (or hard-link) `capture` to `dest`; returns True when it was linked.

    A link across file systems is impossible: then the file is copied. The copy goes to a
    temporary name first, so `dest` is never half a file.

    Raises:
        ItemError: the capture is missing ("put the file at ...") or unreadable.
    """
    if not capture.exists():
        raise ItemError(f"missing capture: put the file at {capture}")
    refuse_unless_file(capture, name=f"capture {capture}", error=ItemError)  # (a folder)
    if not capture.is_file():
        raise ItemError(f"capture {capture}: not a regular file")
    dest.unlink(missing_ok=True)
    if link:
        try:
            os.link(capture, dest)
            return True
        except OSError:
            pass  # another file system, or links not allowed: copy instead
    tmp = dest.with_name(dest.name + ".copying")
    try:
        shutil.copyfile(capture, tmp)
        os.replace(tmp, dest)
    except OSError as e:
        raise ItemError(f"cannot copy capture {capture}: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return False
