"""`filmdata align`: tiny synthetic tapes with a known truth (noise head, ident, offset, PAL-like
speed, a drop and a duplicate, overscan, letterbox, blur, chroma smear, noise, heavy H.264)."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import write_turned
from filmdata.cli import app
from filmdata.errors import MediaError, RefusedError
from filmdata.pairing import align
from filmdata.pairing.tapesim import (
    Tape,
    TapeSpec,
    frame_accuracy,
    geometric_error,
    identical_runs,
    make_tape,
    ntsc_pulldown,
    render_footage,
    tape_fields,
    tape_timeline,
)
from filmdata.pairing.temporal import (
    PathCosts,
    base_step,
    cadence,
    cadence_by_scores,
    fill_centre,
    path_stats,
    step_table,
    viterbi,
)
from filmdata.synthetic import render_shots
from filmdata.video import read_frames, write_video

GT_SIZE = (192, 108)
align_module = sys.modules["filmdata.pairing.align"]  # (the package exports the function)


def _small_spec(seed: int, **kw: Any) -> TapeSpec:
    """The tests' tape: 160x120, a short noise head and ident, light blur and chroma smear."""
    base: dict[str, Any] = dict(
        size=(160, 120), head=6, ident=3, start=2.4, blur=0.8, smear=2.0, seed=seed
    )
    return TapeSpec(**{**base, **kw})


def _four_shots(folder: Path, seed: int = 5) -> Path:
    """A GT of four 40-frame shots of pans (6.7 s at 24 fps)."""
    gt = folder / "gt.mp4"
    write_video(gt, render_footage(*GT_SIZE, (40, 40, 40, 40), seed=seed, slow=False), 24.0)
    return gt


def _make(folder: Path, slow: bool, seed: int) -> tuple[Path, Tape]:
    gt = folder / "gt.mp4"
    write_video(gt, render_footage(*GT_SIZE, (30, 30, 30), seed=seed, slow=slow), 24.0)
    # crawling shots at crf 38 on a 160x120 tape are past what the aligner resolves (the
    # encoder's lag exceeds a crawl of 0.1 px per frame); the slow tape is compressed less
    spec = _small_spec(seed, crf=30 if slow else 38)
    return gt, make_tape(gt, folder / "tape.mp4", spec)


@pytest.fixture(scope="module")
def pans(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Tape]:
    return _make(tmp_path_factory.mktemp("pans"), slow=False, seed=3)


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Tape]:
    return _make(tmp_path_factory.mktemp("slow"), slow=True, seed=4)


@pytest.mark.parametrize("which", ["pans", "slow"])
def test_align_recovers_the_truth(which: str, request: pytest.FixtureRequest) -> None:
    gt, tape = request.getfixturevalue(which)
    a = align(tape.path, gt)
    assert len(a.mapping) == len(tape.mapping)
    acc = frame_accuracy(tape.mapping, a.mapping, identical_runs(gt))
    assert acc >= 0.95, acc
    assert geometric_error(tape.transform, a.transform, *GT_SIZE) < 1.0
    # the noise head and the ident have no GT
    head = tape.spec.head + tape.spec.ident
    assert all(m is None for m in a.mapping[:head])
    assert all(c == 0.0 for c in a.confidence[:head])
    assert abs(a.speed - tape.spec.speed) < 0.02
    # the tape shows GT position p (frames) at content frame (p - start) / rate: GT time 0 at
    # tape time (head + ident - start / rate) / fps, within half a tape frame
    spec = tape.spec
    rate = spec.speed * 24.0 / spec.fps  # GT frames a tape frame
    truth = (head - spec.start / rate) / spec.fps
    assert a.offset is not None and abs(a.offset - truth) < 0.5 / spec.fps, (a.offset, truth)
    assert a.quality["drops"] >= 1 and a.quality["repeats"] >= 1


def test_the_sharp_pass_runs_where_the_small_descriptors_leave_the_path_unsure(
    pans: tuple[Path, Tape], slow: tuple[Path, Tape]
) -> None:
    """Frames at working size settle a slow pan's path (0.5 GT px a frame: neighbours the
    small descriptors barely tell apart); where the content moves enough for those, the
    sharp pass and the joint shift are skipped (half the time of a 30 s tape)."""
    import importlib

    A = importlib.import_module("filmdata.pairing.align")
    unsure = {}
    for name, (gt, tape) in (("slow", slow), ("pans", pans)):
        a = align(tape.path, gt)
        unsure[name] = q = a.quality["unsure"]
        assert a.quality["sharp_pass"] is (q > A.UNSURE_SHARE), q
        assert frame_accuracy(tape.mapping, a.mapping, identical_runs(gt)) >= 0.95
    # (here 0.64 and 0.02: the pans tape skips the pass)
    assert unsure["slow"] > 0.3 > 0.1 > unsure["pans"], unsure


def test_unsure_counts_the_matches_that_barely_beat_their_neighbours() -> None:
    import importlib

    A = importlib.import_module("filmdata.pairing.align")
    n = 20
    s = np.full((n, n + 2), -1.0, np.float32)
    for i in range(n):  # a clear diagonal: each match 0.2 over its neighbours
        s[i, i : i + 3] = (0.7, 0.9, 0.7)
    path: list[int | None] = [i + 1 for i in range(n)]
    assert A._unsure(A._margins(s, path)) == 0.0
    s[2:6, 2:9] = 0.9  # a slow pan: four rows whose neighbours score the same
    assert A._unsure(A._margins(s, path)) == pytest.approx(0.2)
    path[3] = None  # frames without GT are not counted
    margins = A._margins(s, path)
    assert A._unsure(margins) == pytest.approx(3 / 19)
    assert A._unsure(A._margins(s, [None] * n)) == 0.0
    # the sharp pass: on the unsure frames and SHARP_REACH (2) either side, or on all
    assert A._sharp_rows(margins).tolist() == [i <= 7 for i in range(n)]
    s[9:, :] = 0.9
    assert A._sharp_rows(A._margins(s, path)) is None  # 8 + 13 of 20 > SHARP_ALL


def test_a_freeze_in_the_gt_leaves_no_rival_and_is_not_unsure() -> None:
    """GT frames that are one frame again (a freeze, within its encoder's noise) are no
    rivals: either is right, and the sharp pass could not tell them apart."""
    import importlib

    from filmdata.pairing.descriptors import GrayVideo

    A = importlib.import_module("filmdata.pairing.align")
    rng = np.random.default_rng(4)
    base = rng.integers(0, 256, (36, 64), dtype=np.uint8)
    noisy = base.copy()
    noisy[0, :10] ^= 1  # a few pixels a level off: the encoder's noise on a freeze
    moved = np.roll(base, 1, axis=1)  # the picture moving: a real next frame
    kept = dict(enumerate([base, noisy, base, moved, moved]))
    gv = GrayVideo("gt", 24.0, 64, 36, np.stack(list(kept.values())), kept, 1.0)
    assert A._repeats(gv).tolist() == [True, True, False, True]
    s = np.array([[0.9, 0.9, 0.9, 0.5, 0.5], [0.5, 0.88, 0.9, 0.7, 0.7]], np.float32)
    repeats = np.array([True, True, False, False])
    m = A._margins(s, [1, 2], repeats)
    assert np.isnan(m[0])  # inside the freeze: both neighbours are the same frame
    assert m[1] == pytest.approx(0.2)  # at its end: the next frame is the only rival
    assert A._margins(s, [1, 2])[1] == pytest.approx(0.02)  # (the freeze's frame, unsure)


def test_align_a_pillarboxed_gt(tmp_path: Path) -> None:
    """An HD remaster of a 4:3 video is often pillarboxed (black bars in a 16:9 frame); the
    tape letterboxes the whole frame, so its active picture is the GT's picture, not the GT's
    frame. The coarse match compares the two pictures (the GT's whole frame, bars and all,
    left a real music video's first 11 s without GT), and the geometry starts from the GT's
    picture fitted into the tape's (from its whole frame, ECC found nothing: no GT at all)."""
    gt = tmp_path / "gt.mp4"
    bars = np.zeros((108, 24, 3), np.uint8)
    frames = render_footage(144, 108, (40, 30, 50), seed=6)
    write_video(gt, (np.hstack([bars, f, bars]) for f in frames), 24.0)
    spec = _small_spec(6)
    tape = make_tape(gt, tmp_path / "tape.mp4", spec)
    a = align(tape.path, gt)
    acc = frame_accuracy(tape.mapping, a.mapping, identical_runs(gt))
    assert acc >= 0.95, acc
    assert geometric_error(tape.transform, a.transform, *GT_SIZE) < 1.0


def test_align_a_tape_recorded_turned(tmp_path: Path, pans: tuple[Path, Tape]) -> None:
    """A capture a phone stored turned a quarter, with the display matrix that turns it back:
    aligned as it is shown (as stored, the picture would lie on its side)."""
    gt, tape = pans
    turned = write_turned(tmp_path / "turned.mp4", read_frames(tape.path), -90, fps=25)
    a = align(turned, gt)
    assert a.quality["lq"]["width"] == 160 and a.quality["lq"]["height"] == 120
    assert frame_accuracy(tape.mapping, a.mapping, identical_runs(gt)) >= 0.95
    assert geometric_error(tape.transform, a.transform, *GT_SIZE) < 1.0


def test_a_gt_stored_turned_under_the_small_width_is_kept_at_its_working_size(
    tmp_path: Path, pans: tuple[Path, Tape]
) -> None:
    """A 192x108 GT stored turned a quarter (108 px wide as stored: `align` sizes its working
    frames by that, under the small descriptors' 160 px) keeps its frames at that working
    size, as `kept_scale` says; they stayed full size, and the registration, reading them at
    that scale, matched 5% of the frames."""
    from filmdata.pairing.descriptors import decode_gray

    gt, tape = pans
    turned = write_turned(tmp_path / "turned-gt.mp4", read_frames(gt), 90, fps=24)
    v = decode_gray(turned, 160, 1, 108)
    assert v.kept_scale == pytest.approx(108 / 192)
    assert v.kept[0].shape == (61, 108) and v.small.shape[1:] == (90, 160)
    a = align(tape.path, turned)
    assert frame_accuracy(tape.mapping, a.mapping, identical_runs(gt)) >= 0.95
    assert geometric_error(tape.transform, a.transform, *GT_SIZE) < 1.0


