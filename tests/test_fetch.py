"""`filmdata fetch` end to end, against a loopback HTTP server and yt-dlp's generic extractor."""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from _http import Route, serve
from conftest import make_clip
from filmdata.catalog import Catalog
from filmdata.cli import app
from filmdata.fetch import pool
from filmdata.fetch.ytdlp import classify, format_spec


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("served")
    a, _ = make_clip(d / "a.mp4", (12, 12), seed=1)
    b, _ = make_clip(d / "b.mkv", (24, 24), seed=2)
    return {"a": a.read_bytes(), "b": b.read_bytes()}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_manifest(path: Path, name: str, sources: list[dict]) -> Path:
    lines = [f"name: {name}", "sources:"]
    for s in sources:
        lines.append(f"  - id: {s['id']}")
        lines += [f"    {k}: {json.dumps(v)}" for k, v in s.items() if k != "id"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def fetch_json(runner: CliRunner, *args: str) -> tuple[int, list[dict]]:
    result = runner.invoke(app, ["fetch", *args, "--json", "--quiet"])
    items = json.loads(result.stdout) if result.stdout.strip().startswith("[") else []
    return result.exit_code, items


def sources(runner: CliRunner, root: Path) -> dict[str, dict]:
    result = runner.invoke(app, ["sources", "--root", str(root), "--json"])
    assert result.exit_code == 0, result.output
    return {r["id"]: r for r in json.loads(result.stdout)}


def test_fetch_good_dead_corrupt_then_rerun(
    runner: CliRunner, root: Path, tmp_path: Path, footage: dict[str, bytes]
) -> None:
    routes = {
        "/a.mp4": Route(footage["a"]),
        "/b.mkv": Route(footage["b"], "video/x-matroska"),
        "/gone.mp4": Route(b"", behaviour="404"),
        "/noise.mp4": Route(random.Random(0).randbytes(20_000)),
    }
    with serve(routes) as srv:
        m = write_manifest(
            tmp_path / "m.yaml",
            "loop",
            [
                {"id": "good-a", "url": srv.url("/a.mp4"), "title": "A"},
                {"id": "good-b", "url": srv.url("/b.mkv")},
                {"id": "dead", "url": srv.url("/gone.mp4")},
                {"id": "corrupt", "url": srv.url("/noise.mp4")},
            ],
        )
        code, items = fetch_json(runner, str(m), "--root", str(root), "--retries", "0")
        assert code == 1
        status = {i["id"]: i["status"] for i in items}
        assert status == {
            "good-a": "fetched",
            "good-b": "fetched",
            "dead": "failed",
            "corrupt": "failed",
        }
        rows = sources(runner, root)
        assert rows["good-a"]["sha256"] == sha(footage["a"])
        assert rows["good-b"]["sha256"] == sha(footage["b"])
        assert (root / rows["good-a"]["path"]).read_bytes() == footage["a"]
        assert rows["good-a"]["path"] == "raw/loop/good-a.mp4"
        assert rows["good-b"]["path"] == "raw/loop/good-b.mkv"
        assert rows["good-a"]["frames"] == 24 and rows["good-a"]["width"] == 96
        assert "404" in rows["dead"]["error"] and rows["dead"]["status"] == "failed"
        assert rows["corrupt"]["error"].startswith("not a video")
        assert not list((root / "raw" / "loop").glob("corrupt.*"))

        # The re-run sends no second download of what is fetched and verified.
        before = {p: len(srv.gets(p)) for p in ("/a.mp4", "/b.mkv")}
        code, items = fetch_json(runner, str(m), "--root", str(root), "--only", "good-a")
        assert code == 0 and [(i["id"], i["status"]) for i in items] == [("good-a", "skipped")]
        code, items = fetch_json(runner, str(m), "--root", str(root), "--retries", "0")
        assert code == 1
        assert {i["id"]: i["status"] for i in items}["good-b"] == "skipped"
        assert {p: len(srv.gets(p)) for p in before} == before

        # A file changed on disk is not trusted: fetched again.
        (root / "raw/loop/good-a.mp4").write_bytes(b"not the same")
        code, items = fetch_json(runner, str(m), "--root", str(root), "--only", "good-a")
        assert code == 0 and items[0]["status"] == "fetched"
        assert (root / "raw/loop/good-a.mp4").read_bytes() == footage["a"]
        # --force fetches again even when verified.
        code, items = fetch_json(runner, str(m), "--root", str(root), "--only", "good-a", "--force")
        assert code == 0 and items[0]["status"] == "fetched"
        assert len(srv.gets("/a.mp4")) > before["/a.mp4"] + 1


def test_table_for_people(
    runner: CliRunner, root: Path, tmp_path: Path, footage: dict[str, bytes]
) -> None:
    with serve({"/a.mp4": Route(footage["a"])}) as srv:
        m = write_manifest(tmp_path / "m.yaml", "people", [{"id": "a", "url": srv.url("/a.mp4")}])
        result = runner.invoke(app, ["fetch", str(m), "--root", str(root), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "fetched" in result.stdout and "fetched 1, skipped 0, failed 0" in result.stdout


HOSTILE = {
    "file-url": 'sources:\n  - id: x\n    url: "file:///etc/passwd"\n',
    "option-url": 'sources:\n  - id: x\n    url: "--exec=touch {marker}"\n',
    "escaping-path": 'sources:\n  - id: x\n    path: "../../../{marker_name}"\n',
    "python-tag": 'sources: !!python/object/apply:os.system ["touch {marker}"]\n',
    "unknown-field": (
        'sources:\n  - id: x\n    url: "https://example.com/v"\n    exec: "touch {marker}"\n'
    ),
    "bad-id": 'sources:\n  - id: "../x"\n    url: "https://example.com/v"\n',
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_manifest_refused(runner: CliRunner, tmp_path: Path, case: str) -> None:
    marker = tmp_path / "pwned"
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    m = folder / "evil.yaml"
    m.write_text(HOSTILE[case].format(marker=marker, marker_name=marker.name), encoding="utf-8")
    root = tmp_path / "root"
    result = runner.invoke(app, ["fetch", str(m), "--root", str(root), "--quiet"])
    assert result.exit_code == 2, result.output
    assert "evil.yaml" in result.output
    assert not root.exists() and not marker.exists()


def test_all_manifests_are_validated_before_anything_runs(
    runner: CliRunner, tmp_path: Path, footage: dict[str, bytes]
) -> None:
    with serve({"/a.mp4": Route(footage["a"])}) as srv:
        good = write_manifest(
            tmp_path / "good.yaml", "good", [{"id": "a", "url": srv.url("/a.mp4")}]
        )
        bad = write_manifest(tmp_path / "bad.yaml", "bad", [{"id": "a", "url": "ftp://x/y"}])
        result = runner.invoke(app, ["fetch", str(good), str(bad), "--root", str(tmp_path / "r")])
        assert result.exit_code == 2 and "bad.yaml" in result.output
        assert not srv.hits and not (tmp_path / "r").exists()


def test_bad_options_refused(runner: CliRunner, tmp_path: Path) -> None:
    m = write_manifest(tmp_path / "m.yaml", "m", [{"id": "a", "url": "https://example.com/a"}])
    r = tmp_path / "r"
    for extra in (["--cookies", str(tmp_path / "none.txt")], ["--only", "nope"], ["--jobs", "0"]):
        result = runner.invoke(app, ["fetch", str(m), "--root", str(r), *extra])
        assert result.exit_code == 2, (extra, result.output)
    assert not r.exists()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("session=secret42\n", "does not look like a Netscape format cookies file"),
        ('[{"name": "session", "value": "secret42"}]\n', "must be Netscape formatted, not JSON"),
    ],
)
def test_a_cookies_file_yt_dlp_cannot_read_is_refused(
    runner: CliRunner, tmp_path: Path, text: str, why: str
) -> None:
    """A --cookies file that is no Netscape cookies.txt (a browser extension's JSON export,
    a header copied from devtools) passed the check, and every URL source failed on it in
    turn (exit 1, each recorded as failed with yt-dlp's reason). Refused before anything
    runs (exit 2, one line naming the file and yt-dlp's reason), nothing made."""
    m = write_manifest(tmp_path / "m.yaml", "m", [{"id": "a", "url": "https://example.com/a"}])
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(text)
    r = tmp_path / "r"
    result = runner.invoke(app, ["fetch", str(m), "--root", str(r), "--cookies", str(cookies)])
    assert result.exit_code == 2, result.output
    (line,) = [s for s in result.output.splitlines() if s.strip()]
    assert line.startswith(f"error: --cookies {cookies}: not a cookies file yt-dlp reads"), line
    assert why in line and not r.exists()


@pytest.mark.parametrize("sleep", ["nan", "inf"])
def test_a_sleep_that_is_no_number_of_seconds_is_refused(
    runner: CliRunner, tmp_path: Path, sleep: str
) -> None:
    """--sleep nan passed the check (NaN < 0 is false) and the pool never started a source
    (no wait is >= NaN): fetch hung for ever; --sleep inf started one source and never the
    next. Refused in one line (exit 2), nothing made."""
    m = write_manifest(tmp_path / "m.yaml", "m", [{"id": "a", "url": "https://example.com/a"}])
    r = tmp_path / "r"
    result = runner.invoke(app, ["fetch", str(m), "--root", str(r), "--sleep", sleep, "-q"])
    assert result.exit_code == 2, result.output
    (line,) = [s for s in result.output.splitlines() if s.strip()]
    assert line == f"error: --sleep: must be a finite 0 or more seconds, got {float(sleep)}"
    assert not r.exists()


def test_folders_given_as_files_are_refused_as_folders(
    runner: CliRunner, tmp_path: Path, footage: dict[str, bytes]
) -> None:
    """A manifest or --cookies that is a folder is refused saying so (it was "cannot read:
    [Errno 21] Is a directory" and "no such file"); a local capture that is a folder fails
    saying so."""
    m = write_manifest(tmp_path / "m.yaml", "m", [{"id": "a", "url": "https://example.com/a"}])
    folder = tmp_path / "stuff"
    folder.mkdir()
    r = tmp_path / "r"
    for args, want in (
        ([str(folder)], f"error: {folder}: a folder, not a YAML file"),
        ([str(m), "--cookies", str(folder)], f"error: --cookies {folder}: a folder, not a "),
    ):
        result = runner.invoke(app, ["fetch", *args, "--root", str(r), "--quiet"])
        assert result.exit_code == 2, result.output
        (line,) = result.output.strip().splitlines()
        assert line.startswith(want), line
    assert not r.exists()
    (tmp_path / "tape.mkv").mkdir()
    m = write_manifest(tmp_path / "v.yaml", "v", [{"id": "t", "path": "tape.mkv", "kind": "vhs"}])
    code, items = fetch_json(runner, str(m), "--root", str(r))
    assert code == 1 and items[0]["status"] == "failed"
    assert items[0]["reason"] == f"capture {tmp_path / 'tape.mkv'}: a folder, not a video file"


def test_a_root_that_is_a_file_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    m = write_manifest(tmp_path / "m.yaml", "m", [{"id": "a", "url": "https://example.com/a"}])
    a_file = tmp_path / "clip.mp4"
    a_file.write_bytes(b"x")
    result = runner.invoke(app, ["fetch", str(m), "--root", str(a_file), "--quiet"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"--root {a_file}: cannot make the data root" in result.output


def test_local_captures_copy_link_missing(
    runner: CliRunner, root: Path, tmp_path: Path, footage: dict[str, bytes]
) -> None:
    caps = tmp_path / "captures"
    caps.mkdir()
    (caps / "tape.mkv").write_bytes(footage["b"])
    m = write_manifest(
        tmp_path / "vhs.yaml",
        "vhs",
        [
            {"id": "tape", "path": "captures/tape.mkv", "kind": "vhs"},
            {"id": "later", "path": "captures/not-yet.mkv", "kind": "vhs"},
        ],
    )
    code, items = fetch_json(runner, str(m), "--root", str(root))
    assert code == 1
    by_id = {i["id"]: i for i in items}
    assert by_id["tape"]["status"] == "fetched" and by_id["tape"]["sha256"] == sha(footage["b"])
    assert by_id["later"]["status"] == "failed"
    assert f"put the file at {caps / 'not-yet.mkv'}" in by_id["later"]["reason"]
    copied = root / "raw/vhs/tape.mkv"
    assert copied.read_bytes() == footage["b"]
    assert copied.stat().st_ino != (caps / "tape.mkv").stat().st_ino

    # The capture arrives: the re-run fetches it and skips the other.
    (caps / "not-yet.mkv").write_bytes(footage["b"])
    code, items = fetch_json(runner, str(m), "--root", str(root))
    assert code == 0
    assert [i["status"] for i in items] == ["skipped", "fetched"]

    linked_root = tmp_path / "linked"
    code, items = fetch_json(runner, str(m), "--root", str(linked_root), "--link")
    assert code == 0
    assert (linked_root / "raw/vhs/tape.mkv").stat().st_ino == (caps / "tape.mkv").stat().st_ino


def test_a_source_fetched_again_with_other_content_keeps_no_clips_of_the_old(
    runner: CliRunner, root: Path, tmp_path: Path, footage: dict[str, bytes]
) -> None:
    """A capture replaced (a tape captured again) is fetched again, but its clips stayed in
    the catalog as kept: frame ranges and picture boxes of the old file, which `synth` cut
    from the new one (windows of other shots, or past its end: failed). Its clips, and
    their exported files, go with the old content, and a line on stderr says it needs `cut`;
    a re-fetch of the same bytes keeps them."""
    from filmdata.scenes.cut import cut, list_clips

    caps = tmp_path / "captures"
    caps.mkdir()
    (caps / "reel.mkv").write_bytes(footage["b"])
    m = write_manifest(tmp_path / "m.yaml", "m", [{"id": "reel", "path": "captures/reel.mkv"}])
    assert fetch_json(runner, str(m), "--root", str(root))[0] == 0
    cut(root, min_len=0.1, export=True, quiet=True)
    before = list_clips(root)
    assert before and any(c["path"] for c in before)
    (caps / "reel.mkv").write_bytes(footage["b"])  # the same bytes, touched: clips stay
    code, items = fetch_json(runner, str(m), "--root", str(root))
    assert code == 0 and [i["status"] for i in items] == ["fetched"]
    assert list_clips(root) == before
    (caps / "reel.mkv").write_bytes(footage["a"])  # other content at the same path
    # (not --quiet: the hint that the source needs `cut` again is a line on stderr)
    r = runner.invoke(app, ["fetch", str(m), "--root", str(root), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)[0]["sha256"] == sha(footage["a"])
    assert list_clips(root) == []
    assert not list((root / "clips").rglob("*.mp4"))
    hint = (
        "1 source(s) fetched with other content, their clips of the old file dropped: m/reel; "
        "run `filmdata cut`"
    )
    assert hint in r.stderr.splitlines(), r.stderr
    # a re-fetch that failed in between (its copy removed, no sha256 recorded) leaves
    # nothing to compare with: the clips go too
    cut(root, min_len=0.1, quiet=True)
    assert list_clips(root, status="kept")
    (caps / "reel.mkv").write_bytes(b"not a video\n" * 100)
    assert fetch_json(runner, str(m), "--root", str(root))[0] == 1
    (caps / "reel.mkv").write_bytes(footage["b"])
    assert fetch_json(runner, str(m), "--root", str(root))[0] == 0
    assert list_clips(root) == []


def test_a_manifest_given_twice_is_fetched_once(
    root: Path, tmp_path: Path, footage: dict[str, bytes]
) -> None:
    """The same file, as the same object, an equal path or another spelling of it, is read
    once: its items are not fetched twice at once (one of the two would fail)."""
    from filmdata.fetch import fetch

    (tmp_path / "tape.mkv").write_bytes(footage["b"])
    m = write_manifest(tmp_path / "m.yaml", "vhs", [{"id": "tape", "path": "tape.mkv"}])
    report = fetch([str(m)] * 2, root=root, quiet=True, jobs=2)
    assert [(i.id, i.status) for i in report.items] == [("tape", "fetched")]
    other = tmp_path / "sub" / ".." / "m.yaml"
    (tmp_path / "sub").mkdir()
    report = fetch([m, other, str(m)], root=root, quiet=True, jobs=2)
    assert [(i.id, i.status) for i in report.items] == [("tape", "skipped")]


def test_failed_item_reports_a_file_only_where_one_is_kept(
    runner: CliRunner, root: Path, tmp_path: Path, footage: dict[str, bytes]
) -> None:
    """A failed item's report names the earlier copy's path and sha256 only when it is still
    there and recorded (--force keeps it until a new one replaces it), not a deleted one's."""
    (tmp_path / "tape.mkv").write_bytes(footage["b"])
    m = write_manifest(tmp_path / "m.yaml", "vhs", [{"id": "tape", "path": "tape.mkv"}])
    assert fetch_json(runner, str(m), "--root", str(root))[0] == 0
    (tmp_path / "tape.mkv").rename(tmp_path / "away.mkv")  # the capture is gone: it fails

    code, (item,) = fetch_json(runner, str(m), "--root", str(root), "--force")
    assert code == 1 and item["status"] == "failed"
    assert item["path"] == "raw/vhs/tape.mkv" and item["sha256"] == sha(footage["b"])
    assert (root / item["path"]).is_file() and sources(runner, root)["tape"]["path"]

    # Re-pointed to another path (not there either): not current, so the copy is removed.
    write_manifest(tmp_path / "m.yaml", "vhs", [{"id": "tape", "path": "moved/tape.mkv"}])
    code, (item,) = fetch_json(runner, str(m), "--root", str(root))
    assert code == 1 and item["status"] == "failed"
    assert item["path"] is None and item["sha256"] is None
    assert not (root / "raw/vhs/tape.mkv").exists()
    assert sources(runner, root)["tape"]["path"] is None


def test_link_leaves_the_captures_mode_alone(
    runner: CliRunner, root: Path, tmp_path: Path, footage: dict[str, bytes]
) -> None:
    """--link shares the capture's inode: the execute bit dropped from a copy is not taken
    from the user's own file."""
    capture = tmp_path / "tape.mkv"
    capture.write_bytes(footage["b"])
    capture.chmod(0o755)  # as captures copied off an exFAT or NTFS drive often are
    m = write_manifest(tmp_path / "m.yaml", "vhs", [{"id": "tape", "path": "tape.mkv"}])
    code, _ = fetch_json(runner, str(m), "--root", str(root / "copied"))
    assert code == 0 and not os.access(root / "copied/raw/vhs/tape.mkv", os.X_OK)
    code, _ = fetch_json(runner, str(m), "--root", str(root / "linked"), "--link")
    assert code == 0
    assert (root / "linked/raw/vhs/tape.mkv").stat().st_ino == capture.stat().st_ino
    assert capture.stat().st_mode & 0o777 == 0o755


def test_a_download_killed_while_verified_is_verified_again(
    root: Path, tmp_path: Path, footage: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed after the download, while the file was verified, leaves the complete file
    staged: the next run verifies it instead of downloading it again; a changed URL does not
    take it for its own."""
    from filmdata.fetch import FetchFailed, fetch
    from filmdata.fetch import item as item_mod

    def killed(*args: object, **kwargs: object) -> None:
        os._exit(137)  # the worker dies mid-verification, as under kill -9

    with serve({"/a.mp4": Route(footage["a"]), "/b.mp4": Route(footage["b"])}) as srv:
        m = write_manifest(tmp_path / "m.yaml", "k", [{"id": "a", "url": srv.url("/a.mp4")}])
        with monkeypatch.context() as mp:
            mp.setattr(item_mod, "verify_media", killed)
            with pytest.raises(FetchFailed):
                fetch([m], root=root, quiet=True, retries=0)
        assert (root / "raw/k/.incoming/a/a.mp4").read_bytes() == footage["a"]
        gets = len(srv.gets("/a.mp4"))
        report = fetch([m], root=root, quiet=True)
        assert [i.status for i in report.items] == ["fetched"]
        assert report.items[0].sha256 == sha(footage["a"])
        assert len(srv.gets("/a.mp4")) == gets + 1  # yt-dlp's look at the page, no download
        assert not (root / "raw/k/.incoming/a").exists()

        # Staged again, then the manifest points elsewhere: the staged file is not taken.
        with monkeypatch.context() as mp:
            mp.setattr(item_mod, "verify_media", killed)
            with pytest.raises(FetchFailed):
                fetch([m], root=root, quiet=True, retries=0, force=True)
        write_manifest(tmp_path / "m.yaml", "k", [{"id": "a", "url": srv.url("/b.mp4")}])
        report = fetch([m], root=root, quiet=True)
        assert report.items[0].sha256 == sha(footage["b"])


def test_jobs_run_at_once(
    runner: CliRunner, root: Path, tmp_path: Path, footage: dict[str, bytes]
) -> None:
    routes = {f"/s{i}.mp4": Route(footage["a"], behaviour="slow", delay=0.8) for i in range(3)}
    with serve(routes) as srv:
        m = write_manifest(
            tmp_path / "m.yaml",
            "par",
            [{"id": f"s{i}", "url": srv.url(p)} for i, p in enumerate(routes)],
        )
        code, items = fetch_json(runner, str(m), "--root", str(root), "--jobs", "3")
        assert code == 0 and {i["status"] for i in items} == {"fetched"}
        assert srv.max_active >= 2
    with Catalog.at_root(root) as cat:
        assert {r["sha256"] for r in cat.sources()} == {sha(footage["a"])}


def test_sections(runner: CliRunner, root: Path, tmp_path: Path) -> None:
    clip, _ = make_clip(tmp_path / "long.mp4", (48, 48), seed=3)  # 4 s at 24 fps
    with serve({"/long.mp4": Route(clip.read_bytes())}) as srv:
        m = write_manifest(
            tmp_path / "m.yaml",
            "sec",
            [{"id": "part", "url": srv.url("/long.mp4"), "sections": ["0:01-0:03"]}],
        )
        code, items = fetch_json(runner, str(m), "--root", str(root))
        assert code == 0, items
    row = sources(runner, root)["part"]
    assert 40 <= row["frames"] < 96 and row["info"]["sections"] == [[1.0, 3.0]]


def test_open_ended_section(runner: CliRunner, root: Path, tmp_path: Path) -> None:
    """An open end ("0:01-inf") from a direct link (yt-dlp gives no duration): the file is
    checked against its own length, not the container's count with its pre-roll (which read as
    truncated), and a re-run finds it current (the catalog stores the open end as null) and
    downloads nothing."""
    clip, _ = make_clip(tmp_path / "long.mp4", (48, 48), seed=3)  # 4 s at 24 fps
    with serve({"/long.mp4": Route(clip.read_bytes())}) as srv:
        m = write_manifest(
            tmp_path / "m.yaml",
            "sec",
            [{"id": "part", "url": srv.url("/long.mp4"), "sections": ["0:01-inf"]}],
        )
        code, items = fetch_json(runner, str(m), "--root", str(root))
        assert code == 0 and items[0]["status"] == "fetched", items
        gets = len(srv.gets("/long.mp4"))
        code, items = fetch_json(runner, str(m), "--root", str(root))
        assert code == 0 and items[0]["status"] == "skipped", items
        assert len(srv.gets("/long.mp4")) == gets
    row = sources(runner, root)["part"]
    assert row["frames"] == 72 and row["truncated"] == 0
    assert row["info"]["sections"] == [[1.0, None]]


def test_classify_retry_after_and_format() -> None:
    import io

    from yt_dlp.networking import Response
    from yt_dlp.networking.exceptions import HTTPError

    resp = Response(io.BytesIO(b""), "http://x/", {"Retry-After": "7"}, status=503)
    err = classify(HTTPError(resp))
    assert err.retryable and err.retry_after == 7.0
    resp = Response(io.BytesIO(b""), "http://x/", {}, status=404)
    assert not classify(HTTPError(resp)).retryable
    assert "height<=?720" in format_spec(720) and format_spec(None) == "bv*+ba/b"
    rng = random.Random(0)
    delays = [pool.backoff(n, rng) for n in (1, 2, 3)]
    assert 0.5 <= delays[0] < 1.5 and 1 <= delays[1] < 3 and 2 <= delays[2] < 6


def test_cli_does_not_import_ytdlp() -> None:
    import subprocess
    import sys

    code = "import sys, filmdata.cli; print('yt_dlp' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ
    )
    assert out.stdout.strip() == "False", out.stderr


def test_cookies_and_proxy_are_passed_through(
    runner: CliRunner, root: Path, tmp_path: Path, footage: dict[str, bytes]
) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(
        "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tsecret42\n"
    )
    with serve({"/a.mp4": Route(footage["a"]), "/b.mp4": Route(footage["a"])}) as srv:
        port = srv.server_address[1]
        m = write_manifest(tmp_path / "c.yaml", "c", [{"id": "a", "url": srv.url("/a.mp4")}])
        code, _ = fetch_json(runner, str(m), "--root", str(root), "--cookies", str(cookies))
        assert code == 0
        assert all(h.cookie and "session=secret42" in h.cookie for h in srv.gets("/a.mp4"))
        # Nothing listens on the manifest's host: only the proxy can answer.
        far = write_manifest(
            tmp_path / "p.yaml", "p", [{"id": "b", "url": "http://127.0.0.1:9/b.mp4"}]
        )
        proxy = f"http://127.0.0.1:{port}"
        code, items = fetch_json(runner, str(far), "--root", str(root), "--proxy", proxy)
        assert code == 0, items
        assert srv.gets("/b.mp4") and all(h.proxied for h in srv.gets("/b.mp4"))


def test_json_stdout_stays_json_with_progress_and_failures(
    runner: CliRunner, root: Path, tmp_path: Path
) -> None:
    m = write_manifest(tmp_path / "m.yaml", "j", [{"id": "gone", "path": "nowhere.mkv"}])
    result = runner.invoke(app, ["fetch", str(m), "--root", str(root), "--json"])
    assert result.exit_code == 1
    (item,) = json.loads(result.stdout)
    assert item["status"] == "failed" and "put the file at" in item["reason"]


@pytest.mark.parametrize("max_height,want", [(None, "sdr1080+audio"), (720, "sdr720+audio")])
def test_standard_dynamic_range_is_chosen_over_hdr(max_height: int | None, want: str) -> None:
    """A remaster offered in HDR10 beside SDR (as YouTube offers it): yt-dlp on its own takes
    the HDR one (2160p HDR10, whose PQ code values would make washed-out GT); with our options
    it takes the best SDR one within the height asked for. (yt-dlp's format selection on a
    video's listed formats; nothing is downloaded.)"""
    from yt_dlp import YoutubeDL

    from filmdata.fetch.ytdlp import _Log, ydl_params

    def fmt(fid: str, height: int | None, dr: str | None, vcodec: str, ext: str = "mp4") -> dict:
        return {"format_id": fid, "url": f"https://example.invalid/{fid}", "ext": ext,
                "height": height, "width": height and height * 16 // 9,
                "fps": 25 if height else None, "vcodec": vcodec,
                "acodec": "none" if height else "mp4a.40.2",
                "dynamic_range": dr, "protocol": "https"}  # fmt: skip

    info = {
        "id": "v", "title": "t", "extractor": "generic", "extractor_key": "Generic",
        "webpage_url": "https://example.invalid/v",
        "formats": [
            fmt("sdr720", 720, "SDR", "avc1.64001f"),
            fmt("hdr720", 720, "HDR10", "vp09.02.31.10", "webm"),
            fmt("sdr1080", 1080, "SDR", "avc1.640028"),
            fmt("hdr1080", 1080, "HDR10", "vp09.02.40.10", "webm"),
            fmt("hdr2160", 2160, "HDR10", "vp09.02.51.10", "webm"),
            fmt("audio", None, None, "none", "m4a"),
        ],
    }  # fmt: skip
    params = ydl_params("/tmp/unused.%(ext)s", max_height=max_height, cookies=None, proxy=None,
                        socket_timeout=5, sections=(), rejected=[], logger=_Log())  # fmt: skip
    with YoutubeDL(params) as ydl:
        assert ydl.process_ie_result(dict(info), download=False)["format_id"] == want
    with YoutubeDL({**params, "format_sort": []}) as ydl:  # yt-dlp's own choice, for contrast
        assert "hdr" in ydl.process_ie_result(dict(info), download=False)["format_id"]


def test_captures_in_older_containers_are_fetched(
    runner: CliRunner, root: Path, tmp_path: Path
) -> None:
    """Captures as older tools left them (an MPEG-2 elementary stream demuxed from a DVD, an
    ASF of a Windows capture program, raw Y4M, RealVideo) are imported and probed like any."""
    import av
    import numpy as np

    caps = tmp_path / "captures"
    caps.mkdir()
    made = {"dvd.m2v": ("mpeg2video", "mpeg2video"), "cap.asf": ("asf", "wmv2"),
            "raw.y4m": ("yuv4mpegpipe", "rawvideo"), "old.rm": ("rm", "rv20")}  # fmt: skip
    for name, (fmt, codec) in made.items():
        with av.open(str(caps / name), "w", format=fmt) as out:
            s = out.add_stream(codec, rate=25)
            s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
            for k in range(10):
                img = np.full((48, 64, 3), 20 * k, np.uint8)
                out.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
            out.mux(s.encode())
    listed = [{"id": Path(n).stem, "path": f"captures/{n}", "kind": "vhs"} for n in made]
    m = write_manifest(tmp_path / "old.yaml", "old", listed)
    code, items = fetch_json(runner, str(m), "--root", str(root))
    assert code == 0, items
    assert [i["status"] for i in items] == ["fetched"] * 4
    assert {k: v["frames"] for k, v in sources(runner, root).items()} == dict.fromkeys(
        ("dvd", "cap", "raw", "old"), 10
    )


def test_a_capture_whose_sound_runs_longer_is_not_truncated(
    runner: CliRunner, root: Path, tmp_path: Path
) -> None:
    """A Matroska capture whose sound runs a second past its pictures (capture programs
    record on after the picture stops) was failed as "truncated: 100 of 126 frames decode":
    its frames were counted against the container's duration, the sound's. The video's own
    (its DURATION tag) is what its frames fill."""
    import numpy as np

    from filmdata.pairing.tapesim import with_sound
    from filmdata.video import write_video

    caps = tmp_path / "captures"
    caps.mkdir()
    silent = tmp_path / "silent.mp4"
    write_video(silent, (np.full((48, 64, 3), 2 * k, np.uint8) for k in range(100)), 25.0)
    with_sound(silent, np.zeros(16000 * 5, np.float32), caps / "tape.mkv", rate=16000)
    m = write_manifest(
        tmp_path / "caps.yaml", "caps", [{"id": "tape", "path": "captures/tape.mkv"}]
    )
    code, items = fetch_json(runner, str(m), "--root", str(root))
    assert code == 0 and items[0]["status"] == "fetched", items
    row = sources(runner, root)["tape"]
    assert (row["frames"], row["declared_frames"]) == (100, 100), row


def test_several_sections_hold_only_their_frames(
    runner: CliRunner, root: Path, tmp_path: Path
) -> None:
    """Two sections of a file with one keyframe (x264's default GOP): yt-dlp cuts the second
    by stream copy from the keyframe before it, its pre-roll hidden by the part's edit list.
    The joined file holds each section's frames once, in order (those of frames 24-47 and
    72-95, give or take the frame at each end), not the second part's pre-roll as well."""
    import av
    import numpy as np

    clip, _ = make_clip(tmp_path / "long.mp4", (48, 48), seed=3)  # 4 s at 24 fps
    with serve({"/long.mp4": Route(clip.read_bytes())}) as srv:
        sections = ["0:01-0:02", "0:03-0:04"]
        m = write_manifest(
            tmp_path / "m.yaml",
            "sec",
            [{"id": "two", "url": srv.url("/long.mp4"), "sections": sections}],
        )
        code, items = fetch_json(runner, str(m), "--root", str(root))
        assert code == 0, items
    row = sources(runner, root)["two"]
    with av.open(str(clip)) as c:
        src = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    with av.open(str(root / row["path"])) as c:
        got = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    assert row["frames"] == len(got)
    # each picture is that of the nearest source frame: in order, none of the pre-roll
    nearest = [min(range(96), key=lambda i: float(np.abs(g - src[i]).mean())) for g in got]
    assert nearest == sorted(set(nearest)), nearest
    first = [i for i in nearest if i < 60]
    second = [i for i in nearest if i >= 60]
    assert 23 <= first[0] <= 25 and 46 <= first[-1] <= 51, nearest  # yt-dlp's ends, to a frame
    assert 71 <= second[0] <= 73 and second[-1] == 95, nearest


def test_a_section_past_the_end_is_named(runner: CliRunner, root: Path, tmp_path: Path) -> None:
    """A section that starts after a 4 s video ends (a typo: "0:10-0:12"): the source failed
    as "truncated: 24 of 72 frames decode" (or, alone, "no frame decodes"), as if the transfer
    had been cut short; it now fails naming the section."""
    clip, _ = make_clip(tmp_path / "long.mp4", (48, 48), seed=3)  # 4 s at 24 fps
    with serve({"/long.mp4": Route(clip.read_bytes())}) as srv:
        m = write_manifest(
            tmp_path / "m.yaml",
            "sec",
            [
                {"id": "two", "url": srv.url("/long.mp4"), "sections": ["0:01-0:02", "0:10-0:12"]},
                {"id": "one", "url": srv.url("/long.mp4"), "sections": ["1:00-1:10"]},
            ],
        )
        code, items = fetch_json(runner, str(m), "--root", str(root), "--retries", "0")
    assert code == 1, items
    why = {i["id"]: i["reason"] for i in items}
    assert why["two"].startswith("section 0:10-0:12: no picture in what came"), why
    assert why["one"].startswith("section 1:00-1:10: no picture in what came"), why
    assert not list((root / "raw" / "sec").glob("*.mp4"))
