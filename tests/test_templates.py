"""Template packs: loading (and refusing), the procedural pack, extraction, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import filmdata.cli.templates  # noqa: F401  (registers `templates` until cli/__init__ lists it)
from filmdata.cli import app
from filmdata.degrade import KINDS, bundled_dir, load_templates
from filmdata.degrade.template_extract import classify, extract_templates
from filmdata.degrade.template_make import make_templates
from filmdata.degrade.templates import templates_root
from filmdata.errors import RefusedError


def test_bundled_pack_is_complete_and_small() -> None:
    bank = load_templates(bundled_dir(), "cpu")
    for kind in KINDS:
        assert bank.count(kind) >= 4, kind
        for t in bank.kinds[kind]:
            assert t.dtype == torch.float32 and float(t.min()) >= 0 and float(t.max()) <= 1
    files = list((bundled_dir() / "templates").rglob("*.png"))
    assert sum(f.stat().st_size for f in files) < 2 * 1024 * 1024


def test_accepts_the_templates_folder_itself() -> None:
    a = load_templates(bundled_dir(), "cpu")
    b = load_templates(bundled_dir() / "templates", "cpu")
    assert a.fingerprint() == b.fingerprint()


def test_empty_or_missing_folder_refused(tmp_path: Path) -> None:
    with pytest.raises(RefusedError, match="no templates found"):
        load_templates(tmp_path, "cpu")
    (tmp_path / "dust").mkdir()
    with pytest.raises(RefusedError, match="no templates found"):
        load_templates(tmp_path, "cpu")
    with pytest.raises(RefusedError, match="no such folder"):
        load_templates(tmp_path / "missing", "cpu")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RefusedError, match="notes.txt: a file, not a templates folder; give"):
        load_templates(tmp_path / "notes.txt", "cpu")


def test_unreadable_template_refused(tmp_path: Path) -> None:
    (tmp_path / "dust").mkdir()
    (tmp_path / "dust" / "bad.png").write_bytes(b"not a png at all")
    with pytest.raises(RefusedError, match="bad.png"):
        load_templates(tmp_path, "cpu")


def test_rgba_uses_alpha(tmp_path: Path) -> None:
    (tmp_path / "dust").mkdir()
    img = np.zeros((4, 4, 4), np.uint8)
    img[1, 1, 3] = 255
    img[..., :3] = 255  # white everywhere, damage only where alpha is
    cv2.imwrite(str(tmp_path / "dust" / "a.png"), img)
    t = load_templates(tmp_path, "cpu").get("dust", 0)
    assert float(t[1, 1]) == 1.0 and float(t.sum()) == 1.0


def test_upper_case_png_is_a_template(tmp_path: Path) -> None:
    """`DUST.PNG`, as Windows tools and scanners name files, is a template like `dust.png`."""
    (tmp_path / "dust").mkdir()
    img = np.zeros((4, 4), np.uint8)
    img[1, 1] = 255
    cv2.imwrite(str(tmp_path / "dust" / "a.png"), img)
    cv2.imwrite(str(tmp_path / "dust" / "b.png"), img)
    (tmp_path / "dust" / "b.png").rename(tmp_path / "dust" / "B.PNG")
    bank = load_templates(tmp_path, "cpu")
    assert bank.count("dust") == 2 and bank.names["dust"] == ["B.PNG", "a.png"]


def test_make_is_deterministic(tmp_path: Path) -> None:
    counts = {"dust": 3, "scratch": 2, "hair": 1}
    assert make_templates(tmp_path / "a", seed=4, counts=counts) == counts
    make_templates(tmp_path / "b", seed=4, counts=counts)
    for p in (tmp_path / "a").rglob("*.png"):
        assert p.read_bytes() == (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes()


def test_fingerprint_covers_pixels_not_only_names(tmp_path: Path) -> None:
    """The same seed, the same fingerprint (also re-encoded to the same pixels); another seed's
    pack, of the same file names, another fingerprint; one template's pixels changed, too."""
    counts = {"dust": 2, "hair": 1}
    for name, seed in (("a", 0), ("a2", 0), ("b", 1)):
        make_templates(tmp_path / name, seed=seed, counts=counts)
    a, a2, b = (load_templates(tmp_path / n, "cpu") for n in ("a", "a2", "b"))
    assert a.names == b.names
    assert a.fingerprint() == a2.fingerprint() != b.fingerprint()
    png = templates_root(tmp_path / "a2") / "dust" / a.names["dust"][0]
    img = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(png), img, [cv2.IMWRITE_PNG_COMPRESSION, 0])  # other bytes, same pixels
    assert load_templates(tmp_path / "a2", "cpu").fingerprint() == a.fingerprint()
    img.flat[0] = 255 - img.flat[0]
    cv2.imwrite(str(png), img)
    assert load_templates(tmp_path / "a2", "cpu").fingerprint() != a.fingerprint()


