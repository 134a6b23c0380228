"""`filmdata synth`'s reader in a forked process: windows decoded and cut while torch loads.

Importing torch holds the GIL for about a second of CPU. A reader *thread* needs the GIL
between FFmpeg calls, so the import and the decoding slow each other (on the 2-core VM, 256
frames of 720p: the import 0.95-1.05 s, 3/4 of the windows decoded by its end); a process forked
before the import (and before any thread starts: fork with live threads is unsafe) decodes on a
core of its own (the import 0.83-0.9 s, every window decoded before it ends). It may plan the
windows first (`ForkReader.plan`): probing the inputs then runs beside the import too (30 s
of 720p: `synth` 3.18-3.44 -> 3.12-3.21 s, alternated 4x; the same rows).
It runs the very code the thread runs (`window_pictures_or_failures`, `cut_window`: the same GT
pixels, the same windows failed) and hands each window's GT frames to the parent through a ring
of fixed-size slots in an anonymous shared mapping made before the fork (no file in /dev/shm:
the kernel frees it when both processes are gone). Two pipes carry the hand-off: window index
and slot to the parent, slots free again to the child.

The child never outlives the parent (`PR_SET_PDEATHSIG`, and EOF on the pipes), ignores Ctrl-C
(the parent's `close` kills and reaps it on every path), and sends its error, pickled, for the
parent to raise as its own.
"""

from __future__ import annotations

import contextlib
import heapq
import mmap
import os
import pickle
import select
import signal
import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .errors import ItemsFailed, MediaError
from .windows import Window, cut_window, window_pictures_or_failures

# (window index, or _DONE / _ERROR / _PLAN / _FAILED; slot, or _FAILED's window index;
# payload bytes that follow)
_HEAD = struct.Struct("<iiI")
_SLOT = struct.Struct("<i")
_DONE, _ERROR, _PLAN, _FAILED = -1, -2, -3, -4
_PR_SET_PDEATHSIG = 1


