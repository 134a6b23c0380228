"""The Typer app: one thin command per library function (see `filmdata --help`).

Each stage's commands live in their own module here; importing them registers them on `app`.
"""

from __future__ import annotations

import importlib

from ._common import app

# Each module registers its commands; a stage whose module is absent is simply not offered.
for _mod in ("fetch", "scenes", "synth", "templates", "pair", "restorer", "demo"):
    try:
        importlib.import_module(f"{__name__}.{_mod}")
    except ModuleNotFoundError as e:  # pragma: no cover - only while a stage is being built
        if e.name != f"{__name__}.{_mod}":
            raise


def main() -> None:
    """Console entry point."""
    app()


__all__ = ["app", "main"]
