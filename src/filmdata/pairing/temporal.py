"""Temporal alignment: which GT frame each tape frame shows, or none.

The path is a Viterbi (monotonic DP) over a similarity matrix S (tape frames x GT frames):

    D[i, j] = S[i, j] + max( D[i-1, j-d] - step[d]       d = 0 (duplicate), 1, 2 (drop), 3
                             max_{k < j-3} D[i-1, k] - jump      (an edit: content skipped)
                             max_{k <= j} N[i-1, k] - exit )     (back from a gap)
    N[i, k] = null + max( N[i-1, k], D[i-1, k-1] - enter )       (no GT: noise, ident)

N[i, k] is "tape frame i has no GT and the last matched GT frame is k-1" (k = 0: none yet), so
gaps keep the path monotonic. Per-step costs do not depend on where a duplicate falls, so a
steady rate change (25 tape frames per 24 GT frames, 3:2 pulldown) costs the same wherever the
data puts its repeats; the data decides. A coarse pass runs over the whole matrix; a fine pass
re-scores a band around the coarse path with better descriptors. Where the data cannot tell (a
still, a slow pan), `cadence` fits where a steady rate puts the repeats, and the step costs
follow it.

Where the GT runs at about `base` times the tape's frame rate (a 50 or 60 fps remaster of a 25
or 30 fps tape: base 2; `PathCosts.base`) the steps are counted from it (`step_table`): d = base
is free, base +- 1 the drift of a rate that is not a whole number, 0 a repeated tape frame,
about 2 base a dropped one, up to 2 base + 1; jumps beyond.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .._blas import blas_threads

NEG = np.float32(-1e9)
PHASE_SWITCH = 4.0  # agreeing steps a change of a cadence's phase costs (`cadence`, `lattice`)
RAMP_MIN = 3  # skipping steps in a row that `unramp` takes for a stretch lost, not drops
RAMP_BREAK = 2  # ... counted in a row across this many steps of one between them
RATE_SPAN = 50  # tape frames between the points whose slopes start `fit_rate` (2 s at 25 fps)
RATE_SLACK = 1.5  # GT frames over the tape a cadence's rate may part from the fitted one freely


@dataclass(frozen=True)
class PathCosts:
    null: float = 0.45  # score of a tape frame with no GT (a match scores its ZNCC)
    enter: float = 1.0  # leaving the GT for a gap
    exit: float = 0.5  # coming back from a gap
    dup: float = 0.05  # step 0: a repeated GT frame
    drop: float = 0.08  # step 2: one GT frame skipped
    drop2: float = 0.3  # step 3
    # larger skips forward: less than leaving the GT and coming back (enter + exit), so that a
    # tape that matches its GT on both sides of a stretch it lacks takes the skip, not a gap
    # (at 2.0 the run between two cuts of a shorter edit went null whole where inter-coded
    # frames, weighing a tenth, could not pay for a second jump)
    jump: float = 1.4
    # matches within `tolerance` of a tape frame's best count as equally good: differences that
    # small are noise, or the lag of a heavy encoder that copies blocks from earlier frames,
    # and must not pull the path off its steady rate in slow or still stretches
    tolerance: float = 0.0
    # GT frames a tape frame advances by at the tape's steady rate, to the nearest whole frame
    # (`base_step`): 1 unless the GT has about twice (or more) the tape's frame rate
    base: int = 1
    # a step one GT frame short of the expected one but not a repeat (0 < d = e - 1): None, as
    # `dup` (at base 1 it is the same step); at base >= 2 the drift of a rate below base
    short: float | None = None
    # at base >= 2, a step over a dropped tape frame (2 .. base + 1 GT frames past the
    # expected one): None, as `drop` (at base 1 a step one past it is both)
    skip: float | None = None


def viterbi(
    s: np.ndarray, c: PathCosts = PathCosts(), expected: np.ndarray | None = None
) -> list[int | None]:
    """The best monotonic path through `s` (n_lq, n_gt): GT frame per tape frame or None.
    See `best_path`, which also gives the path's score."""
    return best_path(s, c, expected)[0]


