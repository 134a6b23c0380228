"""Presets: the ordered degradation ops of a look (film, vhs, ...) with their probabilities and
parameter ranges, read from YAML through the safe loader and validated like manifests::

    name: film
    description: a worn 16 mm print, telecined and compressed
    ops:
      - op: blur
        p: 0.8
        kind: [gaussian, defocus]
        sigma: [0.4, 1.4]

A bad file is refused before anything runs, in one line naming the file, the op and the field:
``film.yaml: op #3 'blur': sigma: must be [lo, hi] with lo <= hi, got [2.0, 1.0]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import ManifestError
from ..manifest import SLUG, load_yaml
from .params import OPS, OpConfig

_TOP = {"name", "description", "ops"}


@dataclass(frozen=True)
class Preset:
    """A validated preset: its name, description and ordered `(op name, config)` steps."""

    name: str
    description: str
    ops: tuple[tuple[str, OpConfig], ...]
    file: str = ""

    def to_json(self) -> dict[str, Any]:
        """The preset as plain data (what a `Degradation` records; `preset_from_json` reads it)."""
        return {
            "name": self.name,
            "description": self.description,
            "ops": [{"op": n, **c.model_dump(mode="json")} for n, c in self.ops],
        }


def preset_from_data(data: Any, where: str, default_name: str = "preset") -> Preset:
    """Validate already-parsed preset data; errors start with `where` (a file name)."""
    if not isinstance(data, dict):
        got = type(data).__name__
        raise ManifestError(f"{where}: expected a mapping with 'name' and 'ops', got {got}")
    for key in data:
        if key not in _TOP:
            raise ManifestError(
                f"{where}: preset: {key}: unknown field (allowed: name, description, ops)"
            )
    name = data.get("name", default_name)
    if not isinstance(name, str) or not SLUG.match(name):
        raise ManifestError(
            f"{where}: preset: name: must be a slug [a-z0-9][a-z0-9._-]*, got {name!r}"
        )
    ops = data.get("ops")
    if not isinstance(ops, list) or not ops:
        raise ManifestError(f"{where}: preset: ops: must be a non-empty list of ops")
    steps: list[tuple[str, OpConfig]] = []
    for i, entry in enumerate(ops, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("op"), str):
            raise ManifestError(f"{where}: op #{i}: op: each entry needs 'op: NAME'")
        op_name = entry["op"]
        if op_name not in OPS:
            known = ", ".join(sorted(OPS))
            raise ManifestError(f"{where}: op #{i}: op: unknown op {op_name!r} (known: {known})")
        fields = {k: v for k, v in entry.items() if k != "op"}
        try:
            cfg = OPS[op_name].config(**fields)
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(x) for x in err["loc"]) or "entry"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(OPS[op_name].config.model_fields)
                msg = f"unknown field (allowed: {allowed})"
            if not err["loc"] and ": " in msg:  # our range checks name their own field
                field, msg = msg.split(": ", 1)
            raise ManifestError(f"{where}: op #{i} {op_name!r}: {field}: {msg}") from None
        steps.append((op_name, cfg))
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise ManifestError(f"{where}: preset: description: must be text")
    return Preset(name=name, description=description, ops=tuple(steps), file=where)


def preset_from_json(d: dict[str, Any]) -> Preset:
    """A preset recorded by `Preset.to_json` (validated again: a row is untrusted input too)."""
    return preset_from_data(d, "degradation.preset", d.get("name", "preset"))


def bundled_dir() -> Path:
    """The `degradations/` folder shipped with filmdata (repository root)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "degradations" / "presets").is_dir():
            return parent / "degradations"
    return here.parents[3] / "degradations"


def preset_names(templates_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of the presets found under `<dir>/presets/` (default: the bundled ones)."""
    base = Path(templates_dir) if templates_dir is not None else bundled_dir()
    folder = base / "presets" if (base / "presets").is_dir() else bundled_dir() / "presets"
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_preset(
    preset: str | os.PathLike[str], templates_dir: str | os.PathLike[str] | None = None
) -> Preset:
    """Load and validate a preset.

    Args:
        preset: a name (`film`, `vhs`) resolved to `<templates_dir>/presets/<name>.yaml` (falling
            back to the bundled `degradations/presets/`), or the path of a YAML file.
        templates_dir: the degradations folder (`--templates DIR`); None: the bundled one.

    Returns:
        The validated `Preset`.

    Raises:
        ManifestError: (exit 2) unknown name, unsafe YAML (file:line), or a bad op/field.
    """
    text = os.fspath(preset)
    path = Path(text)
    if not (text.endswith((".yaml", ".yml")) or os.sep in text or "/" in text):
        candidates = []
        if templates_dir is not None:
            base = Path(templates_dir)
            candidates += [
                base / "presets" / f"{text}.yaml",
                base.parent / "presets" / f"{text}.yaml",
            ]
        candidates.append(bundled_dir() / "presets" / f"{text}.yaml")
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            # every name the search above finds (the folder's own presets and the bundled)
            folders = {c.parent for c in candidates}
            names = {p.stem for folder in folders for p in folder.glob("*.yaml")}
            known = ", ".join(sorted(names)) or "none"
            raise ManifestError(
                f"preset {text!r}: no such preset (known: {known}; or give a YAML path)"
            )
        path = found
    data = load_yaml(path)
    return preset_from_data(data, str(path), path.stem.lower())
