"""`FilmDetector`: our old-film detector (`film.FilmCuts`) on PySceneDetect's interface.

So PySceneDetect's `SceneManager`, `detect()` and tooling run it like their own detectors:

    scenedetect.detect("reel.mp4", FilmDetector())
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scenedetect.common import FrameTimecode
from scenedetect.detector import SceneDetector

from .film import FilmCuts


class FilmDetector(SceneDetector):
    """Cuts and fades in old film; see `filmdata.scenes.film` for how.

    Args:
        threshold: minimum cut score, 0..2 (default 0.55); lower finds more cuts.
        min_scene_len: frames; cuts closer than this to the previous one are dropped.
    """

    def __init__(self, threshold: float | None = None, min_scene_len: int = 6):
        super().__init__()
        self.film = FilmCuts(threshold, min_scene_len)
        self._first: int | None = None
        self._fps: Any = None

    def process_frame(self, timecode: FrameTimecode, frame_img: np.ndarray) -> list[FrameTimecode]:
        """Take the next frame (BGR (H, W, 3) or gray (H, W) uint8); cuts come in post_process."""
        if self._first is None:
            self._first, self._fps = timecode.frame_num, timecode.frame_rate
        self.film.push(frame_img)
        return []

    def post_process(self, timecode: FrameTimecode) -> list[FrameTimecode]:
        """Decide the cuts over the whole stream (they need scores on both sides)."""
        first = self._first or 0
        return [FrameTimecode(first + c, self._fps) for c in self.film.cuts()]