def best_path(
    s: np.ndarray,
    c: PathCosts = PathCosts(),
    expected: np.ndarray | None = None,
    on_gt: np.ndarray | None = None,
) -> tuple[list[int | None], float]:
    """The best monotonic path through `s` (n_lq, n_gt) and its score: GT frame per tape
    frame or None.

    `expected` (n_lq,): the GT frames the tape's cadence advances by at each frame (see
    `cadence`); a step costs by how far it departs from that (one less: `dup`, one more:
    `drop`), so repeats fall where the cadence puts them unless the data says otherwise.
    `on_gt` (4, n_gt), instead (base 1): the score of a step of d = 0..3 landing on each GT
    frame (`lattice_steps`), the cadence fixed on the GT's frames.
    """
    n, m = s.shape
    s, by_e = _clamped(s, c), step_table(c)
    steps = by_e[c.base]
    top = len(by_e) - 1
    d_prev = s[0].copy()
    n_prev = np.full(m + 1, NEG, np.float32)
    n_prev[0] = c.null
    # back-pointers: for D, the previous GT frame (>= 0) or -(k + 1) for a gap state k;
    # for N, whether it came from D (True) or stayed in the gap (False)
    bd = np.zeros((n, m), np.int32)
    bn = np.zeros((n, m + 1), bool)
    bd[0] = -1  # a start (N state 0 / no predecessor)
    idx = np.arange(m, dtype=np.int32)
    # the loop's buffers, reused row after row (a fresh array per step cost more than the sums)
    best = np.empty(m, np.float32)
    arg = np.empty(m, np.int32)
    cand = np.empty(m, np.float32)
    better = np.empty(m, bool)
    from_d = np.empty(m + 1, np.float32)
    from_d[0] = NEG
    d_new = np.empty(m, np.float32)
    prefix_max = _PrefixMax(m)
    for i in range(1, n):
        if expected is not None:
            steps = by_e[int(np.clip(expected[i], 0, top))]
        # step d from GT frame j - d (d_prev is finite everywhere: step 0 always applies);
        # a later candidate wins only when strictly better, as the first one found stays
        np.add(d_prev, steps[0] if on_gt is None else on_gt[0], out=best)
        arg[:] = idx
        for d in range(1, min(len(steps), m)):  # (no step reaches past the GT)
            _take_better(
                best[d:],
                arg[d:],
                np.add(d_prev[: m - d], steps[d] if on_gt is None else on_gt[d, d:], out=cand[d:]),
                idx[: m - d],
                better[d:],
            )
        far = len(steps)  # jumps: max over k <= j - far of d_prev[k]
        if m > far:
            cm, ca = prefix_max(d_prev)
            _take_better(
                best[far:],
                arg[far:],
                np.subtract(cm[: m - far], c.jump, out=cand[far:]),
                ca[: m - far],
                better[far:],
            )
        # back from a gap whose last match is before j: N states 0..j
        nm, na = prefix_max(n_prev[:m])
        _take_better(best, arg, np.subtract(nm, c.exit, out=cand), -(na + 1), better)
        np.add(best, s[i], out=d_new)
        bd[i] = arg
        np.subtract(d_prev, c.enter, out=from_d[1:])
        np.greater(from_d, n_prev, out=bn[i])
        np.maximum(n_prev, from_d, out=n_prev)
        n_prev += np.float32(c.null)
        d_prev, d_new = d_new, d_prev
    # trace back from the best end state
    d_best, n_best = float(d_prev.max()), float(n_prev.max())
    total = max(d_best, n_best)
    if d_best >= n_best:
        kind, k = "d", int(d_prev.argmax())
    else:
        kind, k = "n", int(n_prev.argmax())
    path: list[int | None] = [None] * n
    for i in range(n - 1, -1, -1):
        if kind == "d":
            path[i] = k
            p = int(bd[i, k])
            if p >= 0:
                k = p
            else:
                kind, k = "n", -p - 1
        else:
            if bn[i, k]:
                kind, k = "d", k - 1
    return path, total


