"""Shared fixtures: tiny footage made here (never downloaded), a CLI runner, a data root."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from filmdata.synthetic import render_shots
from filmdata.video import write_video


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    return r


def make_clip(
    path: Path,
    lengths: tuple[int, ...] = (12, 12),
    size: tuple[int, int] = (96, 64),
    fps: float = 24.0,
    seed: int = 0,
) -> tuple[Path, list[int]]:
    """Encode a textured clip of shots with the given lengths; returns (path, cut frames)."""
    frames, cuts = render_shots(lengths, size[0], size[1], seed=seed)
    write_video(path, frames, fps)
    return path, cuts


def write_turned(path: Path, frames: np.ndarray, degrees: int, fps: int = 24) -> Path:
    """Encode upright RGB `frames` as a phone stores them: each picture turned `-degrees` and
    a display matrix that turns it `degrees` back (counter-clockwise) for the player."""
    import av

    k = round(degrees / 90) % 4
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        first = np.rot90(frames[0], -k)
        s.width, s.height, s.pix_fmt = first.shape[1], first.shape[0], "yuv420p"
        s.options = {"crf": "12"}
        s.set_display_rotation(degrees)
        for f in frames:
            stored = np.ascontiguousarray(np.rot90(f, -k))
            out.mux(s.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")))
        out.mux(s.encode())
    return path


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-frame 96x64 H.264 clip with one cut at frame 12."""
    path, _ = make_clip(tmp_path_factory.mktemp("footage") / "clip.mp4")
    return path


@pytest.fixture
def read_only(tmp_path: Path):
    """`read_only(folder)`: the folder seen through a read-only bind mount (EROFS, which root
    gets too, unlike a chmod); skips where mounting is not allowed."""
    import subprocess

    mounts: list[Path] = []

    def mount(folder: Path) -> Path:
        at = tmp_path / f"ro{len(mounts)}"
        at.mkdir()
        for args in (["--bind", str(folder), str(at)], ["-o", "remount,ro,bind", str(at)]):
            r = subprocess.run(["mount", *args], capture_output=True, timeout=30)
            if r.returncode:
                if args[0] == "-o":
                    subprocess.run(["umount", str(at)], capture_output=True, timeout=30)
                pytest.skip(f"cannot mount read-only here: {r.stderr.decode().strip()}")
        mounts.append(at)
        return at

    yield mount
    for at in mounts:
        subprocess.run(["umount", str(at)], capture_output=True, timeout=30)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def shard_rows(dataset: Path) -> dict[str, list[dict]]:
    """Every Parquet shard's rows under `dataset`, by path, each image as its pixels: ISA-L's
    deflate may code the same pixels in a byte more or less from one process (or CPU) to the
    next (one LQ frame of a killed and resumed synth: 438 against 439 bytes, the same
    filtered rows inside), so two runs are compared by what the PNGs hold."""
    import pyarrow.parquet as pq

    from filmdata.shards import decode_image

    def pixels(frames: list[dict]) -> list[bytes]:
        return [np.ascontiguousarray(decode_image(f["bytes"])).tobytes() for f in frames]

    out = {}
    for p in sorted(dataset.rglob("*.parquet")):
        rows = pq.read_table(p).to_pylist()
        for row in rows:
            row["gt"], row["lq"] = pixels(row["gt"]), pixels(row["lq"])
        out[str(p.relative_to(dataset))] = rows
    return out


