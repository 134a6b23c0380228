"""Curation decisions of `filmdata.scenes.curate` on tiny made-up samples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from filmdata.scenes import curate
from filmdata.synthetic import render_shots


def _moving(n: int = 6) -> np.ndarray:
    frames, _ = render_shots((n,), 64, 48, seed=2)
    return frames.mean(-1).astype(np.uint8)


def test_a_moving_picture_is_kept() -> None:
    assert curate.verdict(curate.stats(_moving())) is None


@pytest.mark.parametrize(
    "make,reason",
    [
        (lambda rng: np.full((6, 48, 64), 3, np.uint8), "black"),
        (lambda rng: np.full((6, 48, 64), 200, np.uint8), "blank"),
        (lambda rng: rng.integers(0, 256, (6, 48, 64)).astype(np.uint8), "tape-noise"),
        (lambda rng: np.repeat(_moving(1), 6, 0), "static"),
    ],
)
def test_dropped_segments_say_why(make, reason: str) -> None:
    got = curate.verdict(curate.stats(make(np.random.default_rng(0))))
    assert got is not None and got.startswith(reason + ":")


def test_windows_tile_the_scene() -> None:
    assert curate.windows(0, 50, 10.0, 1.0, 10.0) == [(0, 50)]
    w = curate.windows(10, 260, 24.0, 1.0, 4.0)  # 250 frames, at most 96 each
    assert w[0][0] == 10 and w[-1][1] == 260 and all(b - a <= 96 for a, b in w)
    assert all(a[1] == b[0] for a, b in zip(w, w[1:]))
    assert curate.windows(0, 500, 24.0, 1.0, 0) == [(0, 500)]


def test_windows_keep_min_len_where_halves_would_not() -> None:
    """`--min-len 2 --max-len 3` and a 3.5 s shot: near-equal halves (1.75 s each) would both
    be dropped as short, losing the whole shot; a 3 s window is kept and the rest left short."""
    assert curate.windows(0, 84, 24.0, 2.0, 3.0) == [(0, 72), (72, 84)]
    w = curate.windows(0, 240, 24.0, 2.0, 3.0)  # 10 s: near-equal windows of 2.5 s fit
    assert len(w) == 4 and all(60 <= b - a <= 72 for a, b in w)


def test_phash_ignores_flicker_and_tells_shots_apart() -> None:
    a = _moving()
    brighter = np.clip(a.astype(np.float32) * 1.3 + 10, 0, 255).astype(np.uint8)
    other = render_shots((6,), 64, 48, seed=9)[0].mean(-1).astype(np.uint8)
    assert curate.hamming(curate.phash(a), curate.phash(brighter)) <= curate.PHASH_DUPLICATE
    assert curate.hamming(curate.phash(a), curate.phash(other)) > curate.PHASH_DUPLICATE


def test_letterbox_box_in_source_pixels() -> None:
    a = _moving()
    a[:, :6] = 0
    a[:, -6:] = 0
    box = curate.letterbox(a, 640, 480)  # samples are 64x48: one sample pixel = 10 source px
    assert (box.x, box.w) == (0, 640)
    assert 60 <= box.y <= 62 and 418 <= box.y + box.h <= 420, box  # the bars end on a sample


@pytest.mark.parametrize("top,left", [(65, 0), (60, 93), (47, 161)])
def test_letterbox_leaves_no_bar_inside_the_box(top: int, left: int) -> None:
    """Bars that end inside a sample (most of them): the box holds no row or column of bar,
    and loses less than a sample of picture."""
    import cv2

    frames, _ = render_shots((4,), 640, 480, seed=3)
    src = frames.mean(-1).astype(np.uint8)
    src[:, :top], src[:, 480 - top :] = 12, 12
    src[:, :, :left], src[:, :, 640 - left :] = 12, 12
    small = np.stack([cv2.resize(f, (64, 48), interpolation=cv2.INTER_AREA) for f in src])
    box = curate.letterbox(small, 640, 480)
    assert top <= box.y and box.y + box.h <= 480 - top, box
    assert left <= box.x and box.x + box.w <= 640 - left, box
    assert box.y - top < 10 and (480 - top) - (box.y + box.h) < 10, box
    assert box.x - left < 10 and (640 - left) - (box.x + box.w) < 10, box


@pytest.mark.parametrize(
    "picture,frame",
    [((640, 360), (640, 480)), ((480, 360), (640, 360)), ((600, 330), (640, 480))],
    ids=["letterbox", "pillarbox", "both-mid-sample"],
)
def test_phash_of_the_picture_inside_its_bars_is_the_bare_pictures(
    picture: tuple[int, int], frame: tuple[int, int]
) -> None:
    """A letterboxed transfer (a wide picture in a 4:3 frame, or a 4:3 one in a wide frame)
    and the bare picture of the same footage: hashed over the whole samples, the bars make
    them differ by far more than a duplicate; hashed inside the box, they are duplicates."""
    import cv2

    (pw, ph), (fw, fh) = picture, frame
    shots, _ = render_shots((6,), pw, ph, seed=4)
    bare = shots.mean(-1).astype(np.uint8)
    boxed = np.full((6, fh, fw), 10, np.uint8)
    top, left = (fh - ph) // 2, (fw - pw) // 2
    boxed[:, top : top + ph, left : left + pw] = bare

    def samples(x: np.ndarray) -> np.ndarray:  # as `cut` samples: 64 wide
        w, h = x.shape[2], x.shape[1]
        size = (64, round(64 * h / w))
        return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in x])

    small = samples(boxed)
    box = curate.letterbox(small, fw, fh)
    near = curate.hamming(curate.phash(samples(bare)), curate.phash(small))
    assert near > curate.PHASH_DUPLICATE  # (what made them not duplicates)
    got = curate.phash(curate.inside(small, box, fw, fh))
    assert curate.hamming(curate.phash(samples(bare)), got) <= curate.PHASH_DUPLICATE
    whole = curate.inside(small, curate.Box(0, 0, fw, fh), fw, fh)  # no bars: all of it
    assert np.array_equal(whole, small)


def test_film_detection_does_not_import_pyscenedetect(clip: Path) -> None:
    code = (
        "import sys; from filmdata.scenes import detect_scenes; "
        f"s = detect_scenes({str(clip)!r}); "
        "assert [x.start_frame for x in s] == [0, 12], s; "
        "assert 'scenedetect' not in sys.modules and 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
