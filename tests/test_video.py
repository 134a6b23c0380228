from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import (
    film_frames,
    telecine,
    weave,
    write_cut_ts,
    write_damaged,
    write_interlaced,
    write_spliced_ts,
    write_turned,
    write_woven,
)
from filmdata.errors import MediaError
from filmdata.synthetic import render_shots
from filmdata.video import (
    comb_blocks,
    combed_pictures,
    iter_decoded,
    iter_frames,
    luma,
    probe,
    read_frames,
    write_video,
)


def test_probe_counts_frames(clip: Path) -> None:
    p = probe(clip)
    assert (p.width, p.height, p.frames) == (96, 64, 24)
    assert abs(p.fps - 24) < 1e-6 and not p.audio


def test_frame_exact_ranges(tmp_path: Path) -> None:
    # Each frame carries its index in its brightness; seeking must not round to keyframes.
    frames = [np.full((32, 32, 3), 4 * i, np.uint8) for i in range(60)]
    path = tmp_path / "ramp.mp4"
    write_video(path, frames, 10, crf=0, options={"g": "25"})
    got = read_frames(path, 33, 37, gray=True)
    assert [round(float(f.mean()) / 4) for f in got] == [33, 34, 35, 36]
    idx = [i for i, _ in iter_frames(path, 50)]
    assert idx == list(range(50, 60))


def test_a_step_under_one_is_refused(clip: Path) -> None:
    """`step` 0 divided by zero at the first frame; a negative one gave every frame."""
    for step in (0, -1):
        with pytest.raises(ValueError, match=f"step must be >= 1, got {step}"):
            next(iter_frames(clip, step=step))
    assert [i for i, _ in iter_frames(clip, 2, 9, step=3)] == [2, 5, 8]


def test_not_media(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"MZ\x90\x00" + b"\x00" * 1000)
    with pytest.raises(MediaError, match="bad.mp4"):
        probe(bad)
    with pytest.raises(MediaError, match="no such file"):
        probe(tmp_path / "missing.mp4")
    with pytest.raises(MediaError, match=r"a folder, not a video file$"):
        probe(tmp_path)


def test_a_file_that_is_not_media_is_named_once_with_ffmpegs_reason(tmp_path: Path) -> None:
    """A file FFmpeg cannot open was named twice, with FFmpeg's error number between:
    "x.mp4: cannot open as media: [Errno 1094995529] Invalid data found when processing
    input: 'x.mp4'" (in `scenes`, `align`, `synth --input`; `fetch` words it without them).
    The file once, then FFmpeg's reason."""
    from typer.testing import CliRunner

    from filmdata.cli import app

    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video\n" * 100)
    want = f"{bad}: cannot open as media: Invalid data found when processing input"
    with pytest.raises(MediaError) as e:
        probe(bad)
    assert str(e.value) == want
    res = CliRunner().invoke(app, ["scenes", str(bad), "--json"])
    assert res.exit_code == 2 and res.stderr.strip() == f"error: {want}", res.output


def test_a_decode_stopped_short_by_an_error_gives_ffmpegs_reason_alone(tmp_path: Path) -> None:
    """A file damaged mid-stream (a stretch of its packets zeroed), given to `align`, was
    refused with "decode failed after 36 of 120 frames: [Errno 1094995529] Invalid data
    found when processing input: 'avcodec_send_packet()'" (`refuse_short` of the decoder's
    error): FFmpeg's error number and the name of its function. Its reason alone."""
    from typer.testing import CliRunner

    from filmdata.cli import app

    whole, bad = write_damaged(tmp_path)
    res = CliRunner().invoke(app, ["align", str(bad), str(whole), "--json", "-q"])
    assert res.exit_code == 2, res.output
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith(f"error: {bad}: decode failed after "), line
    assert line.endswith(" of 120 frames: Invalid data found when processing input"), line


def test_probe_time_limit(clip: Path) -> None:
    assert probe(clip, timeout=30).frames == 24


def test_a_720_wide_pillarboxed_frame_boxes_its_picture_only() -> None:
    """SD captures are 720 wide, not a multiple of the thumbnail's 64: the box from a keyframe's
    thumbnail holds no column of bar, and loses less than a thumbnail pixel (11 px) of picture."""
    import av

    from filmdata.synthetic import render_shots
    from filmdata.video import _thumb, picture_box

    picture, _ = render_shots((1,), 538, 480, seed=8)
    rgb = np.full((480, 720, 3), 8, np.uint8)
    rgb[:, 91:629] = picture[0]
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    x, y, w, h = picture_box(_thumb(frame)[None], 720, 480)
    assert 91 <= x < 91 + 11 and 629 - 11 < x + w <= 629, (x, w)
    assert (y, h) == (0, 480)


