"""The torch device of a run: `--device auto|cpu|cuda[:N]`, one rule for every stage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import RefusedError

if TYPE_CHECKING:
    import torch


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    """`auto` (or None): CUDA when available, else the CPU; else `cpu` or `cuda[:N]`.

    Raises:
        RefusedError: an unknown device, one of another kind, or CUDA where there is none.
    """
    import torch  # here: a stage that never runs torch does not pay its import

    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise RefusedError(f"--device {device!r}: unknown; use auto, cpu or cuda[:N]") from None
    if dev.type not in ("cpu", "cuda"):
        raise RefusedError(f"--device {device!r}: use auto, cpu or cuda[:N]")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RefusedError(f"--device {device!r}: CUDA is not available here; use auto or cpu")
    return dev
