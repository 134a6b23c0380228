"""The allocator setting of the heavy stages: freed frame-sized blocks are reused, not faulted in
afresh for every window."""

from __future__ import annotations

import resource

import numpy as np
import pytest

from filmdata._memory import keep_freed_memory


def _faults(rounds: int, blocks: int, nbytes: int) -> int:
    """Page faults of `rounds` windows that each hold `blocks` arrays at once (an op chain's
    outputs), then free them."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        held = []
        for _ in range(blocks):
            a = np.empty(nbytes, np.uint8)
            a[::4096] = 1  # touch every page, as an op writing its output does
            held.append(a)
        del held
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_freed_blocks_are_reused():
    if not keep_freed_memory():
        pytest.skip("not glibc: the allocator keeps its defaults")
    assert keep_freed_memory() is True  # set once per process, then cached
    # Windows of 4 blocks of 6 MB (8 float frames at 256^2 each): glibc's defaults give the
    # freed blocks back to the kernel (~1 500 faults a window, measured 151 000 for 100); kept,
    # they fault in once.
    nbytes = 6 * 2**20
    _faults(2, 4, nbytes)
    assert _faults(100, 4, nbytes) < 4 * nbytes // 4096


def _set_blas(n: int) -> None:
    from filmdata import _blas

    for lib, _, set_ in _blas._libraries():
        getattr(lib, set_)(n)


def test_align_runs_openblas_on_one_thread_and_gives_the_count_back(monkeypatch):
    """A user's process has numpy's OpenBLAS loaded with a thread per core (too late for
    OPENBLAS_NUM_THREADS): `align` sets one thread for its work and gives the count back."""
    import importlib

    from filmdata import _blas

    # (the package's `align` is the function)
    align_mod = importlib.import_module("filmdata.pairing.align")
    if _blas.blas_threads() is None:
        pytest.skip("no OpenBLAS found in this process")
    before = _blas.blas_threads()
    _set_blas(2)
    seen: list[int | None] = []

    def fake(lq, gt, **kw):
        seen.append(_blas.blas_threads())
        seen.append(int(getattr(*_blas._libraries()[0][:2])()))  # the library's own count
        return "done"

    monkeypatch.setattr(align_mod, "_align", fake)
    try:
        assert align_mod.align("a.mp4", "b.mp4") == "done"
        assert seen == [1, 1]
        assert _blas.blas_threads() == 2
        with _blas.one_blas_thread():  # nested blocks: the count comes back after the last
            with _blas.one_blas_thread():
                assert _blas.blas_threads() == 1
            assert _blas.blas_threads() == 1
        assert _blas.blas_threads() == 2
    finally:
        _set_blas(before or 1)