def _overlay_video(path: Path, white: bool) -> Path:
    from filmdata.video import write_video

    rng = np.random.default_rng(0)
    frames = []
    bg, ink = (235, 20) if white else (10, 230)
    for i in range(8):
        f = np.full((96, 128), bg, np.uint8)
        for _ in range(5):
            c = (int(rng.integers(6, 122)), int(rng.integers(6, 90)))
            cv2.circle(f, c, int(rng.integers(1, 3)), ink, -1)
        cv2.line(f, (30 + i, 0), (30 + i, 95), ink, 1)
        frames.append(np.repeat(f[..., None], 3, 2))
    return Path(path) if write_video(path, frames, 24.0) else Path(path)


@pytest.mark.parametrize("white", [True, False])
def test_extract_finds_dust_and_scratches(tmp_path: Path, white: bool) -> None:
    video = _overlay_video(tmp_path / "overlay.mp4", white)
    counts = extract_templates(video, tmp_path / "out", step=1, quiet=True)
    assert counts.get("dust", 0) >= 10 and counts.get("scratch", 0) >= 4
    bank = load_templates(tmp_path / "out", "cpu")
    assert bank.count("dust") == counts["dust"]


def test_classify() -> None:
    assert classify(3, 200, 400, 256) == "scratch"
    assert classify(5, 5, 20, 256) == "dust"
    assert classify(60, 60, 300, 256) == "hair"
    assert classify(50, 40, 1500, 256) == "blotch"