def path_scores(ss: np.ndarray, c: PathCosts = PathCosts()) -> list[float]:
    """`best_path(s, c)[1]` (no cadence) of each of the (k, n, m) matrices `ss`, to the bit,
    without the paths: the same recurrence with a max per candidate and no back-pointers (a
    third of the time), run over their rows at once as (k, m) arrays, so the k matrices cost
    about what one does while the rows are short (`_joint_shift` scores a ring of 9
    geometries at a time: 9 tape rows of 750 GT frames in 1.6x the time of one)."""
    k, n, m = ss.shape
    if k == 0:
        return []
    s = np.empty(ss.shape, np.float32)
    for q in range(k):  # the tolerance clamp, matrix by matrix, as `best_path` makes it
        s[q] = _clamped(ss[q], c)
    steps = step_table(c)[c.base]
    far = len(steps)
    d_prev = s[:, 0].copy()
    n_prev = np.full((k, m + 1), NEG, np.float32)
    n_prev[:, 0] = c.null
    best = np.empty((k, m), np.float32)
    cand = np.empty((k, m), np.float32)
    cm = np.empty((k, m), np.float32)
    from_d = np.empty((k, m + 1), np.float32)
    from_d[:, 0] = NEG
    d_new = np.empty((k, m), np.float32)
    for i in range(1, n):
        np.add(d_prev, steps[0], out=best)
        for d in range(1, min(len(steps), m)):  # (no step reaches past the GT)
            np.add(d_prev[:, : m - d], steps[d], out=cand[:, d:])
            np.maximum(best[:, d:], cand[:, d:], out=best[:, d:])
        if m > far:  # jumps
            np.maximum.accumulate(d_prev, axis=1, out=cm)
            np.subtract(cm[:, : m - far], c.jump, out=cand[:, far:])
            np.maximum(best[:, far:], cand[:, far:], out=best[:, far:])
        np.maximum.accumulate(n_prev[:, :m], axis=1, out=cm)  # back from a gap
        np.subtract(cm, c.exit, out=cand)
        np.maximum(best, cand, out=best)
        np.add(best, s[:, i], out=d_new)
        np.subtract(d_prev, c.enter, out=from_d[:, 1:])
        np.maximum(n_prev, from_d, out=n_prev)
        n_prev += np.float32(c.null)
        d_prev, d_new = d_new, d_prev
    return [max(float(d_prev[q].max()), float(n_prev[q].max())) for q in range(k)]


def _clamped(s: np.ndarray, c: PathCosts) -> np.ndarray:
    """The scores a path is chosen by: float32, each row's best `tolerance` flattened."""
    s = s.astype(np.float32, copy=False)
    if c.tolerance > 0:
        s = np.minimum(s, s.max(axis=1, keepdims=True) - np.float32(c.tolerance))
    return s


def step_table(c: PathCosts) -> np.ndarray:
    """(base + 2, 2 base + 2) float32: the score (less than or equal to 0) of a step of d GT
    frames (column d = 0 .. 2 base + 1) where the cadence expects e (row e = 0 .. base + 1;
    without a cadence, row `base`). A repeated tape frame (d = 0) costs `dup`, and `drop2`
    more where the cadence expects more than `base`; a step one short of e `short`, each
    further one `drop2` more; one past e `drop`. At base 1 two past e cost `drop2`, and each
    further one `drop` more:

        e = 0:  0          drop   drop2  drop2 + drop
        e = 1:  dup        0      drop   drop2
        e = 2:  dup+drop2  dup    0      drop

    At base b >= 2 a tape frame dropped is a step of about 2 b: 2 .. b + 1 past e cost
    `skip`, each further one `drop2` more.
    """
    b, short = c.base, (c.dup if c.short is None else c.short)
    skip = c.drop if c.skip is None else c.skip
    table = np.empty((b + 2, 2 * b + 2), np.float32)
    for e in range(b + 2):
        for d in range(2 * b + 2):
            k = d - e
            if k == 0:
                cost = 0.0
            elif k == 1:
                cost = c.drop
            elif k > 1 and b == 1:
                cost = c.drop2 + c.drop * (k - 2)
            elif k > 1:
                cost = skip + c.drop2 * max(0, k - b - 1)
            elif d == 0:
                cost = c.dup + (c.drop2 if e > b else 0.0)
            else:
                cost = short + c.drop2 * (-k - 1)
            table[e, d] = -cost
    return table


#: The largest base step: a tape of a few frames a second against a 60 fps GT steps further
#: (jumps), rather than make the path's step table grow with the ratio.
MAX_BASE = 8


def base_step(rate: float) -> int:
    """The whole number of GT frames a tape frame advances by at `rate` GT frames a tape
    frame: its nearest, at least 1 (a tape faster than its GT steps by 1 and repeats), at
    most MAX_BASE."""
    if not math.isfinite(rate):
        return 1
    return max(1, min(MAX_BASE, int(math.floor(rate + 0.5))))


