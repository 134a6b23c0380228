"""Coarse offset and speed from the sound, when both sides have it.

Each track becomes an onset envelope (mono, 8 kHz, the positive change of the log energy in 10 ms
hops), which is blind to level, equalisation and tape hiss. The GT envelope is resampled for each
candidate speed (PAL 25/24, NTSC 1000/1001, ...) and cross-correlated with the tape's by FFT; the
best normalised peak gives `t_lq = offset + t_gt / speed`. The result only narrows the video
search (see align.py), so a wrong answer costs little: it is used when its peak stands well clear,
and only where the tape's sound on both sides follows that line (`on_line`: a tape that lost a
stretch of its GT, or shows another programme in the middle, leaves it there).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import av
import numpy as np

HOP = 0.01  # seconds per envelope sample
SPEEDS = (1.0, 25 / 24, 24 / 25, 1000 / 1001, 1001 / 1000, 30 / 25, 25 / 30)
CONFIRM_SPAN = 3.0  # seconds of sound either side of a moment that must follow the line ...
CONFIRM = 0.3  # ... correlated with the GT's at least this much (see `on_line`)


@dataclass(frozen=True)
class AudioMatch:
    offset: float  # seconds: t_lq = offset + t_gt / speed
    speed: float
    peak: float  # normalised correlation at the peak
    clearance: float  # peak over the best peak elsewhere (> 1.5: trust it)


def mono(path: str | os.PathLike[str], rate: int) -> np.ndarray | None:
    """The first audio stream of `path` as mono float32 at `rate`; None where the file has no
    sound (or none that decodes). A stream that breaks off gives what came before."""
    try:
        c = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError):
        return None
    with c:
        if not c.streams.audio:
            return None
        res = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = []
        try:
            for frame in c.decode(c.streams.audio[0]):
                for f in res.resample(frame):
                    chunks.append(f.to_ndarray().reshape(-1))
        except (av.error.FFmpegError, ValueError):
            pass
    return np.concatenate(chunks).astype(np.float32) if chunks else None


def envelope(path: str | os.PathLike[str], rate: int = 8000) -> np.ndarray | None:
    """Onset envelope (one value per HOP seconds) of the first audio stream, or None."""
    x = mono(path, rate)
    if x is None:
        return None
    hop = int(rate * HOP)
    n = len(x) // hop
    if n < 50:
        return None
    energy = (x[: n * hop].reshape(n, hop) ** 2).mean(axis=1)
    loud = np.log(energy + 1e-8)
    return np.maximum(np.diff(loud, prepend=loud[0]), 0)


def match(lq: np.ndarray, gt: np.ndarray) -> AudioMatch | None:
    """Best (offset, speed) between two envelopes, over the candidate speeds."""
    best: AudioMatch | None = None
    for s in SPEEDS:
        g = _at_speed(gt, s)  # the GT played `s` times faster
        a, b = _z(lq), _z(g)
        n = 1 << int(np.ceil(np.log2(len(a) + len(b))))
        corr = np.fft.irfft(np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n)), n)
        corr /= np.sqrt(min(len(a), len(b))) ** 2
        k = int(np.argmax(corr))
        lag = k if k < n // 2 else k - n  # lq[i + lag] ~ g[i]
        peak = float(corr[k])
        mask = np.ones(n, bool)
        mask[max(0, k - 50) : k + 51] = False
        other = float(corr[mask].max()) if mask.any() else 0.0
        cand = AudioMatch(lag * HOP, s, peak, peak / max(other, 1e-6))
        if best is None or cand.peak > best.peak:
            best = cand
    return best


def on_line(
    lq: np.ndarray, gt: np.ndarray, m: AudioMatch, span: float = CONFIRM_SPAN
) -> np.ndarray:
    """For each envelope sample of the tape, whether the sound on both sides of it follows
    the line `m`: the tape's envelope over the `span` seconds before it and over the `span`
    after, each correlated with the GT's on the line (the best of a hop either way),
    at least `CONFIRM`. Where the tape leaves the line (a stretch lost or another programme
    put in: the sound of one run is not where the line puts the other's) the samples near
    the change and beyond it are not on it; so are a quiet passage's, whose onsets say
    nothing (then the video alone places them, as without sound)."""
    g = _at_speed(gt, m.speed)
    lag = int(round(m.offset / HOP))  # lq[i] ~ g[i - lag]
    w = max(2, int(round(span / HOP)))
    n = len(lq)
    step = max(1, w // 6)  # evaluated every sixth of a span, held in between
    at = range(0, n, step)
    before, after = np.zeros(len(at)), np.zeros(len(at))
    for k, c in enumerate(at):
        before[k] = _agree(lq, g, lag, max(0, c - w), c)
        after[k] = _agree(lq, g, lag, c, min(n, c + w))
    ok = (before >= CONFIRM) & (after >= CONFIRM)
    return np.repeat(ok, step)[:n]


def _agree(lq: np.ndarray, g: np.ndarray, lag: int, lo: int, hi: int) -> float:
    """Correlation of lq[lo:hi] with the GT's envelope on the line, best of lags +-1 hop
    (-1 where under half of the stretch has GT sound to compare)."""
    best = -1.0
    for d in (-1, 0, 1):
        gi = np.arange(lo, hi) - lag - d
        ok = (gi >= 0) & (gi < len(g))
        if ok.sum() < max(10, (hi - lo) // 2):
            continue
        x, y = lq[lo:hi][ok], g[gi[ok]]
        x, y = x - x.mean(), y - y.mean()
        den = float(np.sqrt((x * x).sum() * (y * y).sum()))
        if den > 0:
            best = max(best, float((x * y).sum()) / den)
    return best


def _at_speed(gt: np.ndarray, s: float) -> np.ndarray:
    """The GT's envelope played `s` times faster: sampled at t_gt = s * t."""
    t = np.arange(int(len(gt) / s)) * s
    return np.interp(t, np.arange(len(gt)), gt)


def _z(x: np.ndarray) -> np.ndarray:
    x = x - x.mean()
    return x / (np.sqrt((x * x).mean()) + 1e-9)


def audio_offset(lq: str | os.PathLike[str], gt: str | os.PathLike[str]) -> AudioMatch | None:
    """Offset and speed from the sound of two files; None when either has no usable audio."""
    found = audio_line(lq, gt)
    return None if found is None else found[0]


def audio_line(
    lq: str | os.PathLike[str], gt: str | os.PathLike[str]
) -> tuple[AudioMatch, np.ndarray] | None:
    """The offset and speed from the sound of two files, and where along the tape (per
    envelope sample, `HOP` s) its sound follows them (`on_line`); None when either has no
    usable audio."""
    a, b = envelope(lq), envelope(gt)
    if a is None or b is None:
        return None
    m = match(a, b)
    if m is None:
        return None
    return m, on_line(a, b, m)