def test_an_sd_capture_is_worked_at_the_working_width(
    slow: tuple[Path, Tape], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A capture wider than LQ_WORK_WIDTH (a DV tape's 720 px; here a 320 px tape of the slow
    clip against a 240 px working width) is kept, registered and described for the sharp
    pass at that width, and its path and geometry, in the tape's own pixels, hold."""
    gt, small = slow
    tape = make_tape(gt, tmp_path / "sd.mp4", dataclasses.replace(small.spec, size=(320, 240)))
    monkeypatch.setattr(align_module, "LQ_WORK_WIDTH", 240)
    monkeypatch.setattr(align_module, "SD_WIDTH", 400)
    decode = align_module.dsc.decode_gray
    widths: list[int] = []

    def spy(path, *args, **kw):  # type: ignore[no-untyped-def]
        out = decode(path, *args, **kw)
        if str(path) == str(tape.path) and out.kept:
            widths.append(next(iter(out.kept.values())).shape[1])
        return out

    monkeypatch.setattr(align_module.dsc, "decode_gray", spy)
    a = align(tape.path, gt)
    assert widths and set(widths) == {240}
    assert a.quality["lq"]["width"] == 320 and a.quality["sharp_pass"]
    assert frame_accuracy(tape.mapping, a.mapping, identical_runs(gt)) >= 0.95
    assert geometric_error(tape.transform, a.transform, *GT_SIZE) < 1.0


def test_tape_truth_has_the_events() -> None:
    t = tape_timeline(TapeSpec(head=5, ident=2, start=3.0), 100, 24.0)
    assert t[:7] == [None] * 7
    content = [g for g in t if g is not None]
    steps = np.diff(content)
    assert (steps == 0).sum() == 1 and (steps == 2).sum() == 1 and set(steps) <= {0, 1, 2}


def test_pulldown_tape_weaves_two_frames_in_five() -> None:
    spec = ntsc_pulldown(head=0, ident=0, start=0.0, drop=None, dup=None)
    f = tape_fields(spec, 200, 24.0)
    assert all(x is not None for x in f)
    for k in range(0, len(f) - 5, 5):
        group = [x for x in f[k : k + 5] if x is not None]
        assert sum(b != a for a, b in group) == 2  # two woven frames...
        assert all(b - a in (0, 1) for a, b in group)
        assert group[-1][1] - group[0][0] in (3, 4)  # ...and four GT frames per five
    # a woven frame counts right on either of its GT frames, and only on those
    true, also = [f[1][0]], [f[1][1]]
    assert frame_accuracy(true, [f[1][1]], None, also) == 1.0
    assert frame_accuracy(true, [f[1][1] + 1], None, also) == 0.0


@pytest.mark.parametrize("rate", [0.8, 24 / 25])
def test_cadence_finds_the_phase_through_drops(rate: float) -> None:
    rng = np.random.default_rng(int(rate * 100))
    phase, n = 0.37, 400
    truth = [int(np.floor(phase + rate * i)) for i in range(n)]
    del truth[150]  # a dropped tape frame shifts the cadence's phase from here on
    del truth[290]
    steps = np.diff(truth)
    path: list[int | None] = list(truth)
    for i in rng.choice(np.arange(5, len(path) - 5), 6, replace=False):
        path[i] = None if i % 2 else path[i - 1]  # stray errors of a first path
    e, agree = cadence(path, rate + 0.002)
    assert agree > 0.9
    # right everywhere but within a cycle of the shifts
    right = e[1:] == steps
    cycle = int(round(1 / min(rate % 1, 1 - rate % 1)))
    near = np.zeros(len(steps), bool)
    for at in (150, 290):
        near[max(0, at - 2 * cycle) : at + 2 * cycle] = True
    assert right[~near].all()


def test_cadence_keeps_a_pal_tapes_rate_where_its_path_lost_skips() -> None:
    # a 25 fps GT at PAL speed (a skip every 24 tape frames), a drop at 63, and a repeat at
    # 136 that the path left out with the skip after it (seed 2 of align_plain.py on bikes):
    # a rate with half the skips agreed with as many of its steps, 4 GT frames off the fit
    skips = {46, 63, 69, 93, 119, 166, 190, 215}
    path: list[int | None] = [0]
    for i in range(1, 229):
        path.append(path[-1] + (2 if i in skips else 1))  # type: ignore[operator]
    e, agree = cadence(path, 1.0388)
    assert agree > 0.9
    assert 9 <= int((e == 2).sum()) <= 10  # 228 steps at 1.0417: a skip every 24
    assert all(e[k - 1 : k + 2].max() == 2 for k in (93, 166, 190, 215))


def test_cadence_by_scores_keeps_the_phase_a_biased_path_loses() -> None:
    # 30 fps GT on a 25 fps tape at PAL speed: 1.25 GT frames a tape frame, a drop of the tape
    # at 200. A first path a frame early on every fourth tape frame (P-frames trailing a pan)
    # puts the cadence's two-frame steps a slot off; the scores, peaked at the truth, do not.
    rng = np.random.default_rng(5)
    rate, n = 1.25, 400
    truth = [int(np.floor(0.37 + rate * i)) for i in range(n + 1)]
    del truth[200]
    m = truth[-1] + 3
    s = np.full((n, m), 0.3, np.float32)
    for i, j in enumerate(truth):
        s[i, j - 1 : j + 2] = 0.8
        s[i, j] = 0.9
    s += rng.normal(0, 0.02, s.shape).astype(np.float32)
    path: list[int | None] = [j - 1 if i % 4 == 0 else j for i, j in enumerate(truth)]
    steps = np.diff(truth)
    near = np.zeros(len(steps), bool)
    near[190:210] = True
    by_steps = cadence(path, rate)[0]
    assert not (by_steps[1:] == steps)[~near].all()  # the path's steps mislead
    e = cadence_by_scores(s, path, rate, null=0.45)
    assert e is not None
    assert (e[1:] == steps)[~near].all()
    far = [j + (300 if i > 100 else 0) for i, j in enumerate(path)]  # a splice: too many states
    assert cadence_by_scores(s, far, rate, null=0.45) is None


def test_a_path_of_another_model_takes_over_only_where_the_frames_agree() -> None:
    """The lattice's and the scores' cadence paths are chosen by their totals under their
    own prices for drops and repeats; one whose total is higher only because it left a drop
    and a repeat out, its frames matched worse, does not take the place of the path."""
    score = np.zeros((4, 5), np.float32)
    path, other = [0, 1, 2, 3], [0, 1, 1, 2]
    score[[0, 1, 2, 3], [0, 1, 2, 3]] = 0.9
    score[2, 1] = score[3, 2] = 0.8
    better = align_module._explains_better
    assert not better(other, 10.1, path, 10.0, score)  # a higher total, frames matched worse
    assert better(path, 10.1, other, 10.0, score)
    assert not better(path, 9.9, other, 10.0, score)


def test_a_drop_and_a_repeat_the_cadence_left_out_come_back_from_the_free_path() -> None:
    """A drop and, 10 frames on, a repeat in a slow stretch: the cadence's pass left both out
    (its frames a GT frame behind between them), the free pass had them. Its run ahead is
    taken where it scores better along it; a run behind (a heavy encoder's lag looks like
    that), a short run, a gain too small, a run that would leave the path going back, or one
    the two paths do not close (both matched) on either side, is not."""
    truth = [*range(20), *range(21, 31), 30, *range(31, 40)]  # the drop at 20, the repeat at 30
    cadence_path = list(range(len(truth)))
    n, m = len(truth), 45
    weighed = np.zeros((n, m), np.float32)
    for i, j in enumerate(truth):
        weighed[i, j] = 0.5
        weighed[i, max(0, j - 1)] = max(weighed[i, max(0, j - 1)], 0.499)  # the lag's lean
    ahead = align_module._ahead
    assert ahead(cadence_path, truth, weighed) == truth  # 10 frames, 0.01 better
    assert ahead(truth, cadence_path, weighed) == truth  # behind: left as it is
    faint = weighed.copy()
    faint[20:30] = np.where(faint[20:30] == 0.5, np.float32(0.4995), faint[20:30])
    assert ahead(cadence_path, truth, faint) == cadence_path  # 0.005 better: too little
    short = [*range(26), *range(27, 31), 30, *range(31, 40)]  # 4 frames ahead only
    assert ahead(cadence_path, short, weighed + 0.1 * (np.arange(m) == 27)) == cadence_path
    stall = [*range(30), 29, 29, *range(30, 38)]  # the cadence's path stays after the run
    two = [*range(20), *range(22, 32), 29, 29, *range(30, 38)]  # two ahead: 31, then 29
    rich = weighed.copy()
    rich[range(20, 30), range(22, 32)] = 0.6
    assert ahead(stall, two, rich) == stall  # taken, the path would go back after it
    # a faster tape's skips placed in another phase: ahead by one, then by two (4 frames each)
    skips = [*range(28), *range(29, 41)]  # the cadence's path, a skip at 28
    turns = [*range(20), 21, 22, 23, 24, 26, 27, 28, 29, *skips[28:]]
    wobble = weighed.copy()
    wobble[range(20, 28), turns[20:28]] = 0.6
    assert ahead(skips, turns, wobble) == skips  # two runs of 4: too short
    assert ahead(skips, turns, wobble, varied=True) == turns  # one run of 8
    # a run ahead to the tape's last frame: a drop the free path has and nothing after it to
    # close it (a still's last shot, its frames told apart by a small moving object: a frame
    # ahead for 24 frames); so is a run from the first
    open_end = [*range(20), *range(21, 41)]
    endless = weighed.copy()
    endless[range(20, 40), range(21, 41)] = 0.6
    assert ahead(cadence_path, open_end, endless) == cadence_path
    endless[range(0, 20), range(1, 21)] = 0.6
    assert ahead(cadence_path, [j + 1 for j in cadence_path], endless) == cadence_path


def test_viterbi_follows_the_cadence_where_the_data_is_flat() -> None:
    # a 25 fps tape of 24 fps film: GT frame 12 shown twice; the GT is still around it, so
    # the similarity cannot say where the repeat falls, and the cadence does
    truth = list(range(12)) + [12, 12] + list(range(13, 24))
    n, m = len(truth), 26
    s = np.full((n, m), 0.1, np.float32)
    for i, j in enumerate(truth):
        s[i, j] = 0.9
    s[6:20, 6:20] = 0.9  # a still: every frame of it looks the same
    expected = np.diff([0, *truth])
    assert viterbi(s, PathCosts(), expected) == truth


@pytest.mark.parametrize("kind", ["true25", "pulldown"])
def test_align_tapes_not_one_frame_per_gt_frame(kind: str, tmp_path: Path) -> None:
    """25 fps of 24 fps film at true speed (a repeat every 25 frames) and 3:2 pulldown to
    29.97 fps (woven frames): the repeats follow the tape's cadence."""
    gt = tmp_path / "gt.mp4"
    write_video(gt, render_footage(256, 144, (96, 128, 160), seed=11), 24.0)
    kw = dict(size=(240, 180), head=6, ident=3, start=2.4, blur=0.8, smear=2.0, seed=1)
    spec = TapeSpec(speed=1.0, **kw) if kind == "true25" else ntsc_pulldown(**kw)  # type: ignore[arg-type]
    tape = make_tape(gt, tmp_path / "tape.mp4", spec)
    a = align(tape.path, gt)
    acc = frame_accuracy(tape.mapping, a.mapping, identical_runs(gt), tape.also)
    assert acc >= 0.97, acc
    assert a.quality["cadence_agreement"] >= 0.7  # the cadence was fitted and followed
    assert abs(a.speed - spec.speed) < 0.005


@pytest.mark.parametrize("head", [4, 5, 6])
def test_a_long_pulldown_tape_registers_on_clean_frames(
    head: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tape too long to keep whole keeps every k-th frame at full size for the spatial
    samples; with k a multiple of 5, all of them sat on one phase of the 3:2 pulldown, woven
    in two phases of five (a 200 s real-footage tape: 0.76 px, every sample woven; 0.11 px
    once they cover every phase)."""
    import importlib

    from filmdata.video import probe

    A = importlib.import_module("filmdata.pairing.align")
    gt = tmp_path / "gt.mp4"
    write_video(gt, render_footage(256, 144, (64, 64), seed=12), 24.0)
    kw = dict(size=(240, 180), head=head, ident=2, start=2.4, blur=0.8, smear=2.0, seed=2)
    tape = make_tape(gt, tmp_path / "tape.mp4", ntsc_pulldown(**kw))  # type: ignore[arg-type]
    frames = probe(tape.path, count=False).declared_frames
    monkeypatch.setattr(A, "LQ_KEEP_BYTES", frames * 240 * 180 // 5 + 1)  # 1 in 5 kept
    monkeypatch.setattr(A, "SHARP_SHARE", 0.0)  # (not all kept for the sharp pass)
    used: list[list[int]] = []
    real = A._spatial

    def spatial(*args, **kwargs):  # type: ignore[no-untyped-def]
        t, est, spread = real(*args, **kwargs)
        used.append([e.lq_frame for e in est])
        return t, est, spread

    monkeypatch.setattr(A, "_spatial", spatial)
    a = align(tape.path, gt, samples=4)  # few samples: all from the kept frames
    woven = [i for i in used[-1] if tape.also[i] is not None]
    assert used[-1] and len(woven) <= len(used[-1]) / 2, (used[-1], woven)
    assert geometric_error(tape.transform, a.transform, 256, 144) < 1.0


def test_a_longer_tape_keeps_every_frame_for_the_sharp_pass_where_memory_allows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the fixed budgets (a 30 s 720p GT at working size), every frame is kept, and so the
    sharp pass runs, when the frames and the sharp descriptors fit in SHARP_SHARE of the memory
    available; else the fixed budgets hold (every k-th frame, no sharp pass)."""
    import importlib

    from filmdata.video import Probe

    A = importlib.import_module("filmdata.pairing.align")

    def probe(frames: int, w: int, h: int) -> Probe:
        return Probe("mp4", "h264", w, h, 25.0, frames, frames, frames / 25, False, None)

    pl, pg = probe(3000, 480, 360), probe(2880, 1280, 720)  # two minutes
    lq_bytes, gt_bytes = 3000 * 480 * 360, 2880 * 640 * 360
    need = lq_bytes + gt_bytes + 4 * (3000 + 2880) * 480 * 360  # 5.3 GB
    fixed = (A.LQ_KEEP_BYTES, A.GT_KEEP_BYTES)
    monkeypatch.setattr(A, "_available_memory", lambda: 3 * need + 1)
    assert A._keep_budgets(pl, pg, lq_bytes, gt_bytes, 1 / 3) == (lq_bytes, gt_bytes)
    # two alignments at once (`pair --jobs 2`) each take half of that share
    assert A._keep_budgets(pl, pg, lq_bytes, gt_bytes, 1 / 6) == fixed
    monkeypatch.setattr(A, "_available_memory", lambda: 3 * need - 3)
    assert A._keep_budgets(pl, pg, lq_bytes, gt_bytes, 1 / 3) == fixed
    monkeypatch.setattr(A, "_available_memory", lambda: None)
    assert A._keep_budgets(pl, pg, lq_bytes, gt_bytes, 1 / 3) == fixed
    short = probe(750, 480, 360)  # within the fixed budgets: as before, whatever the memory
    assert A._keep_budgets(short, short, 750 * 480 * 360, 1, 1 / 3) == fixed


def test_fill_centre_carries_the_rate_past_the_matched_stretch() -> None:
    # matched from tape frame 4 to 8 at 1.25 GT frames a frame: before and after, the centre
    # goes on at that rate (held at 5 and 10, a band of a few frames would miss the GT there)
    path = [None, None, None, None, 5, 6, 7, 9, 10, None, None]
    c = fill_centre(path, 100)
    assert c[4:9].tolist() == [5, 6, 7, 9, 10]
    r = 1.25
    assert np.allclose(c[:4], [5 - 4 * r, 5 - 3 * r, 5 - 2 * r, 5 - r], atol=0.2)
    assert np.allclose(c[9:], [10 + r, 10 + 2 * r], atol=0.2)
    assert fill_centre([None, 3, None], 100).tolist() == [2, 3, 4]  # one match: one a frame
    assert fill_centre([None, None, 0, 1], 100).tolist() == [0, 0, 0, 1]  # clipped to the GT


def test_fit_rate_is_the_runs_rate_across_a_jump_of_the_path() -> None:
    """A tape that lost 3 s of its GT (or shows 3 s of something else) has two runs at one
    rate, one cut twice three: the line goes through the longest, at their rate, not through
    all (whose slope is off by the jumps over the tape's length)."""
    from filmdata.pairing.temporal import fit_rate

    r = 25 / 24
    path: list[int | None] = [int(5 + r * i) for i in range(300)]
    path += [int(5 + r * i) + 78 for i in range(300, 660)]  # a stretch of 78 GT frames lost
    a, got = fit_rate(path)
    assert abs(got - r) < 0.002, got
    assert abs(a - (5 + 78)) < 1.5, a  # the longer run's line
    inserted: list[int | None] = [int(5 + r * i) for i in range(400)] + [None] * 60
    inserted += [int(5 + r * i) for i in range(400, 700)]  # 60 frames of other footage
    assert abs(fit_rate(inserted)[1] - r) < 0.002
    # a shorter edit, cut twice: three runs, none of them half the frames
    runs: list[int | None] = [int(5 + r * i) for i in range(200)]
    runs += [int(5 + r * i) + 60 for i in range(200, 440)]
    runs += [int(5 + r * i) + 120 for i in range(440, 620)]
    a, got = fit_rate(runs)
    assert abs(got - r) < 0.002, got
    assert abs(a - (5 + 60)) < 1.5, a  # the longest run's line
    # a path without a jump: the least-squares line through all of it, as before
    plain: list[int | None] = [None] * 10 + [int(3 + 1.25 * i) for i in range(200)]
    pts = np.array([(i, j) for i, j in enumerate(plain) if j is not None], float)
    want = np.polyfit(pts[:, 0], pts[:, 1], 1)
    assert np.allclose(fit_rate(plain)[::-1], want)


@pytest.mark.parametrize("event", ["lost", "other"])
def test_a_tape_that_lost_a_stretch_or_shows_another_programme_keeps_its_rate(
    event: str, tmp_path: Path
) -> None:
    """A 6 s tape missing 2 s of its GT in the middle (a length spliced out), or showing 2 s
    of another programme there: the path jumps over the GT frames missed (or leaves the GT
    for the other programme), and the speed is the runs'. (Fitted through both runs, the rate
    was 1.7 GT frames a tape frame: drops came free, the path ramped into the cut with one
    every frame, and the speed said 1.77.)"""
    gt = _four_shots(tmp_path)
    stretch = (0.4, 50)  # tape frames, 40% into the content
    spec = _small_spec(5, **{event: (stretch,)})
    tape = make_tape(gt, tmp_path / "tape.mp4", spec)
    a = align(tape.path, gt)
    assert frame_accuracy(tape.mapping, a.mapping, identical_runs(gt)) >= 0.95
    assert abs(a.speed - tape.spec.speed) < 0.02, a.speed


def test_unramp_makes_a_ramp_of_drops_one_jump_where_the_scores_say_so() -> None:
    from filmdata.pairing.temporal import unramp

    n, m = 30, 60
    truth = [i if i < 15 else i + 10 for i in range(n)]  # 10 GT frames lost after row 14
    s = np.full((n, m), 0.4, np.float32)
    s[np.arange(n), truth] = 0.9
    # the path ramps from row 9 to row 20 (GT 9 -> 30: ten drops, a step of one between)
    ramp = list(range(10)) + [11, 13, 15, 16, 18, 20, 22, 24, 26, 28]
    ramp += [i + 10 for i in range(20, n)]
    s[np.arange(n), ramp] = np.maximum(s[np.arange(n), ramp], 0.85)
    costs = PathCosts()
    assert unramp(ramp, s, costs) == truth
    # where the ramp's frames score best it stays (the tape did skip them)
    s2 = s.copy()
    s2[np.arange(n), ramp] = 0.95
    assert unramp(ramp, s2, costs) == ramp
    # two drops in a row are drops; a GT at twice the tape's rate is not looked at
    two = list(range(10)) + [11, 13] + list(range(14, 32))
    assert unramp(two, s, costs) == two
    assert unramp(ramp, s, dataclasses.replace(costs, base=2)) == ramp


def _logo_footage(
    seed: int, logo: tuple[tuple[int, int], tuple[int, int], str] | None = None, pillars: int = 0
) -> Iterator[np.ndarray]:
    """The four-shot GT's pictures, black `pillars` px wide either side, with a logo burnt in
    (a light box from corner to corner, its text in colour) where given."""
    import cv2

    for f in render_footage(*GT_SIZE, (40, 40, 40, 40), seed=seed, slow=False):
        f = f.copy()
        if pillars:
            f[:, :pillars] = f[:, -pillars:] = 0
        if logo is not None:
            (x0, y0), (x1, y1), text = logo
            cv2.rectangle(f, (x0, y0), (x1, y1), (250, 250, 250), -1)
            cv2.putText(f, text, (x0 + 3, y1 - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (200, 20, 20), 1)
        yield f


def test_a_station_logo_on_the_tape_is_not_taken_for_picture(tmp_path: Path) -> None:
    """A recording from the air keeps the station's logo, here in the GT's pillarbox: its own
    edges made the columns it covers look active, so the tape's picture box took them in,
    and the geometry started from a box too wide (0.95 px off here, 0.85 and 1.3 px on real
    PAL and harsh tapes). What is the same in every frame now counts as flat."""
    gt, aired = tmp_path / "gt.mp4", tmp_path / "aired.mp4"
    write_video(gt, _logo_footage(5, pillars=24), 24.0)  # a 4:3 picture in the 16:9 GT
    # the station's logo, top right of its frame (in the GT's pillar)
    write_video(aired, _logo_footage(5, ((170, 6), (188, 20), "5"), pillars=24), 24.0)
    tape = make_tape(aired, tmp_path / "tape.mp4", _small_spec(5))
    a = align(tape.path, gt)
    assert frame_accuracy(tape.mapping, a.mapping, identical_runs(gt)) >= 0.95
    assert geometric_error(tape.transform, a.transform, *GT_SIZE) < 0.6
    x, _, w, _ = a.quality["active_box"]
    right = tape.transform @ np.array([GT_SIZE[0] - 24, 0, 1.0])  # the picture's right edge
    assert x + w <= right[0] + 4  # (small pixels: within one; the logo would take it to 160)


def test_a_locked_off_shot_keeps_its_still_sides(tmp_path: Path) -> None:
    """A static camera, only the middle half of the picture moving: the still sides are no
    bars, though nothing in them changes. They were cut off both videos' active boxes, but
    not alike (the tape's noise and blur move its edges), and the coarse match of the two
    boxes found nothing: 0.07 of frames right, the tape's head only."""
    moving = np.stack(list(render_footage(*GT_SIZE, (60, 60), seed=8, slow=False)))
    still = next(iter(render_footage(*GT_SIZE, (1,), seed=9, slow=True)))
    a, b = GT_SIZE[0] // 4, 3 * GT_SIZE[0] // 4
    frames = np.repeat(still[None], len(moving), axis=0)
    frames[:, :, a:b] = moving[:, :, a:b]
    gt = tmp_path / "gt.mp4"
    write_video(gt, frames, 24.0)
    tape = make_tape(gt, tmp_path / "tape.mp4", _small_spec(8))
    got = align(tape.path, gt)
    x, _, w, _ = got.quality["active_box"]
    assert w >= 150  # the tape's whole width (160), less its blurred edges
    assert frame_accuracy(tape.mapping, got.mapping, identical_runs(gt)) >= 0.9


def test_a_tape_box_cut_to_a_part_of_the_picture_is_widened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the tape's active box holds only part of the picture the GT's holds (a
    locked-off shot on a heavy tape: its still sides frozen by the encoder and flattened by
    the blur, cut off as bars, the GT's kept; real 10 s bikes tape: box 46-146 of 160), the
    coarse match still ran through the two boxes, but the geometry fitted to them was 84 px
    off and nothing matched after (0.11 of frames right). The whole widths are tried too.
    Here the tape's box is cut so, whatever cuts it."""
    from filmdata.pairing import descriptors

    gt = _four_shots(tmp_path)
    tape = make_tape(gt, tmp_path / "tape.mp4", _small_spec(5))
    real = descriptors.active_box

    def cut_on_tape(small: np.ndarray, rel: float = 0.2) -> tuple[int, int, int, int]:
        x, y, w, h = real(small, rel)
        return (x + w // 3, y, w // 3, h) if small.shape[1:] == (120, 160) else (x, y, w, h)

    monkeypatch.setattr(descriptors, "active_box", cut_on_tape)
    got = align(tape.path, gt)
    assert frame_accuracy(tape.mapping, got.mapping, identical_runs(gt)) >= 0.95
    assert geometric_error(tape.transform, got.transform, *GT_SIZE) < 0.6


def test_a_watermark_on_the_gt_is_left_out_of_the_registration(tmp_path: Path) -> None:
    """An HD remaster carries a channel's logo the tape never had. ECC weighed its edges
    like the picture's: single registrations went pixels off, and here every one failed,
    the fine passes then ran through the boxes' fit and lost the path (0.055 of frames,
    2.1 px). The logo is found where the two videos differ the same way all along, and left
    out."""
    clean, marked = tmp_path / "clean.mp4", tmp_path / "marked.mp4"
    write_video(clean, _logo_footage(6), 24.0)
    write_video(marked, _logo_footage(6, ((146, 84), (186, 102), "HD")), 24.0)  # in the picture
    tape = make_tape(clean, tmp_path / "tape.mp4", _small_spec(6))
    a = align(tape.path, marked)
    assert frame_accuracy(tape.mapping, a.mapping, identical_runs(clean)) >= 0.95
    assert geometric_error(tape.transform, a.transform, *GT_SIZE) < 0.5


def test_overlay_finds_what_one_video_shows_all_along() -> None:
    """`spatial.overlay` on pairs of different pictures: a box in every GT frame is masked
    (with a margin), nothing where the two agree; pairs without one give None."""
    import cv2

    from filmdata.pairing import spatial

    rng = np.random.default_rng(0)
    m = np.array([[0.5, 0, -10.0], [0, 0.5, -5.0], [0, 0, 1]])  # GT working px -> tape px
    pairs, plain = [], []
    for _ in range(12):  # the tape (80x50) shows the GT's middle (x 20-180, y 10-110)
        gt = cv2.GaussianBlur(rng.uniform(0, 255, (120, 200)).astype(np.float32), (0, 0), 3.0)
        tape = cv2.warpAffine(gt, m[:2], (80, 50), flags=cv2.INTER_AREA).astype(np.uint8)
        plain.append((tape, gt.astype(np.uint8)))
        marked = gt.copy()
        marked[30:50, 120:160] = 250
        pairs.append((tape, marked.astype(np.uint8)))
    assert spatial.overlay(plain, m) is None
    mask = spatial.overlay(pairs, m)
    assert mask is not None and mask.shape == (120, 200)
    assert not mask[30:50, 120:160].any()  # the box, out
    assert mask[60:100, 30:110].all()  # the picture, in
    assert (mask == 0).mean() < 0.1
    assert spatial.overlay(pairs, m, most=0.01) is None  # more than `most` would go


def test_a_picture_that_moves_part_way_is_found_again_through_its_own_geometry(
    tmp_path: Path,
) -> None:
    """A capture re-locked half-way: its picture moves 8 x 5 tape px. The geometry follows one
    part and the other found no match through it (0.558 of frames: half the tape null). Its
    unmatched stretch is registered on its coarse path, the fine passes run again through
    its own geometry, and the segments say where the picture moved and how."""
    gt = _four_shots(tmp_path)
    tape = make_tape(gt, tmp_path / "tape.mp4", _small_spec(5, jump=(0.5, 8.0, 5.0)))
    a = align(tape.path, gt)
    assert frame_accuracy(tape.mapping, a.mapping, identical_runs(gt)) >= 0.95
    segments = a.quality["segments"]
    (first, _), (moved, _) = tape.segments
    assert segments[0]["from_frame"] == first and len(segments) == 2
    assert abs(segments[1]["from_frame"] - moved) <= 2  # (the first frames past the move)
    for got, (_, want) in zip(segments, tape.segments):
        assert geometric_error(want, np.array(got["transform"]), *GT_SIZE) < 0.6


def test_a_shorter_edit_is_matched_on_all_its_runs(tmp_path: Path) -> None:
    """A tape cut twice (1.2 s each: a shorter edit of its GT): three runs, none half the
    tape. Its rate was fitted through all three (1.9 GT frames a tape frame: drops came
    free), and then, with the rate right, the middle run (36 frames) went null whole: two
    jumps cost more than leaving the GT and coming back, and its inter-coded frames (a tenth
    of the weight) could not pay the difference (0.657 of frames right)."""
    gt = _four_shots(tmp_path)
    spec = _small_spec(5, lost=((0.25, 30), (0.6, 30)))
    tape = make_tape(gt, tmp_path / "tape.mp4", spec)
    a = align(tape.path, gt)
    assert frame_accuracy(tape.mapping, a.mapping, identical_runs(gt)) >= 0.95
    assert abs(a.speed - spec.speed) < 0.01, a.speed
    assert a.quality["jumps"] == 2


@pytest.mark.parametrize("at", [0.3, 0.7])
def test_a_short_stretch_lost_is_one_jump_not_a_ramp(at: float, tmp_path: Path) -> None:
    """12 tape frames (half a second) missing: the path jumps once where they were, rather
    than ramp across them with a drop every frame (0.935 and 0.941 of frames right before)."""
    gt = _four_shots(tmp_path)
    tape = make_tape(gt, tmp_path / "tape.mp4", _small_spec(5, lost=((at, 12),)))
    a = align(tape.path, gt)
    assert frame_accuracy(tape.mapping, a.mapping, identical_runs(gt)) >= 0.98


def test_viterbi_nulls_skips_and_repeats() -> None:
    # 3 frames with no GT, then GT 2, 3, 3 (repeat), 5 (drop), 6
    truth = [None, None, None, 2, 3, 3, 5, 6]
    s = np.full((len(truth), 8), 0.1, np.float32)
    for i, j in enumerate(truth):
        if j is not None:
            s[i, j] = 0.95
    assert viterbi(s, PathCosts()) == truth


def test_step_table_at_base_1_is_the_steps_of_one_gt_frame_a_tape_frame() -> None:
    c = PathCosts(dup=0.05, drop=0.08, drop2=0.3)
    want = -np.array(
        [
            [0.0, 0.08, 0.3, 0.38],  # the cadence expects 0: a step of 1 is a drop
            [0.05, 0.0, 0.08, 0.3],  # expects 1 (no cadence): 0 repeats, 2 and 3 drop
            [0.35, 0.05, 0.0, 0.08],  # expects 2
        ],
        np.float32,
    )
    assert np.array_equal(step_table(c), want)
    # at base 2 (a 50 fps GT of a 25 fps tape): 2 is free, a repeated tape frame costs a
    # repeat, 1 and 3 the drift of the rate, 4 and 5 a dropped tape frame
    row = -step_table(dataclasses.replace(c, base=2, short=0.01, drop=0.002, skip=0.05))[2]
    assert np.allclose(row, [0.05, 0.01, 0.0, 0.002, 0.05, 0.05])
    row = -step_table(dataclasses.replace(c, base=3, short=0.002, skip=0.05))[3]
    assert np.allclose(row, [0.05, 0.302, 0.002, 0.0, 0.08, 0.05, 0.05, 0.05])


def test_base_step_is_the_nearest_whole_rate() -> None:
    assert [base_step(r) for r in (0.4, 0.8, 1.0, 1.25, 1.49)] == [1, 1, 1, 1, 1]
    assert [base_step(r) for r in (1.67, 2.0, 2.083, 2.4)] == [2, 2, 2, 2]
    assert base_step(2.5) == 3
    assert base_step(120.0) == 8 and base_step(float("nan")) == 1  # (a slideshow; no rate)


def test_viterbi_at_two_and_a_half_gt_frames_a_tape_frame() -> None:
    # a 60 fps GT of a 25 fps tape at PAL speed: steps of 2 and 3, a repeated tape frame (0)
    # and a dropped one (5); every other GT frame is near its neighbours (0.85)
    truth = [None, None, 0, 2, 5, 7, 10, 12, 12, 15, 17, 22, 25, 27, 30, 32, 35]
    m = 38
    s = np.full((len(truth), m), 0.1, np.float32)
    for i, j in enumerate(truth):
        if j is not None:
            s[i, j] = 0.95
            s[i, max(0, j - 1)] = s[i, min(m - 1, j + 1)] = max(s[i, j - 1], 0.85)
            s[i, j] = 0.95
    for r in (2.5, 2.45):
        costs = align_module._rate_costs(r)
        assert costs.base == base_step(r)
        assert viterbi(s, costs) == truth, r
    # at base 1 the steps of 2 and 3 are drops: the path keeps to fewer of them
    assert viterbi(s, PathCosts()) != truth


def test_path_stats_count_from_the_base_step() -> None:
    path = [None, 0, 2, 5, 5, 7, 11, 20]
    assert path_stats(path, base=2) == {"repeats": 1, "drops": 3, "jumps": 1, "null": 1}
    assert path_stats([0, 1, 1, 3, 7], base=1) == {"repeats": 1, "drops": 1, "jumps": 1, "null": 0}


@pytest.mark.parametrize("gt_fps", [50.0, 60.0])
def test_align_a_gt_of_twice_the_tapes_frame_rate_or_more(gt_fps: float, tmp_path: Path) -> None:
    """A 50 or 60 fps remaster of a 25 fps tape (2.08 or 2.5 GT frames a tape frame at PAL
    speed): before, the path kept to steps of 1 to 3 and the second spatial round found no
    steady pair (0.06 of real-footage frames right, 3 px)."""
    gt = tmp_path / "gt.mp4"
    write_video(gt, render_footage(*GT_SIZE, (60, 70, 70), seed=3), gt_fps)
    spec = _small_spec(3, start=4.4)
    tape = make_tape(gt, tmp_path / "tape.mp4", spec)
    a = align(tape.path, gt)
    acc = frame_accuracy(tape.mapping, a.mapping, identical_runs(gt))
    assert acc >= 0.95, acc
    assert a.quality["spatial_samples"] > 0
    assert geometric_error(tape.transform, a.transform, *GT_SIZE) < 1.0
    assert abs(a.speed - spec.speed) < 0.02


def test_align_cli_json(runner: CliRunner, pans: tuple[Path, Tape]) -> None:
    gt, tape = pans
    r = runner.invoke(app, ["align", str(tape.path), str(gt), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out) == {"mapping", "transform", "offset", "speed", "confidence", "quality"}
    assert len(out["mapping"]) == len(out["confidence"]) == len(tape.mapping)
    assert np.array(out["transform"]).shape == (3, 3)
    assert out["mapping"][0] is None and isinstance(out["mapping"][-1], int)
    assert isinstance(out["offset"], float) and 1.0 < out["speed"] < 1.1


def test_the_align_command_ends_at_once_with_its_output_and_exit_code(
    pans: tuple[Path, Tape], tmp_path: Path
) -> None:
    """`filmdata align` as a process skips the interpreter's teardown of OpenCV, numpy and
    its arrays; its JSON and its exit codes are all there."""
    import subprocess

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code = "import sys; from filmdata.cli import main; sys.argv[0] = 'filmdata'; main()"
        return subprocess.run(
            [sys.executable, "-c", code, "align", *args],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    gt, tape = pans
    done = run(str(tape.path), str(gt), "--json")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["mapping"]) == len(tape.mapping)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(gt.read_bytes()[:2000])
    failed = run(str(tape.path), str(broken), "--json")
    assert failed.returncode == 2, failed.stderr
    assert failed.stderr.startswith("error: ") and str(broken) in failed.stderr


def test_align_cli_summary(runner: CliRunner, pans: tuple[Path, Tape]) -> None:
    gt, tape = pans
    r = runner.invoke(app, ["align", str(tape.path), str(gt), "-q"])
    assert r.exit_code == 0, r.output
    assert "offset" in r.output and "speed" in r.output


def test_offset_and_speed_are_null_where_no_frame_matched(
    runner: CliRunner, pans: tuple[Path, Tape]
) -> None:
    """With no frame matched (here: none scores the confidence asked for) there is no line to
    read an offset and speed from: null, the keys still there (they were 0 s and the frame
    rates' ratio, numbers unrelated to the mapping)."""
    gt, tape = pans
    args = ["align", str(tape.path), str(gt), "--min-confidence", "1"]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out) == {"mapping", "transform", "offset", "speed", "confidence", "quality"}
    assert all(m is None for m in out["mapping"]) and out["quality"]["matched"] == 0
    assert out["offset"] is None and out["speed"] is None
    r = runner.invoke(app, [*args, "-q"])
    assert r.exit_code == 0, r.output
    assert "offset and speed: none (no frame matched)" in r.output


def test_align_refuses_bad_input(runner: CliRunner, tmp_path: Path, clip: Path) -> None:
    r = runner.invoke(app, ["align", str(tmp_path / "nope.mp4"), str(clip)])
    assert r.exit_code == 2
    assert r.output.strip().count("\n") == 0 and "no such file" in r.output
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    r = runner.invoke(app, ["align", str(junk), str(clip)])
    assert r.exit_code == 2 and r.output.startswith("error:")
    assert r.output.strip().count("\n") == 0
    with pytest.raises(MediaError):
        align(junk, clip)


def _damage(src: Path, dst: Path, first: int) -> Path:
    """A copy of `src` whose video packets from the `first` on are overwritten with garbage
    (a damaged capture or download: the decoder refuses them)."""
    import av

    with av.open(str(src)) as c:
        packets = [(p.pos, p.size) for p in c.demux(c.streams.video[0]) if p.size]
    data = bytearray(src.read_bytes())
    for pos, size in packets[first:]:
        data[pos + 4 : pos + size : 7] = b"\xff" * len(range(pos + 4, pos + size, 7))
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("kept", [(0, 45), (20, 70)])
def test_a_gt_shorter_than_the_tapes_footage_is_not_held_past_its_ends(
    kept: tuple[int, int], tmp_path: Path, slow: tuple[Path, Tape]
) -> None:
    """A GT that is an excerpt of the tape's footage (a shorter edit, a remaster cut tighter,
    a clip): the path, unable to go past its last frame, repeated it on the tape's frames
    after it (15 and 20 frames here; a GT of the first 2 s of a 5 s real tape: its last frame
    on 72 tape frames, the speed fitted to them 0.004), and its first frame on those before
    it. A GT frame is held no longer than the frame rates allow (two tape frames here)."""
    gt, tape = slow
    lo, hi = kept
    excerpt = tmp_path / "excerpt.mp4"
    write_video(excerpt, iter(read_frames(gt, lo, hi)), 24.0)
    a = align(tape.path, excerpt)
    outside = [
        i for i, (t, m) in enumerate(zip(tape.mapping, a.mapping))
        if m is not None and (t is None or not lo <= t < hi)
    ]  # fmt: skip
    assert len(outside) <= 2 * (2 if lo else 1), (outside, a.mapping)
    truth = [t - lo if t is not None and lo <= t < hi else None for t in tape.mapping]
    assert frame_accuracy(truth, a.mapping, identical_runs(excerpt)) >= 0.8
    assert a.speed is not None and 1.0 < a.speed < 1.08, a.speed


def test_held_ends_takes_the_runs_on_the_gts_first_and_last_frames_and_their_neighbours() -> None:
    """Past the GT's end the path also held the frame before its last (an encoder's lag lets
    it be two frames late: a real 2 s excerpt's tape, 7 frames on it, then 2 on the last)."""
    held = align_module._held_ends
    tail = [None, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 8, 8, 8, 8, 9, 9]
    assert held(tail, 10, 2) == [None, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8] + [None] * 4 + [9, 9]
    head = [0, 0, 0, 1, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert held(head, 10, 2) == [None, 0, 0, None, None, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    steady = [None, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9]  # a repeat here and there stays
    assert held(steady, 10, 2) == steady


def test_a_file_whose_decode_breaks_early_is_refused_naming_it(
    runner: CliRunner, tmp_path: Path, pans: tuple[Path, Tape]
) -> None:
    """A decoder error ended a video's frames where it came, silently: a tape damaged after
    its 5th frame aligned as a 5-frame tape (exit 0, every frame null), a GT damaged early
    left the rest of the tape without GT, where `fetch` refuses such a file ("truncated: 29
    of 127 frames decode"). Refused (exit 2, one line naming the file) where the frames
    decoded fall short of the declared ones; a damaged last frame or two still aligns."""
    gt, tape = pans
    for lq, g, bad in (
        (_damage(tape.path, tmp_path / "lq.mp4", 5), gt, "lq.mp4"),
        (tape.path, _damage(gt, tmp_path / "gt.mp4", 5), "gt.mp4"),
    ):
        r = runner.invoke(app, ["align", str(lq), str(g), "--json"])
        assert r.exit_code == 2, r.output
        (line,) = r.output.strip().splitlines()
        assert line.startswith(f"error: {tmp_path / bad}: decode failed"), line
        with pytest.raises(MediaError, match="decode failed"):
            align(lq, g)
    n = len(tape.mapping)
    a = align(_damage(tape.path, tmp_path / "tail.mp4", n - 1), gt)
    m = len(a.mapping)  # (the frames the last packet in decode order held back are lost too)
    assert n - 4 <= m < n
    assert frame_accuracy(tape.mapping[:m], a.mapping, identical_runs(gt)) >= 0.95


def _remux(src: Path, dst: Path, shift: float = 0.0, gap: tuple[int, float] = (0, 0.0)) -> Path:
    """`src`'s video packets, not decoded, in `dst`'s container (by its name): their times
    moved by `shift` seconds (before 0: an mp4's pre-roll, which its edit list skips, as
    `ffmpeg -ss T -c copy` writes it; after: a stream that starts after its container), and
    by `gap` = (k, seconds) more from the k-th packet on (a variable frame rate)."""
    import av

    with av.open(str(src)) as c, av.open(str(dst), "w") as out:
        s = c.streams.video[0]
        t = out.add_stream_from_template(s)
        for k, p in enumerate(q for q in c.demux(s) if q.dts is not None):
            move = round((shift + (gap[1] if gap[0] and k >= gap[0] else 0.0)) / p.time_base)
            p.pts, p.dts, p.stream = p.pts + move, p.dts + move, t
            out.mux(p)
    return dst


def _cut(src: Path, dst: Path, share: float) -> Path:
    """The first `share` of `src`'s bytes (`head -c`: a copy or download stopped part-way)."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * share)])
    return dst


def test_a_file_cut_short_is_refused_naming_it(
    runner: CliRunner, tmp_path: Path, pans: tuple[Path, Tape]
) -> None:
    """A Matroska file cut in half (`head -c`) still declares all its frames, but its decode
    ends quietly at the cut, with no decoder error: the GT's (FFmpeg's threads) aligned the
    tape's frames past the cut to null, exit 0; the tape's (one thread) aligned half a tape.
    Refused (exit 2, one line naming the file and both counts) where the frames decoded
    fall short of MIN_DECODED of those declared, as a decoder error that ends them early."""
    gt, tape = pans
    gt_mkv = _remux(gt, tmp_path / "gt.mkv")
    lq_mkv = _remux(tape.path, tmp_path / "lq.mkv")
    for lq, g, bad in (
        (tape.path, _cut(gt_mkv, tmp_path / "half-gt.mkv", 0.5), "half-gt.mkv"),
        (_cut(lq_mkv, tmp_path / "half-lq.mkv", 0.5), gt, "half-lq.mkv"),
    ):
        r = runner.invoke(app, ["align", str(lq), str(g), "--json"])
        assert r.exit_code == 2, r.output
        (line,) = r.output.strip().splitlines()
        declared = 90 if bad == "half-gt.mkv" else len(tape.mapping)
        assert re.match(
            rf"error: {re.escape(str(tmp_path / bad))}: decode failed after \d+ of {declared} "
            "frames",
            line,
        ), line
        with pytest.raises(MediaError, match="decode failed after"):
            align(lq, g)


def test_files_that_declare_more_frames_than_decode_are_not_taken_for_cut_short(
    tmp_path: Path, pans: tuple[Path, Tape]
) -> None:
    """A decode that ends short of the frames a file declares is refused (a file cut short),
    but not where the count or the duration overstates them: an mp4 cut by `ffmpeg -ss T -c
    copy` counts the pre-roll its edit list skips (40 frames, 25 shown), a variable frame
    rate's duration at its frame rate counts the frames it skips, and a stream that starts
    after the container's start (a stream copy that dropped the frames before its first
    keyframe) does not last the container's duration."""
    from filmdata.pairing.descriptors import decode_gray

    gt, _ = pans  # 90 frames at 24 fps
    for name, kw in (
        ("preroll.mp4", {"shift": -1.0}),
        ("preroll.mkv", {"shift": -1.0}),
        ("gap.mkv", {"gap": (30, 3.0)}),
        ("gap.ts", {"gap": (30, 3.0)}),
        ("late.mkv", {"shift": 2.0}),
    ):
        path = _remux(gt, tmp_path / name, **kw)
        assert decode_gray(path, 32).frames >= 60, name  # (the pre-roll does not show in mp4)
    cut = _cut(_remux(gt, tmp_path / "gap-cut.mkv", gap=(30, 3.0)), tmp_path / "c.mkv", 0.5)
    with pytest.raises(MediaError, match="decode failed after"):
        decode_gray(cut, 32)


def test_align_refuses_a_folder_as_a_folder(runner: CliRunner, tmp_path: Path, clip: Path) -> None:
    """align takes two video files: a folder (as LQ or GT) was refused as "no such file", though
    it exists. It is refused (exit 2, one line) saying it is a folder; the library says so too."""
    folder = tmp_path / "tapes"
    folder.mkdir()
    for args in ([folder, clip], [clip, folder]):
        r = runner.invoke(app, ["align", *map(str, args)])
        assert r.exit_code == 2, r.output
        (line,) = r.output.strip().splitlines()
        assert line.startswith(f"error: {folder}: a folder, not a video file"), line
    with pytest.raises(MediaError, match="a folder, not a video file"):
        align(folder, clip)


def test_align_refuses_a_min_confidence_outside_0_1(
    runner: CliRunner, tmp_path: Path, clip: Path
) -> None:
    """A match scores in [0, 1] (its ZNCC, clamped at 0): a threshold of nan, inf or above 1
    mapped every frame to null, one below 0 kept every match, and both exited 0. Refused
    (exit 2, one line) before anything is decoded; the library says the same."""
    for bad in ("nan", "inf", "-inf", "1.01", "-0.5"):
        r = runner.invoke(app, ["align", str(clip), str(clip), "--min-confidence", bad, "-q"])
        assert r.exit_code == 2, (bad, r.output)
        assert r.output.strip().count("\n") == 0 and "--min-confidence" in r.output, r.output
        assert "[0, 1]" in r.output
    with pytest.raises(RefusedError, match="--min-confidence"):
        align(clip, clip, min_confidence=float("nan"))


def test_audio_match_finds_offset_and_pal_speed() -> None:
    from filmdata.pairing.audio import HOP, match

    rng = np.random.default_rng(0)
    gt = np.zeros(3000)  # 30 s of onsets at 10 ms
    gt[rng.choice(3000, 120, replace=False)] = rng.uniform(0.5, 2, 120)
    speed, offset = 25 / 24, 1.7  # t_lq = offset + t_gt / speed
    t_lq = np.arange(int(3000 / speed) + 300) * HOP
    t_gt = (t_lq - offset) * speed
    lq = np.interp(t_gt / HOP, np.arange(3000), gt, left=0, right=0)
    lq += rng.normal(0, 0.05, lq.shape)
    m = match(lq, gt)
    assert m is not None and m.speed == speed and m.clearance > 1.5
    assert abs(m.offset - offset) <= 2 * HOP


def _with_sound(path: Path, seconds: float, clicks: np.ndarray) -> None:
    """A small video file whose sound is short noise bursts at the times `clicks` (s)."""
    from filmdata.pairing.tapesim import SOUND_RATE, with_sound

    sound = np.zeros(int(seconds * SOUND_RATE), np.float32)
    burst = np.random.default_rng(1).normal(0, 0.4, 400).astype(np.float32)
    for t in clicks:
        k = int(t * SOUND_RATE)
        sound[k : k + 400] += burst[: len(sound[k : k + 400])]
    pictures = path.with_name(f"{path.stem}-pictures.mp4")
    frames = (np.full((48, 64, 3), (i * 7) % 255, np.uint8) for i in range(int(seconds * 12)))
    write_video(pictures, frames, 12.0)
    with_sound(pictures, sound, path)


def test_audio_offset_from_files(tmp_path: Path) -> None:
    from filmdata.pairing.audio import audio_offset

    rng = np.random.default_rng(2)
    clicks = np.sort(rng.uniform(0.2, 11.5, 25))
    speed, offset = 25 / 24, 0.8
    _with_sound(tmp_path / "gt.mp4", 12.0, clicks)
    _with_sound(tmp_path / "lq.mp4", 12.5, offset + clicks / speed)
    m = audio_offset(tmp_path / "lq.mp4", tmp_path / "gt.mp4")
    assert m is not None and m.speed == speed and m.clearance > 1.5
    assert abs(m.offset - offset) < 0.04
    assert audio_offset(tmp_path / "lq.mp4", tmp_path / "nope.mp4") is None


def test_the_sound_holds_the_search_only_where_the_tape_follows_it(tmp_path: Path) -> None:
    """A tape with sound that lost 3 s of its GT: the sound's line (clear, PAL speed) is
    the longer run's, and the search was held within 2 s of it along the whole tape, so the
    frames after the loss (3 s off the line) could not be found (a real music video's tape:
    0.577 of its frames right, 0.998 without its sound). Now only the frames whose sound on
    both sides follows the line are held to it."""
    import importlib

    A = importlib.import_module("filmdata.pairing.align")
    rng = np.random.default_rng(4)
    clicks = np.sort(rng.uniform(0.2, 23.5, 100))  # GT seconds
    speed, offset, cut, lost = 25 / 24, 0.8, 15.0, 3.0  # the tape misses GT [15, 18) s
    kept = (clicks < cut) | (clicks >= cut + lost)
    heard = offset + np.where(clicks < cut, clicks, clicks - lost)[kept] / speed
    _with_sound(tmp_path / "gt.mp4", 24.0, clicks)
    _with_sound(tmp_path / "lq.mp4", 21.0, heard)
    fl, fg = 25.0, 24.0
    s = np.zeros((int(21 * fl), int(24 * fg)), np.float32)
    m = A._audio_band(s, tmp_path / "lq.mp4", tmp_path / "gt.mp4", fl, fg)
    assert m is not None and m.speed == speed and m.clearance > A.AUDIO_CLEARANCE
    held = (s == -1).any(axis=1)
    at = int((offset + cut / speed) * fl)  # the tape frame of the loss
    assert held[int(4 * fl) : at - int(4 * fl)].all()  # the first run, away from its ends
    assert not held[at:].any()  # past the loss: the search is free


def test_tape_sound_follows_the_tapes_truth(tmp_path: Path) -> None:
    """The benchmark's tapes with sound: `with_sound` muxes a sound beside the pictures (read
    back by `read_sound`), and `tape_sound` puts each moment of the GT's sound under the tape
    frame that shows it (PAL-sped: 25 tape frames a second of 24 GT frames), hiss elsewhere."""
    from filmdata.pairing.tapesim import SOUND_RATE, read_sound, tape_sound, with_sound

    rate = SOUND_RATE
    silent = _four_shots(tmp_path)
    sound = np.zeros(int(160 / 24 * rate), np.float32)
    clicks = [1.0, 2.5, 4.0, 5.5]  # GT seconds
    for t in clicks:
        sound[int(t * rate) : int(t * rate) + 80] = 0.8
    gt = with_sound(silent, sound, tmp_path / "gt-sound.mp4")
    back = read_sound(gt)
    assert back is not None and abs(len(back) - len(sound)) < 0.1 * rate
    assert read_sound(silent) is None
    tape = make_tape(gt, tmp_path / "tape.mp4", _small_spec(5))
    heard = tape_sound(tape, sound, 24.0)
    assert len(heard) == int(len(tape.mapping) / 25.0 * rate)
    shown = {j: i for i, j in enumerate(tape.mapping) if j is not None}
    for t in clicks:
        at = (shown[int(t * 24)] + (t * 24) % 1) / 25.0  # the tape second that shows it
        k = int(at * rate)
        assert heard[k - 40 : k + 120].max() > 0.5, t  # the click, 0.8 less the band limit
    assert np.abs(heard[: int(0.2 * rate)]).max() < 0.15  # the noise head: hiss alone


@pytest.mark.parametrize("src", ["mkv", "mp4", "ts"])
@pytest.mark.parametrize("out", ["mkv", "mp4"])
def test_with_sound_copies_every_picture_of_any_container(
    src: str, out: str, tmp_path: Path
) -> None:
    """`with_sound` over an .mkv gave a file whose pictures do not decode ("no frame
    decodes"): it copied only packets with a dts, to pass over the demuxer's empty flush
    packet, and Matroska stores none for its keyframes and B-frames. Every picture comes
    through, from Matroska, MP4 and MPEG-TS into either, with the sound beside them."""
    from filmdata.pairing.tapesim import SOUND_RATE, read_sound, with_sound

    frames, _ = render_shots((20, 20, 20), 96, 64, seed=2)
    silent = tmp_path / f"silent.{src}"
    write_video(silent, frames, 24)
    sound = np.zeros(int(2.5 * SOUND_RATE), np.float32)
    made = with_sound(silent, sound, tmp_path / f"sound.{out}")
    assert np.array_equal(read_frames(made), read_frames(silent))
    back = read_sound(made)
    assert back is not None and abs(len(back) - len(sound)) < 0.1 * SOUND_RATE


def test_content_shift_and_neighbour_candidates() -> None:
    from filmdata.pairing.spatial import content_shift, grid_error, neighbour_candidates

    rng = np.random.default_rng(5)
    world = cv2_blur(rng.uniform(0, 255, (300, 400)).astype(np.float32), 2.0)
    a = world[50:250, 50:350]
    b = cv2_shift(world, 3.0, 2.0)[50:250, 50:350]  # the picture moved by (+3, +2)
    dx, dy = content_shift(a, b)
    assert abs(dx - 3) < 0.05 and abs(dy - 2) < 0.05
    sub = content_shift(a, cv2_shift(world, 0.5, -0.25)[50:250, 50:350])
    assert abs(sub[0] - 0.5) < 0.2 and abs(sub[1] + 0.25) < 0.2  # phase correlation's bias
    # a registration of frame a stands for frame b shifted back by that motion
    t = np.array([[0.5, 0, 10], [0, 0.5, 20], [0, 0, 1.0]])
    c = neighbour_candidates(t, {1: (dx, dy)})
    p = np.array([100.0, 80.0, 1.0])  # a point of a seen in b at p + (3, 2)
    q = c[1] @ (p + [dx, dy, 0])
    assert np.allclose(q, t @ p, atol=1e-6)
    assert grid_error(c[0], t, (300, 200)) == 0.0


def cv2_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(x, (0, 0), sigma)


def cv2_shift(x: np.ndarray, dx: float, dy: float) -> np.ndarray:
    import cv2

    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(x, m, x.shape[::-1], flags=cv2.INTER_CUBIC)


def test_consensus_keeps_a_frame_off_shot_from_pulling_the_geometry() -> None:
    from filmdata.pairing.spatial import (
        Estimate,
        combine,
        consensus,
        grid_error,
        neighbour_candidates,
    )

    rng = np.random.default_rng(7)
    truth = np.array([[0.25, 0, 12.3], [0, 0.25, 30.7], [0, 0, 1.0]])
    size = (1920, 1080)
    motions = [(3.0, 0.5), (-2.0, 2.5), (0.5, -3.0)]  # GT px per frame, one per shot
    off = [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0]  # shot 2's path is a frame late
    cands, ests = [], []
    for k, dj in enumerate(off):
        vx, vy = motions[k // 4]
        # registered on GT frame j + dj while the tape shows j: the geometry moves with it
        reg = truth @ np.array([[1, 0, -dj * vx], [0, 1, -dj * vy], [0, 0, 1.0]])
        reg = reg + np.diag([0, 0, 0.0]) + np.pad(rng.normal(0, 0.03, (2, 1)), ((0, 1), (2, 0)))
        shifts = {-1: (-vx, -vy), 1: (vx, vy)}
        cands.append(neighbour_candidates(reg, shifts))
        ests.append(Estimate(k, 100 * k + dj, reg, 0.9))
    picks = consensus(cands, size)
    assert picks == [-d for d in off]
    fixed = [Estimate(e.lq_frame, e.gt_frame + p, c[p], 0.9) for e, c, p in zip(ests, cands, picks)]
    assert grid_error(combine(fixed, size)[0], truth, size) < 0.05
    # the registrations as they came are pulled a quarter of shot 2's motion along
    assert grid_error(combine(ests, size)[0], truth, size) > 0.1


def _consensus_one_start_at_a_time(candidates, gt_size, cap=1.5, prefer=0.05):
    """`consensus` as first written: each start searched alone, its cost summed in order."""
    from filmdata.pairing.spatial import candidate_points

    offsets, pts, extra, cap = candidate_points(candidates, gt_size, cap, prefer)
    rows = np.arange(len(offsets))
    best_cost, best_pick, best_in = np.inf, [0] * len(offsets), set()
    for k, offs in enumerate(offsets):
        for start in pts[k, : len(offs)]:
            centre = start
            for _ in range(4):
                d2 = ((pts - centre) ** 2).sum(2).mean(2) + extra
                pick = d2.argmin(axis=1)
                at = d2[rows, pick]
                inl = at < cap**2
                if not inl.any():
                    break
                centre = pts[rows[inl], pick[inl]].mean(axis=0)
            cost = sum(min(v, cap**2) for v in at.tolist())
            if cost < best_cost:
                best_cost, best_pick = cost, pick.tolist()
                best_in = set(np.nonzero(inl)[0].tolist())
    return [offsets[k][q] if k in best_in else None for k, q in enumerate(best_pick)]


@pytest.mark.parametrize("noise", [0.02, 0.5, 4.0])
def test_consensus_of_all_starts_at_once_picks_as_one_start_at_a_time(noise: float) -> None:
    """The search runs every start at once (20 samples of 13 offsets: 260 starts); its picks
    are those of the loop it replaced, wrong matches and scatter too."""
    from filmdata.pairing.spatial import consensus, neighbour_candidates

    rng = np.random.default_rng(int(noise * 100))
    truth = np.array([[0.25, 0, 12.3], [0, 0.25, 30.7], [0, 0, 1.0]])
    size = (1920, 1080)
    cands = []
    for k in range(20):
        vx, vy = rng.normal(0, 3, 2)
        dj = int(rng.integers(-2, 3)) if k % 3 else 0
        reg = truth @ np.array([[1, 0, -dj * vx], [0, 1, -dj * vy], [0, 0, 1.0]])
        reg[:2, 2] += rng.normal(0, noise, 2)
        if k % 7 == 6:  # a wrong match: far off
            reg[:2, 2] += rng.normal(0, 40, 2)
        shifts = {d: (d * vx, d * vy) for d in range(-6, 7) if d}
        cands.append(neighbour_candidates(reg, shifts))
    assert consensus(cands, size) == _consensus_one_start_at_a_time(cands, size)


def test_scatter_is_the_median_distance_from_the_median_registration() -> None:
    from filmdata.pairing.spatial import scatter

    size = (640, 360)
    shifted = [np.array([[1, 0, dx], [0, 1, 0], [0, 0, 1.0]]) for dx in (0.0, 1.0, -1.0, 3.0)]
    assert scatter(shifted[:2], size) == 0.0  # too few to tell
    assert scatter(shifted, size) == pytest.approx(1.0)  # 0, 1, 1, 3 px from the median's 0.5


def test_consensus_averages_registrations_that_scatter_beyond_its_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Soft pictures under heavy noise register with scale and shear a percent or so off from
    pair to pair (2-5 tape px at the picture's edges): the two or three that happen to agree
    within the fixed cap must not stand for the geometry; the cap grows with the scatter and
    the mean of many settles it (eight draws of 24 such registrations)."""
    from filmdata.pairing import spatial
    from filmdata.pairing.spatial import Estimate, combine, consensus, grid_error
    from filmdata.pairing.spatial import neighbour_candidates as around

    truth = np.array([[0.408, 0, -20.9], [0, 0.403, 34.1], [0, 0, 1.0]])
    size = (1280, 720)
    errors: dict[str, list[float]] = {"grown": [], "fixed": []}
    grows = spatial.SCATTER_CAP
    for seed in range(8):
        rng = np.random.default_rng(seed)
        cands, ests = [], []
        for k in range(24):
            wobble = np.eye(3)
            wobble[:2, :2] += rng.normal(0, 0.01, (2, 2))
            reg = truth @ wobble
            cands.append(around(reg, {-1: (-0.3, 0.2), 1: (0.3, -0.2)}))
            ests.append(Estimate(k, 10 * k, reg, 0.9))
        assert spatial.scatter([e.transform for e in ests], size) > 1.5  # beyond the fixed cap
        for name, factor in (("grown", grows), ("fixed", 0.0)):
            monkeypatch.setattr(spatial, "SCATTER_CAP", factor)
            kept = [
                Estimate(e.lq_frame, e.gt_frame + q, c[q], 0.9)
                for e, c, q in zip(ests, cands, consensus(cands, size))
                if q is not None
            ]
            assert len(kept) >= 12 if name == "grown" else len(kept) <= 4
            errors[name].append(grid_error(combine(kept, size)[0], truth, size))
    assert np.mean(errors["grown"]) < 0.6 * np.mean(errors["fixed"])


def test_scattered_registrations_get_as_many_again(
    pans: tuple[Path, Tape], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the registrations scatter by more than SCATTER_MORE (here each made a few percent
    off in scale and shear, the same for the same pair), the spatial stage registers as many
    pairs again; where they agree, it does not."""
    import importlib

    from filmdata.pairing import spatial

    A = importlib.import_module("filmdata.pairing.align")
    gt, tape = pans
    real = spatial.ecc_register
    calls: list[bool] = []

    def counted(lq: np.ndarray, *args: object, wobble: bool = False, **kw: object) -> tuple:
        t, score = real(lq, *args, **kw)  # type: ignore[arg-type]
        calls.append(wobble)
        if wobble:  # drawn from the pair itself: the same in every run
            w = np.eye(3)
            w[:2, :2] += np.random.default_rng(int(lq.sum())).normal(0, 0.03, (2, 2))
            t = t @ w
        return t, score

    # the threshold in this 160x120 tape's pixels (a tenth of a 720p one's scatter)
    monkeypatch.setattr(A, "SCATTER_MORE", 0.5)
    counts = {}
    for wobble in (False, True):
        calls.clear()
        monkeypatch.setattr(
            spatial, "ecc_register", lambda *a, w=wobble, **k: counted(*a, wobble=w, **k)
        )
        A.align(tape.path, gt, samples=3)
        counts[wobble] = len(calls)
    assert counts[True] - counts[False] >= 3  # as many again (3), in a round at least


def test_ecc_registers_a_tape_blurred_along_its_lines_to_a_tenth_of_a_pixel() -> None:
    """A VHS-like picture: the GT scaled to the tape, blurred along the lines (the tape's
    bandwidth), noisy; from a guess a pixel off, the registration lands within 0.1 px."""
    import cv2

    from filmdata.pairing.spatial import ecc_register, grid_error

    for seed in range(3):
        rng = np.random.default_rng(seed)
        gt = cv2.GaussianBlur(rng.normal(128, 60, (360, 640)).astype(np.float32), (0, 0), 3.0)
        gt = np.clip((gt - gt.mean()) * 4 + 128, 0, 255).astype(np.uint8)
        truth = np.array([[0.75, 0, 12.3], [0, 0.75, 40.6], [0, 0, 1.0]])
        lq = cv2.warpPerspective(gt.astype(np.float32), truth, (480, 360), flags=cv2.INTER_AREA)
        lq = cv2.GaussianBlur(lq, (0, 0), sigmaX=2.5, sigmaY=0.01)
        lq = np.clip(lq + rng.normal(0, 8, lq.shape), 0, 255).astype(np.uint8)
        guess = np.array([[0.75, 0, 13.3], [0, 0.75, 39.6], [0, 0, 1.0]])
        t, score = ecc_register(lq, gt, guess, (30, 60, 420, 240))
        assert score > 0.9
        assert grid_error(t, truth, (640, 360)) < 0.1


def test_lag_is_free_only_across_near_identical_gt_frames() -> None:
    import importlib

    A = importlib.import_module("filmdata.pairing.align")
    rng = np.random.default_rng(3)
    m = A.LAG + 6
    gt = rng.normal(size=(m, 50)).astype(np.float32)
    gt[3] = gt[2] + 0.01 * rng.normal(size=50)  # frames 2 and 3 nearly the same
    gt /= np.linalg.norm(gt, axis=1, keepdims=True)
    change = 1.0 - np.einsum("ij,ij->i", gt[1:], gt[:-1])  # change[k]: from k to k + 1
    s = np.full((2, m), 0.1, np.float32)
    s[:, 2] = 0.9  # both tape frames look like GT 2 (its neighbour 3 is a still's twin)
    key = np.array([True, False])
    out = A._lagged(s, key, gt)
    assert np.array_equal(out[0], s[0])  # an intra-coded frame is taken as it is
    assert out[1, 3] > 0.89  # one late across a near-identical pair: about free
    # across distinct frames a lag costs: LAG_COST a unit of change over the LAG_NEAR frames
    # before j, LAG_FAR_COST further back (an encoder starved of bits trails a pan by several)
    near = A.LAG_COST * change[2 : 2 + A.LAG_NEAR].sum()
    assert out[1, 2 + A.LAG_NEAR] == pytest.approx(0.9 - near, abs=1e-5)
    j = 2 + A.LAG  # the LAG_NEAR steps nearest j at the full price, the others at the far one
    far = A.LAG_COST * change[j - A.LAG_NEAR : j].sum()
    far += A.LAG_FAR_COST * change[2 : j - A.LAG_NEAR].sum()
    assert out[1, j] == pytest.approx(0.9 - far, abs=1e-5)
    assert out[1, 2 + A.LAG] < out[1, 2 + A.LAG_NEAR] < 0.85
    assert out[1, 3 + A.LAG] == pytest.approx(0.1)  # past LAG frames: no help


def test_reach_lets_samples_several_frames_off_in_a_slow_pan_agree() -> None:
    import importlib

    from filmdata.pairing.spatial import Estimate, combine, consensus, grid_error

    A = importlib.import_module("filmdata.pairing.align")
    from filmdata.pairing.spatial import neighbour_candidates

    rng = np.random.default_rng(11)
    truth = np.array([[0.375, 0, 20.3], [0, 0.375, 45.2], [0, 0, 1.0]])
    size = (1280, 720)
    # a slow pan (0.9 GT px per frame: 0.34 tape px), a crawl and a faster pan
    motions = [(-0.5, -0.75), (0.05, 0.04), (2.5, -1.0)]
    off = [-4, -4, -5, -4, 0, 1, -1, 0, 0, 0, 0, 0]  # the slow pan's matches 4-5 frames early
    options = {1: [], 6: []}
    ests = []
    for k, dj in enumerate(off):
        vx, vy = motions[k // 4]
        reg = truth @ np.array([[1, 0, -dj * vx], [0, 1, -dj * vy], [0, 0, 1.0]])
        reg[:2, 2] += rng.normal(0, 0.03, 2)
        measured = {-1: (-vx, -vy), 1: (vx, vy)}
        for reach in options:
            options[reach].append(neighbour_candidates(reg, A._reach(measured, reach)))
        ests.append(Estimate(k, 100 * k + dj, reg, 0.9))
    assert A._reach({1: (0.5, 0.25)}, 3) == {
        1: (0.5, 0.25),
        -3: (-1.5, -0.75),
        -2: (-1.0, -0.5),
        -1: (-0.5, -0.25),
        2: (1.0, 0.5),
        3: (1.5, 0.75),
    }
    errors = {}
    for reach, cands in options.items():
        picks = consensus(cands, size)
        fixed = [
            Estimate(e.lq_frame, e.gt_frame + p, c[p], 0.9)
            for e, c, p in zip(ests, cands, picks)
            if p is not None
        ]
        errors[reach] = grid_error(combine(fixed, size)[0], truth, size)
        if reach > 1:  # the slow pan's samples take the offsets that undo their error
            assert picks[:4] == [-d for d in off[:4]]
    assert errors[6] < 0.05
    assert errors[1] > 0.2  # neighbours only: the slow pan pulls the geometry along


def test_joint_shift_brings_a_geometry_off_by_a_fraction_of_a_pixel_back(
    pans: tuple[Path, Tape], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spatial stage is made to return the true transform moved by (0.35, -0.3) tape px
    (about a frame's motion of a slow pan): the joint search over the whole tape's path
    brings it back."""
    import importlib

    A = importlib.import_module("filmdata.pairing.align")
    gt, tape = pans
    off = np.array([[1, 0, 0.35], [0, 1, -0.3], [0, 0, 1.0]]) @ tape.transform
    real = A._spatial

    def spatial_off(*args: object, **kw: object) -> tuple:
        _, est, spread = real(*args, **kw)
        return off.copy(), est, spread

    monkeypatch.setattr(A, "_spatial", spatial_off)
    monkeypatch.setattr(A, "FRESH_ANCHOR", False)  # (the joint search alone)
    monkeypatch.setattr(A, "JOINT", False)
    before = A.align(tape.path, gt)
    monkeypatch.setattr(A, "JOINT", True)
    after = A.align(tape.path, gt)  # the sharp pass on the unsure frames (a quarter of them)
    monkeypatch.setattr(A, "SHARP_ALL", -1.0)
    whole = A.align(tape.path, gt)  # ... on all of them
    e0 = geometric_error(tape.transform, before.transform, *GT_SIZE)
    e1 = geometric_error(tape.transform, after.transform, *GT_SIZE)
    e2 = geometric_error(tape.transform, whole.transform, *GT_SIZE)
    assert e0 > 0.4
    assert 0 < after.quality["sharp_rows"] < 1 and whole.quality["sharp_rows"] == 1
    assert e1 < 0.25 and e2 < 0.2, (e0, e1, e2)  # (here 0.46 -> 0.18, 0.11)
    for a in (after, whole):
        acc = frame_accuracy(tape.mapping, a.mapping, identical_runs(gt))
        assert acc >= 0.95, acc


def test_joint_shift_stencil_is_the_crops_products_and_leaves_the_gt_as_it_was() -> None:
    """`_stencil` (the tape's descriptor images moved a grid step against the GT's, as runs
    of their rows over a GT with its border zeroed) gives the products of the crops of the
    images less their border, and puts the GT's border back."""
    import importlib

    from filmdata.pairing import temporal

    A = importlib.import_module("filmdata.pairing.align")
    rng = np.random.default_rng(12)
    w, h, n, m = 23, 9, 40, 37
    lq = rng.normal(size=(n, h * w)).astype(np.float32)
    gt = rng.normal(size=(m, h * w)).astype(np.float32)
    kept = gt.copy()
    centre = np.linspace(1, 35, n)
    l3, g3 = lq.reshape(n, h, w), gt.reshape(m, h, w)[:, 1:-1, 1:-1]
    steps = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))
    for rows in (None, rng.random(n) > 0.5):
        got = A._stencil(lq, gt, (w, h), centre, 4, rows)
        crops = [l3[:, 1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx] for dx, dy in steps]
        want = temporal.band_similarities(crops, g3, centre, radius=4, rows=rows)
        for a, b in zip(got, want, strict=True):
            assert np.allclose(a, b, atol=1e-5) and np.array_equal(a == -1, b == -1)
        assert np.array_equal(gt, kept)


def test_path_score_is_the_best_paths_score_to_the_bit() -> None:
    from filmdata.pairing.temporal import PathCosts, best_path, path_scores

    rng = np.random.default_rng(5)
    for trial in range(40):
        n, m = (int(v) for v in rng.integers(1, 50, 2))
        s = (rng.random((n, m)) * 1.5 - 0.5).astype(np.float32)
        if trial % 3 == 0:
            s[:, ::3] = -1.0  # a band's outside
        c = PathCosts(
            null=float(rng.random()),
            dup=float(rng.random() * 0.1),
            tolerance=0.02 if trial % 4 == 0 else 0.0,
            base=1 + trial % 3,  # and steps counted from 2 or 3 GT frames (a 50/60 fps GT)
        )
        assert path_scores(s[None], c) == [best_path(s, c)[1]], trial
        # several at once: each its own score, to the bit
        stack = np.stack([s, s[:, ::-1] * 0.5, np.roll(s, 1, axis=1)])
        assert path_scores(stack, c) == [best_path(x, c)[1] for x in stack], trial


def test_band_similarity_of_some_rows_is_theirs_and_minus_one_elsewhere() -> None:
    from filmdata.pairing.temporal import band_similarity

    rng = np.random.default_rng(8)
    lq = rng.normal(size=(50, 16)).astype(np.float32)
    gt = rng.normal(size=(60, 16)).astype(np.float32)
    centre = np.linspace(3, 55, 50)
    full = band_similarity(lq, gt, centre, radius=4)
    rows = np.zeros(50, bool)
    rows[[0, 17, 18, 49]] = True
    part = band_similarity(lq, gt, centre, radius=4, rows=rows)
    assert np.allclose(part[rows], full[rows], atol=1e-5)
    assert (part[~rows] == -1).all()


def test_band_similarities_on_two_threads_are_the_same_bits(monkeypatch) -> None:
    """Where BLAS runs on one thread and the products are large, the blocks go to two
    threads: each block is the same product, so every value is the same bit."""
    from filmdata.pairing import temporal

    rng = np.random.default_rng(9)
    lqs = [rng.normal(size=(150, 8, 12)).astype(np.float32) for _ in range(3)]
    gt = rng.normal(size=(140, 8, 12)).astype(np.float32)
    centre = np.linspace(2, 137, 150)
    rows = rng.random(150) > 0.3
    pools: list[int] = []
    real = temporal.ThreadPoolExecutor

    def pool(n: int) -> object:
        pools.append(n)
        return real(n)

    for pick in (None, rows):
        monkeypatch.setattr(temporal, "_blas_single_threaded", lambda: False)
        one = temporal.band_similarities(lqs, gt, centre, radius=8, rows=pick)
        monkeypatch.setattr(temporal, "_blas_single_threaded", lambda: True)
        monkeypatch.setattr(temporal, "THREADED_PRODUCTS", 0)
        monkeypatch.setattr(temporal, "ThreadPoolExecutor", pool)
        two = temporal.band_similarities(lqs, gt, centre, radius=8, rows=pick)
        monkeypatch.undo()
        for a, b in zip(one, two, strict=True):
            assert a.tobytes() == b.tobytes()
    assert pools == [2, 2]


def test_viterbi_on_a_gt_of_two_or_three_frames() -> None:
    """The jump candidates need five GT frames; fewer must not break the path."""
    rng = np.random.default_rng(2)
    for m in (1, 2, 3, 4):
        path = viterbi(rng.random((6, m)).astype(np.float32) + 0.5)
        steps = [b - a for a, b in zip(path, path[1:]) if a is not None and b is not None]
        assert len(path) == 6 and all(s >= 0 for s in steps), path


def test_fine_descriptors_split_exactly_and_band_pass() -> None:
    """Two halves on a pool give the same rows as one pass, and the band-pass is a difference
    of Gaussians (sigma 1 and 4)."""
    from concurrent.futures import ThreadPoolExecutor

    import cv2

    from filmdata.pairing import descriptors as dsc

    rng = np.random.default_rng(5)
    frames = [
        cv2.GaussianBlur(rng.integers(0, 256, (90, 120), dtype=np.uint8), (0, 0), 1.5)
        for _ in range(5)
    ]
    m = np.array([[1.1, 0, 7.3], [0, 1.1, 4.6], [0, 0, 1]])
    one = dsc.fine(frames, m, (96, 72))
    with ThreadPoolExecutor(2) as pool:
        assert np.array_equal(dsc.fine(frames, m, (96, 72), pool=pool), one)
        # some frames only (the sharp pass on the unsure ones): those rows, zeros elsewhere
        some = dsc.fine(frames, m, (96, 72), pool=pool, only=np.array([1, 3, 4]))
    assert np.allclose(some[[1, 3, 4]], one[[1, 3, 4]], atol=1e-6)
    assert not some[[0, 2]].any()
    assert np.allclose(np.einsum("ij,ij->i", one, one), 1.0, atol=1e-4)  # unit rows
    for size in ((72, 96), (97, 160), (272, 453)):  # (odd and even sides)
        x = cv2.GaussianBlur(rng.random(size, np.float32), (0, 0), 2.0)  # detail at all scales
        out = np.empty_like(x)
        dsc.band_pass(x, out)
        dog = cv2.GaussianBlur(x, (0, 0), 1.0) - cv2.GaussianBlur(x, (0, 0), 4.0)
        # normalised as descriptors are, the borders too: within 1e-3 (its sigma-4 blur made
        # at half size: 5e-4; without the mirrored margin, its borders took it to 2e-2-5e-2; the
        # sigma-1 blur alone, 0.5)
        a, b = (v.ravel() - v.mean() for v in (out, dog))
        assert np.linalg.norm(a / np.linalg.norm(a) - b / np.linalg.norm(b)) < 1e-3


def test_lag_forgives_a_p_frame_behind_not_ahead() -> None:
    """A P-frame may show its GT frame late (lag), never early: its score for GT frames before
    its best match falls twice as fast, for frames after it the lag price holds; a B-frame
    (forward False) keeps its plain lagged score."""
    from filmdata.pairing.align import _lagged

    rng = np.random.default_rng(2)
    gt = rng.normal(size=(12, 64)).astype(np.float32)
    gt /= np.linalg.norm(gt, axis=1, keepdims=True)
    s = np.tile(np.linspace(0.5, 0.9, 12, dtype=np.float32), (2, 1))
    s[:, 6:] = 0.9 - 0.05 * np.arange(1, 7, dtype=np.float32)[None, :]  # best at 6 (0.85)
    key = np.array([False, False])
    plain = _lagged(s, key, gt)
    lead = _lagged(s, key, gt, forward=np.array([True, False]))
    assert np.array_equal(lead[1], plain[1])  # the B-frame
    assert np.allclose(lead[0, 6:], plain[0, 6:])  # at and after its best: the lag price
    behind = plain[0, 6] - plain[0, :6]
    assert np.all(behind > 0)
    assert np.allclose(plain[0, 6] - lead[0, :6], 2 * behind, atol=1e-6)  # LEAD_WEIGHT 1


def test_fine_keeps_the_tapes_descriptors_while_the_grid_stays() -> None:
    """The tape's fine descriptors depend on the grid only: a call whose grid is the last
    call's reuses them (the very values a fresh call makes); a geometry that moves the grid,
    or a sharp pass on frames not described yet, makes them again."""
    import importlib

    import cv2

    from filmdata.pairing.descriptors import GrayVideo

    A = importlib.import_module("filmdata.pairing.align")
    rng = np.random.default_rng(3)

    def video(n: int, w: int, h: int) -> GrayVideo:
        full = [
            cv2.GaussianBlur(rng.integers(0, 256, (h, w), dtype=np.uint8), (0, 0), 2.0)
            for _ in range(n)
        ]
        small = np.stack(
            [cv2.resize(f, (160, 160 * h // w), interpolation=cv2.INTER_AREA) for f in full]
        )
        return GrayVideo("v", 25.0, w, h, small, dict(enumerate(full)), 1.0)

    lv, gv = video(6, 320, 240), video(7, 400, 300)
    box = (0.0, 0.0, 320.0, 240.0)
    t = np.array([[0.8, 0, 0.3], [0, 0.8, -0.2], [0, 0, 1.0]])
    bufs: dict[str, np.ndarray] = {}
    lq1, gt1 = A._fine(lv, gv, t, box, bufs)
    first = lq1.copy()
    lq2, gt2 = A._fine(lv, gv, t, box, bufs)  # the same grid: the same descriptors, kept
    assert lq2 is lq1 and np.array_equal(lq2, first)
    moved = np.array([[1, 0, 0], [0, 1, -3.0], [0, 0, 1.0]]) @ t  # the picture's top moves
    lq3, _ = A._fine(lv, gv, moved, box, bufs)
    fresh, _ = A._fine(lv, gv, moved, box, {})
    assert np.array_equal(lq3, fresh) and not np.array_equal(lq3, first)
    # the sharp pass: rows described for some frames are no answer for others
    sharp: dict[str, np.ndarray] = {}
    centre = np.linspace(0, 6, 6)
    some = np.array([True, False, False, True, False, False])
    A._fine(lv, gv, t, box, sharp, sharp=True, rows=some, centre=centre)
    more = some | np.array([False, True, False, False, False, False])
    lq4, _ = A._fine(lv, gv, t, box, sharp, sharp=True, rows=more, centre=centre)
    whole, _ = A._fine(lv, gv, t, box, {}, sharp=True)
    assert np.allclose(lq4[more], whole[more], atol=1e-6)  # (row by row: float rounding)


def _gop_video(path: Path, options: dict[str, str], seconds: float = 6.0, fps: int = 25) -> Path:
    """A moving texture with a keyframe every 20 frames and B-frames (x264's defaults)."""
    rng = np.random.default_rng(4)
    tex = rng.integers(0, 256, (140, 260, 3), dtype=np.uint8)
    n = int(seconds * fps)
    frames = (np.roll(tex, (k, 2 * k), axis=(0, 1))[:96, :160] for k in range(n))
    write_video(path, frames, fps, crf=23, options={"g": "20", "keyint_min": "20", **options})
    return path


@pytest.mark.parametrize(
    "name, options",
    [("closed.mp4", {}), ("open.mkv", {"x264-params": "open-gop=1"})],  # leading B-frames
)
def test_decoding_in_halves_gives_the_very_frames_of_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, options: dict[str, str]
) -> None:
    """The second half decoded from its keyframe on a thread of its own joins the first's to
    the frame: the same small frames, kept frames, frame types, in order; and where the join
    does not hold, the first half goes on to the end alone, with the same result."""
    import importlib
    import threading

    D = importlib.import_module("filmdata.pairing.descriptors")
    path = _gop_video(tmp_path / name, options)
    plain = D.decode_gray(path, 64, 1, 80, threads=1)
    joins: list[int] = []
    extend = D._Sink.extend

    def counted(self: object, first: int, described: list) -> None:
        if threading.current_thread() is threading.main_thread() and len(described) > 1:
            joins.append(first)
        extend(self, first, described)

    monkeypatch.setattr(D._Sink, "extend", counted)

    def same(a: object) -> None:
        assert np.array_equal(a.small, plain.small)
        assert a.kept.keys() == plain.kept.keys()
        assert all(np.array_equal(a.kept[k], plain.kept[k]) for k in plain.kept)
        assert np.array_equal(a.key, plain.key) and np.array_equal(a.forward, plain.forward)

    same(D.decode_gray(path, 64, 1, 80, halves=True))
    assert len(joins) == 1 and 40 <= joins[0] <= 110, joins  # joined near the middle
    # a second half whose first picture is not the first half's there: no join
    describe = D._Sink.describe

    def off(self: object, i: int, frame: object) -> tuple:
        kept, small, *rest = describe(self, i, frame)
        if threading.current_thread().name == "decode second half":
            small = small + 1
        return kept, small, *rest

    monkeypatch.setattr(D._Sink, "describe", off)
    joins.clear()
    same(D.decode_gray(path, 64, 1, 80, halves=True))
    assert not joins


def test_a_video_of_one_keyframe_is_decoded_whole_on_the_decoders_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No keyframe but the first (a short clip of one shot): no second half to run, so the
    decoder's own threads decode it (not one thread alone); the very frames of one pass."""
    import importlib

    import av

    D = importlib.import_module("filmdata.pairing.descriptors")
    path = _gop_video(tmp_path / "one.mp4", {"x264-params": "keyint=10000:scenecut=0"})
    with av.open(str(path)) as c:
        assert sum(p.is_keyframe for p in c.demux(c.streams.video[0])) == 1
    plain = D.decode_gray(path, 64, 1, 80, threads=1)
    counts: list[int] = []
    decode_into = D._decode_into

    def seen(c: object, v: object, path: str, threads: int, sink: object, bar: object) -> None:
        counts.append(threads)
        decode_into(c, v, path, threads, sink, bar)

    monkeypatch.setattr(D, "_decode_into", seen)
    got = D.decode_gray(path, 64, 1, 80, threads=2, halves=True)
    assert counts == [2]
    assert np.array_equal(got.small, plain.small) and got.kept.keys() == plain.kept.keys()
    assert all(np.array_equal(got.kept[k], plain.kept[k]) for k in plain.kept)


def test_a_noisy_tape_keeps_its_low_scoring_matches(tmp_path: Path) -> None:
    """Under heavy noise and blur, soft pictures match their GT frames at 0.3-0.45: the default
    confidence keeps them (1.000 of this tape's frames right in 3 encodings of it; at 0.45,
    0.76-0.78), while the frames with no GT stay null."""
    import importlib

    A = importlib.import_module("filmdata.pairing.align")
    gt = tmp_path / "gt.mp4"
    write_video(gt, render_footage(*GT_SIZE, (30, 30, 30), seed=3, slow=False), 24.0)
    spec = _small_spec(3, blur=2.5, smear=5.0, noise=12, crf=40)
    tape = make_tape(gt, tmp_path / "tape.mp4", spec)
    a = align(tape.path, gt)
    same = identical_runs(gt)
    assert frame_accuracy(tape.mapping, a.mapping, same) >= 0.95
    head = spec.head + spec.ident
    assert all(m is None for m in a.mapping[:head])
    matched = [c for c in a.confidence if c > 0]
    assert min(matched) < 0.45  # the matches the old default dropped
    strict = align(tape.path, gt, min_confidence=0.45)
    assert frame_accuracy(tape.mapping, strict.mapping, same) < 0.9
    assert A.MIN_CONFIDENCE == 0.25


def test_a_tape_of_other_footage_maps_nothing_and_says_so(tmp_path: Path) -> None:
    """A tape whose GT is other footage: no frame mapped, no frame pair registered; the table
    says so and --json gives null for the spread (strict JSON), not a crash or a NaN."""
    from conftest import make_clip

    tape, _ = make_clip(tmp_path / "tape.mp4", (24,), (96, 64), seed=1)
    other, _ = make_clip(tmp_path / "other.mp4", (24,), (96, 64), seed=7)
    runner = CliRunner()
    table = runner.invoke(app, ["align", str(tape), str(other), "--quiet"])
    assert table.exit_code == 0, table.output
    assert "0 mapped" in table.output and "no frame pair registered" in table.output
    out = runner.invoke(app, ["align", str(tape), str(other), "--json", "--quiet"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.output, parse_constant=lambda c: pytest.fail(f"{c} in --json"))
    assert got["mapping"] == [None] * 24 and got["quality"]["spatial_spread_px"] is None


def test_band_similarity_is_each_dot_product_within_the_radius_inclusive() -> None:
    from filmdata.pairing.temporal import band_similarity

    rng = np.random.default_rng(4)
    lq = rng.normal(size=(20, 6)).astype(np.float32)
    gt = rng.normal(size=(30, 6)).astype(np.float32)
    centre = np.linspace(2.2, 27.4, 20)
    got = band_similarity(lq, gt, centre, radius=3)
    dist = np.abs(np.arange(30)[None, :] - np.round(centre)[:, None])
    want = np.where(dist <= 3, lq @ gt.T, -1.0)
    assert np.allclose(got, want, atol=1e-5)
    assert ((got != -1).sum(1) >= 4).all()  # the band's edges (|j - c| = 3) are in it


def test_viterbi_jumps_over_four_gt_frames_where_the_jump_is_cheap() -> None:
    # the shortest jump is one step past the step table (4 GT frames at base 1)
    for skip in (4, 5, 7):
        truth = [0, 1, 2, 3] + [3 + skip + k for k in range(4)]
        s = np.full((len(truth), truth[-1] + 2), 0.1, np.float32)
        s[np.arange(len(truth)), truth] = 0.95
        assert viterbi(s, PathCosts(jump=0.2)) == truth, skip


def test_viterbi_tolerance_flattens_a_rows_best_scores() -> None:
    from filmdata.pairing.temporal import best_path

    # GT frame 2 beats 1 by 0.09, more than the drop it costs (0.08): without a tolerance the
    # path drops; with a tolerance of 0.1 both score 0.89 and the steady step wins
    s = np.array([[0.9, 0.1, 0.1], [0.1, 0.9, 0.99]], np.float32)
    assert viterbi(s, PathCosts()) == [0, 2]
    assert viterbi(s, PathCosts(tolerance=0.1)) == [0, 1]
    one_row = np.array([[0.5, 0.9, 0.89]], np.float32)
    assert best_path(one_row, PathCosts(tolerance=0.02))[1] == pytest.approx(0.88)


def test_fit_rate_keeps_points_within_three_frames_of_a_tight_line() -> None:
    # every fifth frame two GT frames late (P-frames trailing): all within 3 frames of the
    # line, so all are fitted, though 3 x the median residual would leave them out
    from filmdata.pairing.temporal import fit_rate

    path: list[int | None] = [int(4 + 1.25 * i) + (2 if i % 5 == 0 else 0) for i in range(200)]
    pts = np.array([(i, j) for i, j in enumerate(path) if j is not None], float)
    want = np.polyfit(pts[:, 0], pts[:, 1], 1)
    assert np.allclose(fit_rate(path)[::-1], want)


def test_unramp_takes_skips_two_steps_of_one_apart_for_one_ramp() -> None:
    from filmdata.pairing.temporal import unramp

    n = 32
    truth = [i if i < 16 else i + 6 for i in range(n)]  # 6 GT frames lost after row 15
    steps = [2, 1, 1] * 5 + [2]  # rows 10 .. 25: six skips, each two steps of one apart
    ramp = list(range(10))
    for d in steps:
        ramp.append(ramp[-1] + d)
    ramp += [i + 6 for i in range(len(ramp), n)]
    assert ramp[25] == truth[25]
    s = np.full((n, 40), 0.4, np.float32)
    s[np.arange(n), ramp] = 0.85
    s[np.arange(n), truth] = 0.9
    assert unramp(ramp, s, PathCosts()) == truth


def test_cadence_searches_the_rate_finer_than_a_frame_over_the_tape() -> None:
    # a clean 24/25 path given a rate 1.5 GT frames off over the tape: the search around it
    # (steps of a tenth of a frame over the tape) finds the one that agrees everywhere
    n, rate = 400, 24 / 25
    path: list[int | None] = [int(np.floor(0.37 + rate * i)) for i in range(n)]
    e, agree = cadence(path, rate + 1.5 / (n - 1))
    assert agree == 1.0
    assert (e[1:] == np.diff(path)).all()


def test_initial_guess_fits_the_gt_pictures_edges_to_the_boxs() -> None:
    from filmdata.pairing.spatial import initial_guess

    def corners(t: np.ndarray, gw: int, gh: int) -> np.ndarray:
        c = np.array([[-0.5, -0.5, 1.0], [gw - 0.5, gh - 0.5, 1.0]]).T  # pixel edges
        return (t @ c)[:2].T

    # a 320x180 GT in the box x 10, y 5, 160 x 90: its outer edges on the box's
    t = initial_guess((10, 5, 160, 90), (320, 180))
    assert np.allclose(corners(t, 320, 180), [[9.5, 4.5], [169.5, 94.5]])
    # a box 6% wider than the GT's aspect (part of a bar in it): the wider side's scale, centred
    t = initial_guess((10, 5, 170, 90), (320, 180))
    assert t[0, 0] == t[1, 1] == pytest.approx(170 / 320)
    assert np.allclose(corners(t, 320, 180).mean(0), [10 + 85 - 0.5, 5 + 45 - 0.5])


def test_grid_error_is_the_mean_euclidean_distance() -> None:
    from filmdata.pairing.spatial import grid_error

    moved = np.array([[1.0, 0, 3], [0, 1, 4], [0, 0, 1]])
    assert grid_error(np.eye(3), moved, (64, 48)) == pytest.approx(5.0)


def test_combine_leaves_out_estimates_far_from_the_median() -> None:
    from filmdata.pairing.spatial import Estimate, combine, grid_error

    truth = np.array([[0.5, 0.01, 10.0], [0.0, 0.5, 5.0], [0, 0, 1]])
    off = truth + np.array([[0, 0, 20.0], [0, 0, 0], [0, 0, 0]])
    ests = [Estimate(i, i, truth, 0.9) for i in range(5)]
    ests += [Estimate(5 + i, 5 + i, off, 0.9) for i in range(2)]
    t, spread = combine(ests, (320, 180))
    assert grid_error(t, truth, (320, 180)) < 1e-9
    assert spread == 0.0


def test_a_noisy_letterbox_bar_is_left_out_of_the_active_box() -> None:
    """A heavy tape's bottom bar carries noise (4-5 grey levels at 160 px, a third of the
    picture's activity): it was taken for picture, and the coarse match over a box holding it
    found no GT at all (a procedural pans tape, 0 of 259 frames). The picture's edge is where
    the activity rises half way; the edges of a clean bar, or of no bar, stay where they were."""
    from filmdata.pairing import descriptors as dsc

    rng = np.random.default_rng(5)
    n, h, w = 40, 120, 160
    frames = np.empty((n, h, w), np.float32)
    frames[:, :11] = 40.0  # a clean top bar
    frames[:, 11:109] = rng.normal(110, 12, (n, 98, w))  # the picture
    frames[:, 109:] = rng.normal(40, 4.5, (n, 11, w))  # a noisy bottom bar
    small = np.clip(frames, 0, 255).astype(np.uint8)
    x, y, bw, bh = dsc.active_box(small)
    assert (x, bw) == (0, w) and y == 11 and 108 <= y + bh <= 110, (y, y + bh)
    clean = small.copy()
    clean[:, 109:] = 40
    assert dsc.active_box(clean)[1:4:2] == (11, 98)
    full = np.clip(rng.normal(110, 12, (n, h, w)), 0, 255).astype(np.uint8)  # no bar
    assert dsc.active_box(full) == (0, 0, w, h)


def test_the_speed_s_skips_stay_on_the_gt_s_frames_through_a_drop_and_a_repeat() -> None:
    """A 25 fps GT at PAL speed (25/24 GT frames a tape frame) skips one GT frame in 25, fixed
    on the GT's frames: a tape frame dropped at 99 and one repeated at 190 move every later
    skip by a tape frame (`cadence`'s one phase misses them between the two), not which GT
    frames are skipped. `lattice` finds those from a path with stray errors, and the path
    under them puts every skip back where it is, where the scores are flat around them."""
    from filmdata.pairing.temporal import best_path, lattice, lattice_steps

    rate, n = 25 / 24, 260
    truth = [int(np.floor(0.37 + rate * i)) for i in range(n + 1)]
    del truth[99]
    truth.insert(190, truth[189])
    truth = truth[:n]
    m = truth[-1] + 2
    skipped = np.ones(m, bool)
    skipped[truth] = False
    rng = np.random.default_rng(3)
    path: list[int | None] = list(truth)
    for i in rng.choice(np.arange(5, n - 5), 5, replace=False):
        path[i] = None if i % 2 else path[i - 1]
    found = lattice(path, rate, m)
    assert found is not None
    skipped[truth[98] + 1] = False  # (the drop's GT frame: no skip of the speed's)
    assert (found[truth[0] : truth[-1]] == skipped[truth[0] : truth[-1]]).all()
    # the scores cannot tell a GT frame from its neighbours around each of the speed's skips
    # (a slow pan); they place the drop and the repeat
    s = np.full((n, m), 0.1, np.float32)
    for i, j in enumerate(truth):
        s[i, max(0, j - 1) : j + 2] = 0.5
        s[i, j] = 0.9
    for i in range(1, n):
        if truth[i] - truth[i - 1] == 2 and i != 99:
            for k in range(max(0, i - 3), min(n, i + 3)):
                s[k, max(0, truth[k] - 1) : truth[k] + 2] = 0.9
    costs = PathCosts(null=0.45, dup=0.03, drop=0.05)
    path_gt, _ = best_path(s, costs, on_gt=lattice_steps(found, costs))
    assert path_gt == truth
    assert lattice([None, 4, None], rate, m) is None and lattice(path, 24 / 25, m) is None


def test_a_short_pal_tapes_skips_fall_on_the_gt_frames_of_its_nominal_rate() -> None:
    """A 5 s PAL tape of a 25 fps GT (bunny, seed 3 of `benchmarks/align.py --vary`): the
    path left out a skip of the speed's and the repeat before it, and with the drop the
    fitted rate ran 0.2 GT frames slow over the tape; the GT frames `lattice` puts the skips
    on then drift off the true ones by a frame in 25. Snapped to 25/24 they fall on them."""
    from filmdata.pairing.temporal import fit_rate, lattice

    skips = {48, 57, 71, 120}  # tape frames where the path steps 2 (57: the tape's drop)
    path: list[int | None] = [None] * 28 + [18]
    for i in range(29, 134):
        path.append(path[-1] + (2 if i in skips else 1))  # type: ignore[operator]
    r = fit_rate(path)[1]
    assert r != pytest.approx(25 / 24, abs=1e-3)
    nominal = align_module._nominal(r, 1.0, len(path))
    assert nominal == 25 / 24
    speeds = {38, 63, 88, 113}  # GT frames the speed skips (the tape also drops GT frame 48)
    for rate, right in ((r, False), (nominal, True)):
        found = lattice(path, rate, 150)
        assert found is not None
        assert (set(np.nonzero(found[30:130])[0] + 30) == speeds) == right
    # far from every nominal rate, or a pulldown's (an irregular step in five): none
    assert align_module._nominal(1.08, 1.0, 134) is None
    assert align_module._nominal(0.8026, 24 * 1001 / 30000, 377) is None


def _late_skips(rate: float) -> tuple[list[int | None], list[int | None], set[int], int, int]:
    """A tape at `rate` GT frames a tape frame after a snow head of 20, that dropped tape
    frame 45 and repeated 120, and a path of it whose skips in tape frames 81-100 came a
    frame late (x264's B-frames smear a dense skip over their mini-GOP): (truth, path, the
    GT frames the speed skips between the path's first and last, first, last)."""
    shown = [int(np.floor(rate * i + 0.3)) for i in range(230)]  # tape frame i at speed
    truth: list[int | None] = shown[:45] + shown[46:121] + [shown[120]] + shown[121:]
    truth = [None] * 20 + truth[20:200]
    path = list(truth)
    for i in range(81, 101):
        if truth[i] - truth[i - 1] == 2:
            path[i] = truth[i] - 1
    lo, hi = path[20], path[-1]
    return truth, path, set(range(lo + 1, hi)) - set(shown), lo, hi


def _lattice_skips(path: list[int | None], r: float, lo: int, hi: int, **kw: float) -> set[int]:
    from filmdata.pairing.temporal import lattice

    found = lattice(path, r, 260, **kw)
    assert found is not None
    return {int(j) for j in np.nonzero(found)[0] if lo < j < hi}


def test_a_30_fps_gts_dense_skips_hold_their_phase_at_its_nominal_rate() -> None:
    """A 10 s PAL tape of a 30 fps GT skips a GT frame every fourth tape frame (1.25 GT
    frames a tape frame); x264's B-frames smear a skip over their mini-GOP of four, and the
    path had five skips in a row a frame late (bikes, 0.891 of frames right). That moved the
    fitted rate 0.4% off, and at it the lattice's phase followed the late skips. The nominal
    rate is taken for dense skips too, and there the phase holds through them."""
    from filmdata.pairing.temporal import fit_rate

    _, path, speeds, lo, hi = _late_skips(1.25)
    r = fit_rate(path)[1]
    assert r != pytest.approx(1.25, abs=1e-3)
    assert align_module._nominal(r, 30 / 25, len(path)) == 1.25
    for switch, right in ((4.0, False), (align_module.NOMINAL_SWITCH, True)):
        assert (_lattice_skips(path, 1.25, lo, hi, switch=switch) == speeds) == right


def test_the_lattice_finds_the_rate_whose_one_phase_fits_a_tape_off_every_nominal_speed() -> None:
    """A tape of a 30 fps GT at speed 1.035 (no nominal rate: a capture's drift, a maker's
    choice) whose path put five skips in a row a frame late: its fitted rate runs 0.9 GT
    frames slow over the tape, and at it the lattice's skips drift off the true ones, with
    the phase free or held. Searched within 4 GT frames for the rate whose one phase agrees
    best with the path's skips, and held there, they fall on them."""
    from filmdata.pairing.temporal import fit_rate

    rate = 1.035 * 30 / 25
    _, path, speeds, lo, hi = _late_skips(rate)
    r = fit_rate(path)[1]
    assert abs(r - rate) * 180 > 0.5
    held = align_module.NOMINAL_SWITCH
    for switch, reach, right in ((4.0, 0.0, False), (held, 0.0, False), (held, 4.0, True)):
        got = _lattice_skips(path, r, lo, hi, switch=switch, reach=reach)
        assert (got == speeds) == right


def _gray_video(frames: list[np.ndarray], w: int, h: int, key: np.ndarray | None) -> Any:
    """A `GrayVideo` of grey `frames` (w by h), all kept at working size, its small frames 160
    wide; `key`: the intra-coded ones."""
    import cv2

    from filmdata.pairing.descriptors import GrayVideo

    small = np.stack([cv2.resize(f, (160, 160 * h // w)) for f in frames])
    return GrayVideo("v", 25.0, w, h, small, dict(enumerate(frames)), 1.0, key=key)


# `_fresh_anchor`'s tests: a 400x300 GT, a 320x240 tape of 8 frames through `truth`, its
# frames 1 and 5 intra-coded, the path the truth's, the tape's picture its whole frame
_ANCHOR_SCENE = (
    400,
    300,
    320,
    240,
    8,
    np.array([[0.78, 0, 6.2], [0, 0.79, 4.7], [0, 0, 1.0]]),
    np.isin(np.arange(8), [1, 5]),
    list(range(8)),
    (0.0, 0.0, 320.0, 240.0),
)


def test_the_intra_coded_frames_settle_the_geometry_that_lagging_inter_frames_put_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A heavy encoder's inter-coded frames show a slow pan's picture late (and a scene moving
    unevenly, stretched), so a geometry fitted to them is off along the motion; the
    intra-coded ones show the picture where it is. With the tape's inter-coded frames drawn
    behind (shifted, then also scaled) and its two intra-coded ones where the truth puts
    them, a geometry fitted to the inter-coded ones is brought back (all the way at weight 1,
    `FRESH_ANCHOR_WEIGHT` of the way by default); a right one stays; a pulldown tape (a frame
    may weave two GT frames) keeps its own."""
    import importlib

    import cv2

    from filmdata.pairing.spatial import grid_error

    A = importlib.import_module("filmdata.pairing.align")
    rng = np.random.default_rng(8)
    gw, gh, tw, th, n, truth, key, path, box = _ANCHOR_SCENE
    video = _gray_video
    gts = [
        cv2.GaussianBlur(rng.integers(0, 256, (gh, gw), dtype=np.uint8), (0, 0), 2.5)
        for _ in range(n)
    ]
    gv = video(gts, gw, gh, None)
    shifted = np.array([[1, 0, -0.45], [0, 1, -0.4], [0, 0, 1.0]])
    stretched = np.array([[1, 0, -0.3], [0, 0.996, 0.2], [0, 0, 1.0]])
    for lag in (shifted, stretched):
        tape = [
            cv2.warpAffine(
                g, (truth if key[i] else lag @ truth)[:2], (tw, th), flags=cv2.INTER_AREA
            )
            for i, g in enumerate(gts)
        ]
        lv = video(tape, tw, th, key)
        fitted = lag @ truth  # what the many lagging frames give
        off = grid_error(fitted, truth, (gw, gh))
        assert off > 0.4
        monkeypatch.setattr(A, "FRESH_ANCHOR_WEIGHT", 1.0)
        whole, moved = A._fresh_anchor(lv, gv, path, fitted, box, False, None)
        assert moved is not None and grid_error(whole, truth, (gw, gh)) < 0.05
        projective, _ = A._fresh_anchor(lv, gv, path, fitted, box, True, None)  # --homography
        assert grid_error(projective, truth, (gw, gh)) < 0.05
        right, _ = A._fresh_anchor(lv, gv, path, truth, box, False, None)
        assert grid_error(right, truth, (gw, gh)) < 0.05
        monkeypatch.undo()
        w = A.FRESH_ANCHOR_WEIGHT
        assert 0 < w <= 1
        part, _ = A._fresh_anchor(lv, gv, path, fitted, box, False, None)
        assert grid_error(part, truth, (gw, gh)) == pytest.approx((1 - w) * off, abs=0.05)
    # the heaviest tapes (crf 45, noise 10) lag two pixels and more: still brought back; an
    # intra-coded frame registered beyond FRESH_ANCHOR_CAP (a frame matched wrong) is not taken
    far = np.array([[1, 0, -1.9], [0, 0.99, 1.2], [0, 0, 1.0]])
    for lag, taken in ((far, True), (np.array([[1, 0, -4.0], [0, 1, 3.5], [0, 0, 1.0]]), False)):
        off = grid_error(lag @ truth, truth, (gw, gh))
        assert (1.5 < off < A.FRESH_ANCHOR_CAP) if taken else off > A.FRESH_ANCHOR_CAP
        tape = [
            cv2.warpAffine(
                g, (truth if key[i] else lag @ truth)[:2], (tw, th), flags=cv2.INTER_AREA
            )
            for i, g in enumerate(gts)
        ]
        lv = video(tape, tw, th, key)
        anchored, moved = A._fresh_anchor(lv, gv, path, lag @ truth, box, False, None)
        if taken:
            assert moved is not None
            w = A.FRESH_ANCHOR_WEIGHT
            assert grid_error(anchored, truth, (gw, gh)) == pytest.approx((1 - w) * off, abs=0.05)
        else:
            assert moved is None and np.array_equal(anchored, lag @ truth)
    woven: list[int | None] = [0, 1, 1, 2, 3, 3, 4, 5]  # 3:2 pulldown's rate
    kept, none = A._fresh_anchor(lv, gv, woven, fitted, box, False, None)
    assert kept is fitted and none is None
    # an intra-only stream (DV, MJPEG): no frame lags, and none is registered again
    every = dataclasses.replace(lv, key=np.ones(n, bool))
    kept, none = A._fresh_anchor(every, gv, path, fitted, box, False, None)
    assert kept is fitted and none is None


def test_an_intra_coded_frame_far_off_the_lagging_geometry_settles_it_where_no_mismatch_explains_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The heavier the encoder, the farther its inter-coded frames put the geometry off (crf
    48, noise 12: 3.3 px). An intra-coded frame registered beyond FRESH_ANCHOR_CAP may be one
    matched to the wrong GT frame, so it counts only where that cannot explain its move: the
    GT moves little to its neighbours, and it registers at least as well as the samples the
    geometry came from (`level`). Not where the picture moves a third of the move a frame,
    where it registers worse, where the level is unknown, or beyond FRESH_ANCHOR_FAR."""
    import importlib

    import cv2

    from filmdata.pairing.spatial import grid_error

    A = importlib.import_module("filmdata.pairing.align")
    rng = np.random.default_rng(9)
    gw, gh, tw, th, n, truth, key, path, box = _ANCHOR_SCENE
    video = _gray_video
    base = cv2.GaussianBlur(rng.integers(0, 256, (gh + 40, gw + 40), dtype=np.uint8), (0, 0), 2.5)

    def case(pan: float, lag: np.ndarray, level: float | None) -> tuple[float, float]:
        """(the geometry's error before, after) with the GT panning `pan` GT px a frame."""
        gts = [
            cv2.warpAffine(base, np.float32([[1, 0, -20 - pan * k], [0, 1, -20]]), (gw, gh))
            for k in range(n)
        ]
        tape = [
            cv2.warpAffine(
                g, (truth if key[i] else lag @ truth)[:2], (tw, th), flags=cv2.INTER_AREA
            )
            for i, g in enumerate(gts)
        ]
        gv, lv = video(gts, gw, gh, None), video(tape, tw, th, key)
        fitted = lag @ truth
        anchored, _ = A._fresh_anchor(lv, gv, path, fitted, box, False, None, level)
        return grid_error(fitted, truth, (gw, gh)), grid_error(anchored, truth, (gw, gh))

    monkeypatch.setattr(A, "FRESH_ANCHOR_WEIGHT", 1.0)
    five = np.array([[1, 0, -4.0], [0, 1.0, 3.0], [0, 0, 1.0]])  # 5 px: past the cap
    off, settled = case(0.1, five, 0.5)
    assert A.FRESH_ANCHOR_CAP < off < A.FRESH_ANCHOR_FAR and settled < 0.1
    assert case(0.1, five, None)[1] == pytest.approx(off)  # the level unknown
    assert case(0.1, five, 0.9999)[1] == pytest.approx(off)  # registered worse than the samples
    assert case(3.0, five, 0.5)[1] == pytest.approx(off)  # a pan: a frame off moves it as far
    beyond = np.array([[1, 0, -8.0], [0, 1.0, 6.0], [0, 0, 1.0]])  # 10 px
    off, kept = case(0.1, beyond, 0.5)
    assert off > A.FRESH_ANCHOR_FAR and kept == pytest.approx(off)


def _still_opening() -> tuple[list[int], np.ndarray, tuple[list[int | None], float]]:
    """A coarse matrix of 100 tape frames of a tape at 1.25 GT frames a frame (a 30 fps GT at
    PAL speed) whose first 60 barely move (every GT frame scores alike), the truth, and the
    plain coarse path through it with its score."""
    from filmdata.pairing.temporal import best_path

    n, m, still = 100, 140, 60
    truth = [int(np.floor(1.25 * i + 0.25)) for i in range(n)]
    s = np.full((n, m), 0.9, np.float32)  # the still opening: every GT frame alike
    for i in range(still, n):  # then a moving picture: its own GT frame stands out
        s[i] = 0.5
        s[i, truth[i]] = 0.95
    return truth, s, best_path(s, align_module.COARSE)


def test_a_coarse_path_at_no_tapes_speed_gives_way_to_one_at_a_speed() -> None:
    """A heavily compressed tape of a 30 fps GT (1.25 GT frames a tape frame at PAL speed)
    whose opening barely moves: there every GT frame scores alike, and the coarse path took
    one GT frame a frame, cheaper than a drop every fourth frame, from a start ahead of the
    truth; its rate, 1.0 over the tape, is no tape's speed (0.83 of the GT's), so each speed's
    rate is tried with its skips expected (`best_path`'s `expected`), and the best is kept.
    Where the fitted rate is a speed's, or the tape has a pulldown's rate, nothing is tried."""
    from filmdata.pairing.temporal import fit_rate

    truth, s, coarse = _still_opening()
    n, sub = len(truth), 1
    assert fit_rate(coarse[0])[1] < 1.1  # about the still stretch's one GT frame a frame
    ratio = 30 / 25
    assert align_module._speeds_left(fit_rate(coarse[0])[1], ratio)
    found = align_module._coarse_at_speed(s, coarse, coarse[0], sub, ratio)
    assert fit_rate(found)[1] == pytest.approx(1.25, abs=0.01)
    assert sum(abs(a - b) <= 1 for a, b in zip(found, truth) if a is not None) >= 0.95 * n
    # a fitted rate near a speed's (PAL's 1.25 here, a drift's 1.27), or a pulldown's: none
    assert align_module._speeds_left(1.25, ratio) == []
    assert align_module._speeds_left(1.27, ratio) == []
    assert align_module._speeds_left(0.8, 24 / 30) == []
    assert align_module._coarse_at_speed(s, coarse, truth, sub, ratio) is truth  # type: ignore[arg-type]


def test_a_long_tapes_search_of_speeds_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past COARSE_CELLS the speeds' rates within COARSE_SPEEDS_APART are one (NTSC's
    1000/1001 variants go with their own) and each gets 2 phases: a still opening then still
    leaves a path at a speed's rate, if not the very one."""
    from filmdata.pairing.temporal import fit_rate

    ratio = 30 / 25
    rates = align_module._speeds_left(1.0, ratio)
    assert len(rates) == 7 and len(align_module._apart(rates)) == 3
    _, s, coarse = _still_opening()
    monkeypatch.setattr(align_module, "COARSE_CELLS", 0)
    found = align_module._coarse_at_speed(s, coarse, coarse[0], 1, ratio)
    assert align_module._speeds_left(fit_rate(found)[1], ratio) == []


def test_a_dip_to_dark_on_both_videos_keeps_its_frames_matched() -> None:
    """Where both videos dip to dark the tape's noise outweighs its picture and the right GT
    frame scores under null. Those tape frames' best scores are lifted to just above null,
    and their differences kept as far as their contrast says anything: none in black (the
    row made flat, the path goes on at its steps), half where the attainable ZNCC is half
    the typical. A dim tape frame whose band holds no dim GT frame (black the GT lacks), or
    one before the path's first match (a black head), is left."""
    n, m, null = 30, 40, 0.45
    path: list[int | None] = [None] * 3 + [i + 5 for i in range(3, n)]
    s = np.full((n, m), -1.0, np.float32)
    for i in range(n):
        s[i, i + 2 : min(m, i + 9)] = 0.1
    lq_sig = np.full(n, 10.0, np.float32)  # the bright frames: attainable ZNCC 0.8
    gt_sig = np.full(m, 10.0, np.float32)
    lq_sig[[0, 1, 2, 12, 13, 14, 25, 26]] = 2.0  # the head, black in the dip, black not in the GT
    lq_sig[15:18] = np.sqrt(36 / 0.84)  # dim: attainable ZNCC 0.4
    gt_sig[17:23] = 2.0  # the dip: GT frames 17-22 (tape frames 12-17)
    for i, j in enumerate(path):
        if j is not None:
            s[i, j] = 0.15 if 12 <= i < 18 else 0.8
    out, rows = align_module._dim_fill(s, lq_sig, gt_sig, path, null)
    level = np.float32(null + align_module.DIM_LEVEL)
    assert rows is not None and np.flatnonzero(rows).tolist() == list(range(12, 18))
    assert np.all(out[12, 14:21] == level)  # black: flat
    assert out[15].max() == pytest.approx(level)
    assert out[15, 21] - out[15, 20] == pytest.approx(0.5 * (s[15, 21] - s[15, 20]), abs=1e-6)
    same = [*range(12), *range(18, n)]
    assert np.array_equal(out[same], s[same])  # the head, the bright frames, rows 25-26
    assert viterbi(out, PathCosts(null=null))[12:18] == path[12:18]
    assert all(j is None for j in viterbi(s, PathCosts(null=null))[12:18])


def test_align_through_a_dip_to_dark(tmp_path: Path) -> None:
    """A GT that dips to 15% of its brightness over 50 frames (a fade out and in, as music
    videos do between scenes), and its tape: the dim stretch is matched, not left null
    (0.903 of frames right before, 0.97-0.98 now)."""
    depth = 0.85

    def dipped() -> Iterator[np.ndarray]:
        for k, f in enumerate(render_footage(*GT_SIZE, (40, 40, 40, 40), seed=7, slow=False)):
            g = 1.0 - depth * np.sin(np.pi * (k - 50) / 50) if 50 <= k < 100 else 1.0
            yield (f.astype(np.float32) * g).astype(np.uint8)

    gt = tmp_path / "gt.mp4"
    write_video(gt, dipped(), 24.0)
    tape = make_tape(gt, tmp_path / "tape.mp4", _small_spec(7, noise=5.0))
    a = align(tape.path, gt)
    assert frame_accuracy(tape.mapping, a.mapping, identical_runs(gt)) >= 0.95
