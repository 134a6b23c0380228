"""Sampling: restore one window, and a whole clip in overlapping windows and spatial tiles."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .config import RestorerConfig
from .diffusion import _window_noise, from_target, model_input, sample_scheduler


@torch.no_grad()
def sample_window(
    model: torch.nn.Module,
    lq: Tensor,
    cfg: RestorerConfig,
    *,
    steps: int | None = None,
    sampler: str | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Restore windows lq (B, T, 3, H, W) in [0, 1] -> (B, T, 3, H, W) in [0, 1].

    Sides that are not multiples of `cfg.multiple` are padded by reflection and cropped back.
    """
    if lq.ndim != 5 or lq.shape[2] != 3:
        raise ValueError(f"expected (B, T, 3, H, W), got {tuple(lq.shape)}")
    B, T, _, H, W = lq.shape
    m = cfg.multiple
    ph, pw = (-H) % m, (-W) % m
    if ph or pw:
        flat = lq.reshape(B * T, 3, H, W)
        mode = "reflect" if ph < H and pw < W else "replicate"
        lq = F.pad(flat, (0, pw, 0, ph), mode=mode).view(B, T, 3, H + ph, W + pw)
    dtype = next(model.parameters()).dtype
    lq = lq.to(dtype)
    if cfg.objective == "regression":
        zeros = torch.zeros_like(lq)
        x0 = model(model_input(zeros, lq), torch.zeros(B, device=lq.device))
    else:
        sched = sample_scheduler(cfg, sampler)
        n = steps or cfg.sample_steps
        # start = 1: from pure noise; start < 1: from the degraded window (a zero residual)
        # noised to that level (SDEdit, Meng et al. 2022; ResShift, Yue et al. 2023)
        sched.set_timesteps(max(n, math.ceil(n / cfg.start)), device=lq.device)
        begin = int((sched.timesteps >= cfg.start * cfg.train_timesteps).sum())
        timesteps = sched.timesteps[begin:][:n]
        # DPM-Solver indexes its sigmas by step, not by timestep: it must start at `begin`
        # (as diffusers' img2img pipelines do), or its first step takes sigma of t = T-1.
        # DDIM steps by the timestep's value and needs no index.
        if hasattr(sched, "set_begin_index"):
            sched.set_begin_index(begin)
        # one draw of noise for the window, shared across its frames (limits flicker)
        noise = _window_noise(lq.shape, lq.device, generator).to(dtype)
        if cfg.start < 1:
            x = sched_noise_level(sched, timesteps[0]) * noise
        else:
            x = noise * sched.init_noise_sigma
        for t in timesteps:
            v = model(model_input(sched.scale_model_input(x, t), lq), t.expand(B).to(lq.device))
            out = sched.step(v, t, x)
            x = out.prev_sample
        # DDIM steps from t to t - T // n: where n does not divide T (trailing timesteps) its
        # last step lands on t = 0, whose abar_0 < 1 leaves sqrt(1 - abar_0) of noise, not on
        # the clean estimate. That estimate is its x0 (eq. 12 of Song et al. 2021), which
        # prev_sample equals (set_alpha_to_one) where the last step goes past t = 0.
        x0 = out.pred_original_sample if (sampler or cfg.sampler) == "ddim" else x
    return from_target(x0, lq, cfg)[..., :H, :W].float()


def sched_noise_level(sched: object, t: torch.Tensor) -> float:
    """sqrt(1 - abar_t): the noise level of timestep t."""
    abar = sched.alphas_cumprod[int(t)]  # type: ignore[attr-defined]
    return float((1 - abar) ** 0.5)


