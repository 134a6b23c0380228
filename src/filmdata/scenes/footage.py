"""Old-film footage with known cuts, for tests, benchmarks and tuning the detectors.

Shots come from `filmdata.synthetic` (textured worlds under a moving camera); boundaries are
hard cuts, dissolves or fades through black; then `to_old_film` adds flicker, grain, dust, a
moving scratch, gate weave and flashes (single frames or a few, that return to the same shot and
so are *not* cuts). The ground truth is the frame where the new shot begins: for a gradual
transition of length L starting at frame s, the frame s + L // 2 (its middle).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..synthetic import Shot, render_shot, to_old_film

TRANSITIONS = ("cut", "dissolve", "fade")


@dataclass(frozen=True)
class Footage:
    """Frames (N, H, W, 3) uint8, the true cut frames, the flash frames and the fps."""

    frames: np.ndarray
    cuts: list[int]
    flashes: list[int] = field(default_factory=list)
    fps: float = 24.0


def _shot(length: int, seed: int, w: int, h: int, speed: int) -> np.ndarray:
    # speed > 1 renders a longer shot and keeps every speed-th frame: faster camera and movers.
    frames = list(render_shot(Shot(length * speed, seed), w, h))
    return np.stack(frames[::speed][:length])


def make_footage(
    lengths: Sequence[int],
    *,
    width: int = 160,
    height: int = 120,
    seed: int = 0,
    transitions: Sequence[str] | None = None,
    transition_len: int = 12,
    speeds: Sequence[int] | None = None,
    flicker: float = 0.15,
    grain: float = 0.06,
    dust: int = 6,
    scratch: bool = True,
    weave: float = 1.0,
    flashes: int = 0,
    flash_len: Sequence[int] = (1, 1, 2, 3),
    old: bool = True,
    fps: float = 24.0,
) -> Footage:
    """Shots of `lengths` frames joined by `transitions` (one per boundary), made into old film.

    Args:
        lengths: frames per shot (a gradual transition takes half its frames from each side).
        transitions: "cut" | "dissolve" | "fade" per boundary (default all cuts).
        transition_len: frames of a dissolve or fade.
        speeds: per-shot temporal speed-up (1 normal; 4 is a fast pan).
        flicker, grain, dust, scratch, weave: as in `filmdata.synthetic.to_old_film`.
        flashes: how many flashes (1 to 3 frames near white) to put inside shots.
        old: apply `to_old_film` (False: clean colour footage).

    Returns:
        The footage with its true cuts and flash frames.
    """
    rng = np.random.default_rng(seed)
    kinds = list(transitions or ["cut"] * (len(lengths) - 1))
    if len(kinds) != len(lengths) - 1:
        raise ValueError(f"transitions: expected {len(lengths) - 1} values, got {len(kinds)}")
    speed = list(speeds or [1] * len(lengths))
    pad = transition_len
    shots = [
        _shot(n + 2 * pad, seed * 1000 + i, width, height, speed[i]) for i, n in enumerate(lengths)
    ]
    out: list[np.ndarray] = list(shots[0][pad : pad + lengths[0]])
    cuts: list[int] = []
    for i, kind in enumerate(kinds):
        a, b = shots[i], shots[i + 1]
        n = len(out)
        if kind == "cut":
            cuts.append(n)
            out.extend(b[pad : pad + lengths[i + 1]])
            continue
        half = transition_len // 2
        # The transition replaces the last `half` frames of A and the first ones of B.
        del out[n - half :]
        start = len(out)
        for k in range(transition_len):
            t = (k + 0.5) / transition_len
            fa = a[pad + lengths[i] - half + k].astype(np.float32)
            fb = b[pad - half + k].astype(np.float32)
            if kind == "dissolve":
                img = (1 - t) * fa + t * fb
            elif kind == "fade":
                img = fa * max(0.0, 1 - 2 * t) if t < 0.5 else fb * min(1.0, 2 * t - 1)
            else:
                raise ValueError(f"transitions: unknown {kind!r}; use one of {TRANSITIONS}")
            out.append(np.clip(img, 0, 255).astype(np.uint8))
        cuts.append(start + half)
        out.extend(b[pad + transition_len - half : pad + lengths[i + 1]])
    frames = np.stack(out)
    flash_frames: list[int] = []
    if flashes:
        bounds = [0, *cuts, len(frames)]
        for _ in range(flashes):
            j = int(rng.integers(0, len(bounds) - 1))
            lo, hi = bounds[j] + transition_len, bounds[j + 1] - transition_len
            if hi - lo < 8:
                continue
            s = int(rng.integers(lo, hi - 4))
            flash_frames.extend(range(s, s + int(rng.choice(flash_len))))
    if old:
        frames = to_old_film(
            frames,
            seed=seed,
            flicker=flicker,
            grain=grain,
            dust=dust,
            scratch=scratch,
            weave=weave,
            flashes=flash_frames,
        )
    return Footage(frames, cuts, sorted(set(flash_frames)), fps)


def cut_f1(pred: Sequence[int], truth: Sequence[int], tol: int = 1) -> float:
    """F1 of predicted cut frames against the truth, each truth matched once within +-tol."""
    left, tp = list(truth), 0
    for p in pred:
        near = [t for t in left if abs(t - p) <= tol]
        if near:
            left.remove(min(near, key=lambda t: abs(t - p)))
            tp += 1
    if not pred and not truth:
        return 1.0
    prec, rec = tp / max(1, len(pred)), tp / max(1, len(truth))
    return 2 * prec * rec / (prec + rec) if tp else 0.0