def test_bar_samples_decode_each_keyframe_once_and_no_frame_past_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A letterboxed clip with two keyframes for the eight places sampled (a short web clip,
    x264's B-frames): each keyframe is decoded once, as itself (none of the frames its
    reordering holds back), and the thumbnails are those a plain seek-and-decode gives."""
    import av

    from filmdata import video
    from filmdata.video import key_samples

    shots, _ = render_shots((20, 20), 96, 72, seed=3)
    shots[:, :10] = 0
    shots[:, 62:] = 0
    path = tmp_path / "boxed.mp4"
    write_video(path, shots, 24.0, options={"g": "20", "bframes": "3"})
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        keys = sorted(p.pts for p in c.demux(s) if p.is_keyframe and p.pts is not None)
    assert len(keys) == 2
    plain = []
    with av.open(str(path)) as c:  # what each of the 8 places decodes first, the old way
        s = c.streams.video[0]
        for k in range(8):
            c.seek(int(s.duration * (k + 0.5) / 8), stream=s, backward=True, any_frame=False)
            f = next(c.decode(s))
            if f.pts not in [p for p, _ in plain]:
                plain.append((f.pts, video._thumb(f)))
    assert sorted(p for p, _ in plain) == keys
    decoded: list[int] = []
    packets: list[int] = []  # packets decoded for each sample
    landed = video._landed_frame

    class Counting:
        def __init__(self, container: Any) -> None:
            self.container = container

        def demux(self, stream: Any) -> Any:
            packets.append(0)
            for pkt in self.container.demux(stream):
                packets[-1] += 1
                yield pkt

    def counted(container: Any, stream: Any) -> Any:
        frame = landed(Counting(container), stream)
        decoded.append(frame.pts if frame is not None else -1)
        return frame

    monkeypatch.setattr(video, "_landed_frame", counted)
    for given in (keys, None):
        decoded.clear()
        with av.open(str(path)) as c:
            samples, _ = key_samples(c, c.streams.video[0], keys=given)
        assert sorted(map(bytes, samples)) == sorted(bytes(t) for _, t in plain)
        assert len(decoded) == (2 if given else 8), decoded  # without keys: one seek a place
        assert set(packets) == {1}, packets  # the keyframe alone, drained out of the decoder
        packets.clear()


@pytest.mark.parametrize("deep", ["yuv420p10le", "yuv444p12le", "gray10le", "p010le"])
def test_luma_of_deeper_video_is_its_top_eight_bits(deep: str) -> None:
    """10-bit HEVC/AV1, 12-bit ProRes, hardware decoders' p010: the Y plane's top 8 bits, as
    coded, the same as FFmpeg's conversion of the frame to 8 bits of its kind (within a level
    of rounding), never its raw bytes read as pixels."""
    import av

    from filmdata.video import luma

    rng = np.random.default_rng(0)
    y = (rng.integers(16, 236, (48, 64)) + np.arange(64) // 2).clip(16, 235).astype(np.uint8)
    frame8 = av.VideoFrame.from_ndarray(
        np.concatenate([y.ravel(), np.full(2 * 24 * 32, 128, np.uint8)]).reshape(72, 64),
        format="yuv420p",
    )
    deeper = frame8.reformat(format=deep)
    got = luma(deeper)
    assert got.shape == (48, 64) and got.dtype == np.uint8
    eight = luma(deeper.reformat(format="gray" if deep.startswith("gray") else "yuv420p"))
    assert np.abs(got.astype(int) - eight.astype(int)).max() <= 1
    assert np.corrcoef(got.ravel(), y.ravel())[0, 1] > 0.99


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_a_turned_stream_decodes_upright_as_players_show_it(tmp_path: Path, degrees: int) -> None:
    """A phone's recording: pictures stored turned, with a display matrix that turns them
    back. Frames, sizes and luma come as players, FFmpeg's command and OpenCV show them."""
    import cv2

    frames, _ = render_shots((6,), 64, 48, seed=2)  # upright: 64 wide, 48 tall
    path = write_turned(tmp_path / "turned.mp4", frames, degrees)
    for p in (probe(path), probe(path, count=False)):
        assert (p.width, p.height) == (64, 48)
    stored = probe(path, count=False, as_shown=False)
    assert (stored.width, stored.height) == ((48, 64) if degrees % 180 else (64, 48))
    cap = cv2.VideoCapture(str(path))  # OpenCV turns them as players do
    n = 0
    for (_, f), (_, raw) in zip(iter_frames(path), iter_decoded(path), strict=True):
        ok, shown = cap.read()
        assert ok and f.shape == shown.shape == (48, 64, 3)
        assert np.abs(f.astype(int) - shown[:, :, ::-1]).mean() < 0.5
        y = luma(raw)  # (as coded: limited range)
        assert y.shape == (48, 64) and y.flags.c_contiguous
        # the pictures that were encoded (turned the wrong way: no likeness, r ~ 0)
        r = np.corrcoef(y.ravel(), cv2.cvtColor(frames[n], cv2.COLOR_RGB2GRAY).ravel())[0, 1]
        assert r > 0.97
        n += 1
    assert n == 6
    _, small = next(iter_frames(path, gray=True, size=(32, 24)))
    assert small.shape == (24, 32)