def write_interlaced(path: Path, width: int = 128, height: int = 96, frames: int = 30) -> Path:
    """Encode interlaced footage as a 576i camera or broadcast master has it: each frame two
    fields of different instants (even rows at 2k, odd rows at 2k + 1 of a pattern sliding 3
    px an instant), coded interlaced (H.264 MBAFF, top field first), so motion combs."""
    import av

    x = np.arange(width)
    y = np.arange(height)[:, None]
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"crf": "10", "x264-params": "interlaced=1:tff=1"}
        for k in range(frames):
            woven = np.empty((height, width, 3), np.uint8)
            for field in (0, 1):
                u = (x - 3 * (2 * k + field)) % width  # where each column was at that instant
                pic = 60 + 140 * ((u // 8) % 2) + 0 * y  # stripes 8 px wide, sliding
                woven[field::2] = np.repeat(pic[field::2, :, None], 3, axis=2)
            out.mux(s.encode(av.VideoFrame.from_ndarray(woven, format="rgb24")))
        out.mux(s.encode())
    return path


def film_frames(n: int, width: int = 160, height: int = 480, lines: bool = True) -> np.ndarray:
    """(n, height, width, 3) uint8 pictures of a film: bars 8 px wide, each shade its own,
    sliding 5 px a frame over a vertical ramp and fine lines (2 rows light, 2 dark: detail
    that no field alone holds, so that a deinterlacer's guess at the other field's lines shows;
    not with `lines` False), each picture distinct, combs where two woven pictures differ."""
    x = np.arange(width)
    y = np.arange(height)[:, None]
    ramp = np.linspace(0, 40, height)[:, None] + (24 * ((y // 2) % 2) if lines else 0)
    pics = []
    for k in range(n):
        u = (x - 5 * k) % (2 * width)
        pic = 40 + ramp + 120 * ((u // 8) % 2) + 10 * ((u // 16) % 3)
        pics.append(np.repeat(np.clip(pic, 0, 255).astype(np.uint8)[..., None], 3, axis=2))
    return np.stack(pics)


def weave(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """A frame of two fields: even rows from `top`, odd rows from `bottom`."""
    out = top.copy()
    out[1::2] = bottom[1::2]
    return out


def write_woven(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """Encode frames as they are, coded progressive (no interlace flags): combs and all, as a
    web re-encode of a telecined DVD or an interlaced broadcast has them."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt, s.options = "yuv420p", {"crf": "8"}
        for f in frames:
            out.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(s.encode())
    return path


def telecine(film: np.ndarray) -> list[np.ndarray]:
    """3:2 pulldown, top field first: film frames A B C D become A, B, B|C, C|D, D."""
    out: list[np.ndarray] = []
    for k in range(0, len(film) - 3, 4):
        a, b, c, d = film[k : k + 4]
        out += [a, b, weave(b, c), weave(c, d), d]
    return out


def write_spliced_ts(path: Path, sizes: tuple[tuple[int, int], ...], frames: int = 40) -> Path:
    """Transport streams encoded one by one and joined end to end (as recordings are spliced):
    each restarts its clock, so the timestamps jump back at every join; each segment's frames
    carry their index (in the file) in their brightness, at its own size."""
    import av

    parts = []
    for k, (w, h) in enumerate(sizes):
        part = path.with_name(f"{path.stem}-{k}.ts")
        with av.open(str(part), "w") as out:
            s = out.add_stream("libx264", rate=25)
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            s.options = {"crf": "4", "g": "12"}
            for i in range(frames):
                level = 10 + 2 * (k * frames + i)
                img = np.full((h, w, 3), level, np.uint8)
                out.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
            out.mux(s.encode())
        parts.append(part.read_bytes())
    path.write_bytes(b"".join(parts))
    return path


def write_cut_ts(path: Path, frames: int = 120, cut: int = 12) -> Path:
    """An MPEG-2 transport stream with B-frames and open GOPs of 12, cut at the keyframe of
    frame `cut` as `ffmpeg -ss T -c copy` cuts a capture: the two B-frames after it in decode
    order (frames cut - 2 and cut - 1) lost their reference and never decode, though their
    packets are there. Frame i of the source is a flat picture of brightness 10 + 2 i."""
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("mpeg2video", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        cc = s.codec_context
        cc.gop_size, cc.max_b_frames, cc.bit_rate = 12, 2, 2_000_000
        kept = False
        for i in range(frames):
            img = np.full((48, 64, 3), 10 + 2 * i, np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                kept = kept or pkt.pts == cut  # packets come in decode order: I, then its B's
                if kept:
                    out.mux(pkt)
        out.mux(s.encode())
    return path


def write_damaged(folder: Path) -> tuple[Path, Path]:
    """(whole.mp4, bad.mp4) in `folder`: 120 frames of three shots, and a copy with a
    stretch of its packets zeroed (from a third to half of the file): a file damaged
    mid-stream, whose decoding stops with FFmpeg's "Invalid data" part-way."""
    frames, _ = render_shots((40, 40, 40), 96, 64, seed=2)
    whole = folder / "whole.mp4"
    write_video(whole, frames, 24)
    data = bytearray(whole.read_bytes())
    a, b = len(data) // 3, len(data) // 2
    data[a:b] = bytes(b - a)
    bad = folder / "bad.mp4"
    bad.write_bytes(bytes(data))
    return whole, bad


def write_hdr(path: Path, transfer: int = 16, frames: int = 24) -> Path:
    """A short 10-bit clip tagged HDR (color_trc 16: PQ; 18: HLG, BT.2020 primaries), as an
    HDR10 master or a phone's HLG recording declares itself."""
    import av

    pics, _ = render_shots((frames,), 96, 64, seed=2)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p10le"
        cc = s.codec_context
        cc.color_trc, cc.color_primaries, cc.colorspace = transfer, 9, 9
        for pic in pics:
            frame = av.VideoFrame.from_ndarray(pic, format="rgb24").reformat(format="yuv420p10le")
            out.mux(s.encode(frame))
        out.mux(s.encode())
    return path


def killed_at_write(monkeypatch: pytest.MonkeyPatch, step: int, *, dead: bool = False) -> None:
    """Make the `step`-th write (from 0) of a shard record or a dataset card raise
    KeyboardInterrupt before it writes: the run stops with the writes before it done, as a kill
    between two of them leaves the dataset.

    `dead`: every later record or card write raises too, and no shard is begun after it, as in
    a killed process (synth writes its shards and their records in a thread of its own, which
    went on to the next shard after the raise)."""
    from filmdata import shards

    calls = iter(range(1 << 30))
    killed: list[int] = []

    def stopping(real):
        def write(*a, **k):
            if (dead and killed) or next(calls) == step:
                killed.append(step)
                raise KeyboardInterrupt
            return real(*a, **k)

        return write

    monkeypatch.setattr(shards, "write_record", stopping(shards.write_record))
    monkeypatch.setattr(shards, "write_card", stopping(shards.write_card))
    if dead:
        begin = shards.ShardWriter.__enter__

        def beginning(self: shards.ShardWriter) -> shards.ShardWriter:
            if killed:
                raise KeyboardInterrupt
            return begin(self)

        monkeypatch.setattr(shards.ShardWriter, "__enter__", beginning)


def loaded_ids(dataset: Path, cache: Path) -> dict[str, dict[str, list[str]]] | None:
    """The row ids `datasets.load_dataset(dataset)` gives, by config and split (a split
    without ids as its column names), or None where it fails, saying why (no data file, a
    file named but missing, files of no one format, other row counts than the card's)."""
    import datasets
    from datasets.data_files import EmptyDatasetError
    from datasets.exceptions import NonMatchingSplitsSizesError

    cache = cache / f"{len(list(cache.glob('*'))) if cache.is_dir() else 0}"  # (none reused)
    try:
        loaded = {
            config: datasets.load_dataset(str(dataset), config, cache_dir=str(cache))
            for config in datasets.get_dataset_config_names(str(dataset))
        }
    except (FileNotFoundError, EmptyDatasetError, NonMatchingSplitsSizesError, ValueError) as e:
        assert str(e), e
        return None
    return {
        c: {s: sorted(d[s]["id"]) if "id" in d[s].column_names else d[s].column_names for s in d}
        for c, d in loaded.items()
    }


def recorded_ids(dataset: Path) -> dict[str, dict[str, list[str]]]:
    """The row ids of the shards the records list as complete, by config and split."""
    import pyarrow.parquet as pq

    from filmdata.shards import config_dir, records

    out: dict[str, dict[str, list[str]]] = {}
    for config, record in records(dataset).items():
        for name, entry in record["shards"].items():
            ids = pq.read_table(config_dir(dataset, config) / name, columns=["id"])["id"]
            out.setdefault(config, {}).setdefault(entry["split"], []).extend(ids.to_pylist())
    return {c: {s: sorted(ids) for s, ids in d.items()} for c, d in out.items()}
