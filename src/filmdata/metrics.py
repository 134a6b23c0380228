"""Restoration metrics on frames (N, H, W, 3) uint8 (or float in [0, 1]).

- PSNR and SSIM (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03), per frame.
- E_warp, the flow-warping error of Lai et al. 2018 ("Learning Blind Video Temporal Consistency",
  eq. 8): flow computed on the ground truth with OpenCV DIS, frame t+1 warped back to t, squared
  error averaged over the pixels that a forward-backward check finds non-occluded (Ruder et al.
  2016). Reported as the mean squared error of [0, 1] frames; the GT's own E_warp is the floor.
- tOF (Chu et al. 2020, TecoGAN): mean L1 distance between the optical flows of consecutive
  output frames and of consecutive GT frames, in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["GtFlows", "ewarp", "gt_flows", "psnr", "ssim", "temporal_median", "tof"]


def _unit(frames: np.ndarray) -> np.ndarray:
    """float64 in [0, 1]; checks the (N, H, W, 3) or (H, W, 3) contract."""
    if frames.ndim not in (3, 4) or frames.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) or (H, W, 3) frames, got {frames.shape}")
    if frames.dtype == np.uint8:
        return frames.astype(np.float64) / 255
    return frames.astype(np.float64)


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if a.shape != b.shape:
        raise ValueError(f"expected frames of the same shape, got {a.shape} and {b.shape}")
    x, y = _unit(a), _unit(b)
    return (x[None], y[None]) if x.ndim == 3 else (x, y)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over frames of 10 log10(1 / MSE); inf when identical."""
    x, y = _pair(a, b)
    mse = ((x - y) ** 2).reshape(len(x), -1).mean(1)
    with np.errstate(divide="ignore"):
        return float(np.mean(10 * np.log10(1.0 / mse)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM over frames and channels (Wang et al. 2004, Gaussian 11x11, sigma 1.5)."""
    x, y = _pair(a, b)
    c1, c2 = 0.01**2, 0.03**2

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    scores = []
    for fx, fy in zip(x, y):
        mx, my = blur(fx), blur(fy)
        sxx = blur(fx * fx) - mx * mx
        syy = blur(fy * fy) - my * my
        sxy = blur(fx * fy) - mx * my
        num = (2 * mx * my + c1) * (2 * sxy + c2)
        den = (mx * mx + my * my + c1) * (sxx + syy + c2)
        scores.append(float((num / den).mean()))
    return float(np.mean(scores))


def _gray(frame: np.ndarray) -> np.ndarray:
    if frame.dtype != np.uint8:
        frame = (np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def _flow(dis: cv2.DISOpticalFlow, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Flow (H, W, 2) with a(x) ~ b(x + flow(x))."""
    return dis.calc(_gray(a), _gray(b), None)  # type: ignore[call-overload]


def _dis() -> cv2.DISOpticalFlow:
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)  # type: ignore[attr-defined]


def _warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """img sampled at x + flow(x) (bilinear, borders replicated)."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        img.astype(np.float32),
        gx + flow[..., 0],
        gy + flow[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


@dataclass(frozen=True)
class GtFlows:
    """Forward flows F_t (t -> t+1) of the ground truth and their non-occlusion masks."""

    flows: list[np.ndarray]  # each (H, W, 2) float32
    masks: list[np.ndarray]  # each (H, W) float32 in {0, 1}


def gt_flows(gt: np.ndarray) -> GtFlows:
    """DIS flows between consecutive GT frames, with the forward-backward occlusion test:
    occluded where |F + B(x+F)|^2 > 0.01 (|F|^2 + |B(x+F)|^2) + 0.5 (Ruder et al. 2016, eq. 6)."""
    if gt.ndim != 4 or gt.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) frames, got {gt.shape}")
    dis = _dis()
    flows, masks = [], []
    for t in range(len(gt) - 1):
        fwd = _flow(dis, gt[t], gt[t + 1])
        bwd = _flow(dis, gt[t + 1], gt[t])
        bw = _warp(bwd, fwd)  # B at x + F(x)
        lhs = ((fwd + bw) ** 2).sum(-1)
        rhs = 0.01 * ((fwd**2).sum(-1) + (bw**2).sum(-1)) + 0.5
        flows.append(fwd)
        masks.append((lhs <= rhs).astype(np.float32))
    return GtFlows(flows, masks)


def ewarp(frames: np.ndarray, gt: np.ndarray | GtFlows) -> float:
    """Flow-warping error of `frames` with flows of the GT (Lai et al. 2018, eq. 8):
    mean over t of sum_x M_t(x) ||V_t(x) - V_{t+1}(x + F_t(x))||^2 / sum_x M_t(x);
    0.0 for a single frame."""
    flows = gt if isinstance(gt, GtFlows) else gt_flows(gt)
    x = _unit(frames)
    if len(flows.flows) != len(x) - 1:
        raise ValueError(f"expected {len(flows.flows) + 1} frames, got {len(x)}")
    errs = []
    for t, (fl, m) in enumerate(zip(flows.flows, flows.masks)):
        warped = _warp(x[t + 1], fl)
        sq = ((x[t] - warped) ** 2).sum(-1)
        errs.append(float((sq * m).sum() / max(m.sum(), 1.0)))
    return float(np.mean(errs)) if errs else 0.0


def tof(frames: np.ndarray, gt: np.ndarray | GtFlows) -> float:
    """tOF: mean over t and pixels of |OF(out_t, out_t+1) - OF(gt_t, gt_t+1)|_1 (pixels)."""
    flows = gt if isinstance(gt, GtFlows) else gt_flows(gt)
    if len(flows.flows) != len(frames) - 1:
        raise ValueError(f"expected {len(flows.flows) + 1} frames, got {len(frames)}")
    dis = _dis()
    errs = [
        float(np.abs(_flow(dis, frames[t], frames[t + 1]) - fl).sum(-1).mean())
        for t, fl in enumerate(flows.flows)
    ]
    return float(np.mean(errs)) if errs else 0.0


def temporal_median(frames: np.ndarray, radius: int = 1) -> np.ndarray:
    """The temporal median filter baseline: each frame the median of frames t-r..t+r (clamped)."""
    if frames.ndim != 4:
        raise ValueError(f"expected (N, H, W, C) frames, got {frames.shape}")
    n = len(frames)
    out = np.empty_like(frames)
    for t in range(n):
        lo, hi = max(0, t - radius), min(n, t + radius + 1)
        out[t] = np.median(frames[lo:hi], axis=0)
    return out
