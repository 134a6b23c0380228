"""kill -9 in the middle of `filmdata synth`, then the same command: exactly the rows (every
field, and every image's pixels) of an uninterrupted run, and no temporary file left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import make_clip, shard_rows
from filmdata.shards import RECORD
from filmdata.synth import synth

CLI = [sys.executable, "-c", "from filmdata.cli import main; main()"]


def _templates() -> str:
    from filmdata.degrade.presets import bundled_dir

    return str(bundled_dir())


def _synth(out: Path, footage: Path) -> list[str]:
    return CLI + [
        "synth",
        "--templates",
        _templates(),
        "--input",
        str(footage),
        "--out",
        str(out),
        "--root",
        str(out.parent / "root"),
        "--clip-len",
        "2",
        "--size",
        "16",
        "--rows-per-shard",
        "2",
        "--seed",
        "3",
        "--device",
        "cpu",
        "--val-fraction",
        "0.2",
        "--quiet",
    ]


def test_kill_mid_synth_then_rerun(tmp_path: Path) -> None:
    # Long enough (60 windows, 24 shards) that the run cannot end between two polls.
    footage, _ = make_clip(tmp_path / "k.mp4", (60, 60), (64, 48), seed=9)
    whole = tmp_path / "whole"  # the uninterrupted run, in this process (same code, same bytes)
    synth(
        _templates(),
        "film",
        [footage],
        out=whole,
        root=tmp_path / "root",
        clip_len=2,
        size=16,
        rows_per_shard=2,
        seed=3,
        device="cpu",
        val_fraction=0.2,
        quiet=True,
    )
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _synth(killed, footage), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    record = killed / "data" / "synthetic" / RECORD
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if record.exists() and json.loads(record.read_text() or "{}").get("shards"):
                break
            time.sleep(0.02)
    except ValueError:
        pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(shard_rows(killed))
    assert done < len(shard_rows(whole)), "the run ended before it could be killed"
    again = subprocess.run(_synth(killed, footage), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert shard_rows(killed) == shard_rows(whole)
    assert not [p for p in killed.rglob("*") if ".tmp" in p.name]
