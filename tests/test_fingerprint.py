"""`fingerprint`: what an input file holds, cheaply (its size and the sha256 of its ends)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from filmdata import fingerprint
from filmdata.fingerprint import file_fingerprint, holds, input_content, replaced


def test_the_same_bytes_touched_or_copied_are_the_same_and_other_bytes_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fingerprint, "ENDS", 16)
    a = tmp_path / "a.mp4"
    a.write_bytes(bytes(range(100)))
    key = file_fingerprint(a)
    os.utime(a, (1e9, 1e9))
    (tmp_path / "b.mp4").write_bytes(a.read_bytes())
    assert file_fingerprint(a) == file_fingerprint(tmp_path / "b.mp4") == key
    for edit in (b"\xff" + a.read_bytes()[1:], a.read_bytes()[:-1] + b"\xff", bytes(101)):
        a.write_bytes(edit)
        assert file_fingerprint(a) != key
    # (past its ends, a file of the same size is not read: the cost of not reading it all)
    a.write_bytes(bytes(range(50)) + b"\xff" + bytes(range(51, 100)))
    assert file_fingerprint(a) == key
    small = tmp_path / "small.mp4"
    small.write_bytes(b"x" * 20)  # under two ends: all of it
    assert file_fingerprint(small) != file_fingerprint(a)


def test_input_content_by_catalog_sha256_else_the_file_and_what_is_compared(
    tmp_path: Path,
) -> None:
    (tmp_path / "raw").mkdir()
    for n in ("s0", "s1"):
        (tmp_path / "raw" / f"{n}.mp4").write_bytes(n.encode())
    files = [str(tmp_path / "raw" / f"{n}.mp4") for n in ("s0", "s1")]
    shas = {str((tmp_path / "raw" / "s0.mp4").resolve()): "ab" * 32}
    got = input_content(files, tmp_path, shas)
    assert got == {"raw/s0.mp4": "sha256:" + "ab" * 32, "raw/s1.mp4": file_fingerprint(files[1])}
    assert input_content(files[1:]) == {files[1]: file_fingerprint(files[1])}
    assert replaced(None, got) == [] and replaced({"raw/s2.mp4": "x"}, got) == []
    assert replaced({**got, "raw/s1.mp4": "ends:2:00"}, got) == ["raw/s1.mp4"]


def test_holds_a_catalog_key_by_the_whole_file_and_another_by_its_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`verify --repair` asks whether the file now at a path is the one recorded: a catalog's
    sha256 is compared with the whole file's (a file put there by hand leaves the catalog's
    sha256 as it was); a fingerprint as `input_content` made it."""
    import hashlib

    monkeypatch.setattr(fingerprint, "ENDS", 16)
    a = tmp_path / "a.mp4"
    a.write_bytes(bytes(range(100)))
    sha, ends = "sha256:" + hashlib.sha256(a.read_bytes()).hexdigest(), file_fingerprint(a)
    assert holds(a, sha) and holds(a, ends)
    a.write_bytes(bytes(range(50)) + b"\xff" + bytes(range(51, 100)))  # inside: not the ends
    assert not holds(a, sha) and holds(a, ends)
    a.write_bytes(bytes(101))
    assert not holds(a, sha) and not holds(a, ends)