def _take_better(
    best: np.ndarray, arg: np.ndarray, cand: np.ndarray, cand_arg: np.ndarray, better: np.ndarray
) -> None:
    """best, arg = cand, cand_arg where cand > best (in place)."""
    np.greater(cand, best, out=better)
    np.copyto(best, cand, where=better)
    np.copyto(arg, cand_arg, where=better)


class _PrefixMax:
    """Running max of a row and the index where it was reached, into buffers reused from
    row to row (`best_path` takes two a row; fresh arrays cost more than the sums)."""

    def __init__(self, m: int):
        self.idx = np.arange(m, dtype=np.int32)
        self.cm = np.empty(m, np.float32)
        self.at = np.empty(m, np.int32)
        self.reached = np.empty(m, bool)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cm = np.maximum.accumulate(x, out=self.cm)
        np.equal(x, cm, out=self.reached)
        at = np.multiply(self.idx, self.reached, out=self.at)  # the index where reached, or 0
        return cm, np.maximum.accumulate(at, out=at)


def band_similarity(
    lq: np.ndarray,
    gt: np.ndarray,
    centre: np.ndarray,
    radius: int,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """S[i, j] = lq[i] . gt[j] for |j - centre[i]| <= radius, -1 elsewhere (n_lq, n_gt).

    `lq` (n_lq, ...) and `gt` (n_gt, ...) are unit-norm rows (or any arrays of rows of the
    same shape, such as views of descriptor images: each block is flattened as it is used);
    `centre` (n_lq,) GT positions. `rows` (n_lq,) bool: the rows wanted (None: all; the
    others stay -1).
    """
    return band_similarities([lq], gt, centre, radius, rows)[0]


def band_similarities(
    lqs: Sequence[np.ndarray],
    gt: np.ndarray,
    centre: np.ndarray,
    radius: int,
    rows: np.ndarray | None = None,
) -> list[np.ndarray]:
    """`band_similarity` of each of `lqs` against the same `gt`, each block of GT rows made
    contiguous once for all of them (a view such as a crop of descriptor images is copied a
    block at a time, never whole: 300 MB for a 30 s tape's sharp descriptors, 0.65 s)."""
    n, m = len(lqs[0]), len(gt)
    out = [np.full((n, m), -1.0, np.float32) for _ in lqs]
    c = np.round(centre).astype(int)
    # blocks of rows, one matrix product each (BLAS); a block scores the columns of all its
    # rows' bands, so a small one wastes less outside them (2 x radius rows: about half)
    step = min(64, max(16, 2 * radius))

    def blocks(starts: range) -> None:
        for a in starts:
            b = min(n, a + step)
            ix: slice | np.ndarray = slice(a, b)
            if rows is not None:  # the wanted rows of the block only (a copy of each)
                ix = a + np.flatnonzero(rows[a:b])
                if ix.size == 0:
                    continue
            lo = max(0, int(c[ix].min()) - radius)
            hi = min(m, int(c[ix].max()) + radius + 1)
            if lo >= hi:
                continue
            g = gt[lo:hi].reshape(hi - lo, -1).T
            cols = np.arange(lo, hi)[None, :]
            inside = np.abs(cols - c[ix, None]) <= radius
            for lq, s in zip(lqs, out, strict=True):
                block = lq[ix].reshape(len(inside), -1) @ g  # (rows, hi - lo)
                s[ix, lo:hi] = np.where(inside, block, np.float32(-1.0))

    work = len(lqs) * n * (2 * radius + step) * math.prod(gt.shape[1:])
    if work < THREADED_PRODUCTS or not _blas_single_threaded():
        blocks(range(0, n, step))
        return out
    # Every other block on a second thread (the products release the GIL; each block writes
    # rows of its own): the same products, so the same bits.
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(blocks, (range(0, n, 2 * step), range(step, n, 2 * step))))
    return out


#: `band_similarities` runs its blocks on two threads from this many multiply-adds, where BLAS
#: runs on one thread (as `filmdata align` sets it, so that its threads do not spin beside the
#: decoders): the sharp pass of a detailed 720p picture, 5 x 739 rows of 144k values, 0.76 ->
#: 0.4 s. Where BLAS has threads of its own they already share the products (a second thread
#: each would only oversubscribe the cores: 18% slower on two).
THREADED_PRODUCTS = 2_000_000_000


