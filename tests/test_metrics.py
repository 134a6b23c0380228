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


def test_psnr_averages_per_frame_values() -> None:
    # frames with MSE 0.04 and 0.16: mean of 13.98 and 7.96 dB, not 10 dB of the pooled MSE 0.1
    a = np.zeros((2, 4, 4, 3), np.uint8)
    b = np.stack([np.full((4, 4, 3), 51, np.uint8), np.full((4, 4, 3), 102, np.uint8)])
    want = (10 * math.log10(1 / 0.04) + 10 * math.log10(1 / 0.16)) / 2
    assert M.psnr(a, b) == pytest.approx(want)


def _ssim_reference(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al. 2004 written out: 11-tap Gaussian (sigma 1.5), mirrored borders, K 0.01/0.03."""
    taps = np.exp(-(np.arange(-5, 6) ** 2) / (2 * 1.5**2))
    taps /= taps.sum()

    def blur(z: np.ndarray) -> np.ndarray:
        z = np.pad(z, ((5, 5), (5, 5), (0, 0)), mode="symmetric")
        z = sum(taps[i] * z[i : i + z.shape[0] - 10] for i in range(11))
        return sum(taps[i] * z[:, i : i + z.shape[1] - 10] for i in range(11))

    c1, c2 = 0.01**2, 0.03**2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def test_ssim_matches_the_paper_formula() -> None:
    rng = np.random.default_rng(3)
    x = rng.random((20, 24, 3))
    y = np.clip(0.6 * x + 0.3 * rng.random(x.shape), 0, 1)
    want = _ssim_reference(x, y)
    assert 0.1 < want < 0.9  # the constants and the window both matter at this level
    assert M.ssim(x, y) == pytest.approx(want, abs=1e-6)
    # flat frames leave only the luminance term: (2ab + C1) / (a^2 + b^2 + C1)
    a, b, c1 = 0.02, 0.05, 0.01**2
    flat = M.ssim(np.full((16, 16, 3), a), np.full((16, 16, 3), b))
    assert flat == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1))


def test_ewarp_known_value_counts_only_the_mask() -> None:
    # zero flow, mask on the left half: frame 1 differs by 0.5 there (3 channels: 0.75 per pixel)
    # and by 1.0 on the right half, which the mask excludes
    frames = np.zeros((2, 8, 8, 3))
    frames[1, :, :4] = 0.5
    frames[1, :, 4:] = 1.0
    mask = np.zeros((8, 8), np.float32)
    mask[:, :4] = 1
    flows = M.GtFlows([np.zeros((8, 8, 2), np.float32)], [mask])
    assert M.ewarp(frames, flows) == pytest.approx(0.75)


def test_tof_is_the_l1_norm_of_the_flow_difference() -> None:
    # a still output has zero flow; the GT moved by (3, -4) px: |3| + |-4| = 7 at every pixel
    still = np.repeat(render_shots([1], 64, 64, seed=2)[0], 2, 0)
    fl = np.broadcast_to(np.array([3, -4], np.float32), (64, 64, 2)).copy()
    flows = M.GtFlows([fl], [np.ones((64, 64), np.float32)])
    assert M.tof(still, flows) == pytest.approx(7.0, abs=1e-3)


@pytest.mark.parametrize(
    ("fwd", "bwd", "consistent"),
    [
        ((10.0, 0.0), (-10.0, 0.0), True),  # exact inverse: consistent however far
        ((0.0, 0.0), (0.7, 0.0), True),  # |F + B|^2 = 0.49 <= 0.01 * 0.49 + 0.5
        ((0.0, 0.0), (0.75, 0.0), False),  # 0.5625 > 0.505625
        ((10.0, 0.0), (-8.6, 0.0), True),  # 1.96 <= 0.01 * (100 + 73.96) + 0.5 = 2.24
        ((10.0, 0.0), (-8.5, 0.0), False),  # 2.25 > 0.01 * (100 + 72.25) + 0.5 = 2.22
    ],
)
def test_occlusion_threshold_of_ruder_eq6(
    monkeypatch: pytest.MonkeyPatch,
    fwd: tuple[float, float],
    bwd: tuple[float, float],
    consistent: bool,
) -> None:
    given = iter([fwd, bwd])

    def fake_flow(dis: object, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.array(next(given), np.float32), (16, 16, 2)).copy()

    monkeypatch.setattr(M, "_flow", fake_flow)
    mask = M.gt_flows(np.zeros((2, 16, 16, 3), np.uint8)).masks[0]
    assert np.all(mask == float(consistent))
