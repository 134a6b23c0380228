"""The CUDA paths end to end: `synth` on the GPU (batched), its replay, its agreement with the
CPU, and the restorer's training and sampling. Off by default (`-m gpu`); skipped without CUDA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_clip
from filmdata import shards
from filmdata.replay import replay_row
from filmdata.shards import decode_image
from filmdata.synth import synth
from restorer_fixtures import QUICK, toy_dataset  # noqa: F401

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"),
]

T, S = 4, 64


def _templates() -> Path:
    from filmdata.degrade.presets import bundled_dir

    return bundled_dir()


def _rows(dataset: Path) -> list[dict]:
    out = []
    for p in sorted((dataset / "data" / "synthetic").glob("*.parquet")):
        out += shards.read_shard(p).to_pylist()
    return out


def _lq(row: dict) -> np.ndarray:
    return np.stack([decode_image(c["bytes"]) for c in row["lq"]])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _ = make_clip(tmp_path_factory.mktemp("gpu") / "street.mp4", (20, 20), (160, 96), seed=4)
    return path


def _synth(footage: Path, out: Path, device: str, preset: str = "film", seed: int = 5) -> dict:
    return synth(
        _templates(), preset, [footage], out=out, root=out.parent / "root", clip_len=T, size=S,
        stride=3, seed=seed, device=device, batch_size=4, val_fraction=0.2, rows_per_shard=3,
        quiet=True,
    )  # fmt: skip


@pytest.mark.parametrize("preset", ["film", "vhs"])
def test_cuda_synth_is_repeatable_replays_and_agrees_with_the_cpu(
    footage: Path, tmp_path: Path, preset: str
) -> None:
    a = _synth(footage, tmp_path / "a", "cuda", preset)
    _synth(footage, tmp_path / "b", "cuda", preset)
    assert a["windows_made"] > 4
    ra, rb = _rows(tmp_path / "a"), _rows(tmp_path / "b")
    assert [r["id"] for r in ra] == [r["id"] for r in rb]
    for x, y in zip(ra, rb):  # same seed, same device: the same pixels
        assert x["gt"] == y["gt"] and np.array_equal(_lq(x), _lq(y))
    for row in ra[:3]:  # replay on the device that made the row: bit-exact
        assert np.array_equal(replay_row(row, _templates(), device="cuda"), _lq(row))
    _synth(footage, tmp_path / "c", "cpu", preset)
    rc = _rows(tmp_path / "c")
    assert [r["gt"] for r in rc] == [r["gt"] for r in ra]  # GT never touches the device
    # The same parameters on another device: equal within float noise before rounding, so
    # rounding, JPEG and codec steps see (nearly) the same inputs.
    psnr = [_psnr(_lq(x), _lq(y)) for x, y in zip(ra, rc)]
    print(f"{preset}: CPU vs CUDA LQ PSNR min {min(psnr):.1f} dB, mean {np.mean(psnr):.1f} dB")
    assert min(psnr) > 30 and np.mean(psnr) > 40


def test_cuda_training_and_restore(toy_dataset: Path, tmp_path: Path) -> None:  # noqa: F811
    from filmdata.restorer import PRESETS, train
    from filmdata.restorer.checkpoint import load_model
    from filmdata.restorer.sampling import restore_array

    cfg = PRESETS["tiny"].replace(**QUICK)
    result = train(toy_dataset, cfg, out=tmp_path / "run", device="cuda", quiet=True)
    assert result.steps == QUICK["steps"] and np.isfinite(result.loss)
    model, cfg2, _ = load_model(tmp_path / "run", device="cuda")
    assert next(model.parameters()).device.type == "cuda"
    clip = np.random.default_rng(0).integers(0, 256, (5, 24, 40, 3), dtype=np.uint8)
    out = restore_array(model, clip, cfg2, device="cuda")
    assert out.shape == clip.shape and out.dtype == np.uint8