def can_fork() -> bool:
    """Whether this process may fork the reader: Linux, torch not imported (its thread pools
    and CUDA do not survive a fork), and no thread but this one (a lock held by another thread
    at the fork would stay held in the child forever)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    if "torch" in sys.modules:
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


class ForkReader:
    """(window, its GT frames (T, size, size, 3) uint8) for `windows` in order, decoded and
    cut by a child process forked now, up to `slots` windows ahead. The same interface as
    `synth.Prefetch`: iterate, then `close()` (always: it kills and reaps the child).

    `windows` may be a planner instead, a function that returns (a result, the windows): the
    child calls it first (the planning of `synth`: probing the inputs, ~0.1 s, then runs
    beside the parent's torch import rather than before it) and hands the result to the
    parent, whose `plan()` returns it; then it decodes the windows.

    A window whose media fails (`MediaError`, in decoding or cutting) comes as (window, that
    error), and the child goes on with the next, as the thread reader does.

    Raises (from `next`, or `plan`):
        ItemsFailed: nothing came for `timeout` seconds (a stuck decoder), or the child died.
        Whatever else the child's planning or decoding raised (`RefusedError`, ...), as the
        planner or the thread reader would here.
    """

    def __init__(
        self,
        windows: Sequence[Window] | Callable[[], tuple[Any, Sequence[Window]]],
        clip_len: int,
        size: int,
        *,
        slots: int,
        timeout: float | None,
        cores: int = 1,
    ):
        self.planner = windows if callable(windows) else None
        self.windows = [] if callable(windows) else list(windows)
        self.shape = (clip_len, size, size, 3)
        self.per = clip_len * size * size * 3
        self.timeout = timeout
        self.finished = False
        self.pid: int | None = None
        # (the windows a planner makes are not known yet: room for `slots`, whose pages are
        # made only as they are touched)
        n = max(1, slots if self.planner else min(slots, len(self.windows)))
        # MAP_SHARED | MAP_ANONYMOUS: pages are made as they are touched, and shared by both.
        self.mem = mmap.mmap(-1, n * self.per)
        data_r, data_w = os.pipe()
        free_r, free_w = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the caller's code
            code = 0
            try:
                os.close(data_r)
                os.close(free_w)
                self._child(parent, n, data_w, free_r, clip_len, size, cores)
            except BaseException:  # noqa: BLE001 - a broken pipe: the parent is gone
                code = 1
            finally:
                os._exit(code)
        os.close(data_w)
        os.close(free_r)
        self.pid, self.rfd, self.wfd, self.owner = pid, data_r, free_w, parent

    # The child ---------------------------------------------------------------------------------

    def _child(
        self, parent: int, n: int, out: int, free_fd: int, clip_len: int, size: int, cores: int
    ) -> None:
        import ctypes
        import gc

        gc.freeze()  # the parent's objects are never collected here: their pages stay shared
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            return
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent kills us
        _below_parent()
        try:
            import cv2

            cv2.setNumThreads(1)  # small crops: this process is one core's worth
        except ImportError:
            pass
        free = list(range(n))
        pending = b""
        try:
            if self.planner is not None:
                result, windows = self.planner()
                self.windows = list(windows)
                plan = pickle.dumps((result, self.windows))
                _write_all(out, _HEAD.pack(_PLAN, 0, len(plan)) + plan)
            # In the order given (the parent looks each window up by its index).
            items = window_pictures_or_failures(self.windows, clip_len, size, cores)
            for i, (w, pictures) in enumerate(items):
                if isinstance(pictures, MediaError):
                    _failed(out, i, pictures)
                    continue
                # The slots the parent has freed, waiting for one only when none is free; the
                # lowest is taken, so that slots are reused (their pages made once) rather than
                # fresh ones touched while the parent keeps up.
                while not free or select.select([free_fd], [], [], 0)[0]:
                    got = os.read(free_fd, 4 * n)
                    if not got:
                        return  # the parent closed: nothing more is wanted
                    pending += got
                    k = len(pending) // 4 * 4
                    for (slot,) in _SLOT.iter_unpack(pending[:k]):
                        heapq.heappush(free, slot)
                    pending = pending[k:]
                slot = heapq.heappop(free)
                view = np.ndarray(self.shape, np.uint8, buffer=self.mem, offset=slot * self.per)
                try:
                    cut_window(w, pictures, size, out=view)
                except MediaError as e:
                    heapq.heappush(free, slot)
                    _failed(out, i, e)
                    continue
                finally:
                    del view, pictures
                os.write(out, _HEAD.pack(i, slot, 0))
        except BrokenPipeError:
            return
        except BaseException as e:  # noqa: BLE001 - raised in the parent
            try:
                payload = pickle.dumps(e)
                pickle.loads(payload)
            except Exception:  # noqa: BLE001 - not picklable: its message then
                payload = pickle.dumps(MediaError(f"{type(e).__name__}: {e}"))
            _write_all(out, _HEAD.pack(_ERROR, 0, len(payload)) + payload)
            return
        os.write(out, _HEAD.pack(_DONE, 0, 0))

    # The parent --------------------------------------------------------------------------------

    def plan(self) -> Any:
        """The planner's result, once the child has made it (no time limit: planning probes
        the inputs, as `synth` does before a reader starts); the windows are then known."""
        if self.planner is None:
            raise ValueError("this reader was given its windows")
        try:
            i, _, n = _HEAD.unpack(self._read(_HEAD.size, limit=False))
            payload = self._read(n, limit=False)
        except BaseException:
            self.close()
            raise
        if i == _PLAN:
            result, self.windows = pickle.loads(payload)
            self.planner = None
            return result
        self.close()
        if i == _ERROR:
            raise pickle.loads(payload)
        raise ItemsFailed("the decoding process sent no plan")

    def __iter__(self) -> ForkReader:
        return self

    def __next__(self) -> tuple[Window, np.ndarray | MediaError]:
        if self.finished:
            raise StopIteration
        try:
            i, slot, n = _HEAD.unpack(self._read(_HEAD.size))
            if i >= 0:
                view = np.ndarray(self.shape, np.uint8, buffer=self.mem, offset=slot * self.per)
                gt = view.copy()
                del view
                # The child may have ended already (all decoded): the data pipe tells.
                with contextlib.suppress(BrokenPipeError):
                    os.write(self.wfd, _SLOT.pack(slot))
                return self.windows[i], gt
            if i == _DONE:
                self.close()
                raise StopIteration
            if i == _FAILED:  # this window's media failed; the child goes on
                return self.windows[slot], pickle.loads(self._read(n))
            error = pickle.loads(self._read(n))
        except BaseException:
            self.close()
            raise
        self.close()
        raise error

    def _read(self, n: int, limit: bool = True) -> bytes:
        """`n` bytes from the child, waiting at most the reader's `timeout` for each part
        (`limit`), or as long as it takes."""
        wait = self.timeout if limit else None
        buf = b""
        while len(buf) < n:
            ready, _, _ = select.select([self.rfd], [], [], wait)
            if not ready:
                raise ItemsFailed(
                    f"decoding a window took longer than {self.timeout:g} s (hostile or broken "
                    "media?); the shards written so far are kept, a re-run resumes"
                )
            chunk = os.read(self.rfd, n - len(buf))
            if not chunk:
                raise ItemsFailed(
                    f"the decoding process ended unexpectedly ({self._ended()}); the shards "
                    "written so far are kept, a re-run resumes"
                )
            buf += chunk
        return buf

    def _ended(self) -> str:
        """How the child ended (it is reaped here)."""
        if self.pid is None:
            return "gone"
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            return "gone"
        self.pid = None
        if os.WIFSIGNALED(status):
            return f"killed by signal {os.WTERMSIG(status)}"
        return f"exit status {os.waitstatus_to_exitcode(status)}"

    def close(self) -> None:
        """Stop and reap the child, close the pipes and the shared mapping (idempotent; in
        the process that made the reader only, not in a copy that a later fork made)."""
        self.finished = True
        if getattr(self, "owner", None) != os.getpid():
            return
        pid, self.pid = self.pid, None
        for name in ("rfd", "wfd"):
            fd = getattr(self, name, None)
            if fd is not None:
                setattr(self, name, None)
                with contextlib.suppress(OSError):
                    os.close(fd)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        with contextlib.suppress(BufferError):  # a view is still out: the mapping goes with it
            self.mem.close()

    def __del__(self) -> None:
        if getattr(self, "pid", None) is not None:
            self.close()


def _below_parent() -> None:
    """Under a real-time policy (`chrt -f`), one priority below the parent: at the same
    priority, a FIFO child that never blocks keeps the CPU the parent was woken on, and the
    kernel does not always move the parent to the other CPU (its torch import then waited
    0.7-1.0 s on the run queue in half the runs). One below, the parent preempts the child
    there, and the child moves on. Under the normal policy nothing changes."""
    try:
        policy = os.sched_getscheduler(0)
        if policy not in (os.SCHED_FIFO, os.SCHED_RR):
            return
        prio = os.sched_getparam(0).sched_priority
        if prio > os.sched_get_priority_min(policy):
            os.sched_setscheduler(0, policy, os.sched_param(prio - 1))
        else:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (OSError, AttributeError):
        pass


def _failed(fd: int, index: int, error: MediaError) -> None:
    """Tell the parent that window `index`'s media failed, and why."""
    payload = pickle.dumps(error)
    _write_all(fd, _HEAD.pack(_FAILED, index, len(payload)) + payload)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
