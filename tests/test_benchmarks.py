"""The benchmark scripts stay importable as the package changes (run by hand, never timed here)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))


def test_there_are_benchmarks() -> None:
    assert {p.stem for p in BENCHMARKS} >= {"align", "synth", "restorer", "scenes"}


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_a_benchmark_imports_what_it_uses(script: Path) -> None:
    # Run as a module, not as __main__: every import at its top runs, nothing is measured.
    names = runpy.run_path(str(script), run_name="benchmark_import_check")
    assert callable(names.get("main")), f"{script.name} has no main()"


def test_per_op_times_count_the_ops_that_ran_and_leave_the_registry_as_it_was() -> None:
    import torch

    from filmdata.degrade import OPS, apply_degradation, bundled_dir, load_preset, load_templates
    from filmdata.degrade import sample_degradation as sample

    names = runpy.run_path(str(BENCHMARKS[0].parent / "degrade_ref.py"), run_name="op_times")
    before = {name: op.apply for name, op in OPS.items()}
    bank = load_templates(bundled_dir(), "cpu")
    preset = load_preset("vhs")
    degs = [sample(preset, 0, f"w{i}", 4, 32, 32, bank) for i in range(3)]
    gt = torch.rand(3, 4, 3, 32, 32)
    spent = names["_op_times"](gt, degs, bank, apply_degradation)
    ran = {name for d in degs for name, _ in d.ops}
    assert set(spent) == ran
    assert all(ms >= 0 and 1 <= used <= 3 for ms, used in spent.values())
    assert {name: op.apply for name, op in OPS.items()} == before


def test_the_synth_benchmark_degrades_a_real_clips_own_centre_squares(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    from conftest import make_clip
    from filmdata.video import read_frames

    path, _ = make_clip(tmp_path / "clip.mp4", (12,), (96, 64), seed=2)
    names = runpy.run_path(str(BENCHMARKS[0].parent / "synth.py"), run_name="clip_frames")
    got = names["clip_frames"](path, 10, 32)
    whole = read_frames(path)
    want = [cv2.resize(f[:, 16:80], (32, 32), interpolation=cv2.INTER_AREA) for f in whole[:10]]
    assert got.shape == (10, 32, 32, 3) and np.array_equal(got, np.stack(want))
    with pytest.raises(SystemExit, match="12 frames decode, 20 wanted"):
        names["clip_frames"](path, 20, 32)