def _tiling(n: int, tile: int, overlap: int, multiple: int) -> tuple[int, list[int]]:
    """(side, starts) of the tiles along an axis of `n` pixels: as few tiles of at most about
    `tile` as cover it sharing `overlap`, made as small as that allows (a multiple of
    `multiple` where it fits) and spread evenly. Tiles of `tile` at a fixed stride cover a
    320 px side with two of 256 sharing 192 (60% more pixels to sample than the side holds);
    two of 176 sharing 32 do it with 10%."""
    if n <= tile:
        return n, [0]
    k = -(-(n - overlap) // max(1, tile - overlap))
    side = -(-(n + (k - 1) * overlap) // k)
    side = min(n, -(-side // multiple) * multiple)
    return side, sorted({round(i * (n - side) / (k - 1)) for i in range(k)})


def _ramp(size: int, overlap: int, n: int) -> np.ndarray:
    """Blending weights of one window: linear ramps over the overlap at both ends."""
    w = np.ones(min(size, n), np.float32)
    k = min(overlap, size // 2)
    if k > 0 and n > size:
        ramp = (np.arange(1, k + 1, dtype=np.float32)) / (k + 1)
        w[:k], w[-k:] = ramp, ramp[::-1]
    return w


def restore_array(
    model: torch.nn.Module,
    frames: np.ndarray,
    cfg: RestorerConfig,
    *,
    steps: int | None = None,
    window: int | None = None,
    overlap: int | None = None,
    tile: int = 256,
    batch: int = 4,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> np.ndarray:
    """Restore frames (N, H, W, 3) uint8 -> (N, H, W, 3) uint8 (see `restore_stream`)."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) frames, got {frames.shape}")
    out = restore_stream(
        model, iter(frames), cfg, steps=steps, window=window, overlap=overlap, tile=tile,
        batch=batch, device=device, seed=seed,
    )  # fmt: skip
    return np.stack(list(out))


@torch.no_grad()
def restore_stream(
    model: torch.nn.Module,
    frames: Iterable[np.ndarray],
    cfg: RestorerConfig,
    *,
    steps: int | None = None,
    window: int | None = None,
    overlap: int | None = None,
    tile: int = 256,
    batch: int = 4,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> Iterator[np.ndarray]:
    """Restore a stream of (H, W, 3) uint8 frames, yielding restored frames in order.

    Temporal windows of `window` frames (default: the training window) start every
    `window - overlap` frames (overlap default window // 2) and the last one ends on the last
    frame; large frames are cut into tiles of at most about `tile` pixels sharing 1/8 of a tile
    (as few as cover the frame, as small as that allows: `_tiling`). Where pieces
    overlap, they are blended with linear ramps. Up to `batch` pieces are sampled together; only
    the frames of pending windows are held in memory, so a whole film streams through.
    """
    T = window or cfg.window
    K = (T // 2) if overlap is None else overlap
    if T < 1 or not 0 <= K < T:
        raise ValueError(f"window={T}, overlap={K} is invalid; use 0 <= overlap < window")
    stride = T - K
    device = torch.device(device)
    g = torch.Generator(device=device).manual_seed(seed)
    m = cfg.multiple
    tile = max(tile, m * 4)
    t_over = max(m, tile // 8)
    buf: dict[int, np.ndarray] = {}  # frame index -> input frame
    acc: dict[int, np.ndarray] = {}  # frame index -> weighted sum (H, W, 3) float32
    norm: dict[int, np.ndarray] = {}  # frame index -> sum of weights (H, W, 1)
    geometry: dict[str, Any] = {}

    def run(starts: list[int], length: int) -> None:
        H, W = geometry["H"], geometry["W"]
        (th, ys), (tw, xs) = _tiling(H, tile, t_over, m), _tiling(W, tile, t_over, m)
        wy, wx = _ramp(th, t_over, H), _ramp(tw, t_over, W)
        wt = _ramp(length, K, length + 1)  # ramps at both ends; normalised away where alone
        pieces = [(s, y, x) for s in starts for y in ys for x in xs]
        for i in range(0, len(pieces), batch):
            chunk = pieces[i : i + batch]
            clips = [
                np.stack([buf[f][y : y + th, x : x + tw] for f in range(s, s + length)])
                for s, y, x in chunk
            ]
            lq = torch.from_numpy(np.stack(clips)).to(device)  # (B, T, h, w, 3) uint8
            lq = lq.permute(0, 1, 4, 2, 3).float() / 255
            out = sample_window(model, lq, cfg, steps=steps, generator=g)
            out_np = out.permute(0, 1, 3, 4, 2).cpu().numpy()  # (B, T, h, w, 3)
            for (s, y, x), o in zip(chunk, out_np):
                h, w = o.shape[1:3]
                for k in range(length):
                    wgt = wt[k] * wy[:h, None, None] * wx[None, :w, None]
                    f = s + k
                    if f not in acc:
                        acc[f] = np.zeros((H, W, 3), np.float32)
                        norm[f] = np.zeros((H, W, 1), np.float32)
                    acc[f][y : y + h, x : x + w] += o[k] * wgt
                    norm[f][y : y + h, x : x + w] += wgt

    def final(upto: int) -> Iterator[np.ndarray]:
        for f in sorted(k for k in acc if k < upto):
            out = acc.pop(f) / np.maximum(norm.pop(f), 1e-8)
            buf.pop(f, None)
            yield (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)

    n = next_start = 0
    pending: list[int] = []
    for frame in frames:
        if frame.ndim != 3 or frame.shape[-1] != 3:
            raise ValueError(f"expected (H, W, 3) frames, got {frame.shape}")
        if not geometry:
            geometry.update(H=frame.shape[0], W=frame.shape[1])
        elif frame.shape[:2] != (geometry["H"], geometry["W"]):
            raise ValueError(f"frame {n}: size {frame.shape[:2]} differs from the first frame")
        buf[n] = frame
        n += 1
        while next_start + T + 1 <= n:  # a window that does not end on the last frame
            pending.append(next_start)
            next_start += stride
        if len(pending) >= batch:
            run(pending, T)
            pending = []
            # no later window starts before min(next_start, n - T): frames before it are final
            yield from final(min(next_start, n - T))
    if n == 0:
        return
    if pending:
        run(pending, T)
    run([max(0, n - T)], min(T, n))  # the last window ends on the last frame
    yield from final(n)