def test_a_cover_picture_embedded_before_the_video_is_not_taken_for_it(tmp_path: Path) -> None:
    """A downloader may embed a thumbnail as a video stream of its own (in Matroska a
    one-frame picture track, here before the video): the video is the stream that is not
    the cover."""
    import av

    frames, _ = render_shots((10,), 64, 48, seed=4)
    path = tmp_path / "with-cover.mkv"
    with av.open(str(path), "w") as out:
        cover = out.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 32, 32, "yuvj420p"
        video = out.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.disposition = av.stream.Disposition.default
        pic = np.zeros((32, 32, 3), np.uint8)
        out.mux(cover.encode(av.VideoFrame.from_ndarray(pic, format="rgb24")))
        out.mux(cover.encode())
        for f in frames:
            out.mux(video.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(video.encode())
    p = probe(path)
    assert (p.width, p.height, p.frames, p.codec) == (64, 48, 10, "h264")
    assert read_frames(path).shape == (10, 48, 64, 3)


def _write_timed(path: Path, frames: np.ndarray, pts: list[int], gop: int = 250) -> Path:
    """H.264 frames at the given pts (in 1/1000 s): a variable frame rate where they skip."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        s.options = {"crf": "20", "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
        for f, t in zip(frames, pts, strict=True):
            frame = av.VideoFrame.from_ndarray(f, format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            out.mux(s.encode(frame))
        out.mux(s.encode())
    return path


@pytest.mark.parametrize("kind", ["vfr.mp4", "long-gop.ts"])
def test_a_range_far_into_the_stream_is_the_range_of_a_decode_from_the_start(
    tmp_path: Path, kind: str
) -> None:
    """Frame numbers are those of a decode from the start wherever the reader seeks: at a
    variable frame rate (a capture that dropped 30 frames: numbering by pts times the frame
    rate skipped 30 numbers and repeated others) and in a stream without an index (MPEG-TS)
    whose only keyframe is the first (the seek landed past the range: nothing came)."""
    frames, _ = render_shots((40, 40, 40), 48, 32, seed=5)
    if kind == "vfr.mp4":  # 25 fps, but frames 30-59 of the capture are missing
        pts = [40 * i for i in range(30)] + [40 * (i + 30) for i in range(30, 120)]
        path = _write_timed(tmp_path / kind, frames, pts)
    else:
        path = _write_timed(tmp_path / kind, frames, [40 * i for i in range(120)], gop=1000)
    every = read_frames(path, gray=True)
    assert len(every) == 120
    for start in (55, 60, 73, 100):
        got = list(iter_frames(path, start, start + 4, gray=True))
        assert [i for i, _ in got] == list(range(start, start + 4))
        assert all(np.array_equal(f, every[i]) for i, f in got)


def _combing(frames: np.ndarray) -> float:
    """How much more each even row differs from the odd row below it than from the next even
    row: ~0 for pictures, large where two fields of different instants are woven."""
    a = frames.astype(np.float32)
    return float(
        np.abs(a[:, 0:-2:2] - a[:, 1:-1:2]).mean() - np.abs(a[:, 0:-2:2] - a[:, 2::2]).mean()
    )


def test_interlaced_frames_come_deinterlaced_where_pictures_are_asked_for(
    tmp_path: Path,
) -> None:
    """A camera's or a broadcast master's interlaced frames (two fields of different instants)
    comb on every motion; asked for pictures (`deinterlace=True`: synth's GT, `cut`'s clips)
    they come deinterlaced, and any range, seeking or not, ends included, is that of a decode
    from the start (the filter takes a frame either side)."""
    path = write_interlaced(tmp_path / "576i.mp4", frames=80)
    raw = read_frames(path, gray=True)
    pictures = read_frames(path, gray=True, deinterlace=True)
    assert raw.shape == pictures.shape == (80, 96, 128)
    assert _combing(raw) > 30 and abs(_combing(pictures)) < 3
    for start, end in ((0, 3), (1, 2), (11, 14), (60, 64), (77, 80), (79, 80)):
        got = list(iter_frames(path, start, end, gray=True, deinterlace=True))
        assert [i for i, _ in got] == list(range(start, end))
        assert all(np.array_equal(f, pictures[i]) for i, f in got), (start, end)


def test_progressive_frames_are_the_decoders_own_where_pictures_are_asked_for(
    clip: Path,
) -> None:
    every = read_frames(clip)
    assert np.array_equal(read_frames(clip, deinterlace=True), every)
    assert np.array_equal(read_frames(clip, 5, 9, deinterlace=True), every[5:9])


def test_a_file_written_from_non_square_pixels_is_shown_as_its_source(tmp_path: Path) -> None:
    """A clip `cut` exports from an anamorphic DVD (or `restore`'s output of one) carries its
    pixel aspect, so a player shows it as wide as the DVD; square pixels carry none."""
    from filmdata.video import file_aspect

    frames, _ = render_shots((4,), 72, 48, seed=2)
    wide = tmp_path / "wide.mp4"
    write_video(wide, frames, 25.0, sar=64 / 45)
    assert file_aspect(wide) == pytest.approx(64 / 45)
    plain = tmp_path / "plain.mp4"
    write_video(plain, frames, 25.0)
    assert file_aspect(plain) == 1.0
    assert file_aspect(tmp_path / "missing.mp4") == 1.0


def test_a_telecined_film_coded_progressive_comes_as_its_own_pictures(tmp_path: Path) -> None:
    """A 3:2 telecined film encoded without interlace flags (as web re-encodes of NTSC DVDs
    are) has two combed frames in five: asked for pictures, its fields are matched back into
    the film's own frames (none interpolated), one frame out per frame in, and any range is
    that of a decode from the start (the matcher and the deinterlacer each look a frame either
    way)."""
    film = film_frames(48)
    coded = telecine(film)  # 60 frames at 29.97
    path = write_woven(tmp_path / "telecined.mp4", coded, 30000 / 1001)
    assert combed_pictures(path)
    raw = read_frames(path)
    assert np.mean([comb_blocks(luma_of(f)) > 128 for f in raw]) == pytest.approx(0.4, abs=0.05)
    pictures = read_frames(path, deinterlace=True)
    assert pictures.shape == raw.shape == (60, 480, 160, 3)
    assert max(comb_blocks(luma_of(f)) for f in pictures) < 32
    # each frame is a film frame (the one of its top field or of its bottom field), whole
    for i, f in enumerate(pictures):
        q, r = divmod(i, 5)
        pair = ((0,), (1,), (1, 2), (2, 3), (3,))[r]
        near = min(np.abs(f.astype(int) - film[4 * q + j]).mean() for j in pair)
        assert near < 2.0, i
    for start, end in ((0, 2), (1, 4), (2, 3), (17, 23), (40, 60), (57, 60), (59, 60)):
        got = list(iter_frames(path, start, end, deinterlace=True))
        assert [i for i, _ in got] == list(range(start, end))
        assert all(np.array_equal(f, pictures[i]) for i, f in got), (start, end)


def test_interlaced_video_coded_progressive_comes_deinterlaced(tmp_path: Path) -> None:
    """Interlaced video encoded without its flags (each frame two fields of different instants,
    no flag saying so) combs on every motion; asked for pictures it comes without combs, each
    frame one of its two instants."""
    instants = film_frames(80, lines=False)
    path = write_woven(
        tmp_path / "woven.mp4", [weave(a, b) for a, b in zip(instants[::2], instants[1::2])], 25
    )
    assert combed_pictures(path)
    raw, pictures = read_frames(path, gray=True), read_frames(path, gray=True, deinterlace=True)
    assert pictures.shape == raw.shape == (40, 480, 160)
    assert _combing(raw) > 20 and abs(_combing(pictures)) < 2
    grey = instants.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    for i, f in enumerate(pictures):
        assert min(np.abs(f - grey[j]).mean() for j in (2 * i, 2 * i + 1)) < 4.0, i


def test_progressive_pictures_at_interlaced_sizes_and_rates_are_left_alone(tmp_path: Path) -> None:
    """A progressive film at 29.97 (and at 25) in SD frames is looked at and found without
    combs: its frames are the decoder's own."""
    film = film_frames(45)
    for fps in (30000 / 1001, 25):
        path = write_woven(tmp_path / f"progressive-{fps:.0f}.mp4", list(film), fps)
        assert not combed_pictures(path)
        assert np.array_equal(read_frames(path, deinterlace=True), read_frames(path))


def luma_of(rgb: np.ndarray) -> np.ndarray:
    """(H, W) luma of an RGB frame, as `comb_blocks` takes it."""
    return (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).astype(np.uint8)


def test_ranges_of_a_capture_cut_mid_gop_are_the_decodes(tmp_path: Path) -> None:
    """An MPEG-2 capture cut mid-GOP (`-ss T -c copy`) starts with two B-frames whose packets
    are there but whose reference was cut away: the decoder drops them, so frame 0 is the
    keyframe after them. A range deep in the file (a seek, numbered by pts rank) is numbered
    as a decode from the start and as `align` counts (`decode_gray`), not two frames on (the
    pairs `pair --export` wrote were two frames off their GT)."""
    from filmdata.pairing.descriptors import decode_gray

    path = write_cut_ts(tmp_path / "cut.ts")
    every = read_frames(path, gray=True)
    assert len(every) == probe(path).frames == decode_gray(path, 160).frames == 108
    assert abs(float(every[0].mean()) - 34) < 3  # frame 12 of the source: its keyframe
    for start, end in ((51, 55), (60, 64), (100, 108)):
        got = list(iter_frames(path, start, end, gray=True))
        assert [i for i, _ in got] == list(range(start, end))
        assert all(np.array_equal(f, every[i]) for i, f in got), (start, end)
    deint = list(iter_frames(path, 70, 72, gray=True, deinterlace=True))
    assert all(np.array_equal(f, every[i]) for i, f in deint)


def test_ranges_of_a_stream_whose_clock_jumps_back_are_the_decodes(tmp_path: Path) -> None:
    """Recordings spliced end to end restart their clock at each join: no timestamp says
    which frame a packet is, so a range deep in the file is decoded from the start (a seek
    by timestamp would land in the wrong recording, and number frames from it)."""
    path = write_spliced_ts(tmp_path / "spliced.ts", ((64, 48), (64, 48)), frames=60)
    every = read_frames(path, gray=True)
    assert len(every) == 120
    for start, end in ((60, 120), (70, 80), (55, 65), (100, 120)):
        got = list(iter_frames(path, start, end, gray=True))
        assert [i for i, _ in got] == list(range(start, end))
        assert all(np.array_equal(f, every[i]) for i, f in got), (start, end)
        assert all(abs(float(f.mean()) - (10 + 2 * i)) < 3 for i, f in got)  # its own frames


@pytest.mark.parametrize("ext", ["ts", "m2ts"])
def test_a_transport_stream_cut_short_is_refused_by_every_reader(ext: str, tmp_path: Path) -> None:
    """A transport stream declares no length (its duration is read from its own last
    timestamps), so one cut short (`head -c`) passed every cut-short check whole: `scenes`,
    `align`, `restore` and `fetch` took its first half for the file. It ends inside a
    packet, which no muxer writes: refused, naming the file and the packet; a whole one
    passes. (Cut a few bytes past half: half of a file of an even number of packets is a
    packet boundary, which leaves no trace.)"""
    from typer.testing import CliRunner

    from filmdata.cli import app
    from filmdata.fetch.errors import ItemError
    from filmdata.fetch.verify import verify_media
    from filmdata.pairing.descriptors import decode_gray
    from filmdata.scenes.detect import detect_scenes
    from filmdata.video import file_short

    frames, _ = render_shots((40, 40, 40), 96, 64, seed=2)
    whole = tmp_path / f"whole.{ext}"
    write_video(whole, frames, 24)
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[: len(data) // 2 + 77])
    assert detect_scenes(whole)[-1].end_frame == 120
    assert decode_gray(whole, 32).frames == 120
    assert verify_media(whole, timeout=60)["truncated"] == 0
    res = CliRunner().invoke(app, ["scenes", str(cut), "--json"])
    assert res.exit_code == 2, res.output
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith(f"error: {cut}: decode failed after "), line
    assert "transport packet" in line, line
    with pytest.raises(MediaError, match=f"{cut}: decode failed after .*transport packet"):
        decode_gray(cut, 32)
    short = file_short(cut, 58, 2.4)
    assert short is not None and short.startswith(f"{cut}: 58 of the ") and "packet" in short
    with pytest.raises(ItemError, match="truncated: .*transport packet"):
        verify_media(cut, timeout=60)
    assert verify_media(cut, timeout=60, allow_truncated=True)["truncated"] == 1
