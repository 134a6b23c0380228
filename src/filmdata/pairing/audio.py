"""Coarse offset and speed from the sound, when both sides have it.

Each track becomes an onset envelope (mono, 8 kHz, the positive change of the log energy in 10 ms
hops), which is blind to level, equalisation and tape hiss. The GT envelope is resampled for each
candidate speed (PAL 25/24, NTSC 1000/1001, ...) and cross-correlated with the tape's by FFT; the
best normalised peak gives `t_lq = offset + t_gt / speed`. The result only narrows the video
search (see align.py), so a wrong answer costs little: it is used when its peak stands well clear.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import av
import numpy as np

HOP = 0.01  # seconds per envelope sample
SPEEDS = (1.0, 25 / 24, 24 / 25, 1000 / 1001, 1001 / 1000, 30 / 25, 25 / 30)


@dataclass(frozen=True)
class AudioMatch:
    offset: float  # seconds: t_lq = offset + t_gt / speed
    speed: float
    peak: float  # normalised correlation at the peak
    clearance: float  # peak over the best peak elsewhere (> 1.5: trust it)


def envelope(path: str | os.PathLike[str], rate: int = 8000) -> np.ndarray | None:
    """Onset envelope (one value per HOP seconds) of the first audio stream, or None."""
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
    if not chunks:
        return None
    x = np.concatenate(chunks).astype(np.float32)
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
        # the GT played `s` times faster: sample it at t_gt = s * t
        t = np.arange(int(len(gt) / s)) * s
        g = np.interp(t, np.arange(len(gt)), gt)
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


def _z(x: np.ndarray) -> np.ndarray:
    x = x - x.mean()
    return x / (np.sqrt((x * x).mean()) + 1e-9)


def audio_offset(lq: str | os.PathLike[str], gt: str | os.PathLike[str]) -> AudioMatch | None:
    """Offset and speed from the sound of two files; None when either has no usable audio."""
    a, b = envelope(lq), envelope(gt)
    if a is None or b is None:
        return None
    return match(a, b)
