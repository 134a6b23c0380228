"""Noise templates: scans (or procedural stand-ins) of film damage, loaded once onto a device.

Layout (``--templates DIR``): ``DIR/templates/<kind>/*.png`` or ``DIR/<kind>/*.png``, where a kind
is one of ``dust, dirt, hair, scratch, blotch, edge`` (other kind folders are loaded too). A
template is a grayscale image of *damage intensity*: 0 (black) is clean film, 1 (white) is full
damage; an RGBA template uses its alpha. Whether damage darkens or brightens the frame, and how,
is the damage op's business (`blend.py`), so one pack serves prints and negatives alike.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor

from ..devices import pick_device as resolve_device
from ..errors import FilmdataError, RefusedError
from ..paths import refuse_unless_input_folder

KINDS = ("dust", "dirt", "hair", "scratch", "blotch", "edge")
# Templates are drawn for a frame of this many pixels on its short side: there the damage op
# pastes one template pixel on one frame pixel, and it scales them with min(h, w) elsewhere.
FRAME = 384


@dataclass
class TemplateBank:
    """Templates by kind, as float32 `(h, w)` tensors in [0, 1] on `device`.

    `resized` caches the size-fitted copies the damage op pastes, so a run resizes each template
    at most once per size.
    """

    folder: str
    device: torch.device
    kinds: dict[str, list[Tensor]]
    names: dict[str, list[str]]
    _cache: dict[tuple[str, int, int, int], Tensor] = field(default_factory=dict, repr=False)
    # The damage op's oriented numpy views of `_cache`'s tensors (CPU banks only).
    np_cache: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False)
    _fingerprint: str = field(default="", repr=False)

    def count(self, kind: str) -> int:
        return len(self.kinds.get(kind, ()))

    def get(self, kind: str, index: int) -> Tensor:
        items = self.kinds.get(kind)
        if not items:
            raise RefusedError(
                f"templates {self.folder}: no {kind!r} templates (have {self.summary()})"
            )
        return items[index % len(items)]

    def resized(self, kind: str, index: int, h: int, w: int) -> Tensor:
        """Template `index` of `kind` resized to `(h, w)` (area when shrinking), cached."""
        key = (kind, index % max(1, self.count(kind)), h, w)
        hit = self._cache.get(key)
        if hit is None:
            t = self.get(kind, index)
            if t.shape != (h, w):
                shrink = h * w < t.shape[0] * t.shape[1]
                t = torch.nn.functional.interpolate(
                    t[None, None],
                    size=(h, w),
                    mode="area" if shrink else "bilinear",
                    **({} if shrink else {"align_corners": False}),
                )[0, 0].clamp(0, 1)
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = hit = t
        return hit

    def summary(self) -> str:
        return ", ".join(f"{k}: {len(v)}" for k, v in sorted(self.kinds.items())) or "none"

    def fingerprint(self) -> str:
        """A short hash of every template's kind, file name and pixels (its shape and decoded
        values): recorded in each row, so that a replay, a resume or a repair refuses another
        pack. The pixels count: two packs made with other seeds have the same file names
        (`dust-000.png`, ...) and different damage; a pack re-encoded to the same pixels keeps
        its fingerprint. Computed once per bank (a sampler asks for it every window)."""
        if not self._fingerprint:
            h = hashlib.sha256(b"filmdata templates 2")  # 2: pixels hashed (1: names only)
            for kind in sorted(self.kinds):
                h.update(b"\1" + kind.encode())
                for name, t in zip(self.names.get(kind, ()), self.kinds[kind], strict=True):
                    a = np.ascontiguousarray(t.detach().cpu().numpy(), np.float32)
                    h.update(b"\0" + name.encode() + b"\0" + str(a.shape).encode())
                    h.update(hashlib.sha256(a.tobytes()).digest())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def names_fingerprint(self) -> str:
        """The fingerprint filmdata recorded before it hashed pixels (kinds and file names
        only): told apart from another pack only to say why an older record is refused."""
        h = hashlib.sha256()
        for kind in sorted(self.names):
            h.update(kind.encode())
            for n in self.names[kind]:
                h.update(b"\0" + n.encode())
        return h.hexdigest()[:16]


def templates_root(folder: str | os.PathLike[str]) -> Path:
    """`DIR/templates` when it exists, else `DIR` itself."""
    base = Path(folder)
    return base / "templates" if (base / "templates").is_dir() else base


def read_template(path: Path) -> np.ndarray:
    """One template PNG as float32 `(h, w)` in [0, 1] (alpha for RGBA, gray otherwise)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise RefusedError(
            f"{path}: cannot read this template (not an image); remove or replace it"
        )
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., 3]
    elif img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    return (img.astype(np.float32) / scale).clip(0, 1)


