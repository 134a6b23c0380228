"""PSNR, SSIM, E_warp, tOF and the temporal median baseline."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from filmdata import metrics as M
from filmdata.synthetic import render_shots


@pytest.fixture(scope="module")
def moving() -> np.ndarray:
    frames, _ = render_shots([6], 96, 64, seed=1)
    return frames


def _noisy(frames: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(frames + rng.normal(0, sigma, frames.shape), 0, 255).astype(np.uint8)


def test_psnr_known_value() -> None:
    a = np.zeros((2, 4, 4, 3), np.uint8)
    b = np.full((2, 4, 4, 3), 51, np.uint8)  # error 0.2 everywhere: MSE 0.04 -> 13.98 dB
    assert M.psnr(a, b) == pytest.approx(10 * math.log10(1 / 0.04))
    assert M.psnr(a, a) == math.inf
    assert M.psnr(a[0].astype(np.float32), b[0].astype(np.float32) / 255) == pytest.approx(
        13.98, 0.01
    )


def test_ssim_bounds_and_order(moving: np.ndarray) -> None:
    assert M.ssim(moving, moving) == pytest.approx(1.0)
    light, heavy = M.ssim(_noisy(moving, 5), moving), M.ssim(_noisy(moving, 25), moving)
    assert 0 < heavy < light < 1


def test_ewarp_floor_and_flicker(moving: np.ndarray) -> None:
    flows = M.gt_flows(moving)
    assert len(flows.flows) == 5 and flows.masks[0].shape == (64, 96)
    floor = M.ewarp(moving, flows)
    still = np.repeat(moving[:1], 4, 0)
    assert M.ewarp(still, still) == pytest.approx(0.0, abs=1e-9)
    flicker = np.stack(
        [
            np.clip(f * g, 0, 255).astype(np.uint8)
            for f, g in zip(moving, [1, 0.7, 1.2, 0.8, 1, 0.6])
        ]
    )
    assert M.ewarp(flicker, flows) > 5 * floor
    assert M.ewarp(_noisy(moving, 20), moving) > M.ewarp(_noisy(moving, 5), moving) > floor


def test_occlusion_mask_marks_disagreeing_flow() -> None:
    # a square jumps far between frames: the uncovered region cannot be consistent
    a = np.zeros((64, 64, 3), np.uint8)
    b = a.copy()
    a[10:30, 10:30] = 255
    b[34:54, 34:54] = 255
    flows = M.gt_flows(np.stack([a, b]))
    assert flows.masks[0].mean() < 1.0
    assert set(np.unique(flows.masks[0])) <= {0.0, 1.0}


def test_tof_zero_for_gt_grows_with_noise(moving: np.ndarray) -> None:
    assert M.tof(moving, moving) == 0.0
    assert M.tof(_noisy(moving, 30), moving) > M.tof(_noisy(moving, 3), moving) >= 0


def test_temporal_median_removes_a_flash(moving: np.ndarray) -> None:
    still = np.repeat(moving[:1], 5, 0)
    hit = still.copy()
    hit[2] = 255  # one white frame
    out = M.temporal_median(hit, radius=1)
    assert np.array_equal(out[2], still[2])
    assert out.shape == hit.shape and out.dtype == hit.dtype


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 4)), np.zeros((2, 4, 4, 1)), np.zeros((1, 2, 4, 4, 3))]
)
def test_bad_shapes_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="expected"):
        M.psnr(bad, bad)


def test_mismatched_shapes_refused(moving: np.ndarray) -> None:
    with pytest.raises(ValueError, match="same shape"):
        M.ssim(moving, moving[:, :32])
    with pytest.raises(ValueError, match="expected 6 frames"):
        M.ewarp(moving[:3], moving)


def test_ewarp_uses_gt_flow_not_output_flow(moving: np.ndarray) -> None:
    # a blurred copy moves like the GT: small warp error; a time-reversed copy does not
    blurred = np.stack([cv2.GaussianBlur(f, (5, 5), 1) for f in moving])
    assert M.ewarp(blurred, moving) < M.ewarp(moving[::-1].copy(), moving)
