"""The old-film cut detector: `FilmCuts` (the algorithm, numpy and OpenCV only).

`filmdata.scenes.detector.FilmDetector` puts it on PySceneDetect's `SceneDetector` interface.

Old film breaks the usual detectors: it is monochrome (no hue or saturation to lean on), each
frame has its own exposure (global flicker) and uneven exposure across the frame (local
flicker), grain, dust and a scratch change pixels at random, the gate weaves, and single bright
frames (splices, light leaks) look like two cuts. The detector answers each of these:

1. Each frame is small and gray (decode at ~64 px wide), median-filtered and blurred: grain,
   dust and a thin scratch mostly vanish at that scale.
2. Local contrast normalisation, z = (x - G*x) / (sqrt(G*(x - G*x)^2) + eps) (Jarrett et al.
   2009, "What is the best multi-stage architecture"), removes any smooth gain field, so global
   and local flicker vanish; a coarse 16x12 thumbnail, normalised by its mean and norm, keeps
   the layout of large flat areas that the normalised detail ignores.
3. The distance between two frames is 1 - |NCC| of those features, averaged over both (|NCC|:
   an underexposed frame whose gain went negative is the same picture).
4. A hard cut at t means the content changes for good: *every* frame of t-4..t-1 is far from
   *every* frame of t..t+4. The score is the minimum over those pairs, so a flash of up to 4
   frames that returns to the same shot scores low (the frame before it matches the one after).
5. A cut is a local maximum above `threshold` and clearly above the local median of the score
   (an adaptive threshold), so a long fast pan does not fire cut after cut.
6. A frame that is a mix of the frames either side, the two shots at once (a telecined or
   interlaced frame woven of the last field of one shot and the first of the next: half the
   cuts of a 3:2 telecined film; a frame-rate conversion's blend), is near both shots, so no
   pair across the cut is far. Such a frame (its feature that of its neighbours' mean within
   `BLEND`, and each neighbour nearer to it than to the other) scores the pairs that skip it,
   and the cut goes after it: deinterlaced or field-matched, it is the old shot's picture
   (the first field's, the earlier).
7. Fades through black or white: the frames in the middle are blank (nothing but grain); a run
   of blank frames between two different shots is a cut at the middle of the run (a long run is
   a black or white scene of its own, cut at both ends, for curation to drop). Blank frames
   are left out of every other comparison, so a burnt-out flash is not a cut either.
   (Dissolves between moving shots are found only when their frame-to-frame change is abrupt
   enough; see the benchmark.)

Frames are processed as they stream in; only the last few features and a few floats per frame
are kept, so memory does not grow with the picture size or the length; the cuts are decided
at the end (the decisions need a window of scores on both sides).
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

from ..video import BAR_LUMA  # edge rows/columns darker than this for HOLD frames are bars

ANALYSIS_WIDTH = 64
DEFAULT_THRESHOLD = 0.55
_PRE, _POST = 4, 4  # hard-cut pairs: frames t-_PRE..t-1 against t..t+_POST
_LAGS = tuple(range(1, _PRE + _POST + 1))
_LONG_BLANK = 24  # frames: a blank run this long is a scene of its own, not a fade
# A frame is a mix of its neighbours where its feature's NCC with their mean is at least BLEND
# (frames woven across a cut: 0.96-0.99) and each neighbour is nearer to it than BRIDGE times
# their distance from each other.
BLEND, BRIDGE = 0.9, 0.8


def analysis_size(width: int, height: int, target: int = ANALYSIS_WIDTH) -> tuple[int, int]:
    """(w, h) to decode at for analysis: `target` wide (never upscaled), aspect kept, even."""
    w = min(target, width)
    h = max(8, round(w * height / max(width, 1)))
    return w, h + h % 2


BLANK_STD = 4.0  # gray levels: a thumbnail flatter than this is blank (black, white, grain only)
HOLD = 12  # frames: a row or column at the edge dark this many frames running is a bar


def frame_feature(gray: np.ndarray) -> np.ndarray | None:
    """The flicker-invariant feature of one small gray frame (H, W) uint8: a unit vector.

    Concatenates the local-contrast-normalised detail at two scales and the mean-free coarse
    thumbnail, each scaled to norm 1/sqrt(3), so that a dot product is the mean of their NCCs.
    Returns None for a blank frame (nothing but grain: black, white or a flash that burnt out).
    """
    if gray.dtype != np.uint8:
        gray = np.clip(gray, 0, 255).astype(np.uint8)
    x = cv2.medianBlur(gray, 3).astype(np.float32)  # dust specks and grain
    c = cv2.resize(x, (16, 12), interpolation=cv2.INTER_AREA)
    if float(c.std()) < BLANK_STD:
        return None
    c -= c.mean()
    parts = [c.ravel()]
    eps = 0.1 * float(x.std()) + 1.0  # scales with the frame: gain-invariant
    # Fine detail, and detail at half the size (it survives fast motion); blur sigmas 1 and 4.
    for img in (x, cv2.pyrDown(x)):
        xb = cv2.GaussianBlur(img, (0, 0), 1.0)
        r = xb - cv2.GaussianBlur(xb, (0, 0), 4.0)
        z = r / (np.sqrt(cv2.GaussianBlur(r * r, (0, 0), 4.0)) + eps)
        parts.append((z - z.mean()).ravel())
    w = np.float32(1.0 / 3.0**0.5)
    return np.concatenate([p * (w / (np.linalg.norm(p) + 1e-6)) for p in parts])


def _blank(gray: np.ndarray) -> bool:
    """Whether a whole frame is blank by `frame_feature`'s measure (its coarse thumbnail)."""
    x = cv2.medianBlur(
        gray if gray.dtype == np.uint8 else np.clip(gray, 0, 255).astype(np.uint8), 3
    )
    c = cv2.resize(x.astype(np.float32), (16, 12), interpolation=cv2.INTER_AREA)
    return float(c.std()) < BLANK_STD


