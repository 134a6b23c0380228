"""Progress bars that cost nothing when quiet: tqdm is imported only for a bar that shows
(its import is a tenth of a second of a command's start-up)."""

from __future__ import annotations

from typing import Any


class NoBar:
    """What a quiet run gets instead of a tqdm bar: the calls the stages make, doing nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def write(self, text: str, file: Any = None) -> None:
        pass

    def close(self) -> None:
        pass


def progress(total: int | None, quiet: bool, **kw: Any) -> Any:
    """A tqdm bar over `total` items (`kw`: tqdm's options), or a `NoBar` when `quiet`."""
    if quiet:
        return NoBar()
    from tqdm import tqdm

    return tqdm(total=total, **kw)
