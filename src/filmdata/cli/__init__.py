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
    finally:
        # The interpreter's last garbage collection walks every object torch's import made:
        # 0.2-0.5 s after a command that loaded it. Frozen objects are left to the exit.
        gc.freeze()


__all__ = ["app", "main"]
