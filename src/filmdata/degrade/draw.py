"""Seeded draws for the samplers: uniforms, ints, choices, seeds, mean-reverting walks, and the
noise fields that ops draw on the CPU from a seed kept in their parameters (so CPU and CUDA see
the same field)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor


class Draws:
    """Uniform numbers from a generator, drawn a block at a time: samplers that need thousands
    of small draws (the damage op's placements) make one torch call per block, not per number.
    Deterministic: the same generator state gives the same sequence."""

    def __init__(self, g: torch.Generator, block: int = 256) -> None:
        self.g, self.block = g, block
        self._buf: list[float] = []

    def u(self) -> float:
        if not self._buf:
            self._buf = torch.rand(self.block, generator=self.g, dtype=torch.float64).tolist()[::-1]
        return self._buf.pop()

    def normal(self) -> float:
        # Box-Muller on two uniforms.
        return math.sqrt(-2 * math.log(max(self.u(), 1e-300))) * math.cos(2 * math.pi * self.u())


def uniform(g: torch.Generator | Draws, lo: float, hi: float) -> float:
    """One float uniform in [lo, hi] from `g`."""
    if isinstance(g, Draws):
        return lo + (hi - lo) * g.u()
    return float(lo + (hi - lo) * torch.rand((), generator=g).item())


def randint(g: torch.Generator | Draws, lo: int, hi: int) -> int:
    """One int uniform in [lo, hi] (both included) from `g`."""
    if isinstance(g, Draws):
        return min(int(hi), int(lo) + int(g.u() * (int(hi) - int(lo) + 1)))
    return int(torch.randint(int(lo), int(hi) + 1, (), generator=g).item())


def choice(g: torch.Generator | Draws, options: Sequence[Any]) -> Any:
    """One of `options`, uniformly."""
    return options[randint(g, 0, len(options) - 1)]


def seed_of(g: torch.Generator) -> int:
    """A fresh 62-bit seed drawn from `g`, stored in parameters for noise fields."""
    return int(torch.randint(0, 2**62, (), generator=g).item())


def walk(g: torch.Generator, t: int, step: float, center: float = 0.0, pull: float = 0.2) -> Tensor:
    """A per-frame random walk `(t,)` float32 that starts at `center`.

    Each frame moves by `step * N(0, 1)` and is pulled back towards `center` by `pull` (a
    mean-reverting walk, as RealBasicVSR drifts its parameters), so long windows do not wander off.
    """
    steps = (torch.randn(t, generator=g) * step).tolist()  # float32 values, as Python floats
    out = []
    v = center
    for i, s in enumerate(steps):
        v = v + s - pull * (v - center) if i else center + s
        out.append(v)
    # Each value rounded to float32 as `tensor[i] = v` rounds it (25 us less a walk).
    return torch.tensor(out, dtype=torch.float32)


def noise(seed: int, shape: Sequence[int], device: torch.device | str = "cpu") -> Tensor:
    """Standard normal noise of `shape` from `seed`, drawn on the CPU (CPU and CUDA agree)."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(tuple(shape), generator=g).to(device)


def rand(seed: int, shape: Sequence[int], device: torch.device | str = "cpu") -> Tensor:
    """Uniform [0, 1) noise of `shape` from `seed`, drawn on the CPU."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.rand(tuple(shape), generator=g).to(device)
