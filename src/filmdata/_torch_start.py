"""Torch's start-up in a `filmdata` process: its libraries loaded off the GIL before its import
(`preload_torch`, `await_preload`), and the garbage collector kept out of its million objects
(`no_gc` around the import, `gc_frozen` around a run), so that a reader decoding meanwhile is
not stopped (`synth`)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

# The GIL's switch interval while torch is imported: at the default 5 ms the import's Python
# code starves the reader thread, which needs the GIL between frames (720p decode 7 ms a frame
# during the import against 4.4 at 0.2 ms; the import itself takes no longer).
SWITCH = 0.0002


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """The cyclic garbage collector paused while torch is imported, and what the import made
    frozen (module state for the life of the process): otherwise importing it triggers four
    full collections and the first one after it a fifth, 0.2-0.3 s of start-up, each holding
    the GIL that the reader thread needs between frames. The GIL changes hands more often
    meanwhile (`SWITCH`). Nothing happens where torch is loaded already."""
    import gc
    import sys

    if "torch" in sys.modules or not gc.isenabled():
        yield
        return
    gc.disable()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        gc.freeze()
        gc.enable()


@contextlib.contextmanager
def gc_frozen() -> Iterator[None]:
    """The objects alive when a run starts (torch's, a caller's) left out of the cyclic garbage
    collector's passes until it ends (`gc.freeze`, then `gc.unfreeze`). Where torch was loaded
    the usual way (an in-process caller: `synth()` from a notebook, the benchmark), each full
    collection walks its million objects with the GIL held, stopping every worker and the
    reader meanwhile (30 s of 720p in process: one such pass of 93 ms). What the run itself
    leaves is collected as before. Nothing happens where torch is not loaded yet (the run
    loads it, and freezes what its import made for good: `no_gc`) or objects are frozen
    already (this would unfreeze them)."""
    import gc
    import sys

    if not gc.isenabled() or gc.get_freeze_count() or "torch" not in sys.modules:
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


#: torch's C++ libraries, in the order and with the dlopen flags its import loads them
#: (`torch._load_global_deps`, then `torch._C`'s dependencies).
_TORCH_LIBS = (("libtorch_global_deps.so", 0x100 | 0x2), ("libtorch_cpu.so", 0x2))
_preloading: list[threading.Thread] = []


def preload_torch() -> None:
    """Start loading torch's C++ libraries in a thread, without the GIL, so that the `import
    torch` that follows finds them loaded.

    Loading `libtorch_cpu.so` (relocations and static constructors: about 0.2 s of CPU) is
    the one part of torch's import that needs no Python; made by the import itself it holds the
    GIL, stopping every other thread (the reader) meanwhile. Here `dlopen` is called through
    ctypes, which releases the GIL: the libraries load on an idle core while this thread goes
    on. The loader keeps them loaded (the handles are never closed); torch's own `dlopen`s
    then only count references. Nothing happens where torch is imported already, off Linux,
    for a CUDA build, or without a torch install (its import then fails as it would have)."""
    import sys

    if "torch" in sys.modules or _preloading or not sys.platform.startswith("linux"):
        return
    from importlib.util import find_spec

    try:
        spec = find_spec("torch")
    except (ImportError, ValueError):
        return
    if spec is None or not spec.submodule_search_locations:
        return
    lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
    files = [(str(lib / name), mode) for name, mode in _TORCH_LIBS if (lib / name).is_file()]
    if len(files) != len(_TORCH_LIBS) or any(lib.glob("libtorch_cuda*")):
        # A CUDA build's import first puts the CUDA libraries of its wheels in place
        # (`torch._preload_cuda_deps`): it is left to load its own way.
        return

    def load() -> None:
        import ctypes

        try:
            dlopen = ctypes.CDLL(None).dlopen
        except (OSError, AttributeError):
            return
        dlopen.restype = ctypes.c_void_p
        dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
        for path, mode in files:
            if not dlopen(path.encode(), mode):  # the GIL is released meanwhile
                return  # torch's import reports the error

    t = threading.Thread(target=load, name="filmdata-preload-torch", daemon=True)
    _preloading.append(t)
    t.start()


def await_preload() -> None:
    """Wait for `preload_torch`'s thread, the GIL released: importing torch while it loads
    would wait for the loader's lock holding the GIL, stopping the reader thread too."""
    while _preloading:
        _preloading[-1].join()
        _preloading.pop()
