"""OpenBLAS's thread count, set for a stretch of work in a process that is already running.

`OPENBLAS_NUM_THREADS` works only before numpy loads OpenBLAS: a `filmdata` command sets it
first thing, but a user's Python (a notebook, a script calling `align`) has numpy loaded long
before. There OpenBLAS keeps a thread per core, and the aligner's many small products hand
work to them and spin waiting: beside the decoders and OpenCV, and worse beside any other
load. `one_blas_thread()` sets the loaded library's count to one through its own C API (as
threadpoolctl does) for the stretch, and gives the previous count back after it.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

# (getter, setter) symbol names: numpy's wheels build OpenBLAS with a `scipy_` prefix and a
# `64_` suffix (64-bit integers); a system OpenBLAS has the plain names
_SYMBOLS = (
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)

_lock = threading.Lock()
_depth = 0
_saved: list[tuple[ctypes.CDLL, str, int]] = []


def _libraries() -> tuple[tuple[ctypes.CDLL, str, str], ...]:
    """The OpenBLAS libraries loaded now (numpy's; OpenCV's has its own), with their getter
    and setter names (Linux: from the process's memory map, ~2 ms; elsewhere none, and the
    counts are left as they are)."""
    import numpy  # noqa: F401  (loads its OpenBLAS)

    if not sys.platform.startswith("linux"):
        return ()
    try:
        with open("/proc/self/maps") as f:
            paths = sorted(
                {
                    line.split(None, 5)[-1].strip()
                    for line in f
                    if "openblas" in line.lower() and "/" in line
                }
            )
    except OSError:
        return ()
    found = []
    for path in paths:
        lib = _open(path)
        if lib is None:
            continue
        for get, set_ in _SYMBOLS:
            if hasattr(lib, get) and hasattr(lib, set_):
                found.append((lib, get, set_))
                break
    return tuple(found)


@cache
def _open(path: str) -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(path)  # (already loaded: the same handle)
    except OSError:
        return None


def blas_threads() -> int | None:
    """OpenBLAS's thread count now (numpy's library), or None where none is found."""
    if _depth:
        return 1
    libs = _libraries()
    if not libs:
        return None
    lib, get, _ = next((x for x in libs if "numpy" in str(x[0]._name)), libs[0])
    return int(getattr(lib, get)())


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """OpenBLAS on one thread inside the block; its count before given back after the last of
    any nested or concurrent blocks (threads of one process share the library's count)."""
    global _depth
    with _lock:
        if _depth == 0:
            _saved.clear()
            for lib, get, set_ in _libraries():
                n = int(getattr(lib, get)())
                if n != 1:
                    _saved.append((lib, set_, n))
                    getattr(lib, set_)(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for lib, set_, n in _saved:
                    getattr(lib, set_)(n)
                _saved.clear()
