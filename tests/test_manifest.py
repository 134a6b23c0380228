from __future__ import annotations

from pathlib import Path

import pytest

from filmdata.errors import ManifestError
from filmdata.manifest import load_manifest, parse_section


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD = """
name: demo
sources:
  - id: a-1
    url: https://example.org/a.mp4
    kind: film
    sections: ["0:12-8:00"]
  - id: b
    path: captures/b.mkv
    kind: vhs
pairs:
  - id: ab
    lq: b
    gt: a-1
"""


def test_good_manifest(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, GOOD))
    assert m.name == "demo"
    assert [s.id for s in m.sources] == ["a-1", "b"]
    assert m.source("a-1").section_ranges() == [(12.0, 480.0)]
    assert m.local_path(m.source("b")) == tmp_path.resolve() / "captures/b.mkv"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("sources:\n  - id: a\n    url: file:///etc/passwd\n", "source 'a': url: must be http(s)"),
        ("sources:\n  - id: a\n    url: -oProxyCommand=x\n", "source 'a': url: must be http(s)"),
        ("sources:\n  - id: a\n    url: 'https://x.org/a b'\n", "url: must be http(s)"),
        ("sources:\n  - id: Bad_Id\n    url: https://x.org/a\n", "id: must be a slug"),
        (
            "sources:\n  - id: a\n    url: https://x.org/a\n    colour: red\n",
            "colour: unknown field",
        ),
        (
            "sources:\n  - {id: a, url: 'https://x.org/a'}\n  - {id: a, url: 'https://x.org/b'}\n",
            "source 'a': id: duplicate id",
        ),
        ("sources:\n  - id: a\n    path: ../../etc/passwd\n", "path: leaves the manifest's folder"),
        (
            "sources:\n  - id: a\n    url: https://x.org/a\npairs:\n  - {id: p, lq: a, gt: zz}\n",
            "pair 'p': gt: unknown source 'zz'",
        ),
        ("sources:\n  - id: a\n    kind: film\n", "exactly one of url or path"),
        ("sources:\n  - id: a\n    url: https://x.org/a\n    sections: ['9-3']\n", "ends before"),
        ("sources: !!python/object/apply:os.system ['touch PWNED']\n", "m.yaml:1: refused"),
        ("- just\n- a list\n", "expected a mapping"),
        # A key given twice in one mapping: YAML kept the last one, silently.
        (
            "sources:\n  - id: a\n    url: https://x.org/a\n    url: https://x.org/b\n",
            "m.yaml:4: refused: duplicate key 'url'",
        ),
        # Overlapping sections: the frames in both would be downloaded twice, one file.
        (
            "sources:\n  - id: a\n    url: https://x.org/a\n"
            "    sections: ['0:02-0:06', '0:04-0:08']\n",
            "source 'a': sections: '0:04-0:08' overlaps '0:02-0:06'",
        ),
        (
            "sources:\n  - id: a\n    url: https://x.org/a\n"
            "    sections: ['1:00-inf', '2:00-2:10']\n",
            "source 'a': sections: '2:00-2:10' overlaps '1:00-inf'",
        ),
        # Wrong shapes are named in YAML's words (pydantic said "a valid tuple", "a valid
        # dictionary or instance of Source": neither is something a manifest holds).
        (
            "sources:\n  - id: a\n    url: https://x.org/a\n    sections: '0:10-0:20'\n",
            "source 'a': sections: Input should be a list",
        ),
        ("sources: https://x.org/a\n", "manifest: sources: Input should be a list"),
        ("sources:\n  - https://x.org/a\n", "source #1: entry: Input should be a mapping"),
        # A boolean is not a year (it was taken as the year 1).
        ("sources:\n  - id: a\n    url: https://x.org/a\n    year: true\n", "source 'a': year:"),
    ],
)
def test_hostile_manifests_refused(tmp_path: Path, body: str, needle: str) -> None:
    with pytest.raises(ManifestError) as e:
        load_manifest(write(tmp_path, body))
    msg = str(e.value)
    assert needle in msg
    assert str(tmp_path / "m.yaml") in msg
    assert "\n" not in msg
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (
            "sources:\n  - idd: a\n    url: https://x.org/a\n",
            "source #1: idd: unknown field",
        ),
        (
            "sources:\n  - id: a\n    url: https://x.org/a\n  - id: b\n    url: https://x.org/b\n"
            "pairs:\n  - id: p\n    lqq: a\n    gt: b\n",
            "pair 'p': lqq: unknown field",
        ),
    ],
)
def test_a_misspelt_required_field_is_named_as_written(
    tmp_path: Path, body: str, line: str
) -> None:
    """A required field misspelt (`idd:`, `lqq:`) was refused as the field missing ("pair
    'p': lq: Field required"), not naming the key the user wrote, as a misspelt optional
    field (`colour:`) is named. The unknown key is named: it is the one to fix."""
    path = write(tmp_path, body)
    with pytest.raises(ManifestError) as e:
        load_manifest(path)
    assert str(e.value) == f"{path}: {line}"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such file"):
        load_manifest(tmp_path / "nope.yaml")


def test_a_folder_is_refused_as_a_folder(tmp_path: Path) -> None:
    """It was "cannot read: [Errno 21] Is a directory"."""
    with pytest.raises(ManifestError, match=r"a folder, not a YAML file$"):
        load_manifest(tmp_path)


def test_parse_section() -> None:
    assert parse_section("1:00:00-1:00:30.5") == (3600.0, 3630.5)
    with pytest.raises(ValueError):
        parse_section("abc")


def test_a_capture_linked_into_the_folder_is_taken(tmp_path: Path) -> None:
    """A capture kept elsewhere (a NAS) and symlinked into the manifest's folder is inside it
    as written; it was refused as a path that "leaves the manifest's folder"."""
    (tmp_path / "nas").mkdir()
    (tmp_path / "nas" / "tape.mkv").write_bytes(b"x")
    project = tmp_path / "project"
    (project / "captures").mkdir(parents=True)
    (project / "captures" / "tape.mkv").symlink_to(tmp_path / "nas" / "tape.mkv")
    m = load_manifest(write(project, "sources:\n  - id: t\n    path: captures/tape.mkv\n"))
    assert m.local_path(m.source("t")) == project.resolve() / "captures/tape.mkv"
    for escape in ("../nas/tape.mkv", "captures/../../nas/tape.mkv"):
        with pytest.raises(ManifestError, match="leaves the manifest's folder"):
            load_manifest(write(project, f"sources:\n  - id: t\n    path: {escape}\n"))
