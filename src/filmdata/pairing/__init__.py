"""Pairing a tape (LQ) with its ground truth (GT): temporal and spatial alignment, and `pair`."""

from __future__ import annotations

from .align import Alignment, align

__all__ = ["Alignment", "align"]
