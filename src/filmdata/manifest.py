"""Manifests: YAML (safe-loaded) validated into typed, frozen models.

A manifest names its sources (remote URLs or local captures) and the real LQ/GT pairs among
them. An invalid manifest is refused before anything runs, in one line that names the file,
the source and the field::

    shiryaev.yaml: source 'nyc-1911': url: must be http(s), got 'file:///etc/passwd'
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ManifestError
from .paths import refuse_unless_file

SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_URL = re.compile(r"^https?://[A-Za-z0-9\[]")
_SECTION = re.compile(r"^\s*(?P<a>[0-9:.]+)\s*-\s*(?P<b>[0-9:.]+|inf)\s*$")
Kind = Literal["film", "vhs", "hd", "cartoon", "overlay"]


def parse_timestamp(text: str) -> float:
    """'1:02:03.5' → 3723.5 seconds; '75' → 75.0. Raises ValueError on anything else."""
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 3 or any(p == "" for p in parts):
        raise ValueError(f"bad timestamp {text!r}")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + float(part)
    return seconds


def parse_section(text: str) -> tuple[float, float]:
    """'0:12-8:00' → (12.0, 480.0): a time range to download, end after start."""
    m = _SECTION.match(text)
    if not m:
        raise ValueError(f"section must look like '0:12-8:00', got {text!r}")
    a = parse_timestamp(m["a"])
    b = float("inf") if m["b"] == "inf" else parse_timestamp(m["b"])
    if b <= a:
        raise ValueError(f"section {text!r} ends before it starts")
    return a, b


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Model):
    """One source: a remote `url` fetched through yt-dlp, or a local capture `path`."""

    id: str
    url: str | None = None
    path: str | None = None
    kind: Kind = "film"
    title: str | None = None
    year: StrictInt | None = None  # strict: `year: true` is not the year 1
    sections: tuple[str, ...] = ()
    license: str | None = None
    attribution: str | None = None
    notes: str | None = None

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not SLUG.match(v):
            raise ValueError(f"must be a slug [a-z0-9][a-z0-9._-]*, got {v!r}")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        # Only http(s); nothing an option parser could read as a flag; no whitespace/control.
        if not _URL.match(v) or any(c.isspace() or ord(c) < 32 for c in v):
            raise ValueError(f"must be http(s), got {v!r}")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v or v.startswith("-") or "\x00" in v:
            raise ValueError(f"must be a file path, got {v!r}")
        return v

    @field_validator("sections")
    @classmethod
    def _sections(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        ranges = [parse_section(s) for s in v]
        # Overlapping ranges would put the frames they share twice into the one file.
        for j, (a, b) in enumerate(ranges):
            for i in range(j):
                if a < ranges[i][1] and ranges[i][0] < b:
                    raise ValueError(f"{v[j]!r} overlaps {v[i]!r}")
        return v

    @model_validator(mode="after")
    def _one_of(self) -> Source:
        if (self.url is None) == (self.path is None):
            raise ValueError("give exactly one of url or path")
        if self.sections and self.path is not None:
            raise ValueError("sections apply to url sources only")
        return self

    def section_ranges(self) -> list[tuple[float, float]]:
        return [parse_section(s) for s in self.sections]


class Pair(_Model):
    """A real LQ/GT pair: two source ids of the same manifest."""

    id: str
    lq: str
    gt: str

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not SLUG.match(v):
            raise ValueError(f"must be a slug [a-z0-9][a-z0-9._-]*, got {v!r}")
        return v


class Manifest(_Model):
    """A validated manifest. `file` and `folder` say where it was read from."""

    name: str
    description: str | None = None
    license: str | None = None
    attribution: str | None = None
    sources: tuple[Source, ...] = Field(default=())
    pairs: tuple[Pair, ...] = Field(default=())
    file: str = ""
    folder: str = ""

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not SLUG.match(v):
            raise ValueError(f"must be a slug [a-z0-9][a-z0-9._-]*, got {v!r}")
        return v

    def source(self, source_id: str) -> Source:
        for s in self.sources:
            if s.id == source_id:
                return s
        raise KeyError(source_id)

    def local_path(self, source: Source) -> Path:
        """Where a local capture is expected: relative paths are read from the manifest's folder."""
        assert source.path is not None
        p = Path(os.path.expanduser(source.path))
        return p if p.is_absolute() else Path(self.folder) / p


