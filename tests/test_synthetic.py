"""`filmdata.synthetic`: the procedural footage of the tests, benchmarks and demo."""

from __future__ import annotations

import numpy as np
import pytest

from filmdata.synthetic import Shot, render_shot, render_shots


@pytest.mark.parametrize("height", [8, 16, 23, 24])
def test_short_frames_render(height: int) -> None:
    """Frames under 24 rows render (the movers' radius range was empty there: ValueError)."""
    frames, cuts = render_shots((2, 2), 20, height, seed=1)
    assert frames.shape == (4, height, 20, 3) and cuts == [2]


@pytest.mark.parametrize("seed", [1, 5])
def test_a_long_shot_stays_inside_its_world(seed: int) -> None:
    """A shot of 900 frames shows its world in every frame: the zoom used to run on, past 0
    (the picture flipped, then black) or past the world's size (black beyond its edges) after
    ~500 frames (seeds 1 and 5: a tenth and more of a frame black from frame 674 and 789)."""
    for t, frame in enumerate(render_shot(Shot(900, seed), 64, 36)):
        black = frame.max(axis=2) == 0
        assert not black.all(axis=0).any() and not black.all(axis=1).any(), t
        assert black.mean() < 0.05, t
        assert frame.std() > 5, t  # not a few pixels blown up to the whole frame


def test_footage_is_seeded() -> None:
    a, _ = render_shots((3, 3), 48, 32, seed=2)
    b, _ = render_shots((3, 3), 48, 32, seed=2)
    assert np.array_equal(a, b)
