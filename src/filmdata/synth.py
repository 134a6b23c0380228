"""`filmdata synth`: clean clips in, paired (degraded, clean) windows out, as Parquet shards.

The stages, as in img2dataset: the *planner* and the *reader* (`windows.py`) list every window
before anything runs and cut each from frames decoded once; the *degrader* batches windows on
the device; the *writer* encodes images in threads (the clean GT while its batch is degraded)
and writes each shard atomically with its record (`shards.py`). Decoding runs ahead: on a fresh
local run in a process forked before torch loads (`_fork_reader.py`), which also plans the
windows meanwhile; else in a thread.

Every random choice of a window (its crop, its degradation) comes from (seed, window id) only,
never from one generator advanced across windows, so a resumed run gives the same bytes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._torch_start import await_preload, gc_frozen, no_gc, preload_torch
from .backend import check_backend
from .errors import FilmdataError, ItemsFailed, MediaError, RefusedError
from .fingerprint import input_content, replaced
from .gt_frames import (
    RECORDS,
    Held,
    content_keys,
    frames_record,
    held_by_others,
    json_record,
    refuse_conflict,
)
from .windows import (
    GT_KINDS,
    Clip,
    Window,
    catalog_clips,
    cut_window,
    holds,
    input_clips,
    plan,
    plan_honouring,
    sources_not_cut,
    window_pictures_or_failures,
)

if TYPE_CHECKING:
    from ._fork_reader import ForkReader

__all__ = ["CONFIG", "Clip", "Window", "plan", "synth"]

CONFIG = "synthetic"
# Parameters that decide the rows: a resume must match them all. Not the templates' folder
# (their fingerprint decides; the same pack in a moved checkout makes the same rows), nor how
# the preset was named (`--preset film` or the path of that file: its sha256 decides), the
# batch size, nor the device (each row records its own, and replays there).
ROW_PARAMS = (
    "inputs",
    "scenes",
    "clip_len",
    "size",
    "stride",
    "seed",
    "val_fraction",
    "image_format",
    "rows_per_shard",
    "sharpen_gt",
    "max_windows",
    "kinds",
    "preset_sha256",
    "templates_fingerprint",
)
# And each input file's content (`fingerprint`): compared file by file, where recorded.
INPUT_CONTENT = "input_content"


# The degrader ---------------------------------------------------------------------------------


def pick_device(device: str = "auto") -> str:
    """The device a run degrades on, as a string (`devices.pick_device`)."""
    from .devices import pick_device as pick

    return str(pick(device))


@dataclass
class Degrader:
    """The preset, the template bank and the device; degrades GT windows."""

    preset: Any
    bank: Any
    device: str
    seed: int
    sharpen_gt: bool = False

    @classmethod
    def load(
        cls,
        templates: str | os.PathLike[str],
        preset: str,
        device: str,
        seed: int,
        sharpen_gt: bool = False,
    ) -> Degrader:
        await_preload()
        with no_gc():  # torch's import makes a million objects and no garbage
            from .degrade import load_preset, load_templates

        dev = pick_device(device)
        tdir = Path(templates)
        _refuse_unless_templates(templates, tdir)
        return cls(load_preset(preset, tdir), load_templates(tdir, dev), dev, seed, sharpen_gt)

    def preset_sha256(self) -> str:
        """The sha256 of the preset as recorded (`params["preset_sha256"]`): an edited preset
        file makes other rows, so a resume or a repair compares it."""
        text = json.dumps(self.preset.to_json(), sort_keys=True).encode()
        return hashlib.sha256(text).hexdigest()

    def prepare(self, win: Window, gt: np.ndarray) -> tuple[Any, Any]:
        """(GT float (T, C, S, S), its Degradation) of a window's GT uint8 (T, S, S, 3)."""
        from .degrade import frames_to_clip, sample_degradation

        t, h, w = gt.shape[:3]
        deg = sample_degradation(
            self.preset, seed=self.seed, key=win.id, t=t, h=h, w=w, bank=self.bank
        )
        return frames_to_clip(gt), deg

    def degrade(self, x: Any, deg: Any) -> np.ndarray:
        """LQ of one window (T, C, H, W): (T, C, H, W) float32 in [0, 1], on the CPU (see
        `lq_to_uint8`). Alone in its batch, as `replay_row` degrades it."""
        import torch

        from .degrade import apply_degradation

        with torch.no_grad():  # x is ours to overwrite
            lq = apply_degradation(x[None].to(self.device), [deg], self.bank, inplace=True)
        return lq[0].float().cpu().numpy()


def lq_to_uint8(x: np.ndarray) -> np.ndarray:
    """(T, C, H, W) float in [0, 1] to (T, H, W, 3) uint8, rounding to nearest (OpenCV's
    saturate_cast). The writer and `replay_row` both use it, so replays match bit for bit."""
    from .degrade.params import planes_to_frames

    return planes_to_frames(x)


SHARPEN = {"sigma": 1.0, "amount": 0.5}  # unsharp mask, as Real-ESRGAN trains with