def _blas_single_threaded() -> bool:
    """Whether OpenBLAS (numpy's) runs on one thread: its count where the library is found
    (`align` sets it), else the first of its variables that is set, in the order OpenBLAS
    reads them."""
    n = blas_threads()
    if n is not None:
        return n == 1
    for name in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value:
            return value == "1"
    return False


def fill_centre(path: list[int | None], n_gt: int) -> np.ndarray:
    """A GT position for every tape frame: the path where matched, interpolated between, and
    carried on at the path's rate before its first match and after its last (a stretch the
    path left unmatched may hold GT that a coarse pass missed: held at the first match, the
    band around it would leave that GT behind)."""
    i = np.array([k for k, j in enumerate(path) if j is not None])
    if i.size == 0:
        return np.zeros(len(path))
    j = np.array([path[k] for k in i], float)
    at = np.arange(len(path))
    out = np.interp(at, i, j)
    r = float(np.clip(fit_rate(path)[1], 0.2, 5.0)) if i.size >= 2 else 1.0
    out[: i[0]] = j[0] - r * (i[0] - at[: i[0]])
    out[i[-1] + 1 :] = j[-1] + r * (at[i[-1] + 1 :] - i[-1])
    return np.clip(out, 0, n_gt - 1)


def fit_rate(path: list[int | None]) -> tuple[float, float]:
    """Robust line j = a + r i through the matched frames: (a, r) in frames.

    A least-squares line through the points within max(3, 3 x their median) frames of it, a
    few times over, from a start that a jump of the path does not move: the median of the
    slopes between frames `RATE_SPAN` apart, through the longest run (`_start_line`; a tape
    that lost stretches of the GT, or shows something else in between, has runs at one rate
    whose offsets a line through all of them takes for its slope). The line then goes through
    the longest run. Where every point lies within 3 frames of the start, the first fit takes
    them all, as a plain fit does."""
    pts = np.array([(i, j) for i, j in enumerate(path) if j is not None], float)
    if len(pts) < 2:
        return (float(pts[0, 1] - pts[0, 0]) if len(pts) else 0.0), 1.0
    r, a = _start_line(pts)
    keep = np.abs(pts[:, 1] - (a + r * pts[:, 0])) <= 3.0
    if keep.sum() < 2:
        keep[:] = True
    for _ in range(3):
        r, a = np.polyfit(pts[keep, 0], pts[keep, 1], 1)
        res = np.abs(pts[:, 1] - (a + r * pts[:, 0]))
        new = res <= max(3.0, 3 * float(np.median(res[keep])))
        if new.sum() < 2 or (new == keep).all():
            break
        keep = new
    return float(a), float(r)


def _start_line(pts: np.ndarray) -> tuple[float, float]:
    """(r, a): the median slope between points (i, j) about `RATE_SPAN` tape frames apart (an
    eighth of the path where that is shorter, at least one frame: few pairs straddle a jump),
    good to about 1 / span, and the intercept of the longest run at that slope (the densest
    six frames of intercepts: a tape cut twice has three runs, none of them half its frames)."""
    i, j = pts[:, 0], pts[:, 1]
    span = max(1.0, min(RATE_SPAN, (i[-1] - i[0]) / 8))
    q = np.searchsorted(i, i + span)
    p = np.flatnonzero(q < len(i))
    if not len(p):
        r = float((j[-1] - j[0]) / max(1.0, i[-1] - i[0]))
    else:
        r = float(np.median((j[q[p]] - j[p]) / (i[q[p]] - i[p])))
    d = np.sort(j - r * i)
    ends = np.searchsorted(d, d + 6.0, side="right")
    k = int(np.argmax(ends - np.arange(len(d))))
    return r, float(np.median(d[k : ends[k]]))


