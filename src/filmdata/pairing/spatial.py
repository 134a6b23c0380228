"""Spatial alignment: the 3x3 transform from GT pixels to tape pixels.

ECC (Evangelidis & Psarakis, "Parametric Image Alignment Using Enhanced Correlation Coefficient
Maximization", PAMI 2008) registers a few matched frame pairs, coarse to fine from an initial
guess that fits the GT into the tape's active picture (letterbox/pillarbox found beforehand). ECC
maximises a normalised correlation, so it is blind to the tape's brightness and contrast. The
estimates are combined by a robust median of where each puts a grid of GT points, and the final
transform is fitted to those medians; the spread of the estimates around it is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .descriptors import scale_matrix

#: `consensus`'s cap grows to this many times the registrations' own scatter (`scatter`)
SCATTER_CAP = 1.5


@dataclass(frozen=True)
class Estimate:
    lq_frame: int
    gt_frame: int
    transform: np.ndarray  # (3, 3) GT full pixel -> LQ pixel
    score: float  # ECC correlation


def initial_guess(
    box: tuple[float, float, float, float],
    gt_size: tuple[int, int],
    aspect: bool = True,
    gt_box: tuple[float, float, float, float] | None = None,
) -> np.ndarray:
    """GT full pixel -> LQ pixel, fitting the GT picture into the active box (x, y, w, h).

    The GT picture is its whole frame, or `gt_box` (x, y, w, h in GT pixels) where the GT has
    bars of its own (a 4:3 video pillarboxed in an HD frame)."""
    x, y, w, h = box
    bx, by, gw, gh = gt_box if gt_box is not None else (0.0, 0.0, *gt_size)
    sx, sy = w / gw, h / gh
    if aspect:  # the box may include part of a bar: trust the wider side
        sx = sy = max(sx, sy) if abs(sx / sy - 1) < 0.15 else sx
    ox = x + (w - gw * sx) / 2 - bx * sx
    oy = y + (h - gh * sy) / 2 - by * sy
    return np.array([[sx, 0, ox + 0.5 * sx - 0.5], [0, sy, oy + 0.5 * sy - 0.5], [0, 0, 1.0]])


def ecc_register(
    lq: np.ndarray,
    gt: np.ndarray,
    init: np.ndarray,
    crop: tuple[int, int, int, int] | None = None,
    homography: bool = False,
    levels: int = 3,
    blur: tuple[float, float] = (2.0, 1.0),
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Register one pair: LQ (H, W) grey and GT (h, w) grey at working scale.

    Args:
        init: (3, 3) GT working pixel -> LQ pixel.
        crop: the LQ box (x, y, w, h) compared (the active picture, bars left out).
        mask: (h, w) uint8 over the GT, nonzero where its pixels count (`overlay`: a
            watermark on one video only left out).
        blur: the GT's smoothing (sigma along, across the lines; GT working px). A tape's
            luma loses more along its lines (the tape's bandwidth) than across them, and
            compared with a GT as sharp along them, a heavily compressed tape of a soft
            picture registered a percent narrow or wide: 2 along, 1 across took 19 such
            tapes from 0.63 px mean (worst 1.19) to 0.59 (worst 0.92), the benchmark's
            real-footage tapes 0.21 -> 0.20, procedural ones within 0.01 px.
    Returns:
        ((3, 3) GT working pixel -> LQ pixel, ECC correlation; -1 when it did not converge).
    """
    mode = cv2.MOTION_HOMOGRAPHY if homography else cv2.MOTION_AFFINE
    x0, y0, cw, ch = crop or (0, 0, lq.shape[1], lq.shape[0])
    lqf = lq[y0 : y0 + ch, x0 : x0 + cw].astype(np.float32)
    gtf = cv2.GaussianBlur(gt.astype(np.float32), (0, 0), sigmaX=blur[0], sigmaY=blur[1])
    # ECC's warp maps template (cropped LQ) coordinates to input (GT) coordinates
    c = np.array([[1.0, 0, -x0], [0, 1, -y0], [0, 0, 1]])  # LQ -> template
    w = np.linalg.inv(init) @ np.linalg.inv(c)
    score = -1.0
    for lev in range(levels - 1, -1, -1):
        f = 0.5**lev
        sf = scale_matrix(f)
        t: np.ndarray = (
            cv2.resize(lqf, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if lev else lqf
        )
        g: np.ndarray = (
            cv2.resize(gtf, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if lev else gtf
        )
        ml: Any = None  # (the stubs want a mask; None is none)
        if mask is not None:
            ml = cv2.resize(mask, g.shape[::-1], interpolation=cv2.INTER_NEAREST) if lev else mask
        # coordinates at this level: x_l = Sf x; warp_l = Sf W Sf^-1
        wl = sf @ w @ np.linalg.inv(sf)
        wl = wl / wl[2, 2]
        warp = (wl if homography else wl[:2]).astype(np.float32)
        try:
            score, warp = cv2.findTransformECC(  # type: ignore[call-overload]
                t,
                g,
                warp,
                mode,
                (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5),
                ml,
                5,
            )
        except cv2.error:
            return init, -1.0
        wl = warp.astype(np.float64) if homography else np.vstack([warp, (0, 0, 1)])
        w = np.linalg.inv(sf) @ wl @ sf
    return np.linalg.inv(w @ c), float(score)


def overlay(
    pairs: list[tuple[np.ndarray, np.ndarray]],
    m: np.ndarray,
    box: tuple[float, float, float, float] | None = None,
    level: float = 1.0,
    most: float = 0.2,
) -> np.ndarray | None:
    """Where one video shows something the other does not, in the same place all along: a
    watermark on an HD remaster (a channel's logo in a corner), a station's logo on the tape.
    ECC weighs every pixel alike, and an opaque logo 2% of the GT's picture pulled single
    registrations 3-10 px off (the logo's edges against the tape's picture under it).

    `pairs`: matched (tape, GT) frames at working size from across the tape; `m`: GT working
    pixel -> tape working pixel; `box`: the tape's picture (x, y, w, h; tape working px;
    None: its frame). Each pair, at half the GT's working size and smoothed, the
    tape brought onto the GT's grid, both normalised over the tape's picture; the mean of
    their differences over the pairs is ~0 where the pictures agree (the differences of
    noise and blur average out, misregistration leaves little on frames of different shots)
    and large where one shows the same thing in every frame: more than `level` (in the
    pictures' standard deviations) is an overlay. Returns an (h, w) uint8 mask over the GT's
    working grid, 0 on the overlay and a margin around it (ECC smooths the GT), 1 elsewhere;
    None where no overlay shows, or more than `most` of the picture would go (the geometry
    is too far off for the test to mean anything)."""
    gh, gw = pairs[0][1].shape
    h2, w2 = max(8, gh // 2), max(8, gw // 2)
    s2 = scale_matrix(w2 / gw)
    m2 = m @ np.linalg.inv(s2)  # GT half pixel -> tape working pixel

    def onto_gt(img: np.ndarray, interpolation: int) -> np.ndarray:
        flags = cv2.WARP_INVERSE_MAP | interpolation
        if np.allclose(m2[2], (0, 0, 1)):
            return cv2.warpAffine(img, m2[:2], (w2, h2), flags=flags)
        return cv2.warpPerspective(img, m2, (w2, h2), flags=flags)

    th, tw = pairs[0][0].shape
    picture = np.zeros((th, tw), np.uint8)
    x, y, w, h = (int(round(v)) for v in (box or (0, 0, tw, th)))
    picture[max(0, y) : y + h, max(0, x) : x + w] = 1
    inside = onto_gt(picture, cv2.INTER_NEAREST)
    inside[[0, -1], :] = inside[:, [0, -1]] = 0  # (the GT's own edges are edges too)
    valid: np.ndarray = cv2.erode(inside, np.ones((5, 5), np.uint8)) > 0  # off the edges
    if valid.sum() < 64:
        return None
    acc = np.zeros((h2, w2), np.float32)
    for tape, gt in pairs:
        g = cv2.resize(gt, (w2, h2), interpolation=cv2.INTER_AREA).astype(np.float32)
        t = onto_gt(tape, cv2.INTER_LINEAR).astype(np.float32)
        for a, sign in ((g, 1.0), (t, -1.0)):
            smooth: np.ndarray = cv2.GaussianBlur(a, (0, 0), 1.5)
            v = smooth[valid]
            acc += (smooth - v.mean()) * np.float32(sign / max(float(v.std()), 1.0))
    d = np.abs(acc) / len(pairs)
    found = ((d > level) & valid).astype(np.uint8)
    found = cv2.morphologyEx(found, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    # a strip along the edge of the tape's picture is that edge, a little off under a guessed
    # geometry (the bars' black against the picture), not an overlay (which may straddle it)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(found)
    edge = set(np.unique(labels[cv2.dilate((~valid).astype(np.uint8), np.ones((3, 3))) > 0]))
    for c in range(1, n):
        w, h = stats[c, cv2.CC_STAT_WIDTH], stats[c, cv2.CC_STAT_HEIGHT]
        if c in edge and max(w, h) > 4 * min(w, h):
            found[labels == c] = 0
    share = found.sum() / valid.sum()
    if share == 0 or share > most:
        return None
    found = cv2.dilate(found, np.ones((7, 7), np.uint8))
    return (cv2.resize(found, (gw, gh), interpolation=cv2.INTER_NEAREST) == 0).astype(np.uint8)


def content_shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """How far the picture moved from frame `a` to frame `b` (same size, grey): (dx, dy) px,
    sub-pixel, by phase correlation (a pan is a shift; a zoom this small between neighbours
    is close to one). A second correlation, with `b` moved back by the first estimate,
    removes most of the window's bias (0.15 px on a shift of a few px)."""
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    win = cv2.createHanningWindow(a.shape[::-1], cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(a32, b32, win)
    back = np.array([[1, 0, -dx], [0, 1, -dy]], np.float32)
    b32 = np.asarray(
        cv2.warpAffine(b32, back, (b32.shape[1], b32.shape[0]), borderMode=cv2.BORDER_REFLECT),
        np.float32,
    )
    (ex, ey), _ = cv2.phaseCorrelate(a32, b32, win)
    return float(dx + ex), float(dy + ey)


def neighbour_candidates(
    t: np.ndarray, shifts: dict[int, tuple[float, float]]
) -> dict[int, np.ndarray]:
    """The transform a registration `t` (GT frame j -> tape) implies if the tape frame really
    shows GT frame j + dj, whose picture moved by `shifts[dj]` (GT px) from frame j: a pan
    registered on a frame one off is the right geometry shifted by that frame's motion."""
    out = {0: t}
    for dj, (dx, dy) in shifts.items():
        out[dj] = t @ np.array([[1.0, 0, -dx], [0, 1, -dy], [0, 0, 1]])
    return out


def grid(gt_size: tuple[int, int], n: int = 5) -> np.ndarray:
    """(3, n * n) an n x n grid over the GT picture, homogeneous: where transforms are
    compared."""
    gw, gh = gt_size
    xs, ys = np.meshgrid(np.linspace(0, gw - 1, n), np.linspace(0, gh - 1, n))
    return np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])


def mapped(t: np.ndarray, src: np.ndarray) -> np.ndarray:
    """(2, P) where the transform `t` puts the homogeneous points `src` (3, P)."""
    p = np.asarray(t, float) @ src
    return p[:2] / p[2]


def scatter(transforms: list[np.ndarray], gt_size: tuple[int, int]) -> float:
    """How far registrations (GT -> tape) fall from each other: the median over them of the
    mean distance (tape px) of where each puts the GT grid (`grid`) from where their median
    puts it; 0 for fewer than three."""
    if len(transforms) < 3:
        return 0.0
    src = grid(gt_size)
    arr = np.stack([mapped(t, src) for t in transforms])  # (S, 2, P)
    d = np.linalg.norm(arr - np.median(arr, axis=0), axis=1).mean(axis=1)
    return float(np.median(d))


def consensus(
    candidates: list[dict[int, np.ndarray]],
    gt_size: tuple[int, int],
    cap: float = 1.5,
    prefer: float = 0.05,
) -> list[int | None]:
    """For each sample's candidate transforms (by frame offset, see `neighbour_candidates`),
    the offset that agrees with the others, or None where none does (a wrong match).

    The geometry is one for the whole tape while the motion differs from shot to shot, so
    only the right offsets give transforms that agree across shots: a temporal match one
    frame off everywhere in a shot cannot pull the geometry along that shot's motion. From
    every candidate in turn: each sample takes its candidate nearest to the mean of those
    taken, a few times over; the cost is the squared distances (px, over a grid of the GT
    picture), each capped at `cap`**2 (a wrong match costs the same wherever it falls), plus
    `prefer` per frame of offset (a tie goes to the match itself, else to the nearest).
    Where the registrations themselves scatter more than the cap allows (soft pictures under
    heavy noise and compression: scale and shear a percent or two off, 2-4 px at the
    picture's edges), the cap grows to SCATTER_CAP times their scatter (`scatter`), so that the
    geometry is the mean of many rather than of the two or three that happen to agree.
    """
    if not candidates:
        return []
    offsets, pts, extra, cap = candidate_points(candidates, gt_size, cap, prefer)
    starts = np.concatenate([pts[k, : len(offs)] for k, offs in enumerate(offsets)])
    if not len(starts):
        return [None] * len(offsets)
    cost, pick, inl = _settle(pts, extra, starts, cap**2)  # every start at once
    q = int(np.argmin(cost))  # the first of the cheapest, as the starts are in order
    return [offsets[k][j] if ok else None for k, (j, ok) in enumerate(zip(pick[q], inl[q]))]


def candidate_points(
    candidates: list[dict[int, np.ndarray]], gt_size: tuple[int, int], cap: float, prefer: float
) -> tuple[list[list[int]], np.ndarray, np.ndarray, float]:
    """What `consensus` searches: each sample's offsets; where each candidate puts the GT grid,
    (S, K, 2, P) padded to the most offsets; each candidate's extra cost (S, K: `prefer` a
    frame of offset, inf for the padding); and the cap, grown with the scatter."""
    src = grid(gt_size)
    offsets = [list(c) for c in candidates]
    pts = np.zeros((len(candidates), max(map(len, offsets)), 2, src.shape[1]))
    extra = np.full(pts.shape[:2], np.inf)
    for k, (cands, offs) in enumerate(zip(candidates, offsets)):
        pts[k, : len(offs)] = np.stack([mapped(cands[o], src) for o in offs])
        extra[k, : len(offs)] = prefer * np.abs(np.array(offs, float))
    cap = max(cap, SCATTER_CAP * scatter([c[0] for c in candidates if 0 in c], gt_size))
    return offsets, pts, extra, cap


def _settle(
    pts: np.ndarray, extra: np.ndarray, centres: np.ndarray, cap2: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`consensus`'s search from each of `centres` (N, 2, P) at once: each sample (of `pts`,
    (S, K, 2, P)) takes its candidate nearest the centre, the centre moves to the mean of
    those within the cap, four times, a start left where none is within it. Returns each
    start's cost (its samples' capped squared distances summed in order), picks (N, S) and
    inliers (N, S). The mean squared distance over the grid is expanded (|a|^2 - 2 a.c +
    |c|^2, the cross terms one matrix product for all starts): the same picks as a
    start-by-start loop on every alignment checked, in a fraction of its time."""
    n, s, k = len(centres), pts.shape[0], pts.shape[1]
    flat = pts.reshape(s * k, -1)  # (S K, 2 P)
    each = flat.reshape(s, k, -1)  # (S, K, 2 P)
    per_point = 1.0 / pts.shape[3]
    own = (flat**2).sum(1) * per_point + extra.reshape(-1)  # |a|^2 / P, and the offset's
    centre = centres.reshape(n, -1).copy()
    live = np.ones(n, bool)
    pick = np.zeros((n, s), np.intp)
    at = np.zeros((n, s))
    for _ in range(4):
        idx = np.flatnonzero(live)
        if not len(idx):
            break
        c = centre[idx]
        d2 = own - (2 * per_point) * (c @ flat.T) + ((c**2).sum(1) * per_point)[:, None]
        d2 = d2.reshape(len(idx), s, k)
        p = d2.argmin(axis=2)
        pick[idx] = p
        at[idx] = np.take_along_axis(d2, p[:, :, None], 2)[:, :, 0]
        inl: np.ndarray = at[idx] < cap2
        some = np.any(inl, axis=1)
        live[idx[~some]] = False  # no sample within the cap: left where it is
        for r, i in enumerate(idx):
            if some[r]:
                rows = np.flatnonzero(inl[r])
                centre[i] = each[rows, p[r, rows]].mean(axis=0)
    inliers = at < cap2
    cost = np.cumsum(np.minimum(at, cap2), axis=1)[:, -1]  # in order, as `sum` adds them
    return cost, pick, inliers


def combine(estimates: list[Estimate], gt_size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Robust median of the estimates: (3, 3) GT pixel -> LQ pixel, and the median spread (px)."""
    src = grid(gt_size)
    arr = np.stack([mapped(e.transform, src) for e in estimates])  # (E, 2, P)
    med = np.median(arr, axis=0)
    # drop estimates far from the median, then average the rest (sub-pixel)
    dist = np.linalg.norm(arr - med[None], axis=1).mean(axis=1)  # (E,)
    keep = dist <= max(1.0, 2.5 * float(np.median(dist)))
    target = arr[keep].mean(axis=0)
    t = fit_affine(src[:2].T, target.T)
    return t, float(np.median(dist))


def fit_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares affine (3, 3) taking (P, 2) points to (P, 2) points."""
    a = np.hstack([src, np.ones((len(src), 1))])
    sol, *_ = np.linalg.lstsq(a, dst, rcond=None)  # (3, 2)
    return np.vstack([sol.T, (0, 0, 1)])


def picture_box(
    t: np.ndarray, gt_size: tuple[int, int], lq_size: tuple[int, int]
) -> tuple[float, float, float, float]:
    """The LQ box (x0, y0, x1, y1) covered by the GT picture, clipped to the frame."""
    gw, gh = gt_size
    c = np.array(
        [[-0.5, -0.5, 1], [gw - 0.5, -0.5, 1], [gw - 0.5, gh - 0.5, 1], [-0.5, gh - 0.5, 1]]
    )
    p = t @ c.T
    p = p[:2] / p[2]
    x0, y0 = max(-0.5, float(p[0].min())), max(-0.5, float(p[1].min()))
    x1 = min(lq_size[0] - 0.5, float(p[0].max()))
    y1 = min(lq_size[1] - 0.5, float(p[1].max()))
    return x0, y0, x1, y1


def grid_error(a: np.ndarray, b: np.ndarray, gt_size: tuple[int, int], n: int = 9) -> float:
    """Mean distance (LQ px) between where two GT->LQ transforms put an n x n grid of the GT."""
    pts = grid(gt_size, n)
    return float(np.linalg.norm(mapped(a, pts) - mapped(b, pts), axis=0).mean())
