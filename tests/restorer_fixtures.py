"""Shared fixtures of the restorer tests: a tiny procedural dataset and a briefly trained run.

Imported by several test modules; each is built once per session (cached here), not once per
importing module.
"""

from __future__ import annotations

from pathlib import Path

import pytest

QUICK = {"steps": 6, "batch_size": 2, "log_every": 2, "ckpt_every": 3, "crop": 16}
_built: dict[str, Path] = {}


@pytest.fixture(scope="session")
def toy_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from filmdata.restorer.toydata import make_toy_dataset

    if "data" not in _built:
        _built["data"] = make_toy_dataset(
            tmp_path_factory.mktemp("restorer") / "toy",
            windows={"train": 6, "validation": 2},
            frames=4,
            size=(40, 24),
        )
    return _built["data"]


@pytest.fixture(scope="session")
def toy_run(toy_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from filmdata.restorer import PRESETS, train

    if "run" not in _built:
        out = tmp_path_factory.mktemp("runs") / "toy-run"
        cfg = PRESETS["tiny"].replace(**QUICK)
        train(toy_dataset, cfg, out=out, device="cpu", quiet=True)
        _built["run"] = out
    return _built["run"]