def cadence(
    path: list[int | None], r: float, phases: int = 50, switch: float = PHASE_SWITCH
) -> tuple[np.ndarray, float]:
    """The tape's cadence: GT frames advanced at each tape frame i, e[i] = floor(a + r i) -
    floor(a + r (i - 1)), for a rate near `r` (GT frames per tape frame) and phases `a` that
    agree best with the steps of `path` (steps only: an offset does not matter).

    A tape of 24 fps film at 25 fps (true speed) repeats a frame every 25; 3:2 pulldown to
    29.97 fps advances 4 GT frames every 5 tape frames. A dropped or repeated tape frame shifts
    the phase (by r), so the phase is piecewise constant along the tape: a small Viterbi over
    `phases` phases, each change costing `switch` agreeing steps (a stray wrong step of the
    path does not move it).

    Returns:
        (e (n,) int32, the fraction of the path's steps that agree with it).
    """
    n = len(path)
    steps = np.full(n, -1)
    for k in range(1, n):
        p, q = path[k - 1], path[k]
        if p is not None and q is not None:
            steps[k] = q - p
    known = np.nonzero(steps >= 0)[0]
    if known.size == 0:
        return np.ones(n, np.int32), 0.0
    t = np.arange(n, dtype=np.float64)[None, :]  # (1, n)
    ph = (np.arange(phases) / phases)[:, None]  # (P, 1)

    def advance(rate: float) -> np.ndarray:  # (P, n)
        return np.floor(ph + rate * t) - np.floor(ph + rate * (t - 1))

    # 1. the rate: the fitted one is good to a few frames over the tape; search around it.
    # A rate with half a PAL tape's skips agrees with nearly as many steps (every step it
    # fits is a one), and more where a drop moved the phase: so a rate more than
    # RATE_SLACK GT frames over the tape from the fitted one gives up a step of agreement
    # for each frame further (bikes, a drop and a repeat: the half rate made the path
    # leave out a repeat and a skip, a frame ahead for 30 frames, 0.843 of frames right)
    span = max(1.0, n - 1.0)
    rates = r + np.arange(-4.0, 4.01, 0.1) / span
    score = np.array(
        [float((advance(x)[:, known] == steps[known]).sum(axis=1).max()) for x in rates]
    )
    score -= np.maximum(0.0, np.abs(rates - r) * span - RATE_SLACK)
    e_all = advance(float(rates[int(np.argmax(score))]))
    # 2. the phase along the tape
    fit = np.zeros((phases, n), np.float32)
    fit[:, known] = e_all[:, known] == steps[known]
    at = _state_track(lambda k: fit[:, k], n, phases, switch)
    e = e_all[at, np.arange(n)].astype(np.int32)
    return e, float((e[known] == steps[known]).mean())


def _state_track(
    gain: Callable[[int], np.ndarray], n: int, states: int, switch: float
) -> np.ndarray:
    """The best sequence of states (n,) under per-frame gains `gain(k)` (states,), a change
    of state costing `switch` (from the best state only: the cheapest change there is)."""
    cost = np.float32(switch)
    v = gain(0).copy()
    moved = np.zeros((n, states), bool)
    came = np.zeros(n, np.int32)
    for k in range(1, n):
        best = int(v.argmax())
        moved[k] = v[best] - cost > v
        came[k] = best
        v = np.where(moved[k], v[best] - cost, v) + gain(k)
    at = np.zeros(n, np.int64)
    at[-1] = int(v.argmax())
    for k in range(n - 1, 0, -1):
        at[k - 1] = came[k] if moved[k, at[k]] else at[k]
    return at


