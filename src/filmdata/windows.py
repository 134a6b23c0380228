"""Windows: the planner and the reader of `filmdata synth`.

The *planner* lists every window (clip, start frame, crop) and its split, deterministically,
before anything runs, so the shard count `-of-N` is known and a killed run resumes where it
stopped. Splits never leak: by source, by clip, or by stretch of time with a gap. The *reader*
decodes each frame once and cuts every window that covers it (overlapping windows share decoded
frames), resizing each crop by area to the GT size.

Every random choice of a window comes from (seed, window id) only (`window_seed`).
"""

from __future__ import annotations

import collections
import hashlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FilmdataError, MediaError, RefusedError
from .gt_frames import Held, assign, keep_gap
from .paths import refuse_unless_file

Box = tuple[int, int, int, int]  # x, y, w, h in source pixels


@dataclass(frozen=True)
class Clip:
    """A span `[start, end)` of one source file to cut windows from; `box` is its active picture
    (x, y, w, h) in source pixels; `sar` the width of a source pixel over its height as shown
    (`video.pixel_aspect`: 64/45 for a 16:9 PAL DVD; 1 for square pixels); `picture` the
    file's frame size (width, height) upright that `box` was found in (None: not known)."""

    source: str
    clip: str
    path: str
    start: int
    end: int
    fps: float
    box: Box
    sar: float = 1.0
    picture: tuple[int, int] | None = None


@dataclass(frozen=True)
class Window:
    """One training window: `clip_len` frames from `start_frame`, cut at `crop` (x, y, w, h).

    `picture` is the frame size (width, height) upright the crop was planned on: frames of
    another size (a file spliced from two recordings) are another picture, whose crop would
    not be the planned one even where it fits (`cut_window` fails the window). None where it
    is not known (a record made before it was kept, a row's GT cut again): then only a crop
    that does not fit fails."""

    id: str
    source: str
    clip: str
    path: str
    start_frame: int
    fps: float
    crop: Box
    picture: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Window:
        picture = d.get("picture")
        return cls(
            **{**d, "crop": tuple(d["crop"]), "picture": tuple(picture) if picture else None}
        )


