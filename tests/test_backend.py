"""`filmdata.backend`: the local pool and the checks made before a stage runs on Ray."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import make_clip
from filmdata.cli import app

TEMPLATES = Path(__file__).parents[1] / "degradations"


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray not installed: `import ray` raises ImportError (a None in sys.modules does)."""
    monkeypatch.setitem(sys.modules, "ray", None)


def test_ray_not_installed_is_refused_before_anything_is_written(
    no_ray: None, runner, tmp_path: Path
) -> None:
    """`--backend ray` without Ray: exit 2 naming the extra to install, and nothing written:
    synth used to write its dataset's record first, so the next run (with Ray, or any other
    parameter) was refused as "a dataset made with other parameters"; fetch made the root."""
    video, _ = make_clip(tmp_path / "in.mp4", (6,), size=(64, 48), seed=1)
    root = tmp_path / "root"
    args = ["synth", "--templates", str(TEMPLATES), "--input", str(video), "--root", str(root),
            "--clip-len", "2", "--size", "16", "--device", "cpu", "--quiet"]  # fmt: skip
    refused = runner.invoke(app, [*args, "--backend", "ray"])
    assert refused.exit_code == 2, refused.output
    (line,) = [s for s in refused.output.splitlines() if s.strip()]
    assert "--backend ray" in line and "pip install 'filmdata[ray]'" in line
    assert not root.exists()
    other = runner.invoke(app, [*args, "--size", "24"])  # another run is not refused
    assert other.exit_code == 0, other.output

    manifest = tmp_path / "m.yaml"
    manifest.write_text("name: m\nsources:\n  - id: a\n    path: in.mp4\n")
    fresh = tmp_path / "fresh"
    refused = runner.invoke(app, ["fetch", str(manifest), "--root", str(fresh), "--backend", "ray"])
    assert refused.exit_code == 2 and "filmdata[ray]" in refused.output, refused.output
    assert not fresh.exists()
    for cmd in (["cut"], ["pair", "--manifest", str(manifest)]):
        refused = runner.invoke(app, [*cmd, "--root", str(root), "--backend", "ray"])
        assert refused.exit_code == 2 and "filmdata[ray]" in refused.output, refused.output


def test_an_items_failure_is_one_line_that_says_what_failed() -> None:
    """Our errors keep their own message (it names the file, the item and the field); another
    exception's type goes before its message (a KeyError's message is only the key), or stands
    alone where it has none; a message of several lines keeps its first."""
    from filmdata.backend import ItemError, _call
    from filmdata.errors import MediaError

    def raises(e: Exception):  # type: ignore[no-untyped-def]
        def fn(item: object) -> None:
            raise e

        return fn

    cases = [
        (MediaError("a.mp4: frame 3 does not decode"), "a.mp4: frame 3 does not decode"),
        (KeyError("fps"), "KeyError: 'fps'"),
        (ValueError(), "ValueError"),
        (RuntimeError("first line\nsecond line"), "RuntimeError: first line"),
    ]
    for error, line in cases:
        assert _call(raises(error), None) == ItemError(line)
    assert _call(lambda item: item + 1, 1) == 2


def _mark_and_wait(item: tuple[str, int]) -> int:
    """A slow item: marks that it started, then works a while."""
    import time

    folder, i = item
    (Path(folder) / f"started-{i}").touch()
    time.sleep(0.2)
    return i


def test_ctrl_c_stops_the_local_pool_instead_of_running_every_queued_item(
    tmp_path: Path,
) -> None:
    """Ctrl-C (or a caller that stops taking results) stops the pool: `cut -j 2` and `pair
    -j 2` printed "interrupted" only once every queued source had been cut anyway (14 s after
    Ctrl-C on 7 small sources), their results then thrown away, as the pool's exit waited for
    all its items."""
    from filmdata.backend import map_items

    items = [(str(tmp_path), i) for i in range(20)]
    with pytest.raises(KeyboardInterrupt):
        for _ in map_items(_mark_and_wait, items, jobs=2):
            raise KeyboardInterrupt
    started = len(list(tmp_path.glob("started-*")))
    assert started < len(items) // 2, f"{started} of {len(items)} items ran after Ctrl-C"


def test_ctrl_c_prints_no_traceback_from_an_idle_worker(tmp_path: Path) -> None:
    """Ctrl-C goes to the whole process group: a pool worker waiting for its next item printed
    a KeyboardInterrupt traceback of multiprocessing's queue under the command's one-line
    "interrupted". The workers leave Ctrl-C to the parent, which stops them."""
    import os
    import signal
    import subprocess

    script = tmp_path / "run.py"
    script.write_text(
        "import sys, time\n"
        "from filmdata.backend import map_items\n"
        "def work(seconds):\n"
        "    time.sleep(seconds)\n"
        "    return seconds\n"
        "if __name__ == '__main__':\n"
        "    results = map_items(work, [0.0, 60.0], jobs=2)\n"
        "    next(results)  # one worker is idle now, the other at work\n"
        "    try:\n"
        "        print('ready', flush=True)\n"
        "        time.sleep(60)\n"
        "    except KeyboardInterrupt:\n"
        "        time.sleep(1)  # the workers had the signal too\n"
        "        results.close()\n"
        "        print('interrupted', file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C
    _, err = proc.communicate(timeout=60)
    assert err.strip() == "interrupted", err
