"""Importing this module registers every degradation op in `params.OPS` (one module per concept)."""

from __future__ import annotations

from . import (  # noqa: F401
    blur,
    color,
    composite,
    compress,
    damage,
    flicker,
    grain,
    resample,
    vhs,
    weave,
)