def window_seed(seed: int, key: str, purpose: str) -> int:
    """A 63-bit seed from (seed, window id, purpose) only (sha256: stable across runs/machines)."""
    digest = hashlib.sha256(f"{seed}\0{key}\0{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def window_id(clip: str, start: int, seed: int) -> str:
    return f"{clip}:{start:06d}:s{seed}"


# The planner ---------------------------------------------------------------------------------


def input_clips(
    inputs: Sequence[str | os.PathLike[str]], scenes: bool = False, quiet: bool = True
) -> list[Clip]:
    """One clip per `--input` file: all its frames, its active picture (without the black
    bars of a letterboxed or pillarboxed video, found on a few keyframes: `key_samples`).
    With `scenes`, one clip per scene of each file instead (the `film` detector, which decodes
    the file once, with a progress bar unless `quiet`), so that no window spans a change of
    shot."""
    import av

    from .video import (
        TONE_MAP,
        _open,
        _video_stream,
        hdr_transfer,
        key_samples,
        picture_box,
        pixel_aspect,
        refuse_short,
        stream_fps,
    )

    clips, seen = [], set()
    files: dict[tuple[int, int], str] = {}  # (device, inode) -> the --input that named it
    for p in inputs:
        path = Path(p).expanduser().resolve()
        hint = "name each video in it with its own --input (or leave --input out to use the "
        hint += "catalog's clips)"
        refuse_unless_file(path, name=f"--input {p}", hint=hint if path.is_dir() else "")
        st = path.stat()
        key = (st.st_dev, st.st_ino)
        if key in files:  # as two sources its frames could land in both splits (a leak)
            raise RefusedError(f"--input {p}: the same file as --input {files[key]}")
        files[key] = str(p)
        with _open(path) as c:  # count packets, not decoded frames: demuxing is cheap
            v = _video_stream(c, path)
            hdr = hdr_transfer(v)
            if hdr is not None:
                raise RefusedError(
                    f"--input {p}: an HDR video ({hdr}): its code values are not SDR pixels "
                    f"(the GT would look washed out); make an SDR copy first: {TONE_MAP}"
                )
            fps, w, h = stream_fps(v), v.codec_context.width, v.codec_context.height
            n, top = 0, None  # packets, the latest pts among them
            keys: list[int] = []  # the keyframes' pts (`key_samples` seeks among them)
            try:
                # Packets an edit list cuts away (is_discard) never come out of the decoder.
                for pkt in c.demux(v):
                    if pkt.size and not pkt.is_discard:
                        n += 1
                        if pkt.pts is not None and (top is None or pkt.pts > top):
                            top = pkt.pts
                        if pkt.is_keyframe and pkt.pts is not None:
                            keys.append(pkt.pts)
            except av.error.FFmpegError as e:
                raise MediaError(f"{path}: cannot read: {e}") from None
            if n == 0 or not w or not h:
                raise MediaError(f"{path}: no video frames")
            # a file cut short (a copy stopped part-way) declares frames its packets lack:
            # refused, as `--scenes`, `scenes` and `align` refuse it
            last = float(top * v.time_base) if top is not None and v.time_base else None
            refuse_short(str(path), v, c, fps, n, None, last)
            samples, turned = key_samples(c, v, keys=sorted(keys))  # upright
            if turned % 2:  # a stream turned a quarter: its sizes as shown
                w, h = h, w
            box = picture_box(samples, w, h)
            sar = pixel_aspect(v, turned)
        _remember_stream(str(path), w, h, n)
        base = re.sub(r"[^a-z0-9._-]+", "-", path.stem.lower()).strip("-._") or "input"
        source, k = base, 1
        while source in seen:
            k += 1
            source = f"{base}-{k}"
        seen.add(source)
        bounds = [0, n]
        if scenes:
            from .scenes.detect import detect_cuts

            bounds = [0, *(c for c in detect_cuts(path, quiet=quiet)[0] if 0 < c < n), n]
        for a, b in zip(bounds, bounds[1:]):
            clips.append(Clip(source, f"{source}.{a}-{b}", str(path), a, b, fps, box, sar, (w, h)))
    return clips


GT_KINDS = ("hd", "film", "cartoon")  # vhs captures and noise overlays are not clean GT


def catalog_clips(root: Path, kinds: Sequence[str] = GT_KINDS) -> list[Clip]:
    """The catalog's kept clips of sources of these `kinds`, with their files."""
    from typing import get_args

    from .catalog import Catalog
    from .manifest import Kind
    from .video import file_aspect

    unknown = [k for k in kinds if k not in get_args(Kind)]
    if unknown:
        raise RefusedError(
            f"--kind {', '.join(map(repr, unknown))}: no such kind of source; use "
            f"{', '.join(get_args(Kind))}"
        )
    if not (root / "catalog.sqlite").exists():
        raise RefusedError(
            f"{root}: no catalog; run `filmdata fetch` and `filmdata cut`, or give --input VIDEO"
        )
    with Catalog.at_root(root) as cat:
        rows = cat.clips(status="kept")
        sources = {(s["manifest"], s["id"]): s for s in cat.sources()}
    clips = []
    sars: dict[str, float] = {}  # each source file's pixel aspect, read once
    for r in rows:
        src = sources.get((r["manifest"], r["source"]))
        if src is not None and src.get("kind") not in kinds:
            continue
        if src is None or not src.get("path"):
            raise RefusedError(
                f"clip {r['id']}: source {r['source']!r} has no fetched file; "
                "run `filmdata fetch` again"
            )
        w, h = int(src.get("width") or 0), int(src.get("height") or 0)
        path = str(root / src["path"])
        if path not in sars:
            sars[path] = file_aspect(path)
        raw = (r["box_x"], r["box_y"], r["box_w"], r["box_h"])
        box: Box = (0, 0, w, h)
        if all(v is not None for v in raw) and raw[2] and raw[3]:
            box = (int(raw[0]), int(raw[1]), int(raw[2]), int(raw[3]))
        clips.append(
            Clip(
                r["source"],
                r["id"],
                path,
                int(r["start_frame"]),
                int(r["end_frame"]),
                float(r["fps"]),
                box,
                sars[path],
                (w, h) if w and h else None,
            )
        )
    if not clips:
        raise RefusedError(
            f"{root}: the catalog has no kept clips of sources of kind {', '.join(kinds)}; "
            "run `filmdata cut` first, pass --kind, or give --input VIDEO"
        )
    return clips


def sources_not_cut(root: Path, kinds: Sequence[str] = GT_KINDS) -> list[str]:
    """The fetched sources of these `kinds` that have no clip rows, kept or dropped: never cut,
    or fetched again with other content since (`fetch` drops the old file's clips). A synth
    from the catalog leaves them out; said so, or a source fetched and not cut goes missing
    from the dataset without a word. Named by id (`manifest/id` where two manifests share it).
    """
    from .catalog import Catalog

    with Catalog.at_root(root) as cat:
        cut = {(c["manifest"], c["source"]) for c in cat.clips()}
        sources = cat.sources()
    shared = collections.Counter(s["id"] for s in sources)
    return [
        f"{s['manifest']}/{s['id']}" if shared[s["id"]] > 1 else s["id"]
        for s in sources
        if s["status"] == "fetched"
        and s.get("kind") in kinds
        and (s["manifest"], s["id"]) not in cut
    ]


def holds(clip: Clip, size: int) -> bool:
    """Whether a clip's active picture holds a crop of `size` pixels both ways, square as shown
    (`sample_crop`): a smaller one's GT would be upscaled, not the source's pixels."""
    from .video import SQUARE_SAR

    _, _, bw, bh = clip.box
    sar = 1.0 if abs(clip.sar - 1) < SQUARE_SAR else clip.sar
    # rows the box holds a square of, against the rows a crop `size` pixels across needs
    return min(bw * sar, float(bh)) >= size * max(1.0, sar) and bw >= size and bh >= size


def sample_crop(box: Box, size: int, seed: int, key: str, sar: float = 1.0) -> Box:
    """A square crop inside `box`: side log-uniform in [size, 2 * size] (clamped to the box),
    at even coordinates with an even side where the box allows (4:2:0 chroma then splits
    evenly: see `_Picture.resized`).

    Square as shown: where the source's pixels are not square (`sar`, a pixel's width over its
    height: an anamorphic DVD's 64/45, a 4:3 one's 16/15 or 8/9), the crop is `side / sar`
    pixels wide and `side` high, and its side at least `size` of them both ways (its resize to
    `size`^2 then only shrinks), so that the GT shows the picture undistorted."""
    from .video import SQUARE_SAR

    if abs(sar - 1) < SQUARE_SAR:
        sar = 1.0
    rng = np.random.default_rng(window_seed(seed, key, "crop"))
    bx, by, bw, bh = box
    if sar == 1.0:
        m = min(bw, bh)
        lo, hi = min(size, m), min(2 * size, m)
        side = int(round(np.exp(rng.uniform(np.log(lo), np.log(hi))))) if hi > lo else lo
        if side % 2 and side + 1 <= m:
            side += 1
        return (_even(bx, bw - side, rng), _even(by, bh - side, rng), side, side)
    # the side counted in rows: the box holds a square of `rows` of them
    rows = min(bw * sar, float(bh))
    least = size * max(1.0, sar)  # rows for `size` pixels across
    low, high = min(least, rows), min(2 * least, rows)
    tall = float(np.exp(rng.uniform(np.log(low), np.log(high)))) if high > low else low
    w, h = _even_side(tall / sar, bw), _even_side(tall, bh)
    return (_even(bx, bw - w, rng), _even(by, bh - h, rng), w, h)


def _even_side(v: float, room: int) -> int:
    """`v` rounded to a whole number of pixels, even where `room` allows, within [1, room]."""
    n = max(1, min(room, int(round(v))))
    if n % 2:
        n = n + 1 if n + 1 <= room else max(1, n - 1) if n > 1 else n
    return n


def _even(start: int, room: int, rng: np.random.Generator) -> int:
    """A uniform offset in [start, start + room], even when the range holds an even number."""
    first = start + start % 2
    if first > start + room:
        return start + int(rng.integers(0, room + 1))
    return first + 2 * int(rng.integers(0, (start + room - first) // 2 + 1))


def plan(
    clips: Sequence[Clip],
    *,
    clip_len: int,
    size: int,
    stride: int | None,
    seed: int,
    val_fraction: float,
    max_windows: int | None = None,
) -> dict[str, list[Window]]:
    """Every window and its split, deterministically: {"train": [...], "validation": [...]}.

    Splits never leak (DESIGN.md): with two or more sources, whole sources go to validation;
    with one source of several clips, its last clips; with one clip, its last stretch of time,
    with a gap of at least one window between the train and validation stretches.
    """
    flat = _candidates(
        clips, clip_len=clip_len, size=size, stride=stride, seed=seed,
        val_fraction=val_fraction, max_windows=max_windows,
    )  # fmt: skip
    if val_fraction == 0:
        return {"train": flat}
    train, val = split_windows(flat, val_fraction, clip_len, seed)
    if not train or not val:
        raise RefusedError(
            f"--val-fraction {val_fraction}: too few windows ({len(flat)}) to "
            "hold out a validation stretch and keep a train split; lower it"
        )
    return {"train": train, "validation": val}


def plan_honouring(
    clips: Sequence[Clip],
    held: Held,
    keys: Mapping[str, str],
    *,
    clip_len: int,
    size: int,
    stride: int | None,
    seed: int,
    val_fraction: float,
    max_windows: int | None = None,
) -> tuple[dict[str, list[Window]], list[Window]]:
    """`plan`, honouring the GT frames other configs of the dataset hold (`held`; `keys`: each
    clip file's GT content key): ({split: windows}, the windows left out).

    A window touching another config's validation frames (or within a window of them) goes to
    validation, one touching its train frames to train, one touching both is left out; the
    others are split by `plan`'s rules among themselves. Of the GT files another config holds,
    a train window within a window of a validation one is then left out too (the two ways of
    splitting meet there). With `val_fraction` 0 no validation split is made: the windows
    another config would send there are left out.
    """
    flat = _candidates(
        clips, clip_len=clip_len, size=size, stride=stride, seed=seed,
        val_fraction=val_fraction, max_windows=max_windows,
    )  # fmt: skip
    sides = assign([(keys[w.path], w.start_frame, w.start_frame + clip_len) for w in flat],
                   held, clip_len)  # fmt: skip
    free = [w for w, s in zip(flat, sides, strict=True) if s is None]
    to: dict[str, str] = {w.id: s for w, s in zip(flat, sides, strict=True) if s is not None}
    if val_fraction and len(free) >= 2:
        train, val = split_windows(free, val_fraction, clip_len, seed)
        to.update({w.id: "train" for w in train})
        to.update({w.id: "validation" for w in val})
    elif free:
        to.update({w.id: "train" for w in free})
    if not val_fraction:
        to = {i: s for i, s in to.items() if s == "train"}
    # (free windows the usual rules leave out, in their gap, are not counted: `plan`'s aren't)
    counted = {w.id for w, s in zip(flat, sides, strict=True) if s is not None}
    kept = [w for w in flat if to.get(w.id) in ("train", "validation")]
    near = {keys[w.path] for w in flat if w.id in counted}
    items = [(keys[w.path], w.start_frame, w.start_frame + clip_len, to[w.id]) for w in kept]
    ok = keep_gap(items, max(clip_len, held.gap), near)
    counted |= {w.id for w, keep in zip(kept, ok, strict=True) if not keep}
    kept = [w for w, keep in zip(kept, ok, strict=True) if keep]
    splits = {s: [w for w in kept if to[w.id] == s] for s in ("train", "validation")}
    if not kept:
        raise RefusedError(
            f"none of the {len(flat)} windows is left: their GT frames are near both splits "
            f"of other configs of the dataset ({', '.join(held.configs)}), or near their "
            "validation with --val-fraction 0; give a --val-fraction, other footage, or "
            "another --name"
        )
    splits = {s: ws for s, ws in splits.items() if ws or s == "train"}
    made = {w.id for w in kept}
    return splits, [w for w in flat if w.id not in made and w.id in counted]


def _candidates(
    clips: Sequence[Clip],
    *,
    clip_len: int,
    size: int,
    stride: int | None,
    seed: int,
    val_fraction: float,
    max_windows: int | None,
) -> list[Window]:
    """Every window of the clips, in plan order (clip by clip, by start frame); refused for a
    `val_fraction` outside [0, 1) before any is listed."""
    if not 0 <= val_fraction < 1:  # (NaN too)
        raise RefusedError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    if max_windows is not None and max_windows < 1:
        raise RefusedError(f"--max-windows must be >= 1, got {max_windows}")
    stride = stride or clip_len
    per_clip: list[list[Window]] = []
    fits = [holds(c, size) for c in clips]  # (the others' GT would be upscaled)
    small = [c for c, ok in zip(clips, fits) if not ok]
    for c in (c for c, ok in zip(clips, fits) if ok):
        starts = range(c.start, c.end - clip_len + 1, stride)
        per_clip.append(
            [
                Window(
                    window_id(c.clip, s, seed),
                    c.source,
                    c.clip,
                    c.path,
                    s,
                    c.fps,
                    sample_crop(c.box, size, seed, window_id(c.clip, s, seed), c.sar),
                    c.picture,
                )
                for s in starts
            ]
        )
    flat = [w for ws in per_clip for w in ws]
    if max_windows is not None and len(flat) > max_windows:
        keep = set(np.unique(np.round(np.linspace(0, len(flat) - 1, max_windows)).astype(int)))
        flat = [w for i, w in enumerate(flat) if i in keep]
    if not flat and small and len(small) == len(clips):
        c = max(small, key=lambda c: min(c.box[2], c.box[3]))
        others = f", nor do the {len(small) - 1} other clips'" if len(small) > 1 else ""
        raise RefusedError(
            f"{c.path}: its picture ({c.box[2]}x{c.box[3]}) holds no --size {size} crop{others}:"
            " its GT would be upscaled; give a smaller --size"
        )
    if not flat:
        raise RefusedError(
            f"no window of --clip-len {clip_len} fits in the clips "
            f"(longest: {max((c.end - c.start for c in clips), default=0)} frames)"
        )
    return flat


def split_windows(
    flat: Sequence[Window], fraction: float, clip_len: int, seed: int
) -> tuple[list[Window], list[Window]]:
    """(train, validation), never leaking: the coarsest unit that comes near `fraction`.

    1. whole sources (in an order fixed by the seed), when they come within 1.5x of the want;
    2. else whole clips (scenes: disjoint frames), the last clips of each source first;
    3. else the last stretch of every clip, with a gap of at least one window before it.
    """
    want = max(1, round(fraction * len(flat)))
    near = max(want + 1, int(1.5 * want))
    count: dict[str, int] = {}
    for w in flat:
        count[w.source] = count.get(w.source, 0) + 1
        count[w.clip] = count.get(w.clip, 0) + 1
    sources = sorted(
        dict.fromkeys(w.source for w in flat), key=lambda s: window_seed(seed, s, "split")
    )
    if len(sources) >= 2:
        units = _take(sources, count, want)
        if sum(count[u] for u in units) <= near:
            return [w for w in flat if w.source not in units], [
                w for w in flat if w.source in units
            ]
    clips: dict[str, list[str]] = {s: [] for s in sources}
    for w in flat:
        if w.clip not in clips[w.source]:
            clips[w.source].append(w.clip)  # in time order (plan order)
    if sum(map(len, clips.values())) >= 2:
        order = [
            c[-1 - d]
            for d in range(max(map(len, clips.values())))
            for c in clips.values()
            if d < len(c)
        ]
        units = _take(order, count, want)
        if sum(count[u] for u in units) <= near:
            return [w for w in flat if w.clip not in units], [w for w in flat if w.clip in units]
    train, val = [], []
    by_clip: dict[str, list[Window]] = {}
    for w in flat:
        by_clip.setdefault(w.clip, []).append(w)
    biggest = max(by_clip, key=lambda c: len(by_clip[c]))
    for c, ws in by_clip.items():
        k = round(fraction * len(ws)) or (1 if c == biggest else 0)
        if k == 0 or k >= len(ws):
            train += ws if k == 0 else []
            val += ws if k else []
            continue
        first = ws[-k].start_frame
        val += ws[-k:]
        train += [w for w in ws[:-k] if w.start_frame + 2 * clip_len <= first]
    return train, val


def _take(order: Sequence[str], count: dict[str, int], want: int) -> set[str]:
    """The first units of `order` until they hold `want` windows, never all of them."""
    taken: set[str] = set()
    n = 0
    for unit in order[:-1]:
        if n >= want:
            break
        taken.add(unit)
        n += count[unit]
    return taken


# The reader ----------------------------------------------------------------------------------


def cut_windows(
    windows: Sequence[Window], clip_len: int, size: int
) -> Iterator[tuple[Window, np.ndarray]]:
    """Decode each needed frame once; yield (window, GT frames (T, size, size, 3) uint8).

    Windows come in plan order (by file, then start frame); frames shared by overlapping windows
    are decoded once. A crop is resized by area to `size` (`_Picture.resized`).
    """
    for w, pictures in window_pictures(windows, clip_len, size):
        yield w, cut_window(w, pictures, size)


def cut_window(
    w: Window, pictures: Sequence[_Picture], size: int, out: np.ndarray | None = None
) -> np.ndarray:
    """A window's GT frames from its decoded pictures: (T, size, size, 3) uint8, written into
    `out` (C-contiguous, of that shape) when given.

    Raises:
        MediaError: a frame is not of the size the window was planned on (`Window.picture`),
            or its crop is not inside it: the picture size changes mid-stream.
    """
    x, y, cw, ch = w.crop
    if out is None:
        out = np.empty((len(pictures), size, size, 3), np.uint8)
    for k, pic in enumerate(pictures):
        fw, fh = pic.size
        if w.picture is not None and (fw, fh) != tuple(w.picture):
            # Another recording spliced in: a crop that happens to fit would cut its frames at
            # a place planned on the other picture, and the GT would not be the recorded crop.
            pw, ph = w.picture
            raise MediaError(
                f"{w.path}: frame {w.start_frame + k} is {fw}x{fh}, not the {pw}x{ph} the crop "
                f"{list(w.crop)} of window {w.id} was planned on: the picture size changes "
                "mid-stream (cut the file where it does)"
            )
        if x + cw > fw or y + ch > fh:
            raise MediaError(
                f"{w.path}: frame {w.start_frame + k} is {fw}x{fh}, too small for the crop "
                f"{list(w.crop)} of window {w.id}: the picture size changes mid-stream (cut the "
                "file where it does)"
            )
        pic.resized(x, y, cw, ch, size, out=out[k])  # made in place: no copy
    return out


def window_pictures(
    windows: Sequence[Window], clip_len: int, size: int = 256, cores: int = 1
) -> Iterator[tuple[Window, list[_Picture]]]:
    """Decode each needed frame once; yield (window, its `clip_len` decoded pictures), the
    cutting left to the caller (`cut_window`: a synth worker thread does it). Each file is
    decoded with `decode_threads` threads (more where its windows are far apart: the frames
    between them are decoded too).

    Windows of a file are decoded in runs, straight through from one to the next, where that
    costs less than a seek to the next (`video.decodes_on`: a seek decodes from a keyframe
    before the frame wanted): `--max-windows` spreads windows over a file with long GOPs (250
    frames, x264's default), where a seek to each decoded 2-3x the frames a pass over the
    whole file does."""
    from .video import DECODE_ON, decodes_on, keyframe_frames

    threads: dict[str, int] = {}
    keys: dict[str, Any] = {}
    i = 0
    while i < len(windows):
        path = windows[i].path
        if path not in threads:
            mine = [w.start_frame for w in windows if w.path == path]
            # (windows in reach of each other, as a whole file's are, need no keyframes)
            gaps = np.diff(mine) if len(mine) > 1 else np.zeros(0)
            far = bool(np.any((gaps < 0) | (gaps > clip_len + DECODE_ON)))
            keys[path] = keyframe_frames(path) if far else None
            share = _frames_decoded(mine, clip_len, keys[path]) / (len(mine) * clip_len)
            threads[path] = decode_threads(path, size, cores, share)
        # A run of windows of one file whose frames are close enough to decode straight through.
        j = i + 1
        while (
            j < len(windows)
            and windows[j].path == path
            and windows[j].start_frame >= windows[j - 1].start_frame
            and decodes_on(
                keys[path], windows[j - 1].start_frame + clip_len, windows[j].start_frame
            )
        ):
            j += 1
        run = windows[i:j]
        end = max(w.start_frame for w in run) + clip_len
        held: dict[int, list[_Picture]] = {}
        nxt = 0  # the first window of the run not yet complete
        last = run[0].start_frame - 1
        for index, frame in _pictures(path, run[0].start_frame, end, threads[path]):
            last = index
            for k in range(nxt, len(run)):
                w = run[k]
                if w.start_frame > index:
                    break
                if index < w.start_frame + clip_len:
                    held.setdefault(k, []).append(frame)
            while nxt < len(run) and index + 1 >= run[nxt].start_frame + clip_len:
                yield run[nxt], held.pop(nxt)
                nxt += 1
        if nxt < len(run):
            raise MediaError(
                f"{run[nxt].path}: frames end at {last + 1}, window "
                f"{run[nxt].id} needs up to {run[nxt].start_frame + clip_len}"
            )
        i = j


def _frames_decoded(
    starts: Sequence[int], clip_len: int, keys: tuple[np.ndarray, float] | None
) -> int:
    """How many frames `window_pictures` decodes for windows of one file starting at `starts`
    (in the order given): in a run, those from where the last window ended to this one's end;
    at a seek, from the keyframe it lands on."""
    from .video import decodes_on, seek_lands

    total, prev = 0, None
    for s in starts:
        if prev is not None and prev <= s and decodes_on(keys, prev + clip_len, s):
            total += s - prev  # on from the last window's end to this one's
        else:
            total += s + clip_len - seek_lands(keys, s)
        prev = s
    return total


def window_pictures_or_failures(
    windows: Sequence[Window], clip_len: int, size: int = 256, cores: int = 1
) -> Iterator[tuple[Window, list[_Picture] | MediaError]]:
    """`window_pictures`, where a window that cannot be decoded (`MediaError`: a broken
    stream, frames that end early) comes with its error instead of ending the iteration, and
    decoding goes on at the next window: one bad stretch of a file fails its windows, not the
    run (synth makes the rest and exits 1 naming them)."""
    i = 0
    while i < len(windows):
        try:
            for item in window_pictures(windows[i:], clip_len, size, cores):
                i += 1
                yield item
            return
        except MediaError as e:
            # window_pictures yields in the order given: the error is the first one not yet
            # yielded's (the frames it needed did not come); start again after it.
            yield windows[i], e
            i += 1


class _Picture:
    """One decoded frame whose RGB is made only where crops need it.

    `resized(x, y, w, h, size)` is the crop resized by area to `size`. For planar YUV footage
    (`_PLANAR`: nearly all of it) it is made from the planes, never as RGB at the source
    resolution: luma and chroma are resized by area, and turned to RGB by the very affine map
    FFmpeg's `rgb24` conversion applies to this frame (fitted from FFmpeg: `_yuv_to_rgb`).
    Against an area resize of the whole frame's RGB it differs by rounding only (8-bit 4:2:0:
    PSNR > 45 dB; crops at odd coordinates, whose chroma is sampled bilinearly, > 30 dB) at a
    fifth of the cost. 10/12-bit and 4:2:2 (HEVC, AV1 and VP9 remasters; ProRes and FFV1
    masters), where FFmpeg dithers and interpolates chroma: 47-53 dB on real footage; there its
    own conversion of a 720p frame costs 4.8-8.6 ms, against 1.6 for 8-bit 4:2:0. Other
    formats take the exact RGB crop and resize it. `crop(x, y, w, h)` gives the exact RGB
    pixels of `frame.to_ndarray(format="rgb24")` in the box.
    """

    def __init__(self, frame: Any):
        self.frame = frame
        self.rgb: np.ndarray | None = None
        self._planes: list[np.ndarray] | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) upright (`video.turns`)."""
        from .video import turns

        f = self.frame
        return (f.height, f.width) if turns(f) % 2 else (f.width, f.height)

    def planes(self) -> list[np.ndarray]:
        """Y, U, V as views of FFmpeg's buffers (no copy), for the planar YUV formats of
        `_PLANAR`: uint8, or uint16 for the deeper ones."""
        if self._planes is None:
            dtype = np.uint16 if _PLANAR[self.frame.format.name][0] > 8 else np.uint8
            self._planes = [_plane(p, dtype) for p in self.frame.planes[:3]]
        return self._planes

    def resized(
        self, x: int, y: int, w: int, h: int, size: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """The crop `(x, y, w, h)` resized by area to `(size, size)`: (size, size, 3) uint8,
        written into `out` (a C-contiguous array of that shape) when given."""
        import cv2

        from .video import turns

        f = self.frame
        # (a turned frame, `video.turns`: its exact RGB, turned, then the crop)
        kind = _PLANAR.get(f.format.name) if not turns(f) else None
        bits, fx, fy = kind if kind is not None else (8, 1, 1)
        # the box on whole chroma samples (always so without subsampling)
        even = not (fx > 1 and (x % 2 or w % 2)) and not (fy > 1 and (y % 2 or h % 2))
        # Other crops take the fast path only where bilinear chroma is within a level or two
        # of the box filter: scales between 1 and 2.
        fast = kind is not None and (even or size <= min(w, h) <= max(w, h) <= 2 * size)
        m = _yuv_to_rgb(f) if fast else None
        dst = out if out is not None and out.flags.c_contiguous else None  # OpenCV's only
        if m is None:
            crop = self.crop(x, y, w, h)
            return _into(cv2.resize(crop, (size, size), dst=dst, interpolation=cv2.INTER_AREA), out)
        luma, u, v = self.planes()
        dsize = (size, size)
        yy = cv2.resize(luma[y : y + h, x : x + w], dsize, interpolation=cv2.INTER_AREA)
        if even:
            # Chroma sample j covers luma columns 2j and 2j + 1 (FFmpeg's unscaled 4:2:0 -> RGB
            # replicates it): an area resize of the even box's chroma is the area resize of
            # the replicated chroma, exactly (where FFmpeg interpolates, within rounding).
            cy, cx = slice(y // fy, (y + h) // fy), slice(x // fx, (x + w) // fx)
            cu = cv2.resize(u[cy, cx], dsize, interpolation=cv2.INTER_AREA)
            cv = cv2.resize(v[cy, cx], dsize, interpolation=cv2.INTER_AREA)
        else:
            # Chroma sampled bilinearly at each output pixel's centre: luma
            # x - 0.5 + (i + 0.5) * sx, which is chroma ((that) + 0.5) / fx - 0.5.
            sx, sy = w / size, h / size
            warp = np.array(
                [
                    [sx / fx, 0, (x / fx - 0.5) + sx / (2 * fx)],
                    [0, sy / fy, (y / fy - 0.5) + sy / (2 * fy)],
                ],
                np.float64,
            )
            flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            cu = cv2.warpAffine(u, warp, dsize, flags=flags, borderMode=cv2.BORDER_REPLICATE)
            cv = cv2.warpAffine(v, warp, dsize, flags=flags, borderMode=cv2.BORDER_REPLICATE)
        if bits > 8:
            # 10- and 12-bit samples: the map takes them to 0-255 directly; OpenCV rounds
            # and saturates to 16 bits, the top clipped here
            rgb = np.minimum(cv2.transform(cv2.merge([yy, cu, cv]), m), 255)
            return _into(rgb.astype(np.uint8), out)
        return _into(cv2.transform(cv2.merge([yy, cu, cv]), m, dst=dst), out)

    def crop(self, x: int, y: int, w: int, h: int) -> np.ndarray:
        """The exact `rgb24` pixels of the box `(x, y, w, h)` of the upright picture (`turns`):
        (h, w, 3) uint8.

        For yuv420p the box's planes are cut at even coordinates and converted alone: swscale
        replicates chroma for unscaled 4:2:0 -> RGB, so this gives the very pixels of
        `frame.to_ndarray(format="rgb24")` (checked in the tests) at a fraction of the cost.
        """
        import av

        from .video import turns, upright

        f = self.frame
        hh, ww = f.height, f.width
        k = turns(f)
        if k or f.format.name != "yuv420p" or hh % 2 or ww % 2:
            if self.rgb is None:
                self.rgb = upright(f.to_ndarray(format="rgb24"), k)
            return self.rgb[y : y + h, x : x + w]
        luma, u, v = self.planes()
        x0, y0 = x - x % 2, y - y % 2
        x1, y1 = x + w + (x + w) % 2, y + h + (y + h) % 2
        cy, cx = slice(y0 // 2, y1 // 2), slice(x0 // 2, x1 // 2)
        planes = [luma[y0:y1, x0:x1].ravel(), u[cy, cx].ravel(), v[cy, cx].ravel()]
        sub = av.VideoFrame.from_ndarray(
            np.concatenate(planes).reshape((y1 - y0) * 3 // 2, x1 - x0), format="yuv420p"
        )
        sub.colorspace, sub.color_range = f.colorspace, f.color_range
        rgb = sub.to_ndarray(format="rgb24")
        return rgb[y - y0 : y - y0 + h, x - x0 : x - x0 + w]


#: planar YUV formats made from their planes: (bits per sample, chroma subsampling across,
#: down); deeper samples sit in the low bits of 16 (10-bit HEVC, AV1 and VP9 remasters; ProRes
#: and FFV1 masters in 4:2:2 at 10 or 12 bits).
_SUBSAMPLING = {"420": (2, 2), "422": (2, 1), "444": (1, 1)}
_PLANAR: dict[str, tuple[int, int, int]] = {
    f"{kind}{sub}p{suffix}": (bits, *_SUBSAMPLING[sub])
    for sub in _SUBSAMPLING
    for kind, suffix, bits in (
        ("yuv", "", 8),
        ("yuvj", "", 8),
        ("yuv", "10le", 10),
        ("yuv", "12le", 12),
    )
}


def _into(made: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """`out` holding what OpenCV made (it writes into a C-contiguous `dst` of the right
    shape and type, and otherwise returns a new array)."""
    if out is None or np.may_share_memory(made, out):
        return made
    out[...] = made
    return out


def _plane(p: Any, dtype: Any = np.uint8) -> np.ndarray:
    """A decoded plane as a (height, width) view of FFmpeg's buffer (no copy), of `dtype`
    samples (uint8, or uint16 for the deeper formats: little-endian, as `_PLANAR`'s are)."""
    step = np.dtype(dtype).itemsize
    return np.frombuffer(p, dtype).reshape(p.height, p.line_size // step)[:, : p.width]


_MATRICES: dict[tuple[str, int, int], np.ndarray | None] = {}


def _yuv_to_rgb(frame: Any) -> np.ndarray | None:
    """The (3, 4) affine map from (Y, U, V, 1) to (R, G, B) that FFmpeg's `rgb24` conversion
    applies to frames of this format, colour space and range; fitted once per kind from FFmpeg
    itself (so it follows PyAV's choice of matrix), None when no affine map fits."""
    import av

    key = (frame.format.name, int(frame.colorspace), int(frame.color_range))
    if key not in _MATRICES:
        rng = np.random.default_rng(0)
        bits, fx, fy = _PLANAR[key[0]]
        if key[0] in ("yuv420p", "yuvj420p"):
            # Mid-range values, so that no channel clips whatever the matrix and range.
            n = 32
            luma = rng.integers(64, 160, (n, n), dtype=np.uint8)
            chroma = rng.integers(108, 148, (2, n // 2, n // 2), dtype=np.uint8)
            probe = av.VideoFrame.from_ndarray(
                np.concatenate([luma.ravel(), chroma.ravel()]).reshape(n * 3 // 2, n),
                format=key[0],
            )
            keep = np.ones(n * n, bool)
        else:
            # FFmpeg interpolates these formats' chroma, or dithers their samples to 8 bits:
            # chroma constant over blocks of 8 samples, the map fitted away from the blocks'
            # edges; samples at the format's depth (the map takes them to 0-255 directly).
            n, up8 = 64, 1 << (bits - 8)
            dtype = np.uint16 if bits > 8 else np.uint8
            luma = rng.integers(64 * up8, 160 * up8, (n, n)).astype(dtype)
            blocks = rng.integers(108 * up8, 148 * up8, (2, n // fy // 8, n // fx // 8))
            chroma = blocks.repeat(8, axis=1).repeat(8, axis=2).astype(dtype)
            probe = av.VideoFrame(n, n, key[0])
            for plane, data in zip(probe.planes, (luma, chroma[0], chroma[1]), strict=True):
                rows = np.zeros((plane.height, plane.line_size // data.itemsize), dtype)
                rows[:, : data.shape[1]] = data
                plane.update(rows.tobytes())
            inner_x = np.isin(np.arange(n) // fx % 8, (2, 3, 4, 5))
            inner_y = np.isin(np.arange(n) // fy % 8, (2, 3, 4, 5))
            keep = (inner_y[:, None] & inner_x[None, :]).ravel()
        probe.colorspace, probe.color_range = frame.colorspace, frame.color_range
        rgb = probe.to_ndarray(format="rgb24").reshape(-1, 3).astype(np.float64)[keep]
        up = chroma.repeat(fy, axis=1).repeat(fx, axis=2).reshape(2, -1)
        a = np.column_stack([luma.ravel(), up[0], up[1], np.ones(n * n)]).astype(np.float64)
        a = a[keep]
        m, *_ = np.linalg.lstsq(a, rgb, rcond=None)
        fit = m.T.astype(np.float32)  # (3, 4)
        err = np.abs(a @ m - rgb).max()
        # (FFmpeg dithers deeper samples down to 8 bits: a level more of leeway)
        _MATRICES[key] = fit if err < (3.0 if bits > 8 else 2.0) else None
    return _MATRICES[key]


def _pictures(path: str, start: int, end: int, threads: int = 1) -> Iterator[tuple[int, _Picture]]:
    """Frames `[start, end)` of a file, numbered exactly as `video.iter_frames` numbers them,
    those coded interlaced deinterlaced (the GT is pictures, not fields)."""
    from .video import iter_decoded

    for index, frame in iter_decoded(path, start, end, threads=threads, deinterlace=True):
        yield index, _Picture(frame)


# CPU per frame, in ms, on a 2-core EPYC VM: decoding H.264 costs about DECODE_PX per pixel
# plus DECODE_BIT per bit of the stream (2 Mb/s 720p: 3.1 ms; 61 Mb/s grainy 720p: 17.7 ms);
# cutting, degrading and encoding a window's frame costs about WORK_PX per output pixel (the
# film preset at 256^2: 6.5 ms). Only their ratio matters.
DECODE_PX, DECODE_BIT, WORK_PX = 2.8e-6, 5.9e-6, 1.0e-4


def decode_threads(path: str, size: int, cores: int, share: float = 1.0) -> int:
    """FFmpeg threads for decoding `path` for `size`^2 windows on `cores` cores: one while the
    decoder keeps up with the rest of the pipeline (frame threads cost up to a seventh more CPU
    a frame), more when its single thread would be the bottleneck (high bit rates, large
    frames: frame threads then halve a 61 Mb/s 720p stream's decoding time at the same CPU;
    windows spread over the file, `share` frames decoded for each one a window uses).

    A file `input_clips` has just read is not opened again (its size and frames are known: the
    probe is 15-30 ms before the reader's first frame)."""
    from .video import file_key, probe

    if cores <= 1:
        return 1
    try:
        known = _STREAMS.get(file_key(path))
        frames: float
        if known is not None:
            width, height, frames = known
        else:
            p = probe(path, count=False, as_shown=False)  # (a turn keeps the product)
            width, height = p.width, p.height
            frames = p.duration * p.fps if p.duration > 0 else p.declared_frames
        if frames < 1:
            return 1
        bits = os.path.getsize(path) * 8 / frames
    except (FilmdataError, OSError):
        return 1
    decode = (DECODE_PX * width * height + DECODE_BIT * bits) * max(1.0, share)
    return max(1, min(cores, round(decode / (WORK_PX * size * size))))


# (path, size, mtime) -> (width, height, frames) of the files `input_clips` read.
_STREAMS: dict[tuple[str, int, int], tuple[int, int, int]] = {}


def _remember_stream(path: str, width: int, height: int, frames: int) -> None:
    from .video import file_key

    try:
        if len(_STREAMS) > 4096:
            _STREAMS.clear()
        _STREAMS[file_key(path)] = (width, height, frames)
    except OSError:
        pass
