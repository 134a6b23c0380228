"""The process's allocator, tuned for the frame-sized blocks the heavy stages churn through."""

from __future__ import annotations

import functools
import sys


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc's allocator keep and reuse freed blocks for the rest of the process.

    By default glibc returns blocks of 128 KB and more to the kernel when they are freed (and
    trims its heaps), so every window's frames and tensors (a few MB each) come back as fresh
    pages that the kernel faults in and zeroes: 200 000+ page faults per 1 000 synthesised
    frames, a quarter of the degradation's CPU time. A fixed 32 MB threshold (the largest glibc
    takes; fixing it also stops glibc's adaptive threshold) and a 1 GB trim threshold keep them
    in the process. A 64 MB top pad (M_TOP_PAD) keeps the per-thread heaps once grown: a
    worker's heap that empties between two windows is otherwise unmapped, and the next
    window's tensors fault fresh pages in again (a third of a synth run's page faults; only
    address space is reserved). Called once by the stages that need it; returns whether glibc
    took the settings (False elsewhere: musl, macOS, Windows).
    """
    import ctypes

    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    return (
        bool(mallopt(m_mmap_threshold, 32 << 20))
        and bool(mallopt(m_trim_threshold, 1 << 30))
        and bool(mallopt(m_top_pad, 64 << 20))
    )
