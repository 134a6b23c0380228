"""VHS-like test tapes with a known truth, for the aligner's tests and benchmark.

`render_footage` makes textured HD-ish footage (optionally with slow pans and static stretches,
the hard case for temporal alignment). `make_tape` turns a GT video file into a tape: a noise
head and a station ident (LQ frames with no GT), an offset, a speed change with frame
resampling, a dropped and a duplicated frame, overscan, 4:3 letterbox, VHS-like blur, chroma
smear, noise and heavy H.264 compression; optionally interlaced fields (3:2 pulldown: woven
frames of two GT frames), a change of geometry halfway, a stretch of the GT missing and
another programme put in. It returns the true mapping (GT frame
per LQ frame, or None; `also`: the second GT frame of a woven frame) and the true 3x3 transform
from GT pixel coordinates to LQ pixel coordinates (pixel centres at integers).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..synthetic import make_world
from ..video import iter_frames, probe, write_video
from .audio import mono
from .spatial import grid_error


def render_footage(
    width: int, height: int, lengths: tuple[int, ...], seed: int = 0, slow: bool = False
) -> Iterator[np.ndarray]:
    """Frames (height, width, 3) uint8: one pan/zoom over a textured world per shot.

    With `slow`, every other shot crawls (0.05 to 0.2 px per frame) and ends in a still stretch
    (identical frames), so neighbouring frames are nearly identical.
    """
    for s, length in enumerate(lengths):
        rng = np.random.default_rng(seed * 1000 + s)
        ww, wh = int(width * 1.6), int(height * 1.6)
        world = make_world(rng, wh, ww)
        crawl = slow and s % 2 == 1
        v = rng.uniform(0.05, 0.2, 2) if crawl else rng.uniform(-3, 3, 2)
        still = length // 3 if crawl else 0
        x0 = rng.uniform(0.1, 0.4) * (ww - width)
        y0 = rng.uniform(0.1, 0.4) * (wh - height)
        z, dz = rng.uniform(1.0, 1.1), (0.0 if crawl else rng.uniform(-0.001, 0.001))
        mover = (rng.uniform(0, width), rng.uniform(0, height), *rng.uniform(-4, 4, 2))
        col = tuple(int(c) for c in rng.integers(0, 256, 3))
        r = max(3, height // 10)
        for t in range(length):
            tt = min(t, length - still)  # the camera (and the mover) stop for the last `still`
            zz = z + dz * tt
            cx = float(np.clip(x0 + v[0] * tt, 0, ww - width * zz - 1))
            cy = float(np.clip(y0 + v[1] * tt, 0, wh - height * zz - 1))
            m = np.array([[zz, 0, cx], [0, zz, cy]], np.float32)
            img = cv2.warpAffine(
                world, m, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            )
            out = (img * 255).astype(np.uint8)
            if not crawl:
                px = int(mover[0] + mover[2] * tt) % width
                py = int(mover[1] + mover[3] * tt) % height
                cv2.circle(out, (px, py), r, col, -1, cv2.LINE_AA)
            yield out


@dataclass(frozen=True)
class TapeSpec:
    """How a tape is made from its GT. Times in the GT's frames unless said otherwise."""

    fps: float = 25.0  # the tape's frame rate
    speed: float = 25 / 24  # GT seconds per tape second (PAL transfer of 24 fps film: 1.0427)
    start: float = 7.3  # GT frame position shown at the first content frame
    head: int = 20  # tape-noise frames at the start (no GT)
    ident: int = 8  # station-ident frames after the noise (no GT)
    drop: float = 0.35  # where a GT frame is dropped (fraction of the content)
    dup: float = 0.7  # where a tape frame is shown twice (fraction of the content)
    size: tuple[int, int] = (480, 360)  # tape (width, height): 4:3
    overscan: float = 0.035  # fraction of the GT picture cut from each side
    shift: tuple[float, float] = (0.6, -0.4)  # extra sub-pixel shift in tape pixels
    squeeze: float = 1.012  # horizontal scale error of the capture
    blur: float = 1.3  # horizontal luma blur (sigma, tape pixels)
    smear: float = 3.5  # chroma blur (sigma, tape pixels), shifted right by half of it
    noise: float = 5.0  # luma noise std (grey levels)
    crf: int = 38  # H.264 quality of the tape (high = heavy compression)
    seed: int = 0
    frames: int | None = None  # tape length (default: until the GT runs out)
    # interlaced transfer: each tape frame is two fields sampled half a frame apart, so where
    # the GT frame changes between them (3:2 pulldown of 24 fps film to 29.97 fps: two frames
    # in five) the frame mixes two GT frames, even rows from one and odd rows from the next
    fields: bool = False
    # a change of geometry along the tape (a capture re-locked, another transfer spliced in):
    # from this fraction of the tape's frames on, the picture sits (dx, dy) tape px further
    jump: tuple[float, float, float] | None = None
    # stretches of the GT the tape lacks (a damaged length spliced out, a recording paused, a
    # shorter edit): (where, as a fraction of the content; tape frames lost), each in turn
    lost: tuple[tuple[float, int], ...] = ()
    # other programmes put in (a commercial, a recording over it): (where; tape frames), each
    other: tuple[tuple[float, int], ...] = ()


