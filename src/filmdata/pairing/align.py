"""`align(lq, gt)`: the GT frame each tape (LQ) frame shows, and the GT->LQ transform.

1. Decode both once, luma only, at the same time (the GT in two halves, `dsc._halves`):
   every frame small (160 px wide); the GT's frames at working size (all of them while they
   fit); the tape's frames at full size, an SD capture's `LQ_WORK_WIDTH` wide (for step 4).
2. Find the tape's active picture (letterbox/pillarbox bars).
3. Coarse temporal: ZNCC of 32 px descriptors, every tape frame against every GT frame, then a
   monotonic Viterbi with a "no GT" state (noise head, idents), drops, repeats and jumps.
4. Spatial: ECC on a dozen well-matched pairs, intra-coded tape frames first (a heavy encoder's
   other frames lag behind their GT frame); each pair also stands for its GT neighbours (the
   pair shifted by the GT's motion; up to REACH frames, at its motion per frame), and the
   offsets that agree across shots are taken, so a path a few frames off in a slow pan cannot
   pull the geometry along (spatial.consensus); robust mean.
5. Fine temporal: descriptors resampled on the tape's grid through that transform, re-scored in a
   band around the coarse path, Viterbi again: this picks among nearly identical neighbours.
   Inter-coded tape frames may match up to two GT frames late at little cost (encoder lag). The last
   pass adds descriptors at the tape's own resolution (slow pans) when every frame is kept and
   the small ones leave more than a few matches unsure (`_unsure`): on those tape frames and
   their neighbours, and the GT frames of their bands, only.
   Then the geometry's last fraction of a pixel and the path are settled together: the
   shift of the transform whose best path scores highest over the whole tape
   (`_joint_shift`: a slow pan a frame off and a geometry off by its motion look alike in
   one shot, not across shots); past a tenth of a pixel the last pass is made again through
   the shifted geometry. Matches scoring under MIN_CONFIDENCE get no GT. Where the tape is
   not one frame per GT frame (25 fps of 24 fps film at true speed, 3:2 pulldown), its
   cadence is fitted to that path and a last pass follows it.
6. Offset and speed: a robust line through the matched frames.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._blas import one_blas_thread
from ..errors import MediaError, RefusedError
from ..video import Probe, probe
from . import audio, spatial, temporal
from . import descriptors as dsc

Box = tuple[float, float, float, float]  # x, y, w, h

COARSE = temporal.PathCosts(null=0.4)
# A matched tape frame scoring below this gets no GT. A frame with no GT that the path still
# matched scores near 0 (noise heads, idents, 1-30 frames of other footage spliced in: at
# most 0.10 on 20 real-footage tapes), right matches of soft pictures under heavy noise
# 0.35-0.45 (at 0.45, a crf-45 tape with noise 10 lost 4.7% of its frames to it).
MIN_CONFIDENCE = 0.25
FINE_WIDTH = 160  # fine descriptor grid (px across the tape's picture)
SMALL_WIDTH = 160  # every frame of both videos decoded this wide (`active_box` found there)
SHARP = True  # a last fine pass from frames at working size (see _sharp_ready)
UNSURE_MARGIN = 0.005  # ... where more than UNSURE_SHARE of the fine path's matches beat their
UNSURE_SHARE = 0.03  # GT neighbours by less than UNSURE_MARGIN (see `_unsure`): the sure ones
# are the same with it, so skipping it puts at most that share of frames at risk
REPEAT_TOL = 0.02  # GT frames this close are one frame again: no rival in `_margins`
SHARP_REACH = 2  # ... and then on the unsure frames and this many either side only, unless
SHARP_ALL = 0.5  # those are more than this share of the tape: then on all (see `_sharp_rows`)
SHARP_WEIGHT = 3.0  # weight of its differences within a row against the small descriptors'
LAG = 10  # inter-coded tape frames may show their GT frame this many frames late (see _lagged)
LAG_NEAR = 2  # ... the first this many frames of a lag at LAG_COST, the rest at LAG_FAR_COST
LAG_COST = 0.1  # score given up per unit of GT change (1 - ZNCC) across a lag
LAG_FAR_COST = 0.02
LEAD_WEIGHT = 1.0  # a P-frame's score below its best further on counts this much more (_lagged)
INTER_WEIGHT = 0.1  # weight of inter-coded tape frames in the fine pass (see _weigh)
AUDIO_CLEARANCE = 1.5  # audio peak over the next best: above it, the sound narrows the search
BANDS = (24, 8)  # fine passes: GT frames scored either side of the previous path
FINE = temporal.PathCosts(null=0.45, dup=0.03, drop=0.05)
CADENCE_COSTS = FINE  # a step off the fitted cadence costs a repeat or a drop
CADENCE_AGREEMENT = 0.7  # steps of the fine path that must fit a steady cadence (woven
# frames of a pulldown allow two steps, so a right path agrees at about 0.8-0.9)
CADENCE_SWITCH = 0.01  # a change of the cadence's offset, in `cadence_by_scores`
# The two readings of the cadence's phase tie where their paths' totals are closer than one
# repeat off the cadence costs: a phase a frame early is then as good under the lag model
# (`_lagged`: an inter-coded frame's score for GT j is about its best over j - LAG..j where the
# GT barely changes), and the fine similarity itself, unlagged, chooses. Ties seen: 0.006-0.008
# (real footage: bikes at PAL speed, its skips a frame early on four of ten; bunny pulldown);
# a clear choice 0.087 (30 fps GT, harsh: there the unlagged scores favoured the wrong phase).
CADENCE_TIE = CADENCE_COSTS.dup
# a tape's speed against its GT's, in seconds: as made (a PAL transfer of 24 fps film runs
# 25/24 or 25/23.976 fast, NTSC 1000/1001 slow) or their inverses
SPEEDS = (1.0, 25 / 24, 24 / 25, 25 / (24000 / 1001), 24000 / 1001 / 25, 1000 / 1001, 1001 / 1000)
# a fitted rate this share or more off every speed's: each tried (`_speeds_left`), and the
# coarse path at each (`_coarse_at_speed`)
IMPLAUSIBLE = 0.06
IMPLAUSIBLE_COARSE = True
# ... each speed's rate at 8 phases of its skips, up to this many cells of the coarse matrix
# (a 10 s tape of a 30 fps GT: 0.64 s at most); beyond, rates this share apart taken once
# (NTSC's 1000/1001 is another's; `_apart`; so too the last pass's rates) at 2 phases: 7
# rates at 8 phases took 12 s on an 80 s tape, against 1.7. (On the 24 short benchmark tapes
# that try them, 2 phases alone lost most of the gain: 0.947 -> 0.940.)
COARSE_CELLS = 100_000
COARSE_SPEEDS_APART = 0.005
NOMINAL_SNAP = 4.0  # GT frames over the tape: a fitted rate this near one of them is tried too
# (each skip, drop or repeat the path leaves out moves the fitted rate by a frame over the
# tape: a 4 s tape of a 30 fps GT that left out its drop and put its skips early fitted 2.1
# frames off; at 2.0, 0.780 of its frames right, at 4.0 0.870)
NOMINAL_SPARSE = 0.1  # ... where the tape skips GT frames (faster than its GT), or its irregular
# steps are one in 10 tape frames or rarer: a pulldown (one in five) keeps its own rate
# At a nominal rate the speed's phase is one along the tape: it moves where a tape frame is
# dropped or repeated (`cadence`), or not at all (`lattice`, on the GT's frames). A change of
# it there costs this many agreeing steps (the fitted rate's 4 let it follow the path a frame
# off for a few skips in a row, where x264's B-frames smear a 30 fps GT's skip, one in four
# tape frames, over its mini-GOP of four)
NOMINAL_SWITCH = 20.0
# ... and, reading the phase from the scores (`cadence_by_scores`) where the skips are dense
# (irregular steps more often than one in 10), a change costs as much as a repeat
NOMINAL_SCORE_SWITCH = FINE.dup
CADENCE_MIN = 0.01  # a cadence is modelled when its irregular steps come every < 100 frames
# (25 fps of 24 fps film at true speed: 1 in 25; 3:2 pulldown: 1 in 5); rarer ones (NTSC's
# 0.1%) are left to the free repeats and drops
JOINT = True  # settle the geometry's last fraction of a pixel and the path together
JOINT_GRID = 0.2  # tape px: `_joint_shift`'s first search step
JOINT_RANGE = 0.6  # tape px: the farthest shift it tries
JOINT_REPASS = 0.1  # tape px: a larger joint shift remakes the last pass from descriptors; at
# most this, the search's own scores there stand (the same accuracy on 33 benchmark tapes,
# 0.4-0.6 s less; at 0.2 the procedural pans pulldown tape fell 0.980 -> 0.816)
JOINT_BATCH_BYTES = 256 << 20  # score matrices `_joint_shift` scores at once, at most
WORKERS = min(4, os.cpu_count() or 1)  # threads for per-frame OpenCV work
GT_THREADS = 0  # the GT decoder's threads (0: FFmpeg's choice)
NEIGHBOURS = (-1, 1)  # GT frames either side of a spatial sample tried as its match
REACH = 6  # ... and up to this far, at the sample's motion per frame times the distance
# (see `_reach`; 1: the neighbours only)
OVERLAY_PAIRS = 24  # matched frames the test for a watermark on one video looks at
RELOCK_RUN = 2.0  # s: an unmatched stretch this long (or RELOCK_SHARE of the tape) is tested
RELOCK_SHARE = 0.08  # ... for a picture that moved (`_relocked`)
RELOCK_SAMPLES = 4  # registrations on its coarse path that must agree
RELOCK_SCORE = 0.8  # ... each with an ECC correlation above this
RELOCK_MOVE = 1.0  # px: ... on a geometry this far from the tape's, and twice their scatter
SCATTER_MORE = 1.5  # tape px: samples whose registrations scatter more get as many again
FRESH_AFTER = 1  # inter-coded tape frames after an intra-coded one still taken as lag-free
FRESH_DECAY = 0.5
FRESH_MIN = 3  # lag-free spatial samples needed to use only those
FRESH_ANCHOR = True  # the geometry settled towards the tape's intra-coded frames ...
# ... this part of the way: at the heaviest compression (crf 45) an intra-coded frame's own
# prediction smears its picture a few tenths of a pixel down and right. 221 benchmark tapes
# (33rd session), mean px of the second maker's 168 / tapesim's 53: none 0.374 / 0.196; the
# shift alone at 0.5: 0.244 / 0.201, 0.75: 0.219 / 0.216, 1: 0.231 / 0.239; the affine
# (`FRESH_ANCHOR_AFFINE`) at 0.75: 0.139 / 0.195 (worst 0.22 against 0.79), 1: ~0.17 / 0.224
FRESH_ANCHOR_WEIGHT = 0.75
FRESH_ANCHOR_AFFINE = True  # the intra-coded frames' scale and shear too, not their shift only
ECC_MIN = 0.3  # a pair registered with an ECC correlation at most this is not taken
# tape px: an intra-coded frame registered farther off is not taken (a frame matched wrong).
# At 1.5, the heaviest tapes (crf 45, noise 10: Big Buck Bunny's inter-coded frames a percent
# short and 1.3-1.6 px off) kept their lagging geometry; at 3, 0.18-0.27 px, the 223 benchmark
# tapes as before (35th session)
FRESH_ANCHOR_CAP = 3.0
# tape px: farther, up to this, where a frame matched wrong cannot explain the move (the GT
# moves less than a third of it to either neighbour) and the frame registers at least as
# well as the inter-coded samples (crf 48, noise 12: those 3.3 px off the truth, the intra
# frame 0.8; see `_fresh_anchor`)
FRESH_ANCHOR_FAR = 8.0
FRESH_ANCHOR_MAX = 8  # intra-coded frames registered at most (spread over the tape)
WOVEN_RATE = 0.9  # GT frames per tape frame below which tape frames may weave two (pulldown)
AHEAD_RUN = 6  # tape frames: a run of the free path ahead of the cadence's this long ...
AHEAD_GAIN = 0.006  # ... that scores this much more along it is taken (see `_ahead`)
AHEAD_LOOSE = 0.1  # ... and from a pass whose drops and repeats cost this share (0: none)
AHEAD_VARIED = True  # ... a run ahead by any number of GT frames, not one (at base 1)
CADENCE_PERIOD = 5  # tape frames in one cycle of a 3:2 (or 2:2:2:4) pulldown
GT_KEEP_BYTES = 256 << 20  # GT frames kept at working size: all of them up to 1100 (46 s)
LQ_KEEP_BYTES = 256 << 20  # tape frames kept at working size for the spatial stage: all of a
# 480x360 tape up to 1550 frames (a minute), every k-th beyond (the rest decoded when chosen)
# An SD capture wider than LQ_WORK_WIDTH (DV's 720 px, 768 px square-pixel PAL; up to
# SD_WIDTH) is kept, registered and described for the sharp pass at LQ_WORK_WIDTH: a VHS
# picture holds no finer detail (its luma ~3 MHz: 250-330 lines across), and 720 px made the
# spatial stage and the sharp pass 2-4x the work (a 30 s DV NTSC tape 5.9-6.2 -> 3.8 s;
# four SD benchmark tapes of real footage, sharper than VHS: the same paths but one 0.994 ->
# 0.990, geometry 0.12-0.32 -> 0.12-0.41 px; procedural detailed pans under the harsh tape,
# the hard regime where 0.59 of the path is right either way, 0.90 -> 1.44 px). Wider (HD)
# tapes keep their own size: their pixels are the precision asked for.
LQ_WORK_WIDTH = 480
SD_WIDTH = 1024
SHARP_SHARE = 1 / 3  # ... but all of both, for the sharp pass, where they and the sharp
# descriptors fit in this share of the memory available when the alignment starts


@dataclass(frozen=True)
class Alignment:
    """The result of `align`: see `to_json` for the fields."""

    mapping: list[int | None]  # GT frame shown by each LQ frame, or None
    transform: np.ndarray  # (3, 3) GT pixel (x, y, 1) -> LQ pixel, pixel centres at integers
    # LQ time (s) at which GT time 0 is shown: t_lq = offset + t_gt / speed; None where no
    # frame matched (no line through the mapping to read it from)
    offset: float | None
    speed: float | None  # GT seconds per LQ second (1.0427 for a PAL transfer of 24 fps film)
    confidence: list[float]  # per LQ frame, in [0, 1] (ZNCC of the match; 0 for None)
    # how it went: `matched` (share of LQ frames with GT), `similarity` (their mean
    # confidence), `coarse_agreement` (share of the coarse path within a frame of the final
    # one), `cadence_agreement` (steps fitting a fitted cadence, or None), `unsure` (share of
    # matches barely above their GT neighbours before the sharp pass), `sharp_pass`,
    # `sharp_rows` (share of LQ frames it described), `repeats` / `drops` / `jumps` / `null`,
    # `spatial_samples`, `ecc` (their median score), `spatial_spread_px`, `active_box` (LQ
    # px), `lq` / `gt` (frames, fps, size), `seconds`; `audio` and `segments` where found
    quality: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "mapping": list(self.mapping),
            "transform": [[float(v) for v in row] for row in self.transform],
            "offset": None if self.offset is None else float(self.offset),
            "speed": None if self.speed is None else float(self.speed),
            "confidence": [round(float(c), 4) for c in self.confidence],
            "quality": self.quality,
        }


def align(
    lq: str | os.PathLike[str],
    gt: str | os.PathLike[str],
    *,
    min_confidence: float = MIN_CONFIDENCE,
    homography: bool = False,
    samples: int = 12,
    quiet: bool = True,
    timeout: float | None = None,
    memory_share: float | None = None,
) -> Alignment:
    """Align a tape `lq` to its ground truth `gt` (two video files).

    With `timeout` (seconds), the alignment runs in a child process killed past it
    (untrusted media must not hang a run).

    Args:
        lq, gt: the degraded and the clean video.
        min_confidence: LQ frames whose match scores below this get None; in [0, 1].
        homography: estimate a full homography instead of an affine transform.
        samples: frame pairs registered for the spatial transform.
        quiet: no progress bars.
        memory_share: of the memory available at the start, what a longer tape may take to
            keep every frame for the sharp pass (default SHARP_SHARE; a caller running N
            alignments at once gives each its part).

    Raises:
        RefusedError: `min_confidence` is not a number in [0, 1].
        MediaError: a file is missing, not a video, or too short to align.
    """
    # a match scores in [0, 1] (ZNCC clamped at 0): nan or a threshold above 1 would map
    # every frame to null, one below 0 is the same as 0; neither is what was meant
    if not 0 <= min_confidence <= 1:
        raise RefusedError(
            f"--min-confidence must be a score in [0, 1] (0 keeps every match), "
            f"got {min_confidence}"
        )
    kw: dict[str, Any] = {
        "min_confidence": min_confidence,
        "homography": homography,
        "samples": samples,
        "quiet": quiet,
        "memory_share": memory_share,
    }
    if timeout is not None:
        from ..video import run_limited

        return run_limited(  # type: ignore[no-any-return]
            _align_kw, (lq, gt, kw), timeout, what=f"{lq}: align"
        )
    # (a `filmdata` command pins OpenBLAS to one thread before numpy loads; a user's process
    # has it loaded with a thread per core, which the many small products here only wake to
    # spin: a 10 s tape beside other work took 33 CPU-s instead of 3.2)
    with one_blas_thread():
        return _align(lq, gt, **kw)


def _align(
    lq: str | os.PathLike[str],
    gt: str | os.PathLike[str],
    *,
    min_confidence: float,
    homography: bool,
    samples: int,
    quiet: bool,
    memory_share: float | None,
) -> Alignment:
    """`align` in this process."""
    t0 = time.perf_counter()
    # (sizes as stored, for the decoders' budgets: the frames come upright and give their own)
    pl, pg = probe(lq, count=False, as_shown=False), probe(gt, count=False, as_shown=False)
    share = SHARP_SHARE if memory_share is None else memory_share
    gv, lv = _decode(lq, gt, pl, pg, quiet, share)
    if gv.frames < 2 or lv.frames < 2:
        short = gt if gv.frames < 2 else lq
        raise MediaError(f"{short}: too short to align (fewer than 2 frames)")
    t_decode = time.perf_counter() - t0

    # 2. active pictures and 3. coarse temporal: the match is made on the active pictures of
    # both (an HD remaster of a 4:3 video is often pillarboxed: its bars compared with the
    # tape's picture would blur every match); the boxes in small, then in full pixels
    s0, bs, gs = dsc.coarse_similarity(lv.small, gv.small)
    sub = temporal.base_step(gv.fps / lv.fps)  # (see below)
    coarse: tuple[list[int | None], float] | None = None  # (path, score), where made already
    full = (0, bs[1], lv.small.shape[2], bs[3]), (0, gs[1], gv.small.shape[2], gs[3])
    if full != (bs, gs):
        # Columns cut off as bars where one video has picture and the other none, or a
        # different part (a locked-off shot's still sides: a heavy encoder froze the tape's,
        # its box the moving middle, the GT's the whole width) leave two boxes of different
        # pictures: the coarse match still ran through them (similarity 0.55-0.6), but the
        # geometry fitted to them was 84 px off and nothing matched after. So the whole
        # widths are tried too, and kept where the coarse path through them scores higher.
        coarse = temporal.best_path(s0[:, ::sub], COARSE)
        wide = dsc.coarse_similarity(lv.small, gv.small, boxes=full)
        wide_coarse = temporal.best_path(wide[0][:, ::sub], COARSE)
        if wide_coarse[1] > coarse[1]:
            (s0, bs, gs), coarse = wide, wide_coarse
    k = 1 / lv.small_scale
    box = (bs[0] * k, bs[1] * k, bs[2] * k, bs[3] * k)
    gw, gh = gv.width, gv.height
    kx, ky = gw / gv.small.shape[2], gh / gv.small.shape[1]
    gt_box = (gs[0] * kx, gs[1] * ky, gs[2] * kx, gs[3] * ky)
    heard = _audio_band(s0, lq, gt, lv.fps, gv.fps) if pl.audio and pg.audio else None
    # A GT of twice the tape's frame rate or more (a 50 or 60 fps remaster of a 25 or 30 fps
    # tape) is searched on every `sub`-th frame: there the steps are about one GT frame, as
    # the coarse costs expect (on all frames, a 60 fps GT of pans and its heavily compressed
    # tape: the small pictures of neighbours all alike, the path kept to whole steps, 0.06
    # of frames right); the fine passes take every frame around it.
    hold = _hold(gv.fps / lv.fps)
    if coarse is None or (heard is not None and heard.clearance >= AUDIO_CLEARANCE):
        coarse = temporal.best_path(s0[:, ::sub], COARSE)  # (the sound narrowed s0 since)
    path0 = [None if j is None else j * sub for j in coarse[0]]
    if IMPLAUSIBLE_COARSE:
        path0 = _coarse_at_speed(s0[:, ::sub], coarse, path0, sub, gv.fps / lv.fps)
    path0 = _held_ends(path0, gv.frames, hold)

    # 4. spatial, then 5. fine temporal on the tape's grid; once more from the fine path.
    # The fine passes let repeats (or drops) fall where the data puts them; where the tape has
    # a cadence (a steady rate that is not one GT frame per frame) it is fitted to the path,
    # and a last pass follows it unless the data clearly departs from it.
    # (a pair one frame apart biases the transform along the motion, and the transform's error
    # biases the fine match the same way: a second round breaks the loop)
    # The coarse path can be several frames off in slow stretches (32 px descriptors of a slow
    # pan all look alike): the first fine pass searches a wide band, the second a narrow one
    # around the first's path.
    rate0 = temporal.fit_rate(path0)[1]
    costs, agreement = _rate_costs(rate0), None
    # a ramp of drops is one stretch lost (`temporal.unramp`), unless the tape runs faster
    # than its GT and drops by design
    ramps = costs.drop >= FINE.drop

    def choose(weighed: np.ndarray) -> list[int | None]:
        """The path through the weighed scores, a ramp of drops made one jump."""
        path = temporal.viterbi(weighed, costs)
        path = temporal.unramp(path, weighed, costs) if ramps else path
        return _held_ends(path, gv.frames, hold)

    # P-frames show no GT frame later than their own (see `_lagged`), except woven ones
    forward = lv.forward if rate0 > WOVEN_RATE else None
    path, s1 = path0, s0
    cache = lv.kept
    bufs: dict[str, np.ndarray] = {}
    sharp: dict[str, np.ndarray] = {}  # the sharp pass's buffers (reused by the next one)

    def rescore(t: np.ndarray, band: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The fine similarity (s1) around `path` through `t`, the scores the path is chosen
        by (lagged, not weighed yet), and the band's centre."""
        lq_f, gt_f = _fine(lv, gv, t, box, bufs)
        centre = temporal.fill_centre(path, gv.frames)
        s1 = temporal.band_similarity(lq_f, gt_f, centre, radius=band)
        s1, lifted = _dim_fill(s1, bufs["lq_norm"], bufs["gt_norm"], path, costs.null)
        if lifted is None:
            bufs.pop("dim", None)
        else:
            bufs["dim"] = lifted
        return s1, _lagged(s1, lv.key, gt_f, forward=forward), centre

    def add_sharp(
        t: np.ndarray, score: np.ndarray, centre: np.ndarray, rows: np.ndarray | None
    ) -> np.ndarray:
        """Full-size frames tell apart neighbours of a slow pan that the small ones cannot;
        their scores are lower on a heavily compressed tape, so they only add their
        differences within each row (the level, for "no GT", stays s1's). `rows`: the tape
        frames that get them (None: all)."""
        lq_s, gt_s = _fine(lv, gv, t, box, sharp, sharp=True, rows=rows, centre=centre)
        if JOINT:  # for `_joint_shift`: the descriptors, and the scores but the sharp part
            bufs.update(sharp_grid=sharp["sharp_grid"], sharp_lq=lq_s, sharp_gt=gt_s)
            bufs.update(scores=score, sharp_centre=centre)
        s2 = _lagged(
            temporal.band_similarity(lq_s, gt_s, centre, radius=BANDS[-1], rows=rows),
            lv.key,
            gt_s,
            forward=forward,
            only=rows,
        )
        s2 -= s2.max(axis=1, keepdims=True)
        if rows is not None:
            s2[~rows] = 0.0
        if "dim" in bufs:  # (as noisy there as the small ones: `_dim_fill`)
            s2[bufs["dim"]] = 0.0
        return score + np.float32(SHARP_WEIGHT) * s2

    moves: dict[int, dict[int, tuple[float, float]]] = {}  # GT motion at samples (both rounds)
    # a watermark on one video, left out of ECC: found on the coarse path through the boxes'
    # fit, then again through the first round's geometry
    mask = _overlay(lv, gv, path, spatial.initial_guess(box, (gw, gh), gt_box=gt_box), box)
    for round_, band in enumerate(BANDS):
        t, est, spread = _spatial(
            lv,
            gv,
            path,
            s1,
            (box, gt_box),
            samples,
            homography,
            clean=round_ > 0,
            cache=cache,
            base=costs.base,
            moves=moves,
            mask=mask,
        )
        s1, score, centre = rescore(t, band)
        weighed = _weigh(score, lv.key, costs.null)
        path = choose(weighed)
        if round_ == 0:
            mask = _overlay(lv, gv, path, t, box)
    # the sharp pass, where every frame is at hand and the small descriptors leave the path
    # unsure (`_unsure`); on the last band, around the path it was made from
    margins = _margins(s1, path, _repeats(gv))
    unsure = _unsure(margins)
    sharpened = _sharp_ready(lv, gv) and unsure > UNSURE_SHARE
    rows = _sharp_rows(margins)
    if sharpened:
        weighed = _weigh(add_sharp(t, score, centre, rows), lv.key, costs.null)
        path = choose(weighed)
    if JOINT and "sharp_gt" in bufs:
        joint = _joint_shift(lv, path, bufs, costs, forward, rows)
        if joint is not None:
            shift, modelled = joint
            t = np.array([[1, 0, shift[0]], [0, 1, shift[1]], [0, 0, 1.0]]) @ t
            if max(abs(shift[0]), abs(shift[1])) > JOINT_REPASS:
                # the last pass again, through the shifted geometry
                s1, score, centre = rescore(t, BANDS[-1])
                weighed = _weigh(add_sharp(t, score, centre, rows), lv.key, costs.null)
            else:  # a tenth of a pixel: the search's own scores there
                weighed = modelled
            path = choose(weighed)

    def on_cadence_of(r: float, nominal: float | None) -> tuple[list[int | None], float | None]:
        """The last pass under the tape's cadence at `r` GT frames a tape frame (the free
        path where it has none, or fits none), and the cadence's agreement. The speed's
        skips are tried at `r` and at the `nominal` rate (`_nominal`; None: none near); at
        a nominal rate their phase holds (`NOMINAL_SWITCH`)."""
        if abs(r - round(r)) <= CADENCE_MIN:
            return path, None
        held = r == nominal
        switch = NOMINAL_SWITCH if held else temporal.PHASE_SWITCH
        expected, agreement = temporal.cadence(path, r, switch=switch)
        if agreement < CADENCE_AGREEMENT:
            return path, agreement
        # two readings of the cadence's phase: the path's steps, and the scores; the final
        # pass runs under each, and the path that explains the tape better is kept
        dense = held and abs(r - round(r)) > NOMINAL_SPARSE
        by_scores = temporal.cadence_by_scores(
            weighed, path, r, costs.null, switch=NOMINAL_SCORE_SWITCH if dense else CADENCE_SWITCH
        )
        on_cadence = dataclasses.replace(CADENCE_COSTS, base=costs.base)
        out, total = temporal.best_path(weighed, on_cadence, expected)
        # a tape faster than its GT skips GT frames fixed on the GT's own frames; a tape
        # frame dropped or repeated moves the steps' phase, not those (`lattice`): the pass
        # under them is kept where it explains the tape better. 62 benchmark tapes
        # (twenty-sixth session): mean 0.9492 -> 0.9530, real footage's worst 0.896 -> 0.938.
        # The skips at the nominal rate too (tapesim's `--vary` 24: 0.9871 -> 0.9921)
        for rate in dict.fromkeys((r, nominal or r)):
            # (off a nominal rate, the one within NOMINAL_SNAP whose one phase fits the path's
            # skips best; at either the phase holds. The 32nd session's 223 tapes: 22 better,
            # 3 worse by 0.005-0.010; 16 off-nominal tapes of a 30 fps GT 0.917 -> 0.932)
            reach = 0.0 if rate == nominal else NOMINAL_SNAP
            skipped = (
                temporal.lattice(out, rate, gv.frames, switch=NOMINAL_SWITCH, reach=reach)
                if costs.base == 1
                else None
            )
            if skipped is not None:
                on_gt = temporal.lattice_steps(skipped, on_cadence)
                lat, lat_total = temporal.best_path(weighed, on_cadence, on_gt=on_gt)
                if _explains_better(lat, lat_total, out, total, score):
                    out, total = lat, lat_total
        if by_scores is not None:
            other, other_total = temporal.best_path(weighed, on_cadence, by_scores)
            if abs(other_total - total) < CADENCE_TIE:  # the unlagged scores decide
                if _along(s1, other) > _along(s1, out):
                    out = other
            elif _explains_better(other, other_total, out, total, score):
                out = other
        if ramps:  # (a path the cadence's pass made)
            out = temporal.unramp(out, weighed, costs)
        return _held_ends(out, gv.frames, hold), agreement

    # (a few skips, or a drop, move a short tape's fitted rate by a frame or two: where the
    # tape skips GT frames or its steps are sparse, the pass also runs at the rate a tape's
    # speed gives, if near, and the path that matches the frames better by the lagged scores
    # is kept; see `_nominal`)
    free = path
    fitted = temporal.fit_rate(path)[1]
    nominal = _nominal(fitted, gv.fps / lv.fps, len(path))
    path_fit, agreement = on_cadence_of(fitted, nominal)
    if nominal is not None and nominal != fitted:
        path_nom, agreement_nom = on_cadence_of(nominal, nominal)
        if _along(score, path_nom) > _along(score, path_fit):
            path_fit, agreement = path_nom, agreement_nom
    rates = _speeds_left(fitted, gv.fps / lv.fps)
    for rate in rates if weighed.size <= COARSE_CELLS else _apart(rates):  # (as the coarse's)
        path_nom, agreement_nom = on_cadence_of(rate, rate)
        if _along(score, path_nom) > _along(score, path_fit):
            path_fit, agreement = path_nom, agreement_nom
    # (at a base step of 1 GT frame a tape frame, a run ahead may be one or two frames ahead
    # by turns: the two paths place a faster tape's skips in other phases)
    varied = AHEAD_VARIED and costs.base == 1
    path = _ahead(path_fit, free, weighed, varied)
    if AHEAD_LOOSE:
        cheap = AHEAD_LOOSE * costs.dup, AHEAD_LOOSE * costs.drop
        loose = temporal.viterbi(weighed, dataclasses.replace(costs, dup=cheap[0], drop=cheap[1]))
        path = _ahead(path, loose, weighed, varied)
    conf = [max(0.0, float(s1[i, j])) if j is not None else 0.0 for i, j in enumerate(path)]
    mapping = [j if j is not None and c >= min_confidence else None for j, c in zip(path, conf)]
    conf = [c if j is not None else 0.0 for j, c in zip(mapping, conf)]

    # a picture that moved part-way (a re-locked capture) left its frames unmatched: found
    # again through their own geometry
    def settle(own: list[int | None], scores: np.ndarray) -> np.ndarray | None:
        """The spatial stage on a path of some of the tape's frames (None: no pair registered)."""
        moved, est, _ = _spatial(
            lv, gv, own, scores, (box, gt_box), samples, homography, clean=True,
            cache=cache, base=costs.base, moves=moves, mask=mask,
        )  # fmt: skip
        return moved if est else None

    level = float(np.median([e.score for e in est])) if est else None
    t, intra = _fresh_anchor(lv, gv, path, t, box, homography, mask, level, motion=moves)
    moved = _relocked(
        lv, gv, mapping, conf, path0, t, box, mask, choose, settle, forward, costs.null,
        min_confidence,
    )  # fmt: skip

    # 6. offset and speed: j = a + r i (frames) -> t_lq = offset + t_gt / speed; none where
    # no frame matched (`fit_rate` of nothing is a guess: 0 s at the frame rates' ratio) or
    # every match is one GT frame (no rate: no GT time 0 to find)
    offset: float | None = None
    speed: float | None = None
    if any(j is not None for j in mapping):
        a, r = temporal.fit_rate(mapping)
        speed = r * lv.fps / gv.fps
        offset = (-a / r) / lv.fps if r else None
    matched = [c for c in conf if c > 0]
    agree = [abs(p - q) <= sub for p, q in zip(path0, mapping) if p is not None and q is not None]
    quality: dict[str, Any] = {
        "matched": len(matched) / len(mapping),
        "similarity": float(np.mean(matched)) if matched else 0.0,
        "coarse_agreement": float(np.mean(agree)) if agree else 0.0,
        "cadence_agreement": agreement,
        "unsure": round(unsure, 4),
        "sharp_pass": sharpened,
        "sharp_rows": (1.0 if rows is None else float(rows.mean())) if sharpened else 0.0,
        **temporal.path_stats(mapping, costs.base),
        "spatial_samples": len(est),
        "ecc": float(np.median([e.score for e in est])) if est else None,
        "spatial_spread_px": spread if math.isfinite(spread) else None,  # (no estimate)
        "active_box": [round(v, 1) for v in box],
        "lq": {"frames": lv.frames, "fps": lv.fps, "width": lv.width, "height": lv.height},
        "gt": {"frames": gv.frames, "fps": gv.fps, "width": gw, "height": gh},
        "seconds": {"decode": round(t_decode, 3), "total": round(time.perf_counter() - t0, 3)},
    }
    if intra is not None:
        quality["intra_shift_px"] = [round(float(v), 3) for v in intra]
    if heard is not None:
        quality["audio"] = dataclasses.asdict(heard)
    segs = moved or _segments(est, (gw, gh))
    if segs:
        quality["segments"] = segs
    return Alignment(mapping, t, offset, speed, conf, quality)


