"""filmdata: paired datasets of old film and VHS footage for restoration research.

Every CLI command is a thin twin of a library function exported here. Stages that import heavy
libraries (torch, pyarrow, yt-dlp, scenedetect) are exported lazily: `filmdata.synth` is imported
on first use, so `import filmdata` (and the CLI's start-up) stays fast.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from .errors import FilmdataError, ItemsFailed, ManifestError, MediaError, RefusedError

__version__ = "0.1.0"

# name -> the module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    # foundation
    "Catalog": "catalog",
    "Manifest": "manifest",
    "load_manifest": "manifest",
    "resolve_root": "paths",
    "Probe": "video",
    "probe": "video",
    "iter_frames": "video",
    "read_frames": "video",
    "write_video": "video",
    # fetch
    "fetch": "fetch.core",
    "sources": "fetch.core",
    "FetchReport": "fetch.report",
    # scenes
    "Scene": "scenes.detect",
    "detect_scenes": "scenes.detect",
    "cut": "scenes.cut",
    "list_clips": "scenes.cut",
    # pairing
    "align": "pairing.align",
    "Alignment": "pairing.align",
    "pair": "pairing.pair",
    # degradations and synthesis
    "load_preset": "degrade",
    "load_templates": "degrade",
    "sample_degradation": "degrade",
    "apply_degradation": "degrade",
    "replay": "degrade",
    "make_templates": "degrade",
    "extract_templates": "degrade",
    "synth": "synth",
    "replay_row": "replay",
    "verify": "verify",
    "preview": "preview",
    "list_datasets": "preview",
    "write_split": "shards",
    "write_card": "shards",
    "register_dataset": "shards",
    # restorer
    "train": "restorer",
    "evaluate": "restorer",
    "restore": "restorer",
    "load_config": "restorer",
    "RestorerConfig": "restorer",
    # metrics, the chain, scale-out
    "psnr": "metrics",
    "ssim": "metrics",
    "ewarp": "metrics",
    "demo": "demo",
    "map_items": "backend",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'filmdata' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


class _Package(types.ModuleType):
    """`filmdata.synth` is the function even once the submodule `filmdata.synth` is imported
    (the import system sets the package attribute to the module; `from filmdata.synth import
    X` still reads the module from sys.modules)."""

    def __getattribute__(self, name: str) -> Any:
        if name in _SHADOWED:
            return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        return super().__getattribute__(name)


# Library functions named like the submodule that holds them.
_SHADOWED = frozenset({"fetch", "synth", "verify", "preview", "demo"})
sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "FilmdataError",
    "ItemsFailed",
    "ManifestError",
    "MediaError",
    "RefusedError",
    "__version__",
    *_LAZY,
]