def ntsc_pulldown(**kw: object) -> TapeSpec:
    """A 29.97 fps NTSC tape of 24 fps film by 3:2 pulldown (film slowed by 0.1%)."""
    return TapeSpec(fps=30000 / 1001, speed=1000 / 1001, fields=True, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Tape:
    path: Path
    mapping: list[int | None]  # true GT frame per tape frame (its first field's)
    transform: np.ndarray  # (3, 3) GT pixel -> tape pixel
    spec: TapeSpec = field(repr=False)
    # the second field's GT frame where it differs from the first (a mixed frame), else None
    also: list[int | None] = field(default_factory=list, repr=False)
    # (first tape frame, GT pixel -> tape pixel) where the geometry changes (`spec.jump`)
    segments: list[tuple[int, np.ndarray]] = field(default_factory=list, repr=False)


def tape_timeline(spec: TapeSpec, gt_frames: int, gt_fps: float) -> list[int | None]:
    """The GT frame shown by each tape frame (its first field's; None: noise head, ident,
    another programme)."""
    return [f[0] if f is not None else None for f in tape_fields(spec, gt_frames, gt_fps)]


def tape_fields(spec: TapeSpec, gt_frames: int, gt_fps: float) -> list[tuple[int, int] | None]:
    """The GT frames of each tape frame's two fields (equal unless `spec.fields` mixes them;
    None: noise head, ident, another programme)."""
    rate = spec.speed * gt_fps / spec.fps  # GT frames per tape frame
    n_content = int((gt_frames - 1 - spec.start) / rate)
    half = 0.5 if spec.fields else 0.0  # the second field's time, in tape frames
    seq = [
        (
            int(math.floor(spec.start + k * rate + 1e-6)),
            int(math.floor(spec.start + (k + half) * rate + 1e-6)),
        )
        for k in range(n_content)
    ]
    seq = [(a, b) for a, b in seq if 0 <= a <= b < gt_frames]
    if spec.drop is not None and 0 < spec.drop < 1:
        # drop a frame whose neighbours differ from it (a real loss of content)
        k = int(spec.drop * len(seq))
        while 0 < k < len(seq) - 1 and (seq[k - 1] == seq[k] or seq[k + 1] == seq[k]):
            k += 1
        del seq[k]
    if spec.dup is not None and 0 < spec.dup < 1:
        k = int(spec.dup * len(seq))
        seq.insert(k, seq[k])
    for at, n in spec.lost:
        k = int(at * len(seq))
        del seq[k : k + n]
    body: list[tuple[int, int] | None] = list(seq)
    for at, n in spec.other:
        k = int(at * len(body))
        body[k:k] = [None] * n
    out: list[tuple[int, int] | None] = [None] * (spec.head + spec.ident)
    out += body
    if spec.frames is not None:
        out = out[: spec.frames]
    return out


def tape_transform(spec: TapeSpec, gt_w: int, gt_h: int) -> np.ndarray:
    """GT pixel -> tape pixel (3x3): overscan crop, fit to the tape width, letterbox, shift."""
    w, h = spec.size
    a_x, a_y = spec.overscan * gt_w, spec.overscan * gt_h  # cropped edge (continuous coords)
    cw, ch = gt_w - 2 * a_x, gt_h - 2 * a_y
    s = w / cw
    sx, sy = s * spec.squeeze, s
    pic_h = ch * sy
    left = (w - cw * sx) / 2 + spec.shift[0]
    top = (h - pic_h) / 2 + spec.shift[1]
    # edges: x_lq + 0.5 = left + (x_gt + 0.5 - a_x) * sx  (pixel centres at integers)
    return np.array(
        [
            [sx, 0.0, left - 0.5 + (0.5 - a_x) * sx],
            [0.0, sy, top - 0.5 + (0.5 - a_y) * sy],
            [0.0, 0.0, 1.0],
        ]
    )


def _snow(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    dots = rng.integers(0, 255, (h, w), dtype=np.uint8)
    g = cv2.GaussianBlur(dots, (0, 0), sigmaX=1.5, sigmaY=0.3)
    bands = rng.uniform(0.6, 1.3, (h, 1)).astype(np.float32)
    banded = np.clip(g * bands, 0, 255).astype(np.uint8)
    return np.repeat(banded[..., None], 3, 2)


def _ident(w: int, h: int, k: int) -> np.ndarray:
    img = np.full((h, w, 3), (20, 40, 120), np.uint8)
    cv2.putText(img, "TV-1", (w // 4, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 3, (240, 240, 240), 6)
    cv2.circle(img, (w - 60, 50), 20 + k % 5, (255, 200, 0), -1)
    return img


def _other(w: int, h: int, k: int) -> np.ndarray:
    """Frame `k` of another programme: a scrolling colour gradient and moving discs."""
    x = np.arange(w, dtype=np.float32)[None, :] + 4 * k
    y = np.arange(h, dtype=np.float32)[:, None]
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = (127 + 100 * np.sin(x / 37 + y / 53)).astype(np.uint8)
    img[..., 1] = (127 + 100 * np.sin(x / 23 - y / 41 + 1)).astype(np.uint8)
    img[..., 2] = (127 + 100 * np.cos(y / 29 + k / 7)).astype(np.uint8)
    for q in range(3):
        c = (int((w / 4) * (q + 1) + 30 * np.sin(k / 5 + q)), int(h / 2 + 40 * np.cos(k / 6 + q)))
        cv2.circle(img, c, h // 8, (255 - 80 * q, 60 * q, 200), -1)
    return img


def _vhs(img: np.ndarray, spec: TapeSpec, rng: np.random.Generator) -> np.ndarray:
    """VHS look on an RGB uint8 tape frame: luma blur, chroma smear, noise, colour drift."""
    ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    y = cv2.GaussianBlur(ycc[..., 0], (0, 0), sigmaX=spec.blur, sigmaY=0.5)
    y = 0.9 * y + 12 + np.asarray(rng.normal(0, spec.noise, y.shape), np.float32)
    y += np.asarray(rng.normal(0, spec.noise * 0.6, (y.shape[0], 1)), np.float32)  # line noise
    ycc[..., 0] = y
    shift = np.array([[1, 0, spec.smear / 2], [0, 1, 0]], np.float32)
    for c in (1, 2):
        ch = cv2.GaussianBlur(ycc[..., c], (0, 0), sigmaX=spec.smear, sigmaY=1.0)
        ch = cv2.warpAffine(ch, shift, ch.shape[::-1], borderMode=cv2.BORDER_REPLICATE)
        ycc[..., c] = 128 + 0.8 * (ch - 128) + (4 if c == 1 else -3)
    return cv2.cvtColor(np.clip(ycc, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB)


def make_tape(gt: str | Path, out: str | Path, spec: TapeSpec = TapeSpec()) -> Tape:
    """Make a VHS-like tape of the GT video `gt` at `out`; returns it with the truth."""
    p = probe(gt, count=True)
    fields = tape_fields(spec, p.frames, p.fps)
    m = tape_transform(spec, p.width, p.height)
    w, h = spec.size
    rng = np.random.default_rng(spec.seed)
    # anti-alias before the downscale (the warp itself samples bilinearly)
    sigma = max(0.0, 0.45 / m[1, 1] - 0.2)
    frames_it = iter_frames(gt)
    cache: dict[int, np.ndarray] = {}  # the last GT frames, on the tape's grid

    def gt_frame(g: int) -> np.ndarray:
        while g not in cache:
            k, f = next(frames_it)
            f = cv2.GaussianBlur(f, (0, 0), sigma) if sigma > 0 else f
            cache[k] = cv2.warpAffine(
                f,
                m[:2],
                (w, h),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=(0, 0, 0),
            )
            for old in [j for j in cache if j < k - 2]:
                del cache[old]
        return cache[g]

    segments = [(0, m)]
    if spec.jump is not None:
        at, dx, dy = spec.jump
        segments.append(
            (int(at * len(fields)), np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1.0]]) @ m)
        )

    def tape_frames() -> Iterator[np.ndarray]:
        for i, fg in enumerate(fields):
            if fg is None and i < spec.head:
                img = _snow(rng, w, h)
            elif fg is None:
                img = _ident(w, h, i) if i < spec.head + spec.ident else _other(w, h, i)
            else:
                img = gt_frame(fg[0])
                if fg[1] != fg[0]:  # woven fields: odd rows from the next GT frame
                    img = img.copy()
                    img[1::2] = gt_frame(fg[1])[1::2]
                if len(segments) > 1 and i >= segments[1][0]:  # the picture moved
                    img = cv2.warpAffine(img, segments[1][1][:2] @ np.linalg.inv(m), (w, h))
            yield _vhs(img, spec, rng)

    write_video(out, tape_frames(), spec.fps, crf=spec.crf)
    mapping = [fg[0] if fg is not None else None for fg in fields]
    also = [fg[1] if fg is not None and fg[1] != fg[0] else None for fg in fields]
    return Tape(Path(out), mapping, m, spec, also, segments if len(segments) > 1 else [])


SOUND_RATE = 16000  # samples a second of the sound `read_sound` and `tape_sound` make


def read_sound(
    path: str | Path, start: float = 0.0, seconds: float | None = None, rate: int = SOUND_RATE
) -> np.ndarray | None:
    """The first audio stream of `path`, mono float32 at `rate`, from `start` s for `seconds`
    (None: to the end); None where the file has no sound."""
    x = mono(path, rate)
    if x is None:
        return None
    a = int(start * rate)
    return x[a:] if seconds is None else x[a : a + int(seconds * rate)]


def with_sound(
    video: str | Path, sound: np.ndarray, out: str | Path, rate: int = SOUND_RATE
) -> Path:
    """`video`'s pictures (packets copied) with `sound` (mono float, `rate`) as AAC, at `out`.

    Every packet but the demuxer's empty one at the end is copied: those with no dts too
    (Matroska stores none for keyframes and B-frames; the muxer fills them in)."""
    import av

    out = Path(out)
    if out.resolve() == Path(video).resolve():
        raise ValueError(f"{out}: with_sound writes a new file beside its video, not over it")
    with av.open(str(video)) as src, av.open(str(out), "w") as dst:
        vs = src.streams.video[0]
        ov = dst.add_stream_from_template(vs)
        oa = dst.add_stream("aac", rate=rate)
        oa.layout = "mono"
        for pkt in src.demux(vs):
            if pkt.size:
                pkt.stream = ov
                dst.mux(pkt)
        pcm = np.clip(sound, -1, 1).astype(np.float32)
        for k in range(0, len(pcm), 1024):
            frame = av.AudioFrame.from_ndarray(pcm[None, k : k + 1024], format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, k
            for pkt in oa.encode(frame):
                dst.mux(pkt)
        for pkt in oa.encode():
            dst.mux(pkt)
    return out


def tape_sound(
    tape: Tape, gt_sound: np.ndarray, gt_fps: float, rate: int = SOUND_RATE, hiss: float = 0.02
) -> np.ndarray:
    """The tape's sound, as a transfer makes it: under each tape frame the GT's sound from the
    frame it shows on at the transfer's rate (a PAL transfer plays it 4% fast, as it does the
    pictures), band-limited to about 6 kHz, with tape hiss; hiss alone where the tape shows no
    GT (its noise head, an ident, another programme)."""
    spec = tape.spec
    n = len(tape.mapping)
    t = np.arange(int(n / spec.fps * rate)) / rate
    i = np.minimum((t * spec.fps).astype(int), n - 1)
    shown = np.array([-1.0 if j is None else j for j in tape.mapping])[i]
    step = spec.speed * gt_fps / spec.fps  # GT frames a tape frame
    gt_t = (shown + (t * spec.fps - i) * step) / gt_fps  # GT seconds
    out = np.interp(gt_t * rate, np.arange(len(gt_sound)), gt_sound, left=0.0, right=0.0)
    out[shown < 0] = 0.0
    out = np.convolve(out, cv2.getGaussianKernel(9, 1.2).ravel(), mode="same")
    rng = np.random.default_rng(spec.seed)
    return (out + rng.normal(0, hiss, len(out))).astype(np.float32)


def geometric_error(true: np.ndarray, est: np.ndarray, gt_w: int, gt_h: int, n: int = 9) -> float:
    """Mean distance (tape px) between where two GT->tape transforms put an n x n GT grid."""
    return grid_error(true, est, (gt_w, gt_h), n)


def frame_accuracy(
    true: list[int | None],
    est: list[int | None],
    same: dict[int, int] | None = None,
    also: list[int | None] | None = None,
) -> float:
    """Fraction of tape frames mapped right: the true GT frame, one with identical content
    (`same[g]` names the first frame of g's run of identical frames), or None where None. A
    frame whose fields mix two GT frames (`also[i]`, the second field's) is right on either."""
    same = same or {}
    also = also or []
    ok = 0
    for i, (t, e) in enumerate(zip(true, est, strict=False)):
        if t is None or e is None:
            ok += t is None and e is None
        else:
            second = also[i] if i < len(also) else None
            right = [t] if second is None else [t, second]
            ok += any(r == e or same.get(r, r) == same.get(e, e) for r in right)
    return ok / max(1, len(true))


#: Mean absolute difference (grey levels, 160 x 90) under which two neighbouring GT frames are
#: one picture: a frame the GT repeats, re-encoded, differs from the first by its quantiser's
#: noise (under 0.05 on the bunny clip's five repeats); a slow movement differs by more (0.1
#: to 0.5 over 23 of its frames, which 0.5 counted as one picture, so a match a frame off
#: in them counted as right).
IDENTICAL_TOL = 0.1


def identical_runs(path: str | Path, tol: float = IDENTICAL_TOL) -> dict[int, int]:
    """Map each GT frame to the first frame of its run of (nearly) identical frames."""
    out: dict[int, int] = {}
    prev, head = None, 0
    for i, f in iter_frames(path, gray=True, size=(160, 90)):
        f = f.astype(np.float32)
        if prev is None or float(np.abs(f - prev).mean()) > tol:
            head = i
        out[i] = head
        prev = f
    return out
