"""Layer blend modes, as image editors define them (GIMP's "legacy" modes, W3C compositing).

`a` is the frame and `b` the overlay, both in [0, 1] and broadcastable. The damage op turns a
signed damage layer into an overlay `b` with `overlay_for(mode, layer)`: each mode's neutral value
(0.5 for the grain and light modes, 1 for multiply, 0 for screen) means "no damage".
"""

from __future__ import annotations

import torch
from torch import Tensor

MODES = ("grain_merge", "grain_extract", "overlay", "screen", "multiply", "soft_light")


def grain_merge(a: Tensor, b: Tensor) -> Tensor:
    # grain merge: out = a + b - 0.5 (GIMP)
    return (a + b - 0.5).clamp(0, 1)


def grain_extract(a: Tensor, b: Tensor) -> Tensor:
    # grain extract: out = a - b + 0.5 (GIMP)
    return (a - b + 0.5).clamp(0, 1)


def overlay(a: Tensor, b: Tensor) -> Tensor:
    # overlay: 2ab where a < 0.5, else 1 - 2(1 - a)(1 - b) (W3C compositing, "overlay")
    low = 2 * a * b
    high = 1 - 2 * (1 - a) * (1 - b)
    return low.where(a < 0.5, high).clamp(0, 1)


def screen(a: Tensor, b: Tensor) -> Tensor:
    # screen: 1 - (1 - a)(1 - b)
    return 1 - (1 - a) * (1 - b)


def multiply(a: Tensor, b: Tensor) -> Tensor:
    return a * b


def soft_light(a: Tensor, b: Tensor) -> Tensor:
    # soft light (Pegtop's continuous form, GIMP's "soft light"): (1 - 2b) a^2 + 2 b a
    return ((1 - 2 * b) * a * a + 2 * b * a).clamp(0, 1)


_FN = {
    "grain_merge": grain_merge,
    "grain_extract": grain_extract,
    "overlay": overlay,
    "screen": screen,
    "multiply": multiply,
    "soft_light": soft_light,
}


def blend(a: Tensor, b: Tensor, mode: str) -> Tensor:
    """Blend overlay `b` onto `a` with `mode` (one of `MODES`)."""
    try:
        fn = _FN[mode]
    except KeyError:
        raise ValueError(f"blend mode {mode!r}: use one of {', '.join(MODES)}") from None
    return fn(a, b)


def overlay_for(mode: str, layer: Tensor) -> Tensor:
    """The overlay image `b` that applies a signed damage `layer` in [-1, 1] with `mode`.

    Negative damage darkens (dirt on a print), positive brightens (dirt on the negative). Multiply
    can only darken and screen only brighten, so they take the layer's magnitude.
    """
    if mode == "multiply":
        return 1 - layer.abs()
    if mode == "screen":
        return layer.abs()
    if mode == "grain_extract":
        return 0.5 - 0.5 * layer
    return 0.5 + 0.5 * layer


def apply_layer(a: Tensor, layer: Tensor, mode: str, inplace: bool = False) -> Tensor:
    """Blend a signed damage layer `L` in [-1, 1] onto `a`; a zero layer leaves `a` as is.

    Equal to `blend(a, overlay_for(mode, L), mode)` (tested), rewritten as `a + L * f(a)` so it
    costs a few passes over the frame rather than a dozen:

    - grain merge / extract: a + L / 2
    - overlay:    a + L * min(a, 1 - a)        (2ab below 0.5, screen-like above)
    - soft light: a + L * a (1 - a)            (Pegtop: (1 - 2b) a^2 + 2ba)
    - multiply:   a - |L| * a
    - screen:     a + |L| * (1 - a)

    `inplace`: the result is written into `a` (the same values: sums are commutative).
    """
    if mode in ("grain_merge", "grain_extract"):
        y = torch.add(a, layer, alpha=0.5, out=a) if inplace else torch.add(a, layer, alpha=0.5)
        return y.clamp_(0, 1)
    if mode == "overlay":
        t = 1 - a
        t = torch.minimum(a, t, out=t).mul_(layer)  # min(a, 1 - a), in its own temporary
        return a.add_(t) if inplace else t.add_(a)
    if mode == "soft_light":
        t = (1 - a).mul_(a).mul_(layer)
        return a.add_(t) if inplace else t.add_(a)
    if mode == "multiply":
        return a.mul_(1 - layer.abs()) if inplace else a * (1 - layer.abs())
    if mode == "screen":
        one, k = torch.ones((), dtype=a.dtype, device=a.device), layer.abs()
        return torch.lerp(a, one, k, out=a) if inplace else torch.lerp(a, one, k)
    raise ValueError(f"blend mode {mode!r}: use one of {', '.join(MODES)}")
