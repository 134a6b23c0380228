"""The diffusion process, from diffusers' schedulers (not rewritten here).

We diffuse the residual over the degraded input, x0 = (gt - lq) / residual_scale, conditioned on lq
(the input itself is the deterministic prediction of "Deblurring via Stochastic Refinement",
Whang et al. 2022): the residual is small and structured, so 4-15 sampling steps suffice.
The network predicts v = alpha_t * eps - sigma_t * x0 (Salimans & Ho 2022, eq. 9 there).
Training uses `DDPMScheduler.add_noise` / `get_velocity`; sampling uses DDIM or DPM-Solver++
built from the same config with "trailing" timestep spacing, so the first step starts at t = T-1.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import RestorerConfig


def _schedule(cfg: RestorerConfig) -> dict[str, Any]:
    """The noise schedule shared by training and sampling: cosine betas (Nichol & Dhariwal
    2021) with zero terminal SNR (Lin et al. 2024), so that sampling starts from pure noise as
    it was trained."""
    return dict(
        num_train_timesteps=cfg.train_timesteps,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        clip_sample=False,
        timestep_spacing="trailing",
    )


def train_scheduler(cfg: RestorerConfig) -> Any:
    """The DDPM noise schedule used for training (`_schedule`)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(**_schedule(cfg))


def sample_scheduler(cfg: RestorerConfig, sampler: str | None = None) -> Any:
    """A few-step sampler (`ddim` or `dpm`: DPM-Solver++ 2M) on the training schedule.

    DDIM is built from the schedule's arguments, not `from_config`: diffusers' `from_config`
    imports every scheduler it lists as compatible, DPM-Solver's among them, and that module
    imports `scipy.stats` (1.3 s on two cores, paid by every `ddim` eval and restore)."""
    kind = sampler or cfg.sampler
    if kind == "ddim":
        from diffusers import DDIMScheduler

        # the last step lands on the clean estimate (alpha_prev = 1, DDIM eq. 12 with
        # sigma = 0), not on t = 0's noise level: that left sqrt(1 - abar_0) = 0.0064 of noise
        return DDIMScheduler(**_schedule(cfg), set_alpha_to_one=True)
    if kind == "dpm":
        from diffusers import DPMSolverMultistepScheduler

        return DPMSolverMultistepScheduler.from_config(
            train_scheduler(cfg).config, algorithm_type="dpmsolver++", final_sigmas_type="zero"
        )
    raise ValueError(f"sampler={kind!r} is invalid; use 'ddim' or 'dpm'")


def to_target(gt: Tensor, lq: Tensor, cfg: RestorerConfig) -> Tensor:
    """x0 of the diffusion: the scaled residual (B, T, 3, H, W) in about [-1, 1]."""
    return (gt - lq) / cfg.residual_scale


def from_target(x0: Tensor, lq: Tensor, cfg: RestorerConfig) -> Tensor:
    """Frames in [0, 1] from a residual x0 and the degraded window."""
    return (lq + x0 * cfg.residual_scale).clamp(0, 1)


def model_input(x: Tensor, lq: Tensor) -> Tensor:
    """Concatenate the (noisy) target and the condition on channels; lq mapped to [-1, 1]."""
    return torch.cat([x, lq * 2 - 1], dim=2)


def loss(
    model: torch.nn.Module,
    sched: Any,
    lq: Tensor,
    gt: Tensor,
    cfg: RestorerConfig,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The training loss of one batch (lq, gt: (B, T, 3, H, W) in [0, 1]).

    diffusion: MSE between the predicted and true v at a random timestep; the noise is shared by the
    T frames of a window (as at sampling) plus a small per-frame part, to keep frames consistent.
    regression: L1 between the restored and true frames (same backbone, t = 0, no noise input).
    """
    B, T = gt.shape[:2]
    x0 = to_target(gt, lq, cfg)
    if cfg.objective == "regression":
        pred = model(model_input(torch.zeros_like(x0), lq), torch.zeros(B, device=gt.device))
        return F.l1_loss(pred, x0)
    noise = _window_noise(x0.shape, x0.device, generator)
    # stratified timesteps: one per 1/B of [0, N) (low-discrepancy sampler of Kingma et al. 2021,
    # "Variational Diffusion Models"), which steadies the loss of small batches
    n = sched.config.num_train_timesteps
    u = torch.rand((), device=gt.device, generator=generator) + torch.arange(B, device=gt.device)
    t = (u / B * n).long().clamp_(0, n - 1)
    xt = sched.add_noise(x0, noise, t)  # sqrt(abar_t) x0 + sqrt(1 - abar_t) eps
    v = sched.get_velocity(x0, noise, t)  # sqrt(abar_t) eps - sqrt(1 - abar_t) x0
    pred = model(model_input(xt, lq), t)
    return F.mse_loss(pred.float(), v.float())


def _window_noise(
    shape: torch.Size, device: torch.device, generator: torch.Generator | None, shared: float = 0.9
) -> Tensor:
    """Unit-variance noise (B, T, C, H, W) mostly shared across the T frames of each window."""
    B, T, C, H, W = shape
    common = torch.randn((B, 1, C, H, W), device=device, generator=generator)
    own = torch.randn((B, T, C, H, W), device=device, generator=generator)
    return shared**0.5 * common + (1 - shared) ** 0.5 * own
