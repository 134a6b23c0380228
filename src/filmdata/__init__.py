"""filmdata: paired datasets of old film and VHS footage for restoration research.

Every CLI command is a thin twin of a library function exported here.
"""

from __future__ import annotations

from .catalog import Catalog
from .errors import FilmdataError, ItemsFailed, ManifestError, MediaError, RefusedError
from .manifest import Manifest, load_manifest
from .paths import resolve_root
from .video import Probe, iter_frames, probe, read_frames, write_video

__version__ = "0.1.0"

__all__ = [
    "Catalog",
    "FilmdataError",
    "ItemsFailed",
    "Manifest",
    "ManifestError",
    "MediaError",
    "Probe",
    "RefusedError",
    "__version__",
    "iter_frames",
    "load_manifest",
    "probe",
    "read_frames",
    "resolve_root",
    "write_video",
]
