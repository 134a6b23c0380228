"""A Ray head on loopback for the scale-out tests: 2 CPUs, token auth, nothing beyond 127.0.0.1.

Facts (Ray 2.60 here): `ray start --head` turns on token authentication, so drivers need
RAY_AUTH_MODE=token and a token (`ray get-auth-token --generate` writes ~/.ray/auth_token);
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 keeps every Ray socket on 127.0.0.1. The head is stopped by
its own process ids at the end (a head's daemons and workers share its session).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "token",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_bin() -> str:
    exe = Path(sys.executable).with_name("ray")
    return str(exe) if exe.exists() else shutil.which("ray") or "ray"


@contextmanager
def ray_head(tmp: Path, cpus: int = 2, hide: Path | None = None) -> Iterator[str]:
    """Start a head on 127.0.0.1:<free port>; yield its address; stop it by its pids.

    With `hide`, the head and its workers run in a mount namespace of their own in which that
    folder is an empty tmpfs: a folder this process sees and the workers do not (as on a node
    that does not mount it); needs `unshare` and mount rights."""
    env = {**os.environ, **ENV}
    token = Path.home() / ".ray" / "auth_token"
    if not token.exists():
        subprocess.run(
            [_ray_bin(), "get-auth-token", "--generate"],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
    port, dash = _free_port(), _free_port()
    temp = tmp / "ray"  # its own session folder: we find and end exactly our processes
    temp.mkdir(parents=True, exist_ok=True)
    start = [
        _ray_bin(),
        "start",
        "--head",
        "--node-ip-address",
        "127.0.0.1",
        "--port",
        str(port),
        "--num-cpus",
        str(cpus),
        "--num-gpus",
        "0",
        "--include-dashboard",
        "false",
        "--disable-usage-stats",
        "--temp-dir",
        str(temp),
        "--dashboard-port",
        str(dash),
    ]
    if hide is not None:
        hide.mkdir(parents=True, exist_ok=True)
        mount = f"mount --make-rprivate / && mount -t tmpfs none {shlex.quote(str(hide))}"
        start = ["unshare", "-m", "sh", "-c", f"{mount} && exec {shlex.join(start)}"]
    subprocess.run(start, env=env, check=True, capture_output=True, timeout=120)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        _stop(temp)


def _processes() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line) of every process."""
    out = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        out[int(proc.name)] = (ppid, cmd)
    return out


def _stop(temp: Path) -> None:
    """End every process whose command line names our session folder, and their children
    (Ray's agents rename themselves, e.g. `ray::DashboardAgent`)."""
    me = os.getpid()
    for _ in range(3):
        procs = _processes()
        ours = {p for p, (_, cmd) in procs.items() if str(temp).encode() in cmd and p != me}
        grew = True
        while grew:
            kids = {p for p, (pp, _) in procs.items() if pp in ours and p not in ours and p != me}
            grew = bool(kids)
            ours |= kids
        pids = sorted(ours)
        if not pids:
            return
        for pid in pids:
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