def _trim(flat: np.ndarray) -> tuple[int, int]:
    # Leading and trailing run of True, each at most a third of the length.
    n, lim = len(flat), len(flat) // 3
    a = 0
    while a < lim and flat[a]:
        a += 1
    b = n
    while n - b < lim and flat[b - 1]:
        b -= 1
    return a, b


def _blend(a: np.ndarray | None, b: np.ndarray | None, c: np.ndarray | None) -> float:
    # |NCC| of b with the mean of a and c: 1 where b is their mix (NaN where one is blank).
    if a is None or b is None or c is None:
        return np.nan
    m = a + c
    return abs(float(b @ m)) / (float(np.linalg.norm(m)) + 1e-6)


def _distance(a: np.ndarray | None, b: np.ndarray | None) -> float:
    # Each part unit-normalised to 1/sqrt(3): a.b is the mean NCC. |.|: inverted exposure.
    # A blank frame says nothing about the content: NaN, left out of every minimum.
    if a is None or b is None:
        return np.nan
    return 1.0 - abs(float(a @ b))


class FilmCuts:
    """Cuts and fades in old film (flicker, grain, dust, scratches, weave, flashes).

    Push frames one by one, then ask for `cuts()`.

    Args:
        threshold: minimum cut score (1 - NCC of the frames across the cut), 0..2; lower finds
            more cuts. Default 0.55.
        min_scene_len: frames; cuts closer than this to the previous one are dropped.
    """

    def __init__(self, threshold: float | None = None, min_scene_len: int = 6):
        self.threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
        if not 0.0 < self.threshold < 2.0:
            raise ValueError(f"threshold: expected a value in (0, 2), got {self.threshold}")
        self.min_scene_len = int(min_scene_len)
        self._feats: deque[np.ndarray | None] = deque(maxlen=max(_LAGS) + 1)
        self._last: np.ndarray | None = None  # the last non-blank feature
        self._blank_from: int | None = None  # start of the current run of blank frames
        self._blank_runs: list[tuple[int, int, float]] = []  # (start, end, d(before, after))
        self._d: dict[int, list[float]] = {lag: [] for lag in _LAGS}  # d(t - lag, t) at [t]
        self._blend: list[float] = []  # at [t]: NCC of frame t with its neighbours' mean
        self._size: tuple[int, int] | None = None
        # frames running that each row and column has been dark (`_bars`), and frames counted
        self._runs: tuple[np.ndarray, np.ndarray] | None = None
        self._lit = 0
        self._box: tuple[int, int, int, int] | None = None
        self._grays: deque[np.ndarray] = deque(maxlen=max(_LAGS) + 1)  # as `_feats`, uncropped

    def push(self, frame: np.ndarray) -> None:
        """Add the next frame (BGR (H, W, 3) or gray (H, W) uint8, any size)."""
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if self._size is None:
            self._size = analysis_size(gray.shape[1], gray.shape[0])
        if (gray.shape[1], gray.shape[0]) != self._size:
            gray = cv2.resize(gray, self._size, interpolation=cv2.INTER_AREA)
        box = self._bars(gray)
        if box != self._box:
            self._box = box
            self._recrop()
        f = frame_feature(self._crop(gray))
        self._grays.append(gray)
        t = len(self._d[1])
        if f is None:
            if self._blank_from is None:
                self._blank_from = t
        else:
            if self._blank_from is not None:
                dist = np.inf if self._last is None else _distance(self._last, f)
                self._blank_runs.append((self._blank_from, t, dist))
            self._blank_from, self._last = None, f
        self._feats.append(f)
        n = len(self._feats)
        for lag, col in self._d.items():
            col.append(_distance(self._feats[n - 1 - lag], f) if n > lag else np.nan)
        self._blend.append(np.nan)  # frame t's, known when t + 1 comes
        if n >= 3:
            self._blend[t - 1] = _blend(self._feats[n - 3], self._feats[n - 2], f)

    def _bars(self, gray: np.ndarray) -> tuple[int, int, int, int]:
        # Letterbox/pillarbox bars add structure shared by every frame, so that different shots
        # look alike: the box (y0, y1, x0, x1) leaves out the rows and columns at the edges
        # dark in each of the last `HOLD` frames (in every frame, before there are as many).
        # Not "dark in every frame so far": a tape's head of snow, or an ident in full frame,
        # before a letterboxed programme hid its bars for good. A blank frame (a uniform gray
        # or blue screen before a tape plays) says nothing of the bars: counted, a bright one
        # hid them.
        h, w = gray.shape
        if not _blank(gray):
            rows, cols = gray.mean(1) < BAR_LUMA, gray.mean(0) < BAR_LUMA
            if self._runs is None:
                self._runs = (rows.astype(np.int64), cols.astype(np.int64))
            else:
                self._runs = ((self._runs[0] + 1) * rows, (self._runs[1] + 1) * cols)
            self._lit += 1
        if self._runs is None:
            return (0, h, 0, w)
        need = min(self._lit, HOLD)
        return (*_trim(self._runs[0] >= need), *_trim(self._runs[1] >= need))

    def _recrop(self) -> None:
        # The box changed: the frames still compared with the next ones are cropped to the new
        # box, and their distances and blends made again, so that the change itself is never
        # scored as a cut and a cut just before it is still scored on the picture alone.
        feats = [frame_feature(self._crop(g)) for g in self._grays]
        self._feats.clear()
        self._feats.extend(feats)
        t, m = len(self._d[1]), len(feats)
        for i in range(m):
            u = t - m + i
            for lag, col in self._d.items():
                if i >= lag:
                    col[u] = _distance(feats[i - lag], feats[i])
            if 0 < i < m - 1:
                self._blend[u] = _blend(feats[i - 1], feats[i], feats[i + 1])
        last = [f for f in feats if f is not None]
        if last:
            self._last = last[-1]

    def _crop(self, gray: np.ndarray) -> np.ndarray:
        assert self._box is not None
        y0, y1, x0, x1 = self._box
        if (y0, y1, x0, x1) == (0, gray.shape[0], 0, gray.shape[1]):
            return gray
        size = (gray.shape[1], gray.shape[0])
        return cv2.resize(gray[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)

    def cuts(self) -> list[int]:
        """Cut frames (the first frame of each new scene), counted from the first frame pushed."""
        d = {lag: np.asarray(col, np.float64) for lag, col in self._d.items()}
        n = len(d[1])
        if n < 2:
            return []
        s = hard_scores(d, n)
        # (the neighbourhood a cut must stand out of is the hard scores')
        scores = np.fmax(s, mixed_scores(d, np.asarray(self._blend), n))
        hard = _hard_cuts(scores, self.threshold, self.min_scene_len, _local_median(s, 25))
        found = list(hard)
        # Runs of blank frames: a short one between different shots is a fade through black
        # or white (cut at its middle); a long one is a scene of its own (cuts at both ends).
        runs = list(self._blank_runs)
        if self._blank_from is not None:
            runs.append((self._blank_from, n, np.inf))
        for start, end, dist in runs:
            if end - start >= max(2 * self.min_scene_len, _LONG_BLANK):
                found += [c for c in (start, end) if all(abs(c - h) > 2 for h in found)]
            elif dist >= self.threshold and start > 0:
                # A fade: the dim frames on either side of the blank run also score as a hard
                # cut; the transition's cut is the middle of the run.
                found = [h for h in found if not start - _PRE <= h <= end + _PRE]
                found.append((start + end) // 2)
        found.sort()
        kept: list[int] = []
        for c in found:
            # A "cut" in the last few frames has nothing after it to confirm it.
            if 0 < c < n - _POST // 2 and (not kept or c - kept[-1] >= self.min_scene_len):
                kept.append(c)
        return kept


def hard_scores(d: dict[int, np.ndarray], n: int) -> np.ndarray:
    """Score per frame t: min over j in 1.._PRE, k in 0.._POST of d(t - j, t + k) (NaN-aware)."""
    s = _across(d, n, 0)
    s[0] = 0.0
    return s


def _across(d: dict[int, np.ndarray], n: int, first: int) -> np.ndarray:
    # At t: min over j in 1.._PRE, k in first.._POST of d(t - j, t + k); 0 where none is known.
    s = np.full(n, np.inf)
    for j in range(1, _PRE + 1):
        for k in range(first, _POST + 1):
            col = d[j + k]  # col[u] = d(u - j - k, u); here u = t + k
            v = np.full(n, np.nan)
            if k < n:  # (a video shorter than the look-ahead: nothing known that far)
                v[: n - k] = col[k:]
            s = np.fmin(s, v)
    s[~np.isfinite(s)] = 0.0
    return s


def mixed_scores(d: dict[int, np.ndarray], blend: np.ndarray, n: int) -> np.ndarray:
    """Score per frame t + 1 where frame t mixes the frames either side (`BLEND`, `BRIDGE`):
    min over j in 1.._PRE, k in 1.._POST of d(t - j, t + k), the pairs across t that skip it;
    0 elsewhere."""
    s = _across(d, n, 1)
    before = d[1]  # d(t - 1, t)
    after = np.full(n, np.nan)
    after[:-1] = d[1][1:]  # d(t, t + 1)
    with np.errstate(invalid="ignore"):
        mixed = (blend >= BLEND) & (np.fmax(before, after) <= BRIDGE * s)
    out = np.zeros(n)
    out[1:] = np.where(mixed, s, 0.0)[:-1]  # the cut after the mixed frame
    return out


def _local_median(x: np.ndarray, radius: int) -> np.ndarray:
    # Median of x[t - radius : t + radius + 1]; near the ends the window is mirrored.
    if len(x) == 0:
        return x.copy()
    padded = np.pad(x, radius, mode="symmetric")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1), axis=1)


def _hard_cuts(
    s: np.ndarray, threshold: float, min_len: int, base: np.ndarray | None = None
) -> list[int]:
    # Adaptive: a cut must stand out of its neighbourhood (`base`, by default the median of
    # +-25 frames of `s`) by a margin, so that fast motion (every frame far from the last)
    # does not fire.
    if base is None:
        base = _local_median(s, 25)
    ok = (s >= threshold) & (s >= base + 0.65 * threshold)
    cuts = []
    r = max(1, min_len // 2)
    for t in np.flatnonzero(ok):
        lo, hi = max(0, t - r), min(len(s), t + r + 1)
        if s[t] >= s[lo:hi].max():
            cuts.append(int(t))
    return cuts
