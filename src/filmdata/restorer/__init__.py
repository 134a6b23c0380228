"""The baseline temporal diffusion restorer: `train`, `evaluate`, `restore`.

Read in this order: `config.py` (presets), `model.py` (space-time UNet), `diffusion.py` (the
residual v-prediction objective on diffusers' schedulers), `data.py` (windows from Parquet through
`datasets` + paired albumentations), `train.py` (the loop), `checkpoint.py` (safe run folders),
`sampling.py` (windows, tiles, blending), `evaluate.py`, `restore.py`.

Importing this package imports torch; the CLI imports it only inside its commands.
"""

from __future__ import annotations

from .checkpoint import load_model
from .config import PRESETS, RestorerConfig, load_config
from .evaluate import evaluate
from .restore import RestoreResult, restore
from .train import TrainResult, train

__all__ = [
    "PRESETS",
    "RestoreResult",
    "RestorerConfig",
    "TrainResult",
    "evaluate",
    "load_config",
    "load_model",
    "restore",
    "train",
]