def _decode(
    lq: str | os.PathLike[str],
    gt: str | os.PathLike[str],
    pl: Probe,
    pg: Probe,
    quiet: bool,
    share: float,
) -> tuple[dsc.GrayVideo, dsc.GrayVideo]:
    """Decode both videos at once (PyAV releases the GIL while decoding): the GT with FFmpeg's
    threads in a worker thread, the tape (small: a tenth of the GT's pixels) on one thread here.
    The tape's frames are all kept at its working size (its own; an SD capture's
    `LQ_WORK_WIDTH` wide: `_lq_work_width`) within its budget (`_keep_budgets`), so the
    spatial stage needs no second decode; the GT's at theirs within its own."""
    lq_keep = _lq_work_width(pl.width)
    lq_w = lq_keep or pl.width
    lq_bytes = max(1, pl.declared_frames) * lq_w * (pl.height * lq_w // max(1, pl.width))
    # the GT's: its width over the largest power of two that keeps it as wide as the tape's
    # (halvings are OpenCV's fast path: 1080p to 480 px in 0.1 ms, against 0.9 ms by one
    # resize)
    factor = 1 << max(0, int(math.log2(max(1.0, pg.width / max(400, lq_w)))))
    keep_width = pg.width // factor
    gt_bytes = max(1, pg.declared_frames) * keep_width * keep_width * pg.height // pg.width
    lq_budget, gt_budget = _keep_budgets(pl, pg, lq_bytes, gt_bytes, share)
    lq_every = max(1, -(-lq_bytes // lq_budget))
    if lq_every % CADENCE_PERIOD == 0:
        # every k-th tape frame would sit on one phase of a 3:2 pulldown, two of whose five
        # are woven: the spatial samples, taken from these frames, would all be woven
        lq_every += 1
    # GT frames kept at working size: all of them within the budget, so that spatial
    # samples can sit on the tape's intra-coded frames wherever they fall (see `_spatial`);
    # beyond, every k-th with its neighbours
    keep_every = max(1, -(-3 * gt_bytes // gt_budget)) if pg.declared_frames else 8
    if keep_every <= 3:
        keep_every = 1 if gt_bytes <= gt_budget else 3
    while lq_every > 1 and math.gcd(keep_every, lq_every) > 1:
        keep_every += 1  # coprime strides: kept tape and GT frames meet whatever the offset
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(
            dsc.decode_gray,
            gt,
            SMALL_WIDTH,
            keep_every,
            keep_width,
            keep_near=max((abs(d) for d in NEIGHBOURS), default=0),
            quiet=quiet,
            desc="decode GT",
            threads=GT_THREADS,
            halves=True,
        )
        try:
            lv = dsc.decode_gray(
                lq, SMALL_WIDTH, lq_every, lq_keep, quiet=quiet, desc="decode LQ", threads=1
            )
        finally:
            gv = job.result()  # a GT error first, as when decoded one after the other
    return gv, lv


def _lq_work_width(width: int) -> int:
    """The width a tape `width` px wide is worked at: LQ_WORK_WIDTH for an SD capture wider
    than it, else 0 (its own)."""
    return LQ_WORK_WIDTH if LQ_WORK_WIDTH < width <= SD_WIDTH else 0


def _keep_budgets(
    pl: Probe, pg: Probe, lq_bytes: int, gt_bytes: int, share: float
) -> tuple[int, int]:
    """Bytes of tape frames (full size) and GT frames (working size) `_decode` keeps: within
    LQ_KEEP_BYTES and GT_KEEP_BYTES; all of both where they and the sharp pass's descriptors
    (float32, at most the tape's size, a row per frame of either) fit in `share` of the
    memory available now. Without the sharp pass a tape with slow pans loses its path: a
    120 s procedural slow tape 0.833, with it 0.956 (3.2x real time instead of 9.6x)."""
    frames = pl.declared_frames + pg.declared_frames
    if not (SHARP and pl.declared_frames and pg.declared_frames):
        return LQ_KEEP_BYTES, GT_KEEP_BYTES
    w = _lq_work_width(pl.width) or pl.width  # the sharp descriptors: the tape's working size
    need = lq_bytes + gt_bytes + 4 * frames * w * (pl.height * w // max(1, pl.width))
    avail = _available_memory()
    if avail is None or need > share * avail:
        return LQ_KEEP_BYTES, GT_KEEP_BYTES
    return max(LQ_KEEP_BYTES, lq_bytes), max(GT_KEEP_BYTES, gt_bytes)


def _available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def _audio_band(
    s: np.ndarray, lq: str | os.PathLike[str], gt: str | os.PathLike[str], fl: float, fg: float
) -> audio.AudioMatch | None:
    """When the sound gives a clear offset and speed, keep the coarse search within 2 s of
    that line (in place) on the tape frames whose sound follows it (`audio.on_line`: not
    past a stretch the tape lost, nor in another programme); returns the match (None: no
    usable sound; not clear enough: the search left as it is)."""
    found = audio.audio_line(lq, gt)
    if found is None:
        return None
    m, on = found
    if m.clearance < AUDIO_CLEARANCE:
        return m
    i = np.arange(s.shape[0])
    j_exp = (i / fl - m.offset) * m.speed * fg  # GT frame expected at each LQ frame
    far = np.abs(np.arange(s.shape[1])[None, :] - j_exp[:, None]) > 2.0 * fg
    hop = np.clip(np.round(i / fl / audio.HOP).astype(int), 0, len(on) - 1)
    far &= on[hop][:, None]
    s[far] = -1.0
    return m


def _hold(ratio: float) -> int:
    """The most tape frames one GT frame is shown on at `ratio` GT frames per tape frame (the
    frame rates'), the tape's speed up to 5% under it (NTSC's 0.1%, PAL's 4% either way): 2
    at 1 (a repeat), 3 at 0.5 (a 50 fps capture of 25 fps), 1 at 2."""
    return max(1, math.ceil(1 / (0.95 * ratio)))


def _held_ends(path: list[int | None], n_gt: int, hold: int) -> list[int | None]:
    """`path` without the tape frames that hold the GT's first or last frame longer than a GT
    frame is shown (`hold` tape frames): before the GT starts and after it ends, a tape whose
    footage goes on (the GT an excerpt, a shorter edit, a remaster cut tighter) shows
    pictures near those two, and the path, unable to go past them, repeated them (a GT of
    the tape's first 2 s of 5: its last frame on the last 72 tape frames, at 0.4-0.95, the
    speed fitted to them 0.004), or one of the frames just before them that an encoder's lag
    lets the path take (LAG_NEAR). The first `hold` of a run on one of the last frames are
    kept, and the last `hold` of one on the first ones."""
    out = list(path)
    near = min(LAG_NEAR, max(0, (n_gt - 2) // 2))  # (a GT of 2-5 frames: its own ends only)
    ends = [(g, True) for g in range(n_gt - 1 - near, n_gt)] + [(g, False) for g in range(near + 1)]
    for g, keep_first in ends:
        run = [i for i, j in enumerate(out) if j == g]
        if len(run) > hold:
            for i in run[hold:] if keep_first else run[:-hold]:
                out[i] = None
    return out


def _rate_costs(r: float) -> temporal.PathCosts:
    """Fine-pass costs for the tape's rate `r` (GT frames per tape frame), its steps counted
    from `base_step(r)` (b): where the tape shows GT frames more than once by design (a 25 fps
    tape of 24 fps footage at true speed, 3:2 pulldown), repeats are free, or the path would
    rather start a segment early than repeat; likewise drops where the tape runs faster than
    one GT frame per frame. At b >= 2 (GT at twice the tape's frame rate or more) the steps
    one short of b or one past it are the cheap ones; a repeated or a dropped tape frame
    keeps its price (`dup`; `skip`, FINE's `drop`; at b = 1 there is no such step)."""
    b = temporal.base_step(r)
    costs = dataclasses.replace(FINE, base=b, skip=FINE.drop)
    if r < b - 0.02 and b == 1:
        return dataclasses.replace(costs, dup=0.002)
    if r < b - 0.02:
        return dataclasses.replace(costs, short=0.002)
    if r > b + 0.02:
        return dataclasses.replace(costs, drop=0.002)
    return costs


def _nominal(r: float, ratio: float, n: int) -> float | None:
    """The rate a tape's speed gives (`SPEEDS` times the frame rates' `ratio`) nearest the
    fitted rate `r` (GT frames a tape frame), where that is at most NOMINAL_SNAP GT frames
    from it over the `n` tape frames and the tape skips GT frames (`r` > 1) or its irregular
    steps are sparse (one in 1 / NOMINAL_SPARSE tape frames or rarer); None where there is
    none such.

    A PAL tape skips one GT frame in 24: on a 5 to 10 s tape, a skip the path left out or a
    drop moves the fitted rate by a frame or two over the tape, and the GT frames `lattice`
    fixes the skips on drift off the true ones (bunny, a drop and a repeat: 0.955 of frames
    right; at 25/24 the lattice's pass put every skip, the drop and the repeat right, 1.000).
    A pulldown's steps (one in five) fix its rate well, and its nominal rates lie within a
    frame of each other (24 fps at 29.97: 0.8, 0.8008, 0.8016): it keeps its own.
    A tape need not run at a nominal speed (a capture's drift, a maker's 1.035 or 1.05): the
    caller runs its last pass at both rates and keeps the path that matches the frames better.
    Taken alone, the nominal rate lost a 1.05 tape (bunny 0.982 -> 0.763).
    In-process A/B against the fitted rate alone: our maker's 20 tapes mean 0.9637 -> 0.9834
    (worst 0.828 -> 0.938), tapesim's `--vary` 24 0.9786 -> 0.9921 (bunny harsh seed 5
    worse: 0.985 -> 0.934), tapesim's 31 0.8989 -> 0.9022 (none worse), 16 tapes at speeds
    1.035 and 1.05 0.9349 -> 0.9402.
    A tape faster than its GT has its skips on the GT's frames however dense they are: a 30
    fps GT at PAL speed skips one GT frame in five, every fourth tape frame; a 60 fps GT
    three in five. Its fitted rate was 0.7% off on a 10 s tape (the path's skips a frame
    late for five skips in a row), and the lattice's skips drifted off the true ones; at
    25/24 and with the phase held (`NOMINAL_SWITCH`) they fall on them. In-process A/B
    (32nd session), tapes of our maker with GTs re-stamped at other rates, 10-12 each:
    bikes at 30 fps 0.945 -> 0.971, 29.97 0.954 -> 0.975, 60 0.943 -> 0.983; bunny at 30
    0.922 -> 0.936; the 25, 24 and 23.976 fps GTs', tapesim's and the off-nominal speeds'
    tapes the same or better, none worse. NOMINAL_SNAP 2 -> 4 (the same sets): bunny at 30
    fps 0.780 -> 0.870 on one tape, at 50 fps 0.842 -> 0.974 and 0.921 -> 0.987, bikes at
    speed 1.035 0.891 -> 0.991; tapesim's slow harsh tape 0.477 -> 0.474; the rest the same."""
    if NOMINAL_SNAP <= 0 or (r < 1 and abs(r - round(r)) > NOMINAL_SPARSE):
        return None
    near = min((ratio * s for s in SPEEDS), key=lambda c: abs(c - r))
    return near if abs(near - r) * max(1, n - 1) <= NOMINAL_SNAP else None


def _coarse_at_speed(
    s: np.ndarray,
    coarse: tuple[list[int | None], float],
    path: list[int | None],
    sub: int,
    ratio: float,
) -> list[int | None]:
    """The coarse path (GT frames; `coarse`: its path in `s`'s every `sub`-th GT frame and
    its score), or where its rate is no tape's speed (`_speeds_left`) the best path through
    `s` that follows a speed's steady rate (each at 8 phases of its skips, fewer on a long
    tape: COARSE_CELLS; `best_path`'s `expected`) where that scores higher. A heavily
    compressed tape whose opening barely moves let the coarse path start GT frames ahead at
    one GT frame a frame, cheaper than the drops of the true 1.25, and the fine passes,
    costed for that rate, kept it."""
    rates = _speeds_left(temporal.fit_rate(path)[1], ratio)
    phases = 8
    if s.size > COARSE_CELLS:  # a long tape: fewer, each pass costs more
        phases, rates = 2, _apart(rates)
    best, total = path, coarse[1]
    at = np.arange(len(s))
    tried: set[bytes] = set()  # (rates close and phases of a short period give the same steps)
    for rate in rates:
        r = rate / sub
        for phase in np.arange(phases) / phases:
            line = np.floor(r * at + phase)
            expected = np.diff(line, prepend=line[0]).astype(int)
            if expected.tobytes() in tried:
                continue
            tried.add(expected.tobytes())
            found, score = temporal.best_path(s, COARSE, expected)
            if score > total:
                best = [None if j is None else j * sub for j in found]
                total = score
    return best


def _apart(rates: list[float]) -> list[float]:
    """`rates` less those within COARSE_SPEEDS_APART of one before them."""
    out: list[float] = []
    for rate in rates:
        if all(abs(rate / c - 1) > COARSE_SPEEDS_APART for c in out):
            out.append(rate)
    return out


def _speeds_left(r: float, ratio: float) -> list[float]:
    """The rates a tape's speed gives (`SPEEDS` times the frame rates' `ratio`), each, where
    the fitted rate `r` is farther than IMPLAUSIBLE (a share of it) from all of them: no tape
    runs at such a speed, so the path's rate is wrong (a heavily compressed tape whose
    opening barely moves: its path started GT frames ahead and went on at one GT frame a
    frame, where a 30 fps GT at PAL speed takes 1.25, and met the truth later: 0.53-0.56 of
    frames right). None (an empty list) where one is near, or where `r` is below 1 off a
    whole number (a pulldown keeps its own; see `_nominal`)."""
    if IMPLAUSIBLE <= 0 or (r < 1 and abs(r - round(r)) > NOMINAL_SPARSE):
        return []
    rates = sorted({round(ratio * s, 6) for s in SPEEDS})
    if min(abs(c / r - 1) for c in rates) <= IMPLAUSIBLE:
        return []
    return rates


def _along(s: np.ndarray, path: list[int | None]) -> float:
    """The sum of `s` (n_lq, n_gt) along `path`'s matches."""
    pairs = np.array([(i, j) for i, j in enumerate(path) if j is not None], np.intp)
    return float(s[pairs[:, 0], pairs[:, 1]].sum()) if len(pairs) else 0.0


def _ahead(
    path: list[int | None], free: list[int | None], weighed: np.ndarray, varied: bool = False
) -> list[int | None]:
    """`path` (the pass under the tape's cadence) with each run where the free path (`free`,
    the pass before) is a constant number of GT frames ahead of it, for `AHEAD_RUN` tape
    frames or more, taken from the free path where that scores over `AHEAD_GAIN` more by
    `weighed` (the scores both were chosen by) and the path stays monotonic.

    A dropped tape frame and a repeated one further on put the frames between them a GT
    frame ahead of the cadence. In a slow stretch the cadence's price for the two can
    outweigh what those frames say, and the more so as a heavy encoder's inter-coded frames
    lag their GT frame, looking like the one before: the evidence leans behind. A run the free
    path nonetheless puts ahead, and scores better, is the drop and the repeat (a run it puts
    behind may be that lag, and is left). The caller also offers the runs of a pass whose
    drops and repeats cost `AHEAD_LOOSE` of the fine pass's: a 24 fps GT at PAL speed has no
    cadence, and there the fine pass itself left them out. The second maker's tapes and
    tapesim's, 223 in all: 14 better (bunny's drop and repeat at 23.976-50 fps: 0.79-0.92 ->
    0.89-1.00), none worse, at `AHEAD_LOOSE` 0.25 or 0.1 alike; runs behind taken too, 8
    worse. 36 tapes of other seeds: 8 better at 0.1 (one more than at 0.25), none worse.
    `varied` (at a base step of one GT frame a tape frame): a run ahead by one GT frame and
    two by turns is one run, as two paths that place a faster tape's skips in other phases
    make it (the 223: 16 better instead of 14, none worse, a 30 fps GT's three 0.838-0.888
    -> 0.919-0.939; other seeds: one more, 0.967 -> 0.983; at base 2, where 50 and 60 fps
    GTs step by turns anyway, offline three worse).
    A run is taken only where both paths match the tape frames either side of it (`_both`):
    one that runs to the tape's end (or from its start) is a drop or a repeat the free path
    has alone, with nothing to close it. A still shot at a tape's end, its frames told apart
    by a small moving object only, was a GT frame ahead for its last 24 frames (the test
    suite's station-logo tape: 0.855 of frames right once a slow movement no longer counts
    as one picture, `tapesim.IDENTICAL_TOL`). The 223 tapes: the same paths."""
    # (tape frames matched on both: how far the free path is ahead; 0 elsewhere)
    lead = [0 if a is None or b is None else a - b for a, b in zip(free, path)]
    out = list(path)
    i, n = 0, len(path)
    while i < n:
        if lead[i] <= 0:
            i += 1
            continue
        j = i
        while j < n and (lead[j] > 0 if varied else lead[j] == lead[i]):
            j += 1
        gain = _along(weighed[i:j], free[i:j]) - _along(weighed[i:j], path[i:j])
        closed = _both(free, path, i - 1) and _both(free, path, j)
        if j - i >= AHEAD_RUN and gain > AHEAD_GAIN and closed:
            trial = out[:i] + free[i:j] + out[j:]
            got = [m for m in trial if m is not None]
            if all(q >= p for p, q in zip(got, got[1:])):
                out = trial
        i = j
    return out


def _both(a: list[int | None], b: list[int | None], i: int) -> bool:
    """Whether tape frame `i` is in both paths and matched in both."""
    return 0 <= i < len(a) and a[i] is not None and b[i] is not None


def _explains_better(
    other: list[int | None],
    other_total: float,
    path: list[int | None],
    total: float,
    score: np.ndarray,
) -> bool:
    """Whether `other`, a path found under another model of the tape's steps (the skips fixed
    on the GT's frames, `lattice`; the cadence's phase read from the scores), takes the place
    of `path`: its total under its model is higher, and it matches the frames no worse by
    `score` (n_lq, n_gt), the lagged scores before inter-coded frames are weighed down.

    The models price a dropped or repeated tape frame, and those prices can outweigh what a
    tenth-weighted run of inter-coded frames says: a drop and a repeat 37 frames apart in a
    slow stretch (a 25 fps GT at PAL speed, x264's long GOP), and the lattice path left both
    out, a frame behind all the way between them (bunny: 0.711, its scores 0.04 worse than
    the path that had them). Our own maker's 20 tapes of bikes and bunny with a drop and a
    repeat anywhere: mean 0.926 -> 0.950, worst 0.711 -> 0.843; tapesim's 31: none worse,
    two better (0.925 -> 0.986, 0.988 -> 0.996)."""
    return other_total > total and _along(score, other) >= _along(score, path)


def _lagged(
    s: np.ndarray,
    key: np.ndarray | None,
    gt: np.ndarray,
    step: np.ndarray | None = None,
    forward: np.ndarray | None = None,
    only: np.ndarray | None = None,
) -> np.ndarray:
    """Inter-coded tape frames may show their GT frame up to LAG frames late: a heavy encoder
    builds them from blocks of earlier frames, and where the picture barely moves (a slow
    pan) the update falls below its quantiser. Their score for GT frame j is their best over
    j - LAG..j, less a price for how much the GT changed in between (1 - ZNCC of the GT's
    own descriptors `gt`, frame to frame): LAG_COST a unit over the LAG_NEAR frames before j,
    LAG_FAR_COST further back. So a lag is about free across near-identical frames and costs across
    distinct ones. `step`: the GT's frame-to-frame ZNCC, when the caller has it.
    Two frames at the full price: after a cut the encoder did not make intra, a run of
    P-frames lagged a frame and more behind a 0.7 px-a-frame pan for 115 frames (seed-3 slow
    PAL tape), and with one frame of lag allowed the path bought a repeat there and a drop at
    the next keyframe (0.731; with two, 0.964). Cheaper lag over those two frames lets the
    path wander in a crawl (the test suite's slow tape: 0.99 -> 0.72 at 0.05 a unit).
    Up to ten at a fifth of the price: at crf 45 the encoder's P- and B-frames trail a pan by
    3 to 9 GT frames for a whole GOP (their best match; the intra-coded frame before is
    right), so with two frames of lag a path slid back behind them, buying a repeat and a
    drop. Measured on 16 benchmark tapes: crf 45 mean 0.688 -> 0.725 (pans 0.62-0.70 ->
    0.65-0.78), no tape worse, PAL unchanged (0.995).
    `forward` (n,): the P-frames, predicted from earlier frames only, so their content is
    never later than their GT frame. A lag makes a P-frame's score for GT frames after its
    best match nearly as good; before it, the shortfall counts 1 + LEAD_WEIGHT times. A drop
    in a long run of P-frames was otherwise put off to the next cut or intra frame (a 25 fps
    GT at PAL speed, 4.27% fast: 0.778 -> 0.997). B-frames are left out (they also predict
    from a later frame); so are woven frames (the caller passes None below WOVEN_RATE).
    Measured (K = 1): 24 fps PAL tapes unchanged (0.995), crf 41 unchanged, a 25 fps slow
    tape 0.999 -> 0.979, 30 fps GT at PAL speed (1.25 GT frames a tape frame) pans 0.884 ->
    0.876 and slow 0.822 -> 0.877, crf 45 down on two of eight tapes (0.776 -> 0.701, 0.913 ->
    0.767)."""
    if key is None or len(key) != len(s) or LAG < 1 or len(gt) < 2:
        return s
    out = s.copy()
    inter = ~key if only is None else ~key & only  # `only` (n,) bool: the rows to lag
    rows = s[inter]
    best = rows.copy()
    if step is None:  # (m - 1,) frame j - 1 against j
        step = np.einsum("ij,ij->i", gt[1:], gt[:-1])
    # one scratch block for every shift (a fresh one per shift is a fresh block of pages
    # each time: a 200 s tape's scores are 96 MB)
    tmp = np.empty_like(rows)
    m = len(gt)
    cost = np.zeros(m, np.float32)  # of a lag from j - d to j, accumulated
    for d in range(1, min(LAG, m - 1) + 1):
        change = 1.0 - step[d - 1 :] if d == 1 else 1.0 - step[: len(step) - d + 1]
        cost[d:] += np.float32(LAG_COST if d <= LAG_NEAR else LAG_FAR_COST) * change
        lagged = np.subtract(rows[:, :-d], cost[None, d:], out=tmp[:, : m - d])
        np.maximum(best[:, d:], lagged, out=best[:, d:])
        np.maximum(best[:, :d], np.float32(-1.0), out=best[:, :d])  # (no GT frame d before)
    if LEAD_WEIGHT > 0 and forward is not None and len(forward) == len(s):
        # a P-frame's content ahead of the path: no lag explains it
        p = forward[inter]
        pf = best[p]
        k = len(pf)
        # best from j on, then how far below it each score is (0 where there is no GT)
        ahead = np.maximum.accumulate(pf[:, ::-1], axis=1, out=tmp[:k, ::-1])[:, ::-1]
        short = np.subtract(pf, ahead, out=ahead)
        short[pf <= -1] = 0
        short *= np.float32(LEAD_WEIGHT)
        best[p] = np.add(pf, short, out=short)
    out[inter] = best
    return out


DIM_RHO = 0.6  # a tape frame whose attainable ZNCC is below this share of the typical ...
DIM_GT = 0.4  # ... with GT frames of less than this share of the GT's contrast in its band
DIM_LEVEL = 0.02  # ... has its best score lifted to this much above the null score


def _dim_fill(
    s: np.ndarray,
    lq_sig: np.ndarray,
    gt_sig: np.ndarray,
    path: list[int | None],
    null: float,
) -> tuple[np.ndarray, np.ndarray | None]:
    """A fade or a dip to dark on both videos (the GT's picture dim, so the tape's too):
    there the tape's noise outweighs its picture, and the right GT frame's fine score falls
    under the null score. Bikes dipped to 15% for 2.4 s and faded out for 1 s
    (`benchmarks/align_plain.py`, noise 7, crf 40, seeds 1-6): 18-23 tape frames of the dip
    left unmatched, 0.888 of frames right (worst 0.799); dipped to black, seeds 1-4, 0.871.
    Such a tape frame's scores are lifted so that its best is DIM_LEVEL over null, and what
    its own scores say is kept in the share w that its contrast allows: w (s + lift) +
    (1 - w) (null + DIM_LEVEL), w = rho / typical. A black frame says nothing (w 0: its row
    flat), and the path goes through at its own steps, as it does on either side: the dips
    to 15% 0.956 (worst 0.891), to black 0.983 (seeds 1-6: 0.974, worst 0.913).

    A tape frame's attainable ZNCC follows from its contrast in the band (`lq_sig`, its
    descriptor's deviation before normalising) and the tape's noise: rho = sqrt(1 - N /
    sig^2), N the median of sig^2 (1 - s^2) over the matches of `path` scoring over 0.3. A
    row is lifted where its rho is under DIM_RHO of the typical (those matches' median) and
    its band holds a GT frame of under DIM_GT of the GT's typical contrast (`gt_sig`, over
    the same matches), between the path's first and last match: a tape's black head before
    a GT that fades in stays null, as does black that the GT lacks. A lift by row keeps the
    band level: scores set to a level in the dim GT frames only drew the path into them from
    the bright ones beside (a procedural dip 0.97 -> 0.81). The 223 benchmark tapes (none
    dim): the same paths.

    Returns the scores and the (n,) rows lifted (None: none)."""
    pairs = [(i, j) for i, j in enumerate(path) if j is not None and s[i, j] > 0.3]
    if len(pairs) < 8:
        return s, None
    ii, jj = np.array(pairs).T
    sig2 = lq_sig.astype(np.float64) ** 2
    matched = s[ii, jj].astype(np.float64)
    noise = float(np.median(sig2[ii] * (1.0 - matched * matched)))
    rho = np.sqrt(np.clip(1.0 - noise / np.maximum(sig2, 1e-12), 0.0, 1.0))
    typical = float(np.median(rho[ii]))
    on = [i for i, j in enumerate(path) if j is not None]
    dim = np.flatnonzero(rho[on[0] : on[-1] + 1] < DIM_RHO * typical) + on[0]
    if not dim.size:  # (the rest on these rows only: most tapes have none)
        return s, None
    rows_s = s[dim]
    inside = rows_s > -1
    dim_gt = gt_sig < DIM_GT * float(np.median(gt_sig[jj]))
    keep = (inside & dim_gt[None, :]).any(axis=1)
    if not keep.any():
        return s, None
    dim, rows_s, inside = dim[keep], rows_s[keep], inside[keep]
    level = np.float32(null + DIM_LEVEL)
    best = np.where(inside, rows_s, np.float32(-1.0)).max(axis=1)
    lift = np.maximum(np.float32(0.0), level - best)[:, None]
    w = np.clip(rho[dim] / typical, 0.0, 1.0).astype(np.float32)[:, None]
    out = s.copy()
    out[dim] = np.where(inside, w * (rows_s + lift) + (1 - w) * level, rows_s)
    rows = np.zeros(len(s), bool)
    rows[dim] = True
    return out, rows


def _weigh(s: np.ndarray, key: np.ndarray | None, null: float) -> np.ndarray:
    """Trust intra-coded tape frames more: a heavy encoder builds the other frames from blocks
    of earlier ones, so in slow stretches their content lags (the best match is a GT frame or
    two behind). Scores are pulled towards the null score, which keeps match-or-null intact."""
    if key is None or len(key) != len(s):
        return s
    w = np.where(key, 1.0, INTER_WEIGHT).astype(np.float32)[:, None]
    out = np.subtract(s, np.float32(null))  # one block, worked in place (the same values)
    out *= w
    out += np.float32(null)
    return out


def _spatial(
    lv: dsc.GrayVideo,
    gv: dsc.GrayVideo,
    path: list[int | None],
    s: np.ndarray,
    boxes: tuple[Box, Box],
    samples: int,
    homography: bool,
    clean: bool = False,
    cache: dict[int, np.ndarray] | None = None,
    base: int = 1,
    moves: dict[int, dict[int, tuple[float, float]]] | None = None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, list[spatial.Estimate], float]:
    """ECC on well-matched pairs whose GT frame was kept at working size, from the guess that
    fits the GT's active picture into the tape's (`boxes`: the tape's, the GT's; full pixels).
    Tape frames at working size come from `cache` (those kept while decoding); missing ones are
    decoded into it. Each pair stands for GT frames up to REACH either side (see `_reach`).
    `clean`: only pairs on a steady stretch of the path, steps of 1 either side (of `base`
    or one off it where the GT has twice the tape's frame rate or more, `PathCosts.base`).
    `moves`: the GT's motion at frames measured before (`_neighbour_shifts`), kept there for
    the next round (whose samples often fall on the same GT frames). `mask`: the GT's
    pixels ECC weighs (`_overlay`; None: all)."""
    cache = lv.kept if cache is None else cache
    moves = {} if moves is None else moves
    gt_size = (gv.width, gv.height)
    box, gt_box = boxes
    init = spatial.initial_guess(box, gt_size, gt_box=gt_box)
    fresh = _fresh(lv.key, len(path))
    even = {1} if base == 1 else {base - 1, base, base + 1}  # the steps of a steady stretch
    cands = []
    for i, j in enumerate(path):
        if j is None or j not in gv.kept:
            continue
        before, after = (path[i - 1], path[i + 1]) if 0 < i < len(path) - 1 else (None, None)
        steady = (
            before is not None and after is not None and j - before in even and after - j in even
        )
        if clean and not steady:
            continue
        cands.append((i, j, float(s[i, j]) + (1.0 if steady else 0.0) + 2.0 * fresh[i]))
    if not cands:
        return init, [], float("nan")
    # a heavy encoder builds inter-coded frames from blocks of earlier ones, so in a pan
    # their picture lags (a fraction of a pixel to several frames): intra-coded tape frames
    # (and the next one) show their GT frame as it is, so they give the geometry
    # (not on a tape of fewer GT frames than its own, 3:2 pulldown: there a tape frame may
    # weave the fields of two GT frames, whatever its coding)
    lagless = [c for c in cands if fresh[c[0]] > 0]
    if len(lagless) >= FRESH_MIN and temporal.fit_rate(path)[1] > WOVEN_RATE:
        cands = lagless
    kept = [c for c in cands if c[0] in cache]
    if len(kept) >= 2 * samples:  # enough pairs whose tape frame is at hand: no second decode
        cands = kept

    def register(picks: list[tuple[int, int, float]]) -> list[tuple]:
        """(i, j, GT full -> tape, score, neighbour shifts) of the pairs ECC registers."""
        with ThreadPoolExecutor(WORKERS) as pool:
            found = _registered(
                lv, gv, [(i, j) for i, j, _ in picks], init, box, homography, mask, pool, cache
            )
            new = list(dict.fromkeys(j for _, j, _ in picks if j not in moves))
            moves.update(zip(new, pool.map(lambda j: _neighbour_shifts(gv, j), new)))
            return [
                (i, j, tw, score, moves[j])
                for (i, j, _), (tw, score) in zip(picks, found)
                if score > ECC_MIN
            ]

    # the best-matched pair of each of `samples` stretches of the tape; where their
    # registrations scatter (a soft picture under heavy noise: scale and shear a percent off
    # from pair to pair), as many again from the pairs left, for the mean to settle
    picked = _pick(range(len(cands)), cands, samples)
    rows = register([cands[q] for q in picked])
    if spatial.scatter([r[2] for r in rows], gt_size) > SCATTER_MORE:
        rest = sorted(set(range(len(cands))) - set(picked))
        more = register([cands[q] for q in _pick(rest, cands, samples)])
        rows = sorted(rows + more, key=lambda r: r[0])  # in tape order
    # a pair one frame off registers the geometry shifted by that frame's motion: each
    # sample's registration stands for its neighbours too, and the offsets that agree
    # across the tape's shots are taken
    options = [spatial.neighbour_candidates(t, _reach(sh, REACH)) for _, _, t, _, sh in rows]
    picks = spatial.consensus(options, gt_size)
    est = [
        spatial.Estimate(i, j + dj, c[dj], score)
        for (i, j, _, score, _), c, dj in zip(rows, options, picks)
        if dj is not None
    ]
    if not est:
        return init, [], float("nan")
    t, spread = spatial.combine(est, gt_size)
    return t, est, spread


def _registered(
    lv: dsc.GrayVideo,
    gv: dsc.GrayVideo,
    pairs: Sequence[tuple[int, int]],
    t: np.ndarray,
    box: Box,
    homography: bool,
    mask: np.ndarray | None,
    pool: ThreadPoolExecutor,
    cache: dict[int, np.ndarray] | None = None,
) -> Iterator[tuple[np.ndarray, float]]:
    """(GT full pixel -> tape pixel, ECC correlation) of each (tape frame, GT frame) of
    `pairs`, registered by ECC from `t` at working size on `pool`'s threads (OpenCV releases
    the GIL), in their order; the tape's frames from `cache` (its kept frames),
    those missing decoded into it first. The tape's picture `box` (full px) less its edges is
    compared; `mask`: the GT pixels that count (`_overlay`)."""
    cache = lv.kept if cache is None else cache
    missing = {i for i, _ in pairs} - cache.keys()
    if missing:
        keep = LQ_WORK_WIDTH if lv.kept_scale < 1 else 0
        cache.update(dsc.decode_gray(lv.path, keep_width=keep, only=missing).kept)
    back = np.linalg.inv(dsc.scale_matrix(lv.kept_scale))  # tape working -> full
    sw = dsc.scale_matrix(gv.kept_scale)  # GT full -> GT working
    crop, w0 = _ecc_crop(lv, box), _working(lv, gv, t)
    found = pool.map(
        lambda ij: spatial.ecc_register(
            cache[ij[0]], gv.kept[ij[1]], w0, crop, homography, mask=mask
        ),
        pairs,
    )
    return ((back @ tw @ sw, score) for tw, score in found)


def _fresh_anchor(
    lv: dsc.GrayVideo,
    gv: dsc.GrayVideo,
    path: list[int | None],
    t: np.ndarray,
    box: Box,
    homography: bool,
    mask: np.ndarray | None,
    level: float | None = None,
    motion: dict[int, dict[int, tuple[float, float]]] | None = None,
) -> tuple[np.ndarray, tuple[float, float] | None]:
    """`t` (GT full pixel -> tape pixel) moved towards the geometry its intra-coded tape
    frames show, and the mean move (tape px; None: none made). `level`: the median ECC
    correlation of the registrations `t` was fitted to (None: unknown); `motion`: the GT's
    motion at frames `_spatial` measured (its `moves`), not measured again.

    A heavy encoder makes inter-coded frames of blocks of earlier ones: in a slow pan their
    picture lags its GT frame by one or more frames (more as static blocks are skipped), and
    a geometry fitted to them is off by that motion along the whole tape, stretched where the
    scene moves unevenly (Big Buck Bunny's opening at crf 40: 0.35-0.45 px up and left of the
    truth, 0.1% narrow and 0.2-0.3% short; its intra-coded frame within 0.1 px and 0.05%).
    Too few intra-coded frames for `_spatial` to fit the geometry on alone (`FRESH_MIN`; a
    short tape has one or two: the cut from its noise head, x264's next keyframe), they
    still settle it: each is registered from `t`, and `t` is moved `FRESH_ANCHOR_WEIGHT` of
    the median move of each point of a grid over the GT picture (an affine, or with
    `homography` a homography, fitted to the moved points; the mean move only without
    `FRESH_ANCHOR_AFFINE`). Not for pulldown tapes (a frame may weave two GT frames).

    A frame that registers farther than `FRESH_ANCHOR_CAP` from `t` may be matched to the
    wrong GT frame: its move counts only where that cannot explain it (up to
    `FRESH_ANCHOR_FAR`; `_explained`). The heavier the encoder, the farther its inter-coded
    frames put `t` off: at crf 45 and noise 10 a percent short, 1.3-1.6 px; at crf 48 and
    noise 12, 3.3 px."""
    if not FRESH_ANCHOR or lv.key is None or len(lv.key) != len(path):
        return t, None
    if temporal.fit_rate(path)[1] <= WOVEN_RATE:
        return t, None
    matched = [(i, j) for i, j in enumerate(path) if j is not None]
    pairs = [(i, j) for i, j in matched if lv.key[i] and j in gv.kept]
    if not pairs or len(pairs) > len(matched) // 2:
        return t, None  # (most frames intra-coded, DV or MJPEG: nothing lags)
    # (a tape past its keeping budget keeps every k-th frame: those at hand, where any, spare
    # a second decode of the tape)
    pairs = [(i, j) for i, j in pairs if i in lv.kept] or pairs
    if len(pairs) > FRESH_ANCHOR_MAX:
        pairs = [pairs[k] for k in np.linspace(0, len(pairs) - 1, FRESH_ANCHOR_MAX).astype(int)]
    pts = spatial.grid((gv.width, gv.height), 9)
    at = spatial.mapped(t, pts)
    with ThreadPoolExecutor(WORKERS) as pool:
        found = list(_registered(lv, gv, pairs, t, box, homography, mask, pool))
    moves = []  # each frame's move of the grid's points, (2, P)
    for (_, j), (tw, score) in zip(pairs, found):
        d = spatial.mapped(tw, pts) - at
        far = math.hypot(*d.mean(axis=1))
        if score <= ECC_MIN or far > FRESH_ANCHOR_FAR:
            continue
        if far <= FRESH_ANCHOR_CAP or not _explained(gv, j, t, far, score, level, motion):
            moves.append(d)
    if not moves:
        return t, None
    move = FRESH_ANCHOR_WEIGHT * np.median(np.stack(moves), axis=0)
    dx, dy = move.mean(axis=1).tolist()
    if not FRESH_ANCHOR_AFFINE:
        return np.array([[1.0, 0, dx], [0, 1, dy], [0, 0, 1]]) @ t, (dx, dy)
    src, dst = pts[:2].T, (at + move).T
    if homography:  # (least squares over the grid: every point counts)
        import cv2

        return cv2.findHomography(src, dst, 0)[0], (dx, dy)
    return spatial.fit_affine(src, dst), (dx, dy)


def _explained(
    gv: dsc.GrayVideo,
    j: int,
    t: np.ndarray,
    far: float,
    score: float,
    level: float | None,
    motion: dict[int, dict[int, tuple[float, float]]] | None = None,
) -> bool:
    """Whether an intra-coded tape frame registered `far` tape px from `t`, matched to GT
    frame j, may be a frame matched wrong: the GT moves a third of that or more to a
    neighbour (tape px; a neighbour not at hand counts as such a move), or the frame
    registers worse (ECC correlation `score`) than the samples `t` was fitted to (`level`;
    None: unknown). At a cut the neighbour's shift means nothing, and the correlation alone
    guards: a frame registered against another shot's picture scores low. `motion`: the
    GT's motion measured before, by frame (`_neighbour_shifts`)."""
    if level is None or score < level:
        return True
    shifts = motion[j] if motion is not None and j in motion else _neighbour_shifts(gv, j)
    if len(shifts) < len(NEIGHBOURS):
        return True
    return any(
        math.hypot(*(t[:2, :2] @ (dx, dy))) >= far / 3  # (GT px to tape px)
        for dx, dy in shifts.values()
    )


def _overlay(
    lv: dsc.GrayVideo,
    gv: dsc.GrayVideo,
    path: list[int | None],
    t: np.ndarray,
    box: tuple[float, float, float, float],
) -> np.ndarray | None:
    """`spatial.overlay` on up to OVERLAY_PAIRS matched frames at working size, spread along
    the path through `t` (GT full pixel -> tape pixel), in the tape's picture `box` (full
    pixels)."""
    pairs = [(i, j) for i, j in enumerate(path) if j is not None and j in gv.kept and i in lv.kept]
    if len(pairs) < OVERLAY_PAIRS // 2:
        return None
    picks = np.linspace(0, len(pairs) - 1, OVERLAY_PAIRS).round().astype(int)
    chosen = [pairs[q] for q in dict.fromkeys(picks.tolist())]
    k = lv.kept_scale
    picture = (box[0] * k, box[1] * k, box[2] * k, box[3] * k)
    frames = [(lv.kept[i], gv.kept[j]) for i, j in chosen]
    return spatial.overlay(frames, _working(lv, gv, t), picture)


def _working(lv: dsc.GrayVideo, gv: dsc.GrayVideo, t: np.ndarray) -> np.ndarray:
    """`t` (GT full pixel -> tape pixel) between the frames kept at working size: GT working
    pixel -> tape working pixel."""
    return dsc.scale_matrix(lv.kept_scale) @ t @ np.linalg.inv(dsc.scale_matrix(gv.kept_scale))


def _ecc_crop(lv: dsc.GrayVideo, box: Box) -> tuple[int, int, int, int]:
    """The tape's picture `box` (full pixels) in its working pixels, less 3% (at least 4 px)
    each side: what ECC compares, off the picture's edges."""
    x, y, w, h = (int(round(v * lv.kept_scale)) for v in box)
    m = max(4, int(0.03 * min(w, h)))
    return (x + m, y + m, w - 2 * m, h - 2 * m)


def _pick(among: Sequence[int], cands: list[tuple[int, int, float]], samples: int) -> list[int]:
    """Indices into `cands` of the best-scored candidate in each of `samples` runs of
    `among` (in tape order)."""
    if not among:
        return []
    chunks = np.array_split(np.asarray(among, int), min(samples, len(among)))
    return [int(max(c, key=lambda q: cands[q][2])) for c in chunks if len(c)]


def _joint_shift(
    lv: dsc.GrayVideo,
    path: list[int | None],
    bufs: dict[str, np.ndarray],
    costs: temporal.PathCosts,
    forward: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> tuple[tuple[float, float], np.ndarray] | None:
    """The shift e (tape px) of the geometry under which the whole tape is best explained,
    and the weighed scores it was chosen by there (the last pass's, with the sharp part
    modelled at e); None: no shift. `rows`: the tape frames with sharp descriptors (None: all).

    Within one shot, a slow pan matched a frame off and a geometry off by that frame's
    motion look alike, so a path and a geometry can be wrong together (the spatial samples
    sit on a few frames, whose match may be the one off). Across the tape they cannot: other
    shots move otherwise, and a path a frame off in one shot only needs a repeat or a drop
    that the others do not. So the sharp similarity of every band pair is modelled as a
    quadratic function of e (from a 5-point stencil: the tape's sharp descriptors shifted by
    one step of their grid), and e is the shift whose best path scores highest (a pattern
    search from 0). The sharp similarity counts at its level there (how well the picture
    fits), not only its differences within a row. Measured on 16 benchmark tapes (seeds
    0/3/7, PAL and crf 45): geometric error 0.196 -> 0.116 px on PAL (worst 0.283 ->
    0.165), and the seed-7 slow PAL tape's path 0.690 -> 1.000 (its geometry was a frame's
    motion off in one shot, and the path with it)."""
    # `fixed`: the last pass's scores but their sharp part, which is remade for each shift
    lq_s, gt_s, fixed = bufs["sharp_lq"], bufs["sharp_gt"], bufs["scores"]
    fw, fh, cw, ch = (float(v) for v in bufs["sharp_grid"])
    w, h = int(fw), int(fh)
    # (the GT frames described for some of the tape's only: those of the bands they were made for)
    centre = temporal.fill_centre(path, len(gt_s)) if rows is None else bufs["sharp_centre"]
    band = BANDS[-1]
    lag_step = np.einsum("ij,ij->i", gt_s[1:], gt_s[:-1])
    s0, sxp, sxm, syp, sym = _stencil(lq_s, gt_s, (w, h), centre, band, rows)
    outside = s0 <= -1
    bx, by = (sxp - sxm) / np.float32(2 * cw), (syp - sym) / np.float32(2 * ch)
    hx, hy = (sxp + sxm - 2 * s0) / np.float32(cw * cw), (syp + sym - 2 * s0) / np.float32(ch * ch)
    del sxp, sxm, syp, sym

    def sharp(e: tuple[float, float]) -> np.ndarray:
        """The lagged sharp similarity under shift e, by the quadratic model."""
        ex, ey = (np.float32(v) for v in e)
        s2 = s0 + bx * ex + by * ey + np.float32(0.5) * (hx * (ex * ex) + hy * (ey * ey))
        s2[outside] = -1.0
        if rows is not None:  # the frames without sharp descriptors: the same for every e
            s2[~rows] = 0.0
        return _lagged(s2, lv.key, gt_s, lag_step, forward, rows)

    seen: dict[tuple[float, float], float] = {}
    # the shifts not scored yet are scored together (`temporal.path_scores`), this many at once
    at_once = max(1, min(9, JOINT_BATCH_BYTES // max(1, 4 * fixed.size)))

    def weighed(e: tuple[float, float]) -> np.ndarray:
        """The scores a path is chosen by under shift e."""
        return _weigh(fixed + np.float32(SHARP_WEIGHT) * sharp(e), lv.key, costs.null)

    def score_all(es: list[tuple[float, float]]) -> None:
        new = [e for e in dict.fromkeys(es) if e not in seen]
        for a in range(0, len(new), at_once):
            part = new[a : a + at_once]
            stack = np.empty((len(part), *fixed.shape), np.float32)
            for q, e in enumerate(part):
                stack[q] = weighed(e)
            seen.update(zip(part, temporal.path_scores(stack, costs)))

    # a pattern search: the best of the point and its 8 neighbours at JOINT_GRID until the
    # point stays, then once at half the step (down to 0.05 px: 0.964 -> 0.842 on the seed-3
    # slow PAL tape, 0.913 -> 0.605 on a crf-45 one)
    best, step = (0.0, 0.0), JOINT_GRID
    for _ in range(8):
        ring = [
            (round(best[0] + a * step, 4), round(best[1] + b * step, 4))
            for a in (-1, 0, 1)
            for b in (-1, 0, 1)
            if max(abs(best[0] + a * step), abs(best[1] + b * step)) <= JOINT_RANGE
        ]
        score_all(ring)
        new = max(ring, key=seen.__getitem__)
        if new == best:
            if step < JOINT_GRID:
                break
            step /= 2
        best = new
    # (beyond JOINT_REPASS the caller remakes the last pass from descriptors through the
    # shifted geometry, not from the model: its scores from the model lost 11% of frames on
    # one of 16 tapes)
    return None if best == (0.0, 0.0) else (best, weighed(best))


def _stencil(
    lq: np.ndarray,
    gt: np.ndarray,
    size: tuple[int, int],
    centre: np.ndarray,
    band: int,
    rows: np.ndarray | None,
) -> list[np.ndarray]:
    """`_joint_shift`'s stencil: the band similarities of the tape's sharp descriptors `lq`
    (n, h w; images of `size`, w by h) moved one grid step, by (0, 0), (1, 0), (-1, 0),
    (0, 1) and (0, -1), against the GT's `gt` (m, h w), on the grid less its border. The
    descriptors are linear and shift-invariant filters of the frames, so a whole-step shift
    is a shift of the descriptor images: no resampling, no new descriptors.

    With the GT's border zeroed (for the products only, then put back: `gt` is as it was),
    the sum over the grid less its border is one over a run of the rows as they lie (from
    the second row's second value to the last row but one's last but one, the border
    columns between counting 0), and a shift by (dx, dy) that run of the tape's rows moved
    by dy w + dx: views, which the products read as they lie (crops of the images were
    copied block by block, 2.4 GB for a 30 s tape: 0.4 CPU-s of 1.3; the same sums, to the
    float rounding of their order)."""
    w, h = size
    g3 = gt.reshape(len(gt), h, w)
    edges = [g3[:, 0].copy(), g3[:, -1].copy(), g3[:, :, 0].copy(), g3[:, :, -1].copy()]
    a, b = w + 1, (h - 1) * w - 1
    try:
        g3[:, 0], g3[:, -1], g3[:, :, 0], g3[:, :, -1] = 0, 0, 0, 0
        return temporal.band_similarities(
            [
                lq[:, a + dy * w + dx : b + dy * w + dx]
                for dx, dy in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))
            ],
            gt[:, a:b],
            centre,
            radius=band,
            rows=rows,
        )
    finally:
        g3[:, 0], g3[:, -1] = edges[0], edges[1]
        g3[:, :, 0], g3[:, :, -1] = edges[2], edges[3]


def _fresh(key: np.ndarray | None, n: int) -> np.ndarray:
    """(n,) how free of encoder lag each tape frame is: 1 for an intra-coded frame, then
    FRESH_DECAY per inter-coded frame after it, 0 past FRESH_AFTER."""
    out = np.zeros(n)
    if key is None or len(key) != n:
        return out
    for k in np.nonzero(key)[0]:
        for d in range(FRESH_AFTER + 1):
            if k + d < n and (d == 0 or not key[k + d]):
                out[k + d] = max(out[k + d], FRESH_DECAY**d)
    return out


def _reach(shifts: dict[int, tuple[float, float]], reach: int) -> dict[int, tuple[float, float]]:
    """The measured shifts to a sample's neighbours (GT px, by frame offset), and beyond them
    up to `reach` frames either side at their mean motion per frame (a pan's is steady over a
    few frames). A temporal match can be several frames off in a slow pan (the intra-coded
    tape frames the samples favour are matched by descriptors that barely change there), and
    each frame off moves the registered geometry by the pan's motion: with candidates that
    far, the shots still agree on one geometry (a still or a crawl, whose candidates all
    coincide, anchors it). Measured: a crf-45 tape whose samples sat 4 frames off in a
    0.3 tape px per frame pan, 1.33 -> 0.80 px."""
    if reach <= 1 or not shifts:
        return shifts
    v = np.mean([np.array(d) / dj for dj, d in shifts.items()], axis=0)
    out = dict(shifts)
    for dj in range(-reach, reach + 1):
        if dj != 0 and dj not in out:
            out[dj] = (float(v[0] * dj), float(v[1] * dj))
    return out


def _neighbour_shifts(gv: dsc.GrayVideo, j: int) -> dict[int, tuple[float, float]]:
    """How far the GT picture moves (GT px) from frame j to each kept neighbour."""
    out = {}
    for dj in NEIGHBOURS:
        if j + dj in gv.kept:
            dx, dy = spatial.content_shift(gv.kept[j], gv.kept[j + dj])
            out[dj] = (dx / gv.kept_scale, dy / gv.kept_scale)
    return out


def _fine(
    lv: dsc.GrayVideo,
    gv: dsc.GrayVideo,
    t: np.ndarray,
    box: tuple[float, float, float, float],
    bufs: dict[str, np.ndarray] | None = None,
    sharp: bool = False,
    rows: np.ndarray | None = None,
    centre: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fine descriptors of both videos on one grid over the tape's picture (tape geometry),
    written into `bufs` (reused by the next round); `sharp`: from the frames kept at working
    size (all of them, see `_sharp_ready`), on a grid as fine as the tape. `rows` (sharp
    only): the tape frames to describe (None: all), and then the GT frames of their bands
    (BANDS[-1] around `centre`) only; the other rows are zeros or left from before."""
    x0, y0, x1, y1 = spatial.picture_box(t, (gv.width, gv.height), (lv.width, lv.height))
    x0, y0 = max(x0, box[0]), max(y0, box[1])
    x1, y1 = min(x1, box[0] + box[2]), min(y1, box[1] + box[3])
    mx, my = 0.03 * (x1 - x0), 0.03 * (y1 - y0)
    x0, x1, y0, y1 = x0 + mx, x1 - mx, y0 + my, y1 - my
    bufs = {} if bufs is None else bufs
    # (sharp: a step of the tape's working size, `LQ_WORK_WIDTH`)
    fw = int(round((x1 - x0) * lv.kept_scale)) if sharp else FINE_WIDTH
    fh = max(8, int(round(fw * (y1 - y0) / max(1.0, x1 - x0))))
    g = np.array([[(x1 - x0) / fw, 0, x0], [0, (y1 - y0) / fh, y0], [0, 0, 1.0]])
    if sharp:  # every frame at hand at working size: finer descriptors tell slow pans apart
        lq_src: Any = [lv.kept[k] for k in range(lv.frames)]
        gt_src: Any = [gv.kept[k] for k in range(gv.frames)]
        m_lq = dsc.scale_matrix(lv.kept_scale) @ g
        m_gt = dsc.scale_matrix(gv.kept_scale) @ np.linalg.inv(t) @ g
        bufs["sharp_grid"] = np.array([fw, fh, g[0, 0], g[1, 1]])  # size, tape px per step
    else:
        lq_src, gt_src = lv.small, gv.small
        m_lq = dsc.scale_matrix(lv.small_scale) @ g
        m_gt = dsc.scale_matrix(gv.small_scale) @ np.linalg.inv(t) @ g
    only_lq = only_gt = None
    if sharp and rows is not None and centre is not None:
        only_lq = np.flatnonzero(rows)
        c = np.round(centre[rows]).astype(int)
        near = np.zeros(gv.frames + 1, int)  # +1 at each band's start, -1 past its end
        np.add.at(near, np.clip(c - BANDS[-1], 0, gv.frames), 1)
        np.add.at(near, np.clip(c + BANDS[-1] + 1, 0, gv.frames), -1)
        only_gt = np.flatnonzero(np.cumsum(near)[:-1] > 0)
    # The tape's descriptors depend on the grid only: where the last call's grid was this one
    # (the next round's geometry often puts the picture's edges where they were) and it
    # described these frames, they are at hand.
    described = np.ones(lv.frames, bool)
    if only_lq is not None:
        described[:] = False
        described[only_lq] = True
    same = (
        "lq" in bufs
        and np.array_equal(bufs["grid"], (x0, y0, x1, y1))
        and bool(np.all(bufs["lq_rows"][described]))
    )
    with ThreadPoolExecutor(2) as pool:  # OpenCV and numpy release the GIL: two halves each
        if not same:
            if not sharp:  # (each frame's contrast too: `_dim_fill`)
                bufs["lq_norm"] = np.zeros(lv.frames, np.float32)
            norms = None if sharp else bufs["lq_norm"]
            bufs["lq"] = dsc.fine(lq_src, m_lq, (fw, fh), bufs.get("lq"), pool, only_lq, norms)
            bufs["lq_rows"] = described
            bufs["grid"] = np.array([x0, y0, x1, y1])
        if not sharp:
            bufs["gt_norm"] = np.zeros(gv.frames, np.float32)
        norms = None if sharp else bufs["gt_norm"]
        bufs["gt"] = dsc.fine(gt_src, m_gt, (fw, fh), bufs.get("gt"), pool, only_gt, norms)
    return bufs["lq"], bufs["gt"]


def _margins(
    s: np.ndarray, path: list[int | None], repeats: np.ndarray | None = None
) -> np.ndarray:
    """(n,) by how much each tape frame's match beats its GT neighbours in the similarity
    `s`; NaN where it has none (no GT, or the GT's first or last frame). `repeats` (n_gt - 1,)
    bool: GT frame j + 1 is frame j again (a freeze: either is right, so such a neighbour is
    no rival, and a match inside a freeze is not counted)."""
    m = s.shape[1]
    out = np.full(len(path), np.nan, np.float32)
    i = np.array([k for k, j in enumerate(path) if j is not None and 0 < j < m - 1], int)
    if i.size:
        j = np.array([path[k] for k in i], int)
        left, right = s[i, j - 1], s[i, j + 1]
        if repeats is not None and len(repeats) == m - 1:
            left = np.where(repeats[j - 1], -np.inf, left)
            right = np.where(repeats[j], -np.inf, right)
        rival = np.maximum(left, right)
        out[i] = np.where(np.isfinite(rival), s[i, j] - rival, np.nan)
    return out


def _repeats(gv: dsc.GrayVideo) -> np.ndarray:
    """(n - 1,) bool: GT frame j + 1 is frame j again, within its encoder's noise (mean
    absolute difference <= REPEAT_TOL grey levels at working size where both are kept, else
    small). Measured at working size: a freeze of a 720p crf-16 GT 0.0002-0.02 (a few pixels a
    level off), stills of the procedural slow clips 0.003-0.055, their slowest crawls 0.086
    and up, real footage's least change 0.11."""
    import cv2

    out = np.zeros(max(0, gv.frames - 1), bool)
    for j in range(gv.frames - 1):
        a, b = gv.kept.get(j), gv.kept.get(j + 1)
        if a is None or b is None:
            a, b = gv.small[j], gv.small[j + 1]
        out[j] = cv2.norm(a, b, cv2.NORM_L1) <= REPEAT_TOL * a.size
    return out


def _unsure(margins: np.ndarray) -> float:
    """The share of the path's matches that beat both GT neighbours by less than
    UNSURE_MARGIN (`_margins` of the fine similarity): a slow pan, woven or heavily
    compressed frames, what the sharp pass may settle (not a freeze: see `_repeats`).
    Measured on 40 real-footage tapes and 36 procedural ones: procedural slow and pans tapes
    0.77-1.0 (without the sharp pass 0.38-0.96 of frames right, with it up to 1.0); real
    footage 0-0.29, 21 tapes within 0.03, where the pass changed three paths: 0.997 -> 1.000,
    0.999 -> 1.000, 1.000 -> 0.999 (pulldown: 0.15-0.2, one tape 0.968 without it, 0.998 with).
    Skipping the pass (and the joint shift) halves the time of a 30 s tape."""
    counted = margins[~np.isnan(margins)]
    return float(np.mean(counted < UNSURE_MARGIN)) if counted.size else 0.0


def _sharp_rows(margins: np.ndarray) -> np.ndarray | None:
    """The tape frames the sharp pass describes: the unsure ones and SHARP_REACH either side
    (a frame between two sure ones is held by them), or all (None) when those are more than
    SHARP_ALL of the tape. Measured on the real-footage tapes that need the pass (0.06-0.65 of
    their frames; 0.99-1.00 right either way) it took 30 s ones from 5.8-6.4 s to 3.7-4.7 s;
    on procedural slow pans (0.82-0.97) it lost frames the whole pass gets right (1.000 ->
    0.695 on one tape: the sure frames of a slow pan are not all right, and the joint shift
    reads the geometry from fewer frames)."""
    rows = _near(margins < UNSURE_MARGIN, SHARP_REACH)  # (NaN: no match, not a seed)
    return rows if rows.mean() <= SHARP_ALL else None


def _near(seeds: np.ndarray, reach: int) -> np.ndarray:
    """(n,) bool: within `reach` frames of a True in `seeds`."""
    out = seeds.copy()
    for d in range(1, reach + 1):
        out[d:] |= seeds[:-d]
        out[:-d] |= seeds[d:]
    return out


def _sharp_ready(lv: dsc.GrayVideo, gv: dsc.GrayVideo) -> bool:
    """Every frame of both videos kept at working size (within their memory budgets)."""
    return SHARP and len(gv.kept) == gv.frames and len(lv.kept) == lv.frames


def _relocked(
    lv: dsc.GrayVideo,
    gv: dsc.GrayVideo,
    mapping: list[int | None],
    conf: list[float],
    coarse: list[int | None],
    t: np.ndarray,
    box: tuple[float, float, float, float],
    mask: np.ndarray | None,
    choose: Callable[[np.ndarray], list[int | None]],
    settle: Callable[[list[int | None], np.ndarray], np.ndarray | None],
    forward: np.ndarray | None,
    null: float,
    min_confidence: float,
) -> list[dict[str, Any]]:
    """Stretches of the tape whose picture moved (a capture re-locked part-way: a shift of a
    few pixels) find no match through the tape's geometry, their fine descriptors sampling
    the GT off by the move; the geometry follows the longer part, the other goes null. Each
    unmatched stretch of RELOCK_RUN seconds or more (or RELOCK_SHARE of the tape; the head
    too, which a moved first part joins) is registered on its coarse path (small descriptors
    hold through such a move): where RELOCK_SAMPLES registrations or more (ECC above
    RELOCK_SCORE) put the picture more than RELOCK_MOVE px and twice their scatter from the
    tape's geometry, the fine passes run again through theirs, `settle` (the spatial stage on
    the stretch's own path) makes it exact, a last pass follows it, and the stretch's frames
    take their matches (in `mapping` and `conf`, in place; from the match before the stretch
    on, to the one after it). Returns the segments (`from_frame`, `transform`: GT full pixel
    -> tape pixel) where a stretch moved, else []. A stretch of another programme, or of
    noise, registers nowhere alike and stays null."""
    n = len(mapping)
    least = max(int(RELOCK_RUN * lv.fps), int(RELOCK_SHARE * n), 2)
    runs, start = [], None
    for i, j in enumerate([*mapping, 0]):
        if j is None and start is None:
            start = i
        elif j is not None and start is not None:
            if i - start >= least:
                runs.append((start, i))
            start = None
    if not runs:
        return []
    gt_size = (gv.width, gv.height)
    sw, sl = dsc.scale_matrix(gv.kept_scale), dsc.scale_matrix(lv.kept_scale)
    crop, w0 = _ecc_crop(lv, box), _working(lv, gv, t)

    def fine_path(t2: np.ndarray, path: list[int | None], bands: Sequence[int]) -> tuple:
        bufs: dict[str, np.ndarray] = {}
        for band in bands:
            lq_f, gt_f = _fine(lv, gv, t2, box, bufs)
            s = temporal.band_similarity(lq_f, gt_f, temporal.fill_centre(path, gv.frames), band)
            path = choose(_weigh(_lagged(s, lv.key, gt_f, forward=forward), lv.key, null))
        return path, s

    moved: list[tuple[int, int, np.ndarray]] = []
    for a, b in runs:
        pairs = [(i, coarse[i]) for i in range(a, b) if coarse[i] in gv.kept and i in lv.kept]
        if len(pairs) < RELOCK_SAMPLES:
            continue
        picks = np.linspace(0, len(pairs) - 1, min(len(pairs), 2 * RELOCK_SAMPLES)).astype(int)
        chosen = [pairs[q] for q in dict.fromkeys(picks.tolist())]
        with ThreadPoolExecutor(WORKERS) as pool:
            found = pool.map(
                lambda p: spatial.ecc_register(lv.kept[p[0]], gv.kept[p[1]], w0, crop, mask=mask),
                chosen,
            )
            est = [
                spatial.Estimate(i, j, np.linalg.inv(sl) @ tw @ sw, score)
                for (i, j), (tw, score) in zip(chosen, found)
                if score > RELOCK_SCORE
            ]
        if len(est) < RELOCK_SAMPLES:
            continue
        t2, spread = spatial.combine(est, gt_size)
        if spatial.grid_error(t2, t, gt_size) <= max(RELOCK_MOVE, 2 * spread):
            continue
        # (registrations on a coarse path a frame or two off in a pan scatter by its motion:
        # the fine passes through their median, then the spatial stage on that path)
        path, s = fine_path(t2, coarse, BANDS)
        own = [j if a <= i < b else None for i, j in enumerate(path)]
        settled = settle(own, s) if sum(j is not None for j in own) >= RELOCK_SAMPLES else None
        if settled is not None:  # (else the registrations' median stands)
            t2 = settled
            path, s = fine_path(t2, path, BANDS[-1:])
        before = max((j for j in mapping[:a] if j is not None), default=-1)
        after = next((j for j in mapping[b:] if j is not None), gv.frames)
        last, took = before, 0
        for i in range(a, b):
            j = path[i]
            if j is None or not last <= j < after or s[i, j] < min_confidence:
                continue
            mapping[i], conf[i], last, took = j, float(s[i, j]), j, took + 1
        if took:
            moved.append((a, b, t2))
    if not moved:
        return []
    starts = {0: t}  # (from_frame -> transform; a later entry of one frame replaces an earlier)
    for a, b, t2 in moved:
        starts[a] = t2
        if b < n:
            starts[b] = t
    return [{"from_frame": k, "transform": v.tolist()} for k, v in sorted(starts.items())]


def _segments(est: list[spatial.Estimate], gt_size: tuple[int, int]) -> list[dict[str, Any]]:
    """Per-segment transforms when the geometry drifts along the tape (halves disagree > 1 px)."""
    if len(est) < 6:
        return []
    est = sorted(est, key=lambda e: e.lq_frame)
    half = len(est) // 2
    a, _ = spatial.combine(est[:half], gt_size)
    b, _ = spatial.combine(est[half:], gt_size)
    if spatial.grid_error(a, b, gt_size) <= 1.0:
        return []
    return [
        {"from_frame": est[0].lq_frame, "transform": a.tolist()},
        {"from_frame": est[half].lq_frame, "transform": b.tolist()},
    ]


def _align_kw(lq: str | os.PathLike[str], gt: str | os.PathLike[str], kw: dict) -> Alignment:
    return align(lq, gt, **kw)
