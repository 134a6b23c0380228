"""Local against Ray: synth throughput on this machine, and the driver's dispatch rate.

Starts its own Ray head on loopback (2 CPUs; RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 and
RAY_AUTH_MODE=token, so nothing leaves 127.0.0.1), runs the same `synth` with `--backend local`
and `--backend ray`, checks the shards are byte-identical, then measures how many no-op items per
second one driver dispatches through `backend.map_items`. From those, an estimate for N nodes:
min(N * per-node rate, dispatch rate * frames per item).

    python benchmarks/scale.py [--frames 240] [--size 128]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "token")

from _ray import ray_head  # noqa: E402
from filmdata.backend import map_items  # noqa: E402
from filmdata.synth import synth  # noqa: E402
from filmdata.synthetic import render_shots  # noqa: E402
from filmdata.video import write_video  # noqa: E402


def _noop(x: int) -> int:
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="filmdata-scale-"))
    frames, _ = render_shots([args.frames // 4] * 4, 640, 360, seed=1)
    video = tmp / "in.mp4"
    write_video(video, frames, 24.0)
    templates = HERE.parent / "degradations"
    kw = dict(
        inputs=[video],
        size=args.size,
        clip_len=8,
        rows_per_shard=4,
        quiet=True,
        device="cpu",
        root=tmp / "root",
    )
    synth(templates, out=tmp / "warm-local", **kw, max_windows=4)  # imports warm, as Ray's are
    t = time.perf_counter()
    synth(templates, out=tmp / "local", **kw)
    local = args.frames / (time.perf_counter() - t)
    with ray_head(tmp / "head") as address:
        synth(
            templates,
            out=tmp / "warm",
            backend="ray",
            ray_address=address,
            **{**kw, "inputs": [video]},
            max_windows=4,
        )  # workers and imports warm
        t = time.perf_counter()
        synth(templates, out=tmp / "ray", backend="ray", ray_address=address, **kw)
        ray_fps = args.frames / (time.perf_counter() - t)
        n = 2000
        t = time.perf_counter()
        for _ in map_items(_noop, list(range(n)), backend="ray", ray_address=address):
            pass
        dispatch = n / (time.perf_counter() - t)
    shards = {
        name: {p.relative_to(tmp / name): p.read_bytes() for p in (tmp / name).rglob("*.parquet")}
        for name in ("local", "ray")
    }
    same = bool(shards["local"]) and shards["local"] == shards["ray"]  # the same files, bytes
    per_item = 4 * 8  # frames per shard task
    print(f"synth {args.size}^2, {args.frames} frames, {os.cpu_count()} CPUs:")
    print(f"  local backend      {local:8.1f} frames/s")
    print(f"  ray backend        {ray_fps:8.1f} frames/s  ({ray_fps / local:.2f}x local)")
    print(f"  identical shards   {same}")
    print(f"  driver dispatch    {dispatch:8.1f} items/s (no-op tasks)")
    for nodes in (1, 8, 64, 512):
        est = min(nodes * ray_fps, dispatch * per_item)
        print(f"  est. {nodes:4d} nodes like this one: {est:10.0f} frames/s")


if __name__ == "__main__":
    main()
