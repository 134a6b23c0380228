"""`filmdata fetch`: sources of manifests into `ROOT/raw/`, verified (PyAV) and catalogued.

Importing it does not import yt-dlp: `fetch` does, and only when it has remote sources.
"""

from __future__ import annotations

from .core import fetch, sources
from .report import FetchFailed, FetchReport, ItemResult

__all__ = ["FetchFailed", "FetchReport", "ItemResult", "fetch", "sources"]