def test_cli_make_and_extract(runner, tmp_path: Path) -> None:
    res = runner.invoke(app, ["templates", "make", "--out", str(tmp_path / "pack"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["templates"]["dust"] > 0
    video = _overlay_video(tmp_path / "o.mp4", True)
    res = runner.invoke(
        app, ["templates", "extract", str(video), "--out", str(tmp_path / "x"), "-q"]
    )
    assert res.exit_code == 0, res.output
    assert "dust" in res.output
    res = runner.invoke(app, ["templates", "extract", str(tmp_path / "missing.mp4")])
    assert res.exit_code == 2 and "no such file" in res.output
    res = runner.invoke(app, ["templates", "extract", str(tmp_path), "--out", str(tmp_path / "f")])
    assert res.exit_code == 2 and not (tmp_path / "f").exists()
    assert res.output.strip() == f"error: {tmp_path}: a folder, not a video file", res.output
    for step in ("0", "-2"):  # (0 was a ZeroDivisionError's traceback, exit 1)
        out = tmp_path / f"step{step}"
        res = runner.invoke(app, ["templates", "extract", str(video), "--out", str(out), "-q",
                                  "--step", step])  # fmt: skip
        assert res.exit_code == 2, res.output
        (line,) = [s for s in res.output.splitlines() if s.strip()]
        assert f"--step must be >= 1, got {step}" in line and not out.exists()
    for opt, value, why in [  # (each wrote no template and exited 0)
        ("--threshold", "-1", "--threshold must be in (0, 1), got -1.0"),
        ("--threshold", "2", "--threshold must be in (0, 1), got 2.0"),
        ("--threshold", "nan", "--threshold must be in (0, 1), got nan"),
        ("--limit", "0", "--limit must be >= 1, got 0"),
    ]:
        out = tmp_path / "bad"
        res = runner.invoke(app, ["templates", "extract", str(video), "--out", str(out), "-q",
                                  opt, value])  # fmt: skip
        assert res.exit_code == 2, res.output
        (line,) = [s for s in res.output.splitlines() if s.strip()]
        assert why in line and not out.exists()


def test_extract_that_finds_no_damage_says_so(runner, tmp_path: Path) -> None:
    """Footage with nothing above --threshold (a blank reel, or too high a threshold) wrote no
    template yet printed an empty table, 'written under OUT' and exited 0; a synth with that
    --templates then found no templates. It is refused in one line naming the video."""
    from filmdata.video import write_video

    blank = tmp_path / "blank.mp4"
    write_video(blank, [np.full((96, 128, 3), 10, np.uint8)] * 6, 24.0)
    overlay = _overlay_video(tmp_path / "o.mp4", False)
    for video, extra in [(blank, []), (overlay, ["--threshold", "0.99"])]:
        out = tmp_path / f"x-{video.stem}"
        res = runner.invoke(app, ["templates", "extract", str(video), "--out", str(out), "-q",
                                  *extra])  # fmt: skip
        assert res.exit_code == 2, res.output
        (line,) = [s for s in res.output.splitlines() if s.strip()]
        assert str(video) in line and "no damage found" in line and "written" not in line


def test_make_refuses_a_negative_seed(runner, tmp_path: Path) -> None:
    """--seed -1 was a ValueError traceback from numpy's SeedSequence (exit 1), after the
    first kind's folder was made. It is refused in one line (exit 2), nothing written."""
    out = tmp_path / "pack"
    res = runner.invoke(app, ["templates", "make", "--out", str(out), "--seed", "-1"])
    assert res.exit_code == 2, res.output
    (line,) = [s for s in res.output.splitlines() if s.strip()]
    assert "--seed must be >= 0, got -1" in line and not out.exists()


def test_cli_refuses_an_out_that_is_a_file(runner, tmp_path: Path) -> None:
    """--out naming a file (or a folder under one) is refused in one line (exit 2), not a
    NotADirectoryError traceback from the first mkdir; the file is left as it was."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    video = _overlay_video(tmp_path / "o.mp4", True)
    for out in (a_file, a_file / "pack"):
        for args in (["make"], ["extract", str(video), "-q"]):
            res = runner.invoke(app, ["templates", *args, "--out", str(out), "--json"])
            assert res.exit_code == 2, (args, res.output)
            (line,) = [s for s in res.output.splitlines() if s.strip()]
            assert f"--out {out}: {a_file} is a file, not a folder" in line
    assert a_file.read_text() == "mine"


def test_extract_from_anamorphic_and_interlaced_overlays(tmp_path: Path) -> None:
    """Overlay reels come from DVDs: pixels 64/45 as wide as high, and fields of two instants
    woven into each frame. A speck round as shown gives a round template (not one squeezed
    to 0.7 of its height), and a scratch sliding 6 px a field gives scratch templates (not
    the comb of two half-lines, every other row each)."""
    from fractions import Fraction

    import av

    sar = 64 / 45
    wide = tmp_path / "dvd.mp4"
    with av.open(str(wide), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 180, 144, "yuv420p"
        s.codec_context.sample_aspect_ratio = Fraction(64, 45)
        s.options = {"crf": "4"}
        for i in range(6):
            f = np.full((144, 180), 10, np.uint8)
            for k in range(4):  # discs of radius 7 as shown: 7 / sar stored pixels across
                c = (20 + 40 * k, 30 + 20 * (i % 3) + 10 * k)
                cv2.ellipse(f, c, (round(7 / sar), 7), 0, 0, 360, 230, -1)
            pic = np.repeat(f[..., None], 3, 2)
            out.mux(s.encode(av.VideoFrame.from_ndarray(pic, format="rgb24")))
        out.mux(s.encode())
    counts = extract_templates(wide, tmp_path / "wide", step=1, quiet=True)
    assert counts.get("dust", 0) >= 12
    ratios = []  # each template's bright part: as wide as high
    for p in (tmp_path / "wide").rglob("*.png"):
        bright = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) > 128
        ratios.append(bright.any(0).sum() / max(1, bright.any(1).sum()))
    assert 0.85 < float(np.median(ratios)) < 1.15, ratios

    woven = tmp_path / "576i.mp4"
    with av.open(str(woven), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 128, 96, "yuv420p"
        s.options = {"crf": "4", "x264-params": "interlaced=1:tff=1"}
        for i in range(10):
            f = np.full((96, 128), 10, np.uint8)
            for field in (0, 1):  # the scratch where it was at each field's instant
                x = 20 + 6 * (2 * i + field)
                f[field::2, x : x + 2] = 230
            pic = np.repeat(f[..., None], 3, 2)
            out.mux(s.encode(av.VideoFrame.from_ndarray(pic, format="rgb24")))
        out.mux(s.encode())
    counts = extract_templates(woven, tmp_path / "woven", step=1, quiet=True)
    assert counts.get("scratch", 0) >= 8, counts


def test_extract_from_pictures_warns(runner, tmp_path: Path) -> None:
    """Ordinary footage (no overlay reel: a fifth of its pixels stand out from the local
    background) gave hundreds of templates of its pictures' details without a word; it still
    writes them (the threshold is a guess), but says so in one line on stderr naming the
    video and the files. Overlay footage says nothing."""
    from filmdata.synthetic import render_shots
    from filmdata.video import write_video

    frames, _ = render_shots([8], 128, 96, seed=3)
    pictures = tmp_path / "pictures.mp4"
    write_video(pictures, frames, 24.0)
    overlay = _overlay_video(tmp_path / "o.mp4", False)
    for video, warned in ((pictures, True), (overlay, False)):
        out = tmp_path / f"x-{video.stem}"
        res = runner.invoke(app, ["templates", "extract", str(video), "--out", str(out), "-q",
                                  "--json"])  # fmt: skip
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["templates"]
        lines = [s for s in res.stderr.splitlines() if s.strip()]
        if warned:
            (line,) = lines
            assert line.startswith("warning: ") and str(video) in line and "overlay" in line
        else:
            assert lines == []


def test_cli_refuses_an_out_on_a_read_only_file_system(runner, tmp_path: Path, read_only) -> None:
    """--out on a read-only file system (or a folder without write permission) was an
    OSError traceback from the first mkdir (exit 1); it is refused in one line (exit 2)."""
    (tmp_path / "mine").mkdir()
    ro = read_only(tmp_path / "mine")
    video = _overlay_video(tmp_path / "o.mp4", True)
    for args in (["make"], ["extract", str(video), "-q"]):
        res = runner.invoke(app, ["templates", *args, "--out", str(ro / "pack"), "--json"])
        assert res.exit_code == 2, (args, res.output)
        assert not isinstance(res.exception, OSError), res.exception
        (line,) = [s for s in res.output.splitlines() if s.strip()]
        assert f"--out {ro / 'pack'}: {ro} is on a read-only file system" in line, line


_KILLED_MID_WRITE = """
import resource, signal, sys
from filmdata.degrade.template_extract import extract_templates
from filmdata.degrade.template_make import make_templates
import av, tqdm  # (imported before the limit: only the templates write files after it)
cmd, src, out, limit, how = sys.argv[1:]
if how == "kill":  # (Python ignores SIGXFSZ, so a write past the limit fails with EFBIG)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), int(limit)))
if cmd == "make":
    make_templates(out, seed=0, counts={"dust": 4, "scratch": 2, "blotch": 2})
else:
    extract_templates(src, out, step=1, quiet=True)
"""


def _png_is_whole(path: Path) -> bool:
    data = path.read_bytes()
    return data.endswith(b"IEND\xaeB`\x82") and cv2.imread(str(path)) is not None


@pytest.mark.parametrize("how", ["kill", "error"])
@pytest.mark.parametrize("cmd", ["make", "extract"])
def test_a_failed_write_leaves_no_partial_template(tmp_path: Path, cmd: str, how: str) -> None:
    """A run killed while writing a template (here by SIGXFSZ, past a file-size limit set just
    below the largest template) left it truncated under its final name, which `--templates`
    then failed on; a write that failed (EFBIG, as a full disk's ENOSPC) did the same and the
    run went on and succeeded. Each is written under a temporary name and renamed when whole,
    a failed write stops the run with a message, and a re-run completes the pack."""
    import os
    import signal
    import subprocess
    import sys

    video = _overlay_video(tmp_path / "o.mp4", True)
    ref = tmp_path / "ref"
    if cmd == "make":
        make_templates(ref, seed=0, counts={"dust": 4, "scratch": 2, "blotch": 2})
    else:
        extract_templates(video, ref, step=1, quiet=True)
    sizes = {p.relative_to(ref): p.stat().st_size for p in ref.rglob("*.png")}
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_WRITE, cmd, str(video), str(out),
         str(max(sizes.values()) - 1), how],
        env=os.environ | {"PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    if how == "kill":
        assert run.returncode == -signal.SIGXFSZ, run.stderr
    else:
        assert run.returncode == 1 and "cannot write this template" in run.stderr, run.stderr
    written = sorted(out.rglob("*.png"))
    assert written, "killed before any template was whole: the limit tests nothing"
    assert [p for p in written if not _png_is_whole(p)] == []
    load_templates(out, "cpu")
    if cmd == "make":
        make_templates(out, seed=0, counts={"dust": 4, "scratch": 2, "blotch": 2})
    else:
        extract_templates(video, out, step=1, quiet=True)
    assert {p.relative_to(out): p.stat().st_size for p in out.rglob("*.png")} == sizes
    assert load_templates(out, "cpu").fingerprint() == load_templates(ref, "cpu").fingerprint()
    assert list(out.rglob(".*.tmp-*")) == []  # the killed run's temporaries: cleaned
