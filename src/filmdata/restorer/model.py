"""The restorer's backbone: a space-time UNet over windows of frames.

Space is mixed by 2D convolutions (and attention at the lowest resolution), time by a temporal
convolution after every spatial block and temporal attention at the lowest resolution, as in
factorised video UNets (Ho et al. 2022, "Video Diffusion Models"). Spatial attention runs in
windows the size of the training crop at that resolution (as Swin's, Liu et al. 2021): a training
crop is one window, and a larger frame or tile is cut into windows of at most that size, so its
cost grows with the area, not with its square, and each query sees as many keys as in training.
The degraded window is concatenated on the channels with the noisy target: input
(B, T, 6, H, W), output (B, T, 3, H, W).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import RestorerConfig


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding (Vaswani et al. 2017) of diffusion timesteps t (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class TemporalConv(nn.Module):
    """A 1D convolution across the T frames at every pixel, zero-initialised so a fresh block is
    the identity and the network starts as a per-frame model."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(min(8, ch // 4), ch)
        self.conv = nn.Conv1d(ch, ch, 3, padding=1, padding_mode="replicate")
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)  # type: ignore[arg-type]

    def forward(self, x: Tensor, t: int) -> Tensor:
        BT, C, H, W = x.shape
        B = BT // t
        h = F.silu(self.norm(x))
        h = h.view(B, t, C, H, W).permute(0, 3, 4, 2, 1).reshape(B * H * W, C, t)
        h = self.conv(h)
        h = h.view(B, H, W, C, t).permute(0, 4, 3, 1, 2).reshape(BT, C, H, W)
        return x + h


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the timestep embedding added between (DDPM's block),
    followed by a temporal convolution."""

    def __init__(self, cin: int, cout: int, emb: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(min(8, cin // 4), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb, cout)
        self.norm2 = nn.GroupNorm(min(8, cout // 4), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)  # type: ignore[arg-type]
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.temporal = TemporalConv(cout)

    def forward(self, x: Tensor, emb: Tensor, t: int) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.temporal(self.skip(x) + h, t)


def _spans(n: int, size: int) -> list[slice]:
    """ceil(n / size) consecutive slices covering [0, n), of sizes as equal as possible."""
    k = -(-n // size)
    edges = [i * n // k for i in range(k + 1)]
    return [slice(a, b) for a, b in zip(edges, edges[1:])]


class SpaceTimeAttention(nn.Module):
    """Self-attention over the positions of each frame in windows of at most `window` x `window`
    (one window when the map is no larger), then over the T frames of each position; output
    projections zero-initialised (identity at start)."""

    def __init__(self, ch: int, heads: int, window: int) -> None:
        super().__init__()
        self.heads = heads if ch % heads == 0 else 1
        self.window = window
        self.norm_s = nn.GroupNorm(min(8, ch // 4), ch)
        self.qkv_s = nn.Linear(ch, 3 * ch)
        self.out_s = nn.Linear(ch, ch)
        self.norm_t = nn.GroupNorm(min(8, ch // 4), ch)
        self.qkv_t = nn.Linear(ch, 3 * ch)
        self.out_t = nn.Linear(ch, ch)
        for lin in (self.out_s, self.out_t):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def _attend(self, x: Tensor, qkv: nn.Linear, out: nn.Linear) -> Tensor:
        N, L, C = x.shape  # N sequences of L tokens
        q, k, v = qkv(x).view(N, L, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)  # (N, heads, L, C/heads)
        return out(y.transpose(1, 2).reshape(N, L, C))

    def forward(self, x: Tensor, t: int) -> Tensor:
        BT, C, H, W = x.shape
        B = BT // t
        n = self.norm_s(x)
        y = torch.empty_like(x)
        for ys in _spans(H, self.window):
            for xs in _spans(W, self.window):
                s = n[:, :, ys, xs]  # (BT, C, h, w): one window
                h, w = s.shape[2:]
                tokens = s.flatten(2).transpose(1, 2)  # (BT, hw, C)
                y[:, :, ys, xs] = (
                    self._attend(tokens, self.qkv_s, self.out_s).transpose(1, 2).view(BT, C, h, w)
                )
        x = x + y
        # time: tokens are the T frames of one pixel
        s = self.norm_t(x).view(B, t, C, H * W).permute(0, 3, 1, 2).reshape(B * H * W, t, C)
        y = self._attend(s, self.qkv_t, self.out_t)
        return x + y.view(B, H * W, t, C).permute(0, 2, 3, 1).reshape(BT, C, H, W)


class UNet(nn.Module):
    """Space-time UNet: (B, T, 6, H, W) input, (B, T, 3, H, W) output; H, W multiples of
    `cfg.multiple`."""

    def __init__(self, cfg: RestorerConfig, in_ch: int = 6, out_ch: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        ch0 = cfg.channels
        emb = 4 * ch0
        self.emb = nn.Sequential(nn.Linear(ch0, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.stem = nn.Conv2d(in_ch, ch0, 3, padding=1)
        widths = [ch0 * m for m in cfg.mults]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips, cin = [ch0], ch0
        for i, w in enumerate(widths):
            for _ in range(cfg.blocks):
                self.down.append(ResBlock(cin, w, emb))
                cin = w
                skips.append(cin)
            last = i == len(widths) - 1
            self.downsample.append(
                nn.Identity() if last else nn.Conv2d(cin, cin, 3, stride=2, padding=1)
            )
            if not last:
                skips.append(cin)
        self.mid1 = ResBlock(cin, cin, emb)
        # windows of the lowest-resolution side of a training crop
        window = cfg.crop // cfg.multiple
        self.attn = SpaceTimeAttention(cin, cfg.heads, window) if cfg.attention else None
        self.mid2 = ResBlock(cin, cin, emb)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            for _ in range(cfg.blocks + 1):
                self.up.append(ResBlock(cin + skips.pop(), w, emb))
                cin = w
            self.upsample.append(nn.Conv2d(cin, cin, 3, padding=1) if i else nn.Identity())
        self.head = nn.Sequential(
            nn.GroupNorm(min(8, cin // 4), cin), nn.SiLU(), nn.Conv2d(cin, out_ch, 3, padding=1)
        )
        head_conv = self.head[-1]
        assert isinstance(head_conv, nn.Conv2d)
        nn.init.zeros_(head_conv.weight)
        nn.init.zeros_(head_conv.bias)  # type: ignore[arg-type]

    def forward(self, x: Tensor, timesteps: Tensor) -> Tensor:
        """x: (B, T, C_in, H, W); timesteps: (B,) -> (B, T, C_out, H, W)."""
        B, T, C, H, W = x.shape
        m = self.cfg.multiple
        if H % m or W % m:
            raise ValueError(f"expected H, W multiples of {m}, got {H}x{W}")
        emb = self.emb(timestep_embedding(timesteps, self.cfg.channels))  # (B, E)
        emb = emb.repeat_interleave(T, dim=0)  # (B*T, E): frames of a window share t
        h = self.stem(x.reshape(B * T, C, H, W))
        hs = [h]
        blocks = iter(self.down)
        for i, down in enumerate(self.downsample):
            for _ in range(self.cfg.blocks):
                h = next(blocks)(h, emb, T)
                hs.append(h)
            if i < len(self.downsample) - 1:
                h = down(h)
                hs.append(h)
        h = self.mid1(h, emb, T)
        if self.attn is not None:
            h = self.attn(h, T)
        h = self.mid2(h, emb, T)
        blocks = iter(self.up)
        for j, up in enumerate(self.upsample):
            for _ in range(self.cfg.blocks + 1):
                h = next(blocks)(torch.cat([h, hs.pop()], dim=1), emb, T)
            if j < len(self.upsample) - 1:
                h = up(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        out = self.head(h)
        return out.view(B, T, -1, H, W)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
