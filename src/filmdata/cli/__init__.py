"""The Typer app: one thin command per library function (see `filmdata --help`).

Each stage's commands live in their own module here; importing them registers them on `app`.
Heavy libraries are imported inside the commands, so `filmdata --help` starts fast.
"""

from __future__ import annotations

from . import demo, fetch, pair, restorer, scenes, synth, templates  # noqa: F401 (registers)
from ._common import app


def main() -> None:
    """Console entry point."""
    import gc

    try:
        app()
    except SystemExit as e:
        _exit_now(e.code)
        raise
    finally:
        # The interpreter's last garbage collection walks every object torch's import made:
        # 0.2-0.5 s after a command that loaded it. Frozen objects are left to the exit.
        gc.freeze()


def _exit_now(code: object) -> None:
    """End the process at once after a command that loaded torch or OpenCV: the interpreter's
    teardown of their modules (and of the arrays a command leaves) takes another 0.2 s after
    torch, 70-100 ms after `filmdata align` on a 1080p GT (3% of a 30 s tape's run), and every
    output is written and closed by then (the stages write through context managers, fsync
    and rename). Not when Ray is loaded (its exit handler stops the cluster it started) or a
    non-daemon thread still runs (daemon threads, such as tqdm's monitor, end with the process
    either way)."""
    import contextlib
    import logging
    import os
    import sys
    import threading

    main = threading.main_thread()
    others = [t for t in threading.enumerate() if t is not main and not t.daemon]
    heavy = "torch" in sys.modules or "cv2" in sys.modules
    if not heavy or "ray" in sys.modules or others:
        return
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    elif code is None:
        code = 0
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    logging.shutdown()
    os._exit(code if isinstance(code, int) else 1)


__all__ = ["app", "main"]
