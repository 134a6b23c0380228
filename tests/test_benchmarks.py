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