def unsharp(frames: np.ndarray) -> np.ndarray:
    """Unsharp mask: out = x + amount * (x - gaussian(x, sigma)), per frame, uint8."""
    import cv2

    out = np.empty_like(frames)
    for i, f in enumerate(frames):
        blur = cv2.GaussianBlur(f, (0, 0), SHARPEN["sigma"])
        out[i] = cv2.addWeighted(f, 1 + SHARPEN["amount"], blur, -SHARPEN["amount"], 0)
    return out


# The writer and the whole stage ---------------------------------------------------------------


#: Seconds the reader may take to decode one window before the run fails (a decoder stuck on
#: hostile media must not hang a run; the reader is a daemon thread and dies with the process,
#: or a forked process that the run kills and reaps).
DECODE_TIMEOUT = 600.0


class Prefetch:
    """An iterator over `it`, run in a thread started at once, up to `depth` items ahead
    (decoding overlaps start-up, degrading and encoding). `close()` stops the thread, whether
    or not anything was taken.

    Raises (from `next`):
        ItemsFailed: the thread produced nothing for `timeout` seconds (exit 1: the shards
            written so far stay, a re-run resumes).
    """

    _DONE = object()

    def __init__(
        self,
        it: Iterator[Any],
        depth: int,
        timeout: float | None = None,
        backlog: Callable[[Any, int], Any] | None = None,
    ):
        import queue
        import threading

        self.timeout = timeout
        self.q: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.finished = False
        self.backlog = backlog
        threading.Thread(target=self._work, args=(it,), daemon=True).start()

    def _work(self, it: Iterator[Any]) -> None:
        import queue

        try:
            for item in it:
                if self.backlog is not None:
                    # In this thread: what an item becomes, given the items waiting before it.
                    item = self.backlog(item, self.q.qsize())
                while not self.stop.is_set():
                    try:
                        self.q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self.stop.is_set():
                    return
            self.q.put(self._DONE)
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
            self.q.put(e)

    def __iter__(self) -> Prefetch:
        return self

    def __next__(self) -> Any:
        import queue

        if self.finished:
            raise StopIteration
        try:
            item = self.q.get(timeout=self.timeout)
        except queue.Empty:
            self.close()
            raise ItemsFailed(
                f"decoding a window took longer than {self.timeout:g} s (hostile or broken "
                "media?); the shards written so far are kept, a re-run resumes"
            ) from None
        if item is self._DONE:
            self.close()
            raise StopIteration
        if isinstance(item, BaseException):
            self.close()
            raise item
        return item

    def close(self) -> None:
        self.finished = True
        self.stop.set()