def unramp(
    path: list[int | None], s: np.ndarray, c: PathCosts, shortest: int = RAMP_MIN
) -> list[int | None]:
    """`path` with each ramp (`shortest` or more skipping steps in a row, or with at most
    `RAMP_BREAK` steps of one between them, at one GT frame a tape frame) replaced by one
    jump, where the scores `s` (the ones the path was chosen by) favour a placement of the
    jump over the ramp.

    The path's costs are per step: a skip of one GT frame costs `c.drop`, a larger one
    `c.jump`, as much as 28 drops. So a tape that lost a short stretch of its GT (a burst of
    frames a capture dropped, a few seconds spliced out) is crossed by a ramp of single
    drops, each tape frame on its way shown a GT frame ahead of the one it shows, wherever
    the scores differ by less than the jump's price (inter-coded frames weigh a tenth). A
    tape does not skip every other frame for several frames at this rate; it loses a stretch
    once. So a ramp is priced as one jump, and the placement of that jump whose frames
    score best (continuing one GT frame a tape frame, jumping, then one a frame into where
    the ramp ends) replaces it where it scores more than the ramp."""
    if c.base != 1:
        return path
    n = len(path)
    j = np.array([-1 if v is None else v for v in path], np.int64)  # -1: no GT
    step = np.full(n, -1, np.int64)  # GT frames advanced at each row (-1: a row without GT)
    both = (j[1:] >= 0) & (j[:-1] >= 0)
    step[1:][both] = (j[1:] - j[:-1])[both]
    i = 1
    while i < n:
        # a ramp: skipping steps with at most RAMP_BREAK steps of one between them, rows
        # i0 (before the first) to i1 (after the last)
        if step[i] < 2:
            i += 1
            continue
        i0, i1, skips, k = i - 1, i, 1, i + 1
        while k < n and step[k] >= 1 and k - i1 <= RAMP_BREAK + 1:
            if step[k] >= 2:
                i1, skips = k, skips + 1
            k += 1
        i = i1 + 1
        if skips < shortest:
            continue
        rows = np.arange(i0 + 1, i1)
        best, at = float(s[rows, j[rows]].sum()), None
        for p in range(i0, i1):  # rows i0 .. p continue from j[i0], p + 1 .. i1 lead into j[i1]
            cols = np.where(rows <= p, j[i0] + (rows - i0), j[i1] - (i1 - rows))
            if cols.min() < 0 or cols.max() >= s.shape[1]:
                continue
            score = float(s[rows, cols].sum())
            if score > best:
                best, at = score, p
        if at is not None:
            j[rows] = np.where(rows <= at, j[i0] + (rows - i0), j[i1] - (i1 - rows))
    return [None if v < 0 else int(v) for v in j]


def path_stats(path: list[int | None], base: int = 1) -> dict[str, int]:
    """Counts of repeats, drops, jumps and gaps along a path whose steady step is `base` GT
    frames (`PathCosts.base`): a step of 0 is a repeat, one of base + 1 or base + 2 drops
    one or two GT frames, a longer one is a jump."""
    out = {"repeats": 0, "drops": 0, "jumps": 0, "null": 0}
    prev = None
    for j in path:
        if j is None:
            out["null"] += 1
            continue
        if prev is not None:
            d = j - prev
            if d == 0:
                out["repeats"] += 1
            elif base < d <= base + 2:
                out["drops"] += d - base
            elif d > base + 2:
                out["jumps"] += 1
        prev = j
    return out


def cadence_by_scores(
    s: np.ndarray,
    path: list[int | None],
    r: float,
    null: float,
    per_frame: int = 20,
    switch: float = 0.01,
    reach: float = 64.0,
) -> np.ndarray | None:
    """The tape's cadence (as `cadence` gives it) with its phase chosen by the scores `s`
    (n_lq, n_gt) of the GT frames it puts each tape frame on, not by the steps of `path`.

    `cadence` follows the steps of a path found with cheap repeats or drops, and where a heavy
    encoder biases whole kinds of frames (P-frames trail a pan, B-frames of a slow shot lean a
    frame ahead) those steps fall a frame or three off, every cycle. Here the states are the
    offsets `a` of j = floor(a + r i) (`per_frame` to a GT frame, around `path`'s), each tape
    frame adds its score for that j (no less than `null`: a frame with no GT has no say), and a
    change of offset costs `switch` (tape drops, repeats and cuts move it).
    `align` runs its last pass under both cadences and keeps the higher-scoring path: on 30 fps
    GT at PAL speed (1.25 GT frames a tape frame, crf 38) 0.876 / 0.877 -> 0.935 / 0.971, 16
    cadence tapes 0.927 -> 0.948 (one near-still crawl 0.958 -> 0.854). Alone, it lost a drop
    inside a run of P-frames that the steps place (25 fps GT at PAL speed 0.997 -> 0.778).

    Returns:
        e (n,) int32, the GT frames the cadence advances by at each tape frame; None where the
        path strays over more than `reach` GT frames (a splice: the states would be many).
    """
    n, m = s.shape
    pts = np.array([(i, j) for i, j in enumerate(path) if j is not None], float)
    if len(pts) < 2:
        return None
    res = pts[:, 1] - r * pts[:, 0]
    lo, hi = float(res.min()) - 2.0, float(res.max()) + 2.0
    if hi - lo > reach:
        return None
    a = lo + np.arange(int((hi - lo) * per_frame) + 1) / per_frame  # (A,)
    floor_null = np.float32(null)

    def gain(k: int) -> np.ndarray:  # (A,) tape frame k's score on each offset's GT frame
        j = np.floor(a + r * k).astype(np.int64)
        ok = (j >= 0) & (j < m)
        g = np.full(len(a), floor_null)
        g[ok] = np.maximum(s[k, j[ok]], floor_null)
        return g

    at = _state_track(gain, n, len(a), switch)
    i = np.arange(n, dtype=np.float64)
    ai = a[at]
    return (np.floor(ai + r * i) - np.floor(ai + r * (i - 1))).astype(np.int32)