def template_folder(folder: Path) -> Path:
    """`folder` made, without the temporaries (`.NAME.png.tmp-PID`) that a run killed while
    writing a template there left, unless their process still runs (it may be writing now)."""
    folder.mkdir(parents=True, exist_ok=True)
    for tmp in folder.glob(".*.png.tmp-*"):
        pid = tmp.name.rpartition("-")[2]
        if pid.isdigit() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)
    return folder


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: running
        return True
    return True


def write_template(path: Path, img: np.ndarray) -> None:
    """Write one `(h, w)` template in [0, 1] as 8-bit gray PNG at `path`, whole or not at all.

    It goes to a temporary name in the same folder and is renamed when complete, so a run
    killed (or a disk filled) mid-write leaves no truncated PNG under a name that
    `load_templates` reads.

    Raises:
        FilmdataError: it cannot be encoded, or written (the message says which file and why).
    """
    from ..shards import atomic_write_bytes

    ok, buf = cv2.imencode(".png", (img.clip(0, 1) * 255).round().astype(np.uint8))
    if not ok:
        raise FilmdataError(f"{path}: cannot encode a {img.shape} template as PNG")
    try:
        atomic_write_bytes(path, buf.tobytes())
    except OSError as e:
        raise FilmdataError(
            f"{path}: cannot write this template: {e.strerror or e}; the templates written "
            "before it are whole: free space (or give another --out) and run it again"
        ) from e


def load_templates(
    folder: str | os.PathLike[str], device: str | torch.device | None = "auto"
) -> TemplateBank:
    """Load every `<kind>/*.png` under a templates folder onto `device`.

    Args:
        folder: the degradations folder (holding `templates/`) or the templates folder itself.
        device: `auto`, `cpu`, `cuda[:N]` or a torch.device.

    Returns:
        The `TemplateBank`.

    Raises:
        RefusedError: (exit 2) the folder is missing, a file or unreadable, holds no template,
            or one template cannot be read.
    """
    root = templates_root(folder)
    refuse_unless_input_folder(
        root,
        "templates folder",
        name=f"--templates {folder}",
        hint="give a folder with <kind>/*.png",
    )
    dev = resolve_device(device)
    kinds: dict[str, list[Tensor]] = {}
    names: dict[str, list[str]] = {}
    try:
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as e:
        raise RefusedError(f"--templates {folder}: cannot read: {e}") from None
    for sub in subdirs:
        files = sorted(p for p in sub.iterdir() if p.suffix.lower() == ".png" and p.is_file())
        if not files:
            continue
        kinds[sub.name] = [torch.from_numpy(read_template(p)).to(dev) for p in files]
        names[sub.name] = [p.name for p in files]
    if not kinds:
        raise RefusedError(
            f"--templates {folder}: no templates found; expected {root}/<kind>/*.png "
            f"with kinds such as {', '.join(KINDS)} (make a pack with `filmdata templates make`)"
        )
    return TemplateBank(folder=str(folder), device=dev, kinds=kinds, names=names)
