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
