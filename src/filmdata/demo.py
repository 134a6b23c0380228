"""`filmdata demo`: the whole chain on the bundled sample footage.

fetch (local captures) → cut → pair (the tape transfer to its HD reel) → synth (film preset) →
preview, into one data root, in well under two minutes on two CPU cores.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import RefusedError
from .paths import resolve_root

_REPO = Path(__file__).resolve().parents[2]


def bundled(name: str) -> Path:
    """A folder or file that ships with the repository (`manifests/demo.yaml`, `degradations`)."""
    path = _REPO / name
    if not path.exists():
        raise RefusedError(
            f"{path}: not found; `filmdata demo` runs from a checkout of the repository "
            "(pip install -e .)"
        )
    return path


def demo(
    root: str | os.PathLike[str] | None = None,
    *,
    size: int = 128,
    quiet: bool = False,
    echo: Any = print,
) -> dict[str, Any]:
    """Run the whole chain on the sample footage into `root`; return what each stage did.

    Args:
        root: the data root (default `$FILMDATA_ROOT` or ./filmdata-data).
        size: the windows' side in pixels.
        quiet: no progress bars.
        echo: where progress lines go.

    Returns:
        {"root", "dataset", "splits", "preview", "pair", ...}.
    """
    from .fetch import fetch
    from .pairing.pair import pair
    from .preview import preview
    from .scenes.cut import cut
    from .synth import synth

    r = resolve_root(root)
    manifest = bundled("manifests/demo.yaml")
    templates = bundled("degradations")
    echo(f"filmdata demo: root {r}")

    echo("1/5 fetch: local sample reels")
    fetch([manifest], root=r, quiet=quiet)

    echo("2/5 cut: scenes of every fetched reel")
    clips = cut(r, quiet=quiet)

    echo("3/5 pair: the tape transfer against its HD reel")
    paired = pair(r, manifests=[manifest], quiet=quiet)
    from .catalog import Catalog

    with Catalog.at_root(r) as cat:
        for p in cat.pairs(manifest="demo"):
            mapped = sum(m is not None for m in p.get("mapping") or [])
            line = (
                "no offset or speed (no frame matched)"
                if p["offset_s"] is None or p["speed"] is None
                else f"offset {p['offset_s']:.2f} s, speed {p['speed']:.4f}"
            )
            echo(
                f"    {p['id']}: {p['status']}, {line}, {mapped} of "
                f"{len(p.get('mapping') or [])} frames mapped"
            )

    echo("4/5 synth: film preset into datasets/demo (train + validation)")
    result = synth(
        templates,
        "film",
        root=r,
        name="demo",
        size=size,
        clip_len=8,
        val_fraction=0.25,
        seed=0,
        quiet=quiet,
    )
    dataset = Path(result["path"])

    echo("5/5 preview")
    sheet = preview(dataset, dataset / "preview.png", split="train", n=4, root=r)

    echo("")
    echo(f"Done. Dataset: {dataset}")
    echo(f"  rows: {result.get('splits')}")
    echo(f"  preview: {sheet}")
    echo("Load it with:")
    echo("  from datasets import load_dataset")
    echo(f"  ds = load_dataset({str(dataset)!r})")
    echo("  ds['train'][0]['lq'], ds['train'][0]['gt']   # lists of PIL images")
    return {
        "root": str(r),
        "dataset": str(dataset),
        "splits": result.get("splits"),
        "preview": str(sheet),
        "clips": _asdict(clips),
        "pair": _asdict(paired),
    }


def _asdict(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return obj if isinstance(obj, (dict, list, str, int, float, type(None))) else str(obj)
