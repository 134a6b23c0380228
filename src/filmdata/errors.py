"""The exceptions of filmdata: every error we raise derives from `FilmdataError`.

The library raises; the CLI prints the message (one line, no traceback) and exits with
`exit_code`: 2 when the input was refused and nothing ran, 1 when some items failed.
"""

from __future__ import annotations

from typing import Any


class FilmdataError(Exception):
    """Root of filmdata's exceptions. The message says what, which, and how to fix."""

    exit_code = 2


class RefusedError(FilmdataError):
    """The input was refused before anything ran (bad manifest, option or file): exit 2."""

    exit_code = 2


class ManifestError(RefusedError):
    """A manifest (or preset) that does not validate."""


class MediaError(FilmdataError):
    """A media file that cannot be opened, decoded or has no video stream."""

    exit_code = 2


class ItemsFailed(FilmdataError):
    """Some items of a stage failed (each recorded with its reason); the rest are done: exit 1.
    `summary`: what the stage would have returned, where it reports on the rest (synth)."""

    exit_code = 1

    def __init__(self, message: str, summary: dict[str, Any] | None = None):
        super().__init__(message)
        self.summary = summary
