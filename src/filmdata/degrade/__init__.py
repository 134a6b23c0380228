"""Degradations: pure, batched ops on clips `(B, T, C, H, W)` in [0, 1], their seeded samplers,
the presets that order them, the noise-template bank, and the pipeline that samples, applies and
replays one degradation per window.

    preset = load_preset("film")
    bank = load_templates("degradations", "auto")
    deg = sample_degradation(preset, seed=7, key="window-id", t=8, h=256, w=256, bank=bank)
    lq = apply_degradation(gt, [deg], bank)
    lq2 = replay(gt, deg.to_json(), bank)   # bit-exact on the same device
"""

from __future__ import annotations

from .params import OPS, Op, check_clip, stack_params
from .pipeline import (
    Degradation,
    apply_degradation,
    frames_to_clip,
    replay,
    sample_degradation,
)
from .presets import Preset, bundled_dir, load_preset, preset_names
from .template_extract import extract_templates
from .template_make import make_templates
from .templates import KINDS, TemplateBank, load_templates, resolve_device

__all__ = [
    "KINDS",
    "OPS",
    "Degradation",
    "Op",
    "Preset",
    "TemplateBank",
    "apply_degradation",
    "bundled_dir",
    "check_clip",
    "extract_templates",
    "frames_to_clip",
    "load_preset",
    "load_templates",
    "make_templates",
    "preset_names",
    "replay",
    "resolve_device",
    "sample_degradation",
    "stack_params",
]