def _where(loc: tuple[Any, ...], data: dict[str, Any]) -> tuple[str, str]:
    """(item, field) for a pydantic error location such as ('sources', 2, 'url')."""
    if len(loc) >= 2 and loc[0] in ("sources", "pairs") and isinstance(loc[1], int):
        items = data.get(loc[0]) or []
        item = items[loc[1]] if loc[1] < len(items) else {}
        ident = item.get("id") if isinstance(item, dict) else None
        what = "source" if loc[0] == "sources" else "pair"
        label = f"{what} {ident!r}" if ident is not None else f"{what} #{loc[1] + 1}"
        field = ".".join(str(x) for x in loc[2:]) or "entry"
        return label, field
    return "manifest", ".".join(str(x) for x in loc) or "entry"


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader, refusing a key given twice in one mapping (YAML would keep the last
    one silently: a second `url:` pasted under a source replaced the first). LibYAML's parser
    where PyYAML has it (a preset parses in 3 ms, not 22: every synth run reads one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the safe loader refuses it itself
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path) -> Any:
    """Safe-load one YAML file; a python tag or a syntax error is refused with file and line."""
    refuse_unless_file(path, "YAML file", error=ManifestError)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: cannot read: {e}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ManifestError(f"{path}{line}: refused: {problem}") from None


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read and validate a manifest.

    Args:
        path: the YAML file.

    Returns:
        The validated `Manifest` (its `name` defaults to the file's stem).

    Raises:
        ManifestError: with the file, the item and the field in one line.
    """
    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: expected a mapping with 'sources', got {type(data).__name__}")
    data.setdefault("name", path.stem.replace("_", "-").lower())
    for key in ("file", "folder"):
        if key in data:
            raise ManifestError(f"{path}: manifest: {key}: unknown field")
    folder = path.resolve().parent
    try:
        m = Manifest(**data, file=str(path), folder=str(folder))
    except ValidationError as e:
        # a misspelt key first: a required field misspelt is also "missing", and the key as
        # written is the one to fix
        errors = e.errors()
        err = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
        item, field = _where(tuple(err["loc"]), data)
        msg = err["msg"].removeprefix("Value error, ")
        # In YAML's words: a manifest holds lists and mappings, not tuples or model instances.
        msg = msg.replace("a valid tuple", "a list")
        msg = re.sub(r"a valid dictionary or instance of \w+", "a mapping", msg)
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        raise ManifestError(f"{path}: {item}: {field}: {msg}") from None
    except TypeError as e:
        raise ManifestError(f"{path}: manifest: {e}") from None

    seen: set[str] = set()
    for s in m.sources:
        if s.id in seen:
            raise ManifestError(f"{path}: source {s.id!r}: id: duplicate id")
        seen.add(s.id)
        if s.path is not None and not Path(os.path.expanduser(s.path)).is_absolute():
            # As written: `..` may not climb out, but a link placed in the folder (a capture
            # kept on another disk) is the user's own and is followed when it is read.
            target = Path(os.path.normpath(folder / s.path))
            if not target.is_relative_to(folder):
                raise ManifestError(
                    f"{path}: source {s.id!r}: path: leaves the manifest's folder ({s.path!r})"
                )
    pair_ids: set[str] = set()
    for p in m.pairs:
        if p.id in pair_ids:
            raise ManifestError(f"{path}: pair {p.id!r}: id: duplicate id")
        pair_ids.add(p.id)
        for field in ("lq", "gt"):
            ref = getattr(p, field)
            if ref not in seen:
                raise ManifestError(f"{path}: pair {p.id!r}: {field}: unknown source {ref!r}")
        if p.lq == p.gt:
            raise ManifestError(f"{path}: pair {p.id!r}: gt: same source as lq")
    return m
