"""Cut detection and clip cutting: `detect_scenes` for one file, `cut` for the catalog.

Importing this package is light; the detectors (OpenCV, PySceneDetect, TransNetV2) are imported
by the functions that run them.
"""

from __future__ import annotations

from .detect import DETECTORS, Scene, detect_scenes

__all__ = ["DETECTORS", "Scene", "detect_scenes"]