def _reader(windows: Sequence[Window], clip_len: int, size: int, frame_pixels: int) -> Prefetch:
    """(window, its decoded pictures or its cut GT frames, or the `MediaError` that kept it
    from being made) for `windows` in order, decoded in a thread started now.

    The first windows waiting in line stay decoded pictures (the workers cut their crops,
    `cut_window`); past those, when the workers do not keep up (while torch loads, or when the
    degradation is the bottleneck), the reader cuts the crops itself. A cut window holds a
    fraction of the memory of its pictures (256^2 crops of 720p frames: a seventh), so decoding
    goes on far ahead within the same memory, and the cutting goes to whichever side has time.
    """
    per_window = clip_len * frame_pixels * 3 // 2  # 4:2:0 pictures
    pictures = max(1, min(2 * _cpu_workers() + 2, (128 << 20) // max(1, per_window)))
    cut = _cut_backlog(clip_len, size)

    def backlog(item: tuple[Window, Any], waiting: int) -> tuple[Window, Any]:
        w, pics = item
        if waiting < pictures or isinstance(pics, MediaError):
            return item
        try:
            return (w, cut_window(w, pics, size))
        except MediaError as e:  # the window's failure, handed on as its item
            return (w, e)

    return Prefetch(
        iter(window_pictures_or_failures(windows, clip_len, size, _cpu_workers())),
        pictures + cut,
        DECODE_TIMEOUT,
        backlog,
    )


def _cut_backlog(clip_len: int, size: int) -> int:
    """How many cut windows a reader may hold ready (256 MB of them, 4 to 1024)."""
    return max(4, min(1024, (256 << 20) // (clip_len * size * size * 3)))


@dataclass(frozen=True)
class _Plan:
    """What the planner made: the clips, their windows by split, the windows left out as
    other configs hold their GT frames in both splits, and the record's `gt_frames`."""

    clips: list[Clip]
    splits: dict[str, list[Window]]
    left_out: int
    gt_frames: dict[str, Any]
    no_validation: list[str]  # why a source has no validation windows (other configs)
    not_cut: list[str]  # the catalog's fetched sources of the kinds with no clips (left out)


def _plan_windows(
    inputs: Sequence[str | os.PathLike[str]],
    root: Path,
    kinds: Sequence[str],
    plan_kw: dict[str, Any],
    scenes: bool = False,
    quiet: bool = True,
    held: Held | None = None,
) -> tuple[_Plan, list[Window]]:
    """(the plan, every window in shard order): from the `--input` files (cut at their scenes
    with `scenes`), or from the catalog's kept clips under `root`; honouring the GT frames
    other configs of the dataset hold (`held`: see `windows.plan_honouring`)."""
    clips = input_clips(inputs, scenes, quiet) if inputs else catalog_clips(root, kinds)
    not_cut = [] if inputs else sources_not_cut(root, kinds)
    keys = content_keys(dict.fromkeys(c.path for c in clips), root)
    left: list[Window] = []
    no_val: list[str] = []
    if held is not None and set(keys.values()) & set(held.keys):
        splits, left = plan_honouring(clips, held, keys, **plan_kw)
        # a source that alone would have validation windows but has none, as other configs
        # hold its frames in train (an export at --val-fraction 0 holds them all so): said
        have = {w.source for w in splits.get("validation", [])}
        alone = _validation_sources(clips, plan_kw)
        no_val = [
            f"source {c.source!r}: config(s) {', '.join(map(repr, held.configs))} hold its GT "
            "frames in train only, and no GT frame is in train of one config and validation "
            "of another; re-make them with --val-fraction > 0 for a validation split of it here"
            for c in {c.source: c for c in clips}.values()
            if keys[c.path] in held.keys and c.source in alone - have
        ]
    else:
        splits = plan(clips, **plan_kw)
    n = plan_kw["clip_len"]
    frames = frames_record(
        (
            (keys[w.path], w.source, split, w.start_frame, w.start_frame + n)
            for split, ws in splits.items()
            for w in ws
        ),
        n,
    )
    planned = _Plan(clips, splits, len(left), frames, no_val, not_cut)
    return planned, [w for ws in splits.values() for w in ws]


def _validation_sources(clips: Sequence[Clip], plan_kw: dict[str, Any]) -> set[str]:
    """The sources that hold validation windows where the clips are planned alone (for a note
    only: where they cannot be, too few windows to split, none)."""
    try:
        return {w.source for w in plan(clips, **plan_kw).get("validation", [])}
    except RefusedError:
        return set()


def _held(dataset: Path, root: Path, overwrite: bool) -> Held:
    """The other configs' GT frames to plan against: on a resume, those the record says the
    plan was made against (the plan must not change under a resumed run: `_check_held` then
    refuses where the others changed since in a way that now leaks); else the others' now."""
    record = json_record(dataset, CONFIG)
    if not overwrite and record is not None and "held" in record:
        return Held.from_dict(record["held"])
    return held_by_others(dataset, CONFIG, root)


def _check_held(dataset: Path, root: Path, frames: dict[str, Any]) -> None:
    """Refuse a plan whose GT frames another config of the dataset now holds in the other
    split: one written since this config was planned (by a filmdata that did not honour it,
    or edited), or written while this run planned."""
    refuse_conflict(
        dataset, CONFIG, frames, root, f"changed since config {CONFIG!r} was planned against them",
        f"pass --overwrite to re-plan {CONFIG!r} against them",
    )  # fmt: skip


def _planning_reader(
    planner: Callable[[], tuple[Any, Sequence[Window]]], clip_len: int, size: int
) -> ForkReader | None:
    """A forked process that plans the windows (`planner`, see `ForkReader.plan`) and decodes
    and cuts them on a core of its own during torch's import, where this process may fork
    (`can_fork`: Linux, no torch, no other thread); else None."""
    from ._fork_reader import ForkReader, can_fork

    if not can_fork():
        return None
    try:
        return ForkReader(
            planner,
            clip_len,
            size,
            slots=_cut_backlog(clip_len, size),
            timeout=DECODE_TIMEOUT,
            cores=_cpu_workers(),
        )
    except OSError:
        # no room for its shared slots (ENOMEM: a --size far beyond any picture asks for
        # hundreds of GB): plan here, where such a --size is refused with its reason
        return None


def _frame_pixels(windows: Sequence[Window]) -> int:
    """The largest frame (width x height) among the windows' first few files, from their
    headers (an estimate of what one decoded picture holds)."""
    from .video import probe

    sizes = [1]
    for path in list(dict.fromkeys(w.path for w in windows))[:8]:
        try:
            p = probe(path, count=False, as_shown=False)  # (a turn keeps the product)
            sizes.append(p.width * p.height)
        except FilmdataError:
            sizes.append(1920 * 1080)  # unreadable: the reader reports it; assume HD meanwhile
    return max(sizes)


def _gt(win: Window, item: Any, size: int) -> np.ndarray:
    """A window's GT frames from what the reader gave: its pictures, or the frames cut already."""
    return item if isinstance(item, np.ndarray) else cut_window(win, item, size)


def _encode_frames(frames: np.ndarray, fmt: str, sharpen: bool = False) -> list[bytes]:
    from .shards import encode_image

    return [encode_image(f, fmt) for f in (unsharp(frames) if sharpen else frames)]


def _encode_lq(
    lq: np.ndarray, deg: Any, fmt: str, sharpen: bool, device: str
) -> tuple[list[bytes], str]:
    """In an encode thread: LQ float to uint8 to images, and the degradation to JSON (with
    the kind of device that made it: `replay_row` redoes it there)."""
    rec = deg.to_json()
    rec["device"] = device.split(":")[0]
    if sharpen:
        rec["gt_sharpen"] = dict(SHARPEN)
    text = json.dumps(rec, sort_keys=True, separators=(",", ":"))
    return _encode_frames(lq_to_uint8(lq), fmt), text


def _row(win: Window, gt: list[bytes], lq: list[bytes], deg: str) -> dict[str, Any]:
    return {
        "id": win.id,
        "source": win.source,
        "clip": win.clip,
        "start_frame": win.start_frame,
        "fps": win.fps,
        "crop": dict(zip("xywh", win.crop)),
        "gt": gt,
        "lq": lq,
        "degradation": deg,
        "origin": "synthetic",
    }


@dataclass(frozen=True)
class ShardJob:
    split: str
    index: int
    n: int
    windows: tuple[Window, ...]

    @property
    def file(self) -> str:
        from .shards import shard_name

        return shard_name(self.split, self.index, self.n)


def shard_jobs(splits: dict[str, list[Window]], rows_per_shard: int) -> list[ShardJob]:
    """The shards of every split, in order; shard K holds windows [K*R, (K+1)*R) of its split."""
    jobs = []
    for split, wins in splits.items():
        n = max(1, -(-len(wins) // rows_per_shard))
        for k in range(n):
            jobs.append(
                ShardJob(split, k, n, tuple(wins[k * rows_per_shard : (k + 1) * rows_per_shard]))
            )
    return jobs


def make_shards(
    dataset: Path,
    jobs: Sequence[ShardJob],
    degrader: Degrader,
    *,
    clip_len: int,
    size: int,
    batch_size: int,
    image_format: str,
    record: dict[str, Any],
    quiet: bool = True,
    save_record: bool = True,
    reader: Prefetch | ForkReader | None = None,
) -> int:
    """Make each job's shard: decode, degrade, encode, write atomically, and add it to the
    record (saved to disk unless `save_record` is False: a Ray worker hands its entry to the
    driver, which alone writes the record). Returns the windows made.

    A window whose media fails (`MediaError`: it does not decode, its crop is not in its
    frames) does not stop the run: it is left out of its shard and named, with the reason,
    in the entry's `failed` (see `failed_windows`); the other windows are made.

    Each window is degraded as soon as it is decoded, by a worker thread that also encodes its
    images (torch and OpenCV single-threaded inside each: small frames gain nothing from
    intra-op threads, and ops release the GIL). On the CPU there is one worker per core; on a
    GPU `batch_size` workers keep that many windows on the device at once. A window is always
    degraded alone, as `replay_row` redoes it: CUDA kernels may sum in another order for
    another batch size (a batched run on an H100 replayed with 1-level differences), so a
    batch of one is what keeps replay bit-exact on every device.
    """
    from tqdm import tqdm

    from .shards import ShardWriter, config_dir, write_record

    folder = config_dir(dataset, CONFIG)
    all_windows = [w for j in jobs for w in j.windows]
    from ._memory import keep_freed_memory

    keep_freed_memory()  # freed blocks and grown thread heaps kept (a Ray task calls this too)
    workers = _cpu_workers()
    if degrader.device != "cpu":
        workers = max(2, min(batch_size, 2 * workers))
    # The reader decodes the windows (started early by `synth`, maybe forked; or a thread now).
    ahead = reader or _reader(all_windows, clip_len, size, _frame_pixels(all_windows))
    bar = tqdm(total=len(all_windows), desc="synth", unit="win", disable=quiet)
    sharpen = degrader.sharpen_gt

    def write(job: ShardJob, parts: queue.Queue[Future]) -> int:
        # In the writer thread: a shard's rows are written as they come (in order), and the
        # shards one at a time, each recorded when complete. A window whose media failed is
        # left out and named in the entry: its ids then differ from the plan's, so a re-run
        # makes that shard again (a file mended since is read again) and reports it again.
        failed: dict[str, str] = {}
        with ShardWriter(folder / job.file) as shard:
            for w in job.windows:
                made = parts.get().result()
                if isinstance(made, _Failed):
                    failed[w.id] = made.reason
                else:
                    shard.add([_row(w, *made)])
        entry = shard_entry(shard.entry, job, failed)
        record["shards"][job.file] = entry
        if save_record:
            write_record(dataset, CONFIG, record)
        return len(job.windows) - len(failed)

    slots = threading.BoundedSemaphore(2 * workers)

    def made(_: Future) -> None:
        slots.release()
        bar.update(1)

    written: list[Future] = []
    try:
        with (
            _single_threaded(),
            ThreadPoolExecutor(workers) as pool,
            ThreadPoolExecutor(1) as writer,
        ):
            for job in jobs:
                parts: queue.Queue[Future] = queue.Queue()
                written.append(writer.submit(write, job, parts))
                try:
                    for _ in job.windows:
                        win, pictures = next(ahead)
                        slots.acquire()  # at most 2 windows per worker in flight (memory)
                        f = pool.submit(
                            _window, degrader, win, pictures, size, image_format, sharpen
                        )
                        f.add_done_callback(made)
                        parts.put(f)
                except BaseException as e:
                    # The writer waits on this shard's queue: hand it the error, so that it
                    # removes its temporary and ends.
                    failed: Future = Future()
                    failed.set_exception(e)
                    parts.put(failed)
                    raise
                for f in written:
                    if f.done():
                        f.result()  # a writer's error stops the run early
            return sum(f.result() for f in written)
    finally:
        ahead.close()
        bar.close()


def shard_entry(written: dict[str, Any], job: ShardJob, failed: dict[str, str]) -> dict[str, Any]:
    """A shard's record entry: what its writer wrote (`ShardWriter.entry`), the job's split,
    index and windows (`verify --repair` re-makes it from them), and its windows that failed
    with why (`failed_windows`)."""
    entry = dict(written)
    entry.update(split=job.split, index=job.index, windows=[w.to_dict() for w in job.windows])
    if failed:
        entry["failed"] = failed
    return entry


def _cpu_workers() -> int:
    """Degrading threads on the CPU: one per core this process may use (at most 8)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


@dataclass(frozen=True)
class _Failed:
    """A window whose media failed (it did not decode, or its crop is not in its frames):
    left out of its shard and named, with `reason`, in the shard's record entry."""

    reason: str


def _window(
    degrader: Degrader, win: Window, pictures: Any, size: int, fmt: str, sharpen: bool
) -> tuple[list[bytes], list[bytes], str] | _Failed:
    """In a worker thread: one window cut from its decoded pictures, its degradation
    sampled and applied, and both image lists encoded; `_Failed` when its media failed (the
    reader's error, or the cut's)."""
    try:
        if isinstance(pictures, MediaError):
            raise pictures
        gt = _gt(win, pictures, size)
    except MediaError as e:
        why = str(e)
        return _Failed(why if win.id in why else f"{why} (window {win.id})")
    x, deg = degrader.prepare(win, gt)
    lq = degrader.degrade(x, deg)
    gt_images = _encode_frames(gt, fmt, sharpen)
    return (gt_images, *_encode_lq(lq, deg, fmt, sharpen, degrader.device))


class _single_threaded:
    """Torch and OpenCV on one CPU thread each for the run (restored after): the workers are
    the parallelism."""

    def __init__(self) -> None:
        self.saved: tuple[int, int] | None = None

    def __enter__(self) -> None:
        import cv2
        import torch

        self.saved = (torch.get_num_threads(), cv2.getNumThreads())
        torch.set_num_threads(1)
        cv2.setNumThreads(1)

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            import cv2
            import torch

            torch.set_num_threads(self.saved[0])
            cv2.setNumThreads(self.saved[1])


def _refuse_unless_templates(templates: str | os.PathLike[str], tdir: Path) -> None:
    """Refuse a degradations folder (`templates`, at `tdir`) that is not there or is a file."""
    from .paths import refuse_unless_input_folder

    refuse_unless_input_folder(
        tdir, "degradations folder (presets/, templates/)", name=f"--templates {templates}"
    )


def _dataset_dir(root: Path, out: str | os.PathLike[str] | None, name: str | None) -> Path:
    from .paths import datasets_dir, slug_or_refuse

    if out is not None and name is not None:
        raise RefusedError("give --out DIR or --name NAME, not both")
    if out is not None:
        return Path(out).expanduser().resolve()
    return datasets_dir(root) / slug_or_refuse(name or "synth", "--name")


@gc_frozen()
def synth(
    templates: str | os.PathLike[str],
    preset: str = "film",
    inputs: Sequence[str | os.PathLike[str]] = (),
    *,
    out: str | os.PathLike[str] | None = None,
    name: str | None = None,
    root: str | os.PathLike[str] | None = None,
    clip_len: int = 8,
    size: int = 256,
    stride: int | None = None,
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 8,
    val_fraction: float = 0.0,
    image_format: str = "png",
    rows_per_shard: int | None = None,
    sharpen_gt: bool = False,
    max_windows: int | None = None,
    kinds: Sequence[str] = GT_KINDS,
    overwrite: bool = False,
    quiet: bool = False,
    backend: str = "local",
    ray_address: str | None = None,
    scenes: bool = False,
) -> dict[str, Any]:
    """Cut windows from clips, degrade them, and write paired Parquet shards and a card.

    Args:
        templates: the degradations folder (`presets/`, `templates/<kind>/*.png`).
        preset: `film`, `vhs` or a preset YAML file.
        inputs: video files; empty: the catalog's kept clips under `root`.
        scenes: cut each of `inputs` at its scene changes first (the `film` detector: a decode
            of each file), so that no window spans a change of shot; each scene a clip.
        out, name: the dataset folder, or its name under `ROOT/datasets/` (default `synth`).
        root: the data root (catalog, and where `name` lives).
        clip_len: frames per window (T). size: GT/LQ side in pixels.
        stride: frames between window starts (default `clip_len`: no overlap).
        seed: with the window id, decides every crop and degradation.
        device: auto | cpu | cuda[:N]. batch_size: on a GPU, windows on the device at once
            (each degraded alone by its worker thread, as `replay_row` redoes it).
        val_fraction: the share of windows held out as `validation` (by source, clip or stretch).
        image_format: png (lossless) or jpeg. rows_per_shard: default: shards of ~256 MB.
        sharpen_gt: unsharp-mask the GT (recorded in each row's degradation).
        max_windows: keep this many windows, evenly spread over the plan.
        kinds: from the catalog, clips of sources of these kinds (default hd, film, cartoon:
            not vhs captures nor overlays, which are no clean GT).
        overwrite: replace an existing dataset made with other parameters.
        quiet: no progress bar.
        backend: "local" (this process) or "ray" (each shard a Ray task at `ray_address`, with
            a GPU share on CUDA; the same rows, byte for byte).
        ray_address: the Ray cluster (default `$RAY_ADDRESS`; "local" starts one in-process).

    Returns:
        A summary: dataset path, rows per split, shards, windows made and skipped, frames/s;
        clips left out, counted and named (`clips_too_small`, `clips_too_small_ids`: no
        `size` crop in their picture; `clips_too_short`, `clips_too_short_ids`: no window);
        windows left out as other configs hold their GT frames
        (`windows_left_out_across_configs`), and why a source that would have validation
        windows has none (`no_validation_across_configs`: others hold it in train);
        from the catalog, its fetched sources of `kinds` with no clips, left out
        (`sources_not_cut`: never cut, or fetched again with other content since).

    Raises:
        RefusedError: (exit 2) bad options (`scenes` without `inputs` too), no clips, or an
            existing dataset of other parameters (an input file of other content at its path
            among them).
        ItemsFailed: (exit 1) some windows' media failed to decode or cut (each named in its
            shard's record entry, `failed`); the others are made and the card written. Its
            `summary` is what would be returned.
    """
    from ._memory import keep_freed_memory
    from .paths import refuse_unless_folder, resolve_root

    t0 = time.perf_counter()
    if clip_len < 1 or size < 8 or batch_size < 1:
        raise RefusedError(
            f"need --clip-len >= 1, --size >= 8, --batch-size >= 1; got "
            f"{clip_len}, {size}, {batch_size}"
        )
    check_backend(backend)  # Ray missing: refused here, before the dataset's record is written
    if image_format not in ("png", "jpeg"):
        raise RefusedError(f"--image-format must be png or jpeg, got {image_format!r}")
    if stride is not None and stride < 1:
        raise RefusedError(f"--stride must be >= 1, got {stride}")
    if rows_per_shard is not None and rows_per_shard < 1:
        raise RefusedError(f"--rows-per-shard must be >= 1, got {rows_per_shard}")
    if max_windows is not None and max_windows < 1:
        raise RefusedError(f"--max-windows must be >= 1, got {max_windows}")
    if not 0 <= val_fraction < 1:  # (NaN too)
        raise RefusedError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    if scenes and not inputs:  # the catalog's clips are cut at their scenes already (`cut`)
        raise RefusedError(
            "--scenes cuts --input files at their scene changes; with no --input the "
            "catalog's clips are used, already cut by `filmdata cut`: drop --scenes or pass --input"
        )
    root_dir = resolve_root(root)
    dataset = _dataset_dir(root_dir, out, name)
    refuse_unless_folder(
        dataset, "--out" if out is not None else "--name", "a folder for the dataset"
    )
    keep_freed_memory()  # frames and tensors reused, not faulted in afresh
    tdir = Path(templates).expanduser().resolve()
    _refuse_unless_templates(templates, tdir)
    # A fresh local run starts decoding at once, while the degrader loads (torch's import alone
    # takes about a second): every window will be made, in plan order (the shards' order:
    # each split's windows, split after split). Where this process may fork (no thread has
    # started yet: pyarrow's import starts one), a child plans the windows (probing the
    # inputs, ~0.1 s) and decodes them while torch loads here; else they are planned here
    # and a reader thread decodes them.
    held = _held(dataset, root_dir, overwrite)
    planner = functools.partial(
        _plan_windows,
        inputs,
        root_dir,
        kinds,
        dict(
            clip_len=clip_len,
            size=size,
            stride=stride,
            seed=seed,
            val_fraction=val_fraction,
            max_windows=max_windows,
        ),
        scenes,
        quiet,
        held,
    )
    # (`shards.RECORD`, or a `LEGACY_RECORDS` of a dataset made before: `shards` is not
    # imported yet, as pyarrow's import starts threads)
    fresh = overwrite or not any((dataset / "data" / CONFIG / name).exists() for name in RECORDS)
    forked = _planning_reader(planner, clip_len, size) if backend == "local" and fresh else None
    early: Prefetch | ForkReader | None = forked
    planned: _Plan
    if forked is not None:
        preload_torch()
        try:
            planned = forked.plan()
        except BaseException:
            forked.close()
            await_preload()  # an exit while torch's libraries load aborts the interpreter
            raise
    else:
        planned, windows = planner()
        clips = planned.clips
        if backend == "local" and fresh:
            frame = max(c.box[2] * c.box[3] for c in clips)  # active pictures: ~ frame size
            early = _reader(windows, clip_len, size, frame)
        if backend == "local":
            # Only now: the loader's lock is held while torch's libraries load, and every
            # module loaded meanwhile (planning and reading load several) would wait for it.
            preload_torch()
    clips, splits = planned.clips, planned.splits
    try:
        from . import shards

        rows_per_shard = rows_per_shard or shards.default_rows_per_shard(
            clip_len, size, image_format
        )
        preset_ref = (
            str(Path(preset).resolve()) if Path(preset).suffix in (".yaml", ".yml") else preset
        )
        params = {
            "inputs": list(dict.fromkeys(c.path for c in clips)) if inputs else None,
            "scenes": True if inputs and scenes else None,  # (absent from older records)
            "templates": str(tdir),
            "preset": preset_ref,
            "clip_len": clip_len,
            "size": size,
            "stride": stride or clip_len,
            "seed": seed,
            "val_fraction": val_fraction,
            "image_format": image_format,
            "rows_per_shard": rows_per_shard,
            "sharpen_gt": sharpen_gt,
            "max_windows": max_windows,
            "kinds": None if inputs else sorted(kinds),
            INPUT_CONTENT: _input_content(clips, bool(inputs), root_dir),
        }
        jobs = shard_jobs(splits, rows_per_shard)
        folder = shards.config_dir(dataset, CONFIG)
        failed: ItemsFailed | None = None
        try:
            summary = _synth(
                t0,
                root_dir,
                dataset,
                tdir,
                splits,
                params,
                jobs,
                folder,
                early,
                preset_ref=preset_ref,
                device=device,
                seed=seed,
                sharpen_gt=sharpen_gt,
                overwrite=overwrite,
                clip_len=clip_len,
                size=size,
                batch_size=batch_size,
                image_format=image_format,
                quiet=quiet,
                backend=backend,
                ray_address=ray_address,
                gt_frames=planned.gt_frames,
                held=held,
            )
        except ItemsFailed as e:  # windows failed, the others made: their summary too
            if e.summary is None:
                raise
            failed, summary = e, e.summary
        # clips whose picture holds no `size` crop (`holds`): none of their windows is made
        small = [c.clip for c in clips if not holds(c, size)]
        summary["clips_too_small"], summary["clips_too_small_ids"] = len(small), small
        # clips (of a picture that holds one) too short for a window of `clip_len` frames
        short = [c.clip for c in clips if holds(c, size) and c.end - c.start < clip_len]
        summary["clips_too_short"], summary["clips_too_short_ids"] = len(short), short
        # windows whose GT frames other configs of the dataset hold in train and validation
        summary["windows_left_out_across_configs"] = planned.left_out
        summary["no_validation_across_configs"] = planned.no_validation
        summary["sources_not_cut"] = planned.not_cut
        if failed is not None:
            raise failed
        return summary
    finally:
        if early is not None:
            early.close()


def _synth(
    t0: float,
    root_dir: Path,
    dataset: Path,
    tdir: Path,
    splits: dict[str, list[Window]],
    params: dict[str, Any],
    jobs: list[ShardJob],
    folder: Path,
    early: Prefetch | ForkReader | None,
    *,
    preset_ref: str,
    device: str,
    seed: int,
    sharpen_gt: bool,
    overwrite: bool,
    clip_len: int,
    size: int,
    batch_size: int,
    image_format: str,
    quiet: bool,
    backend: str,
    ray_address: str | None,
    gt_frames: dict[str, Any],
    held: Held,
) -> dict[str, Any]:
    """`synth` once the windows are planned (and, on a fresh run, being decoded)."""
    from . import shards

    rows_per_shard = params["rows_per_shard"]
    # Preset and templates are checked before the dataset is touched; a preset or template pack
    # edited since the first run changes the rows, so a resume must not mix the two.
    degrader = Degrader.load(tdir, preset_ref, device, seed, sharpen_gt)
    params["preset_sha256"] = degrader.preset_sha256()
    params["templates_fingerprint"] = degrader.bank.fingerprint()
    with shards.locked(dataset):
        record = shards.read_record(dataset, CONFIG)
        old = record.get("params")
        diff = _other_params(old, params) if old is not None and not overwrite else ""
        if diff:
            raise RefusedError(
                f"{dataset}: a dataset made with other parameters is there "
                f"({diff}); pass --overwrite to replace it, or pick another "
                "--name/--out"
            )
        if old is None and not overwrite:
            # Only a folder holding a filmdata record (a `real` config a pair export made) is
            # added to; any other folder that is not empty is the user's, even with a `data/`
            # in it: its README.md would be replaced and its data/synthetic/ removed.
            if any(dataset.iterdir()) and not shards.is_dataset(dataset):
                raise RefusedError(
                    f"{dataset}: exists and is not a filmdata dataset (no "
                    f"data/<config>/{shards.RECORD}); pick another --name/--out, or pass "
                    "--overwrite"
                )
            if folder.exists() and any(folder.iterdir()):
                raise RefusedError(
                    f"{folder}: holds files but no {shards.RECORD} (not made by synth); "
                    "pick another --name/--out, or pass --overwrite"
                )
        # no GT frame in train here and validation in another config (or the other way)
        _check_held(dataset, root_dir, gt_frames)
        if overwrite or old is None:
            if folder.exists():
                shutil.rmtree(folder)
            record = {"version": 1, "config": CONFIG, "maker": "synth", "shards": {}}
        record.update(
            params={**params, "device": degrader.device, "batch_size": batch_size},
            plan={s: shards.shard_count(len(w), rows_per_shard) for s, w in splits.items()},
            maker="synth",
            # the GT frames of each split, which the other configs honour, and the others'
            # this plan was made against (a resume plans against them again: `_held`)
            gt_frames=gt_frames,
            held=held.to_dict(),
        )
        shards.clean_temporaries(folder)
        todo = [j for j in jobs if not _complete(folder, record, j)]
        if early is not None and todo != jobs:  # never expected: a fresh run makes every shard
            early.close()
            early = None
        # Only the shards complete for this plan stay listed; the others (of another plan, or
        # of the same name and other windows: more clips cut since, a window that failed) go
        # from the record in the write that plans this run, then their files. Left listed
        # until remade, they were loaded beside this run's (the card named them complete).
        keep = {j.file for j in jobs} - {j.file for j in todo}
        record["shards"] = {f: e for f, e in record["shards"].items() if f in keep}
        shards.write_record(dataset, CONFIG, record)
        for p in folder.glob("*.parquet"):
            if p.name not in keep:
                p.unlink()  # never listed as complete again: a re-made shard replaces it
        if todo:  # until its last shard is made, the card names them all (a stopped run
            # does not load as the whole dataset: `shards.pending_files`)
            shards.write_card(dataset)
        made = 0
        if todo and backend == "ray":
            from .synth_ray import RayShards, make_shards_ray

            task = RayShards(
                str(dataset),
                str(tdir),
                preset_ref,
                device,
                seed,
                sharpen_gt,
                clip_len,
                size,
                batch_size,
                image_format,
            )
            made = make_shards_ray(task, todo, dataset, record, root_dir, ray_address, quiet)
        elif todo:
            made = make_shards(
                dataset,
                todo,
                degrader,
                clip_len=clip_len,
                size=size,
                batch_size=batch_size,
                image_format=image_format,
                record=record,
                quiet=quiet,
                reader=early,
            )
        shards.write_card(dataset)
        summary = shards.register_dataset(root_dir, dataset)
    failed = failed_windows(record, todo)
    total = sum(len(j.windows) for j in jobs)
    seconds = time.perf_counter() - t0
    from .degrade.damage import missing_kinds

    summary.update(
        windows_made=made,
        windows_skipped=total - made - len(failed),
        windows_failed=len(failed),
        shards=len(jobs),
        seconds=round(seconds, 3),
        frames_per_s=round(made * clip_len / seconds, 2) if made else None,
        # kinds of damage the preset draws that the template pack has none of: left out
        templates_missing=missing_kinds(degrader.preset, degrader.bank),
    )
    if failed:
        # Exit 1: the other windows are made and carded; the failed ones are named in the
        # record, and a re-run makes their shards again.
        raise ItemsFailed(
            f"{dataset}: {len(failed)} of {total} windows failed, the others are made; "
            f"first: {next(iter(failed.values()))}; a re-run tries them again",
            summary,
        )
    return summary


def _other_params(old: dict[str, Any], params: dict[str, Any]) -> str:
    """How the recorded parameters `old` differ from this run's (`ROW_PARAMS`, and each input's
    content), as the refusal names them; "" where a resume may keep their shards."""
    diff = [
        # (a preset by its names, and "edited" where they are the same)
        f"preset {old.get('preset')!r} -> {params['preset']!r}"
        + (" (edited)" if old.get("preset") == params["preset"] else "")
        if k == "preset_sha256"
        else f"{k} {old.get(k)!r} -> {params[k]!r}"
        for k in ROW_PARAMS
        if old.get(k) != params[k]
    ]
    # A file replaced at its path keeps its windows' ids, and its shards looked complete: the
    # GT of the old file beside the new one's. (Absent from older records: not compared.)
    diff += [
        f"input {f} holds other content"
        for f in replaced(old.get(INPUT_CONTENT), params[INPUT_CONTENT])
    ]
    return ", ".join(diff)


def _input_content(clips: Sequence[Clip], inputs: bool, root: Path) -> dict[str, str]:
    """The content of the run's files (`fingerprint.input_content`): the --input files by
    their paths; the catalog's sources by their paths under `root`, known by the catalog's
    sha256 (a re-fetch of other content changes it)."""
    files = list(dict.fromkeys(c.path for c in clips))
    if inputs:
        return input_content(files)
    from .catalog import Catalog

    with Catalog.at_root(root) as cat:
        rows = cat.sources()
    shas = {
        str((root / r["path"]).resolve()): r["sha256"]
        for r in rows
        if r.get("sha256") and r.get("path")
    }
    return input_content(files, root, shas)


def failed_windows(record: dict[str, Any], jobs: Sequence[ShardJob]) -> dict[str, str]:
    """{window id: why} of the windows of `jobs` whose media failed, from their shards'
    record entries (`make_shards`)."""
    out: dict[str, str] = {}
    for j in jobs:
        out.update((record["shards"].get(j.file) or {}).get("failed") or {})
    return out


def has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _complete(folder: Path, record: dict[str, Any], job: ShardJob) -> bool:
    entry = record["shards"].get(job.file)
    path = folder / job.file
    return (
        entry is not None
        and path.exists()
        and path.stat().st_size == entry.get("bytes")
        and entry.get("ids") == [w.id for w in job.windows]
    )