def lattice(
    path: list[int | None],
    r: float,
    m: int,
    phases: int = 50,
    switch: float = PHASE_SWITCH,
    reach: float = 0.0,
) -> np.ndarray | None:
    """(m,) bool: the GT frames a tape running `r` > 1 GT frames a tape frame skips by its
    speed (a 25 fps GT at PAL speed: one in 25), at the phase that agrees best with the GT
    frames `path` leaves out.

    The skips are fixed on the GT's frames, not the tape's: a tape frame the capture dropped
    or repeated shifts every later skip by a tape frame (so `cadence`'s phase changes there),
    but not which GT frames are skipped. Returns None where the path covers too little.

    `reach` > 0: the rate is searched within `reach` GT frames over the path of `r` (in
    tenths of a frame) for the one whose single phase agrees with most GT frames, the
    nearest to `r` of those that tie: a fitted rate a frame off (a run of the path's skips
    a frame late) drifts its skips off the true ones over the tape.
    """
    seen = sorted({j for j in path if j is not None})
    if r <= 1.0 or len(seen) < 2:
        return None
    lo, hi = seen[0], seen[-1]
    visited = np.zeros(m, bool)
    visited[seen] = True
    g = np.arange(m, dtype=np.float64)[None, :]
    a = (np.arange(phases) / phases)[:, None]
    known = np.zeros(m, bool)
    known[lo : hi + 1] = True
    # a stretch the path jumps over (an edit, a gap) says nothing of the speed's skips
    gaps = np.diff(np.array(seen))
    for j, d in zip(seen[:-1], gaps):
        if d > 3:
            known[j + 1 : j + d] = False

    def skipping(rate: float, g: np.ndarray = g) -> np.ndarray:  # (P, len(g)): GT frames g
        k = np.ceil((g - a) / rate)  # with no lattice point a + rate k in [g, g + 1)
        return a + rate * k >= g + 1

    if reach > 0:  # the rate whose one phase agrees best, within `reach` GT frames over the path
        span = max(1.0, float(hi - lo) / r)
        rates = [x for x in r + np.arange(-reach, reach + 1e-9, 0.1) / span if x > 1.0]
        on = slice(lo, hi + 1)  # (agreement counts only there: the GT frames the path spans)
        shown, within, g_on = ~visited[on], known[on], g[:, on]
        agree = [float(((skipping(x, g_on) == shown) & within).sum(axis=1).max()) for x in rates]
        best = max(agree)
        r = min((x for x, v in zip(rates, agree) if v == best), key=lambda x: abs(x - r))
    skips = skipping(r)
    fit = ((skips == ~visited) & known).astype(np.float32)  # (P, m): agrees where known
    at = _state_track(lambda q: fit[:, q], m, phases, switch)
    return skips[at, np.arange(m)]


def lattice_steps(skipped: np.ndarray, c: PathCosts) -> np.ndarray:
    """(4, m) float32: the score of a step of d = 0..3 GT frames landing on GT frame j, where
    `skipped` (m,) are the GT frames the tape's speed skips (`lattice`): a GT frame skipped
    off the lattice costs `drop`, one shown on it `dup` (as a step off `cadence`'s does); a
    repeat `dup`; two skipped at once `drop2` more than two drops."""
    m = len(skipped)
    show = np.where(skipped, -c.dup, 0.0)
    skip = np.where(skipped, 0.0, -c.drop)
    out = np.full((4, m), NEG, np.float32)
    out[0] = -c.dup
    out[1] = show
    out[2, 2:] = show[2:] + skip[1:-1]
    out[3, 3:] = show[3:] + skip[2:-1] + skip[1:-2]
    both_off = np.zeros(m, bool)
    both_off[3:] = ~skipped[2:-1] & ~skipped[1:-2]
    out[3] -= np.where(both_off, c.drop2 - 2 * c.drop, 0.0).astype(np.float32)
    return out
