"""Benchmark `filmdata fetch` against plain yt-dlp on a loopback server.

Serves N small H.264 clips (tests/_http.py) and fetches them three ways in the same run:
the reference, yt-dlp's Python API downloading them one after another with no checks; then
`filmdata.fetch` with --jobs 1 and --jobs 2 (each item in its own worker, probed by decoding
every frame, sha256'd, catalogued). Prints sources/s, MB/s and the ratio to the reference,
then the time a re-run takes to skip everything (verify by sha256, no request).

    python benchmarks/fetch.py [--n 12] [--frames 96] [--width 640] [--height 360]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _http import Route, serve  # noqa: E402
from filmdata.fetch import fetch  # noqa: E402
from filmdata.synthetic import render_shots  # noqa: E402
from filmdata.video import write_video  # noqa: E402


def reference(urls: list[str], out: Path) -> float:
    """yt-dlp alone, sequential, no verification: the floor of what a fetch costs."""
    import yt_dlp

    t = time.perf_counter()
    for i, url in enumerate(urls):
        params = {"outtmpl": {"default": str(out / f"{i}.%(ext)s")}, "quiet": True}
        params["overwrites"] = True
        with yt_dlp.YoutubeDL(params | {"noprogress": True}) as ydl:
            ydl.download([url])
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=360)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        frames, _ = render_shots(
            (args.frames // 2, args.frames - args.frames // 2), args.width, args.height, seed=0
        )
        write_video(d / "clip.mp4", frames, 24.0)
        body = (d / "clip.mp4").read_bytes()
        mb = args.n * len(body) / 1e6
        routes = {f"/c{i}.mp4": Route(body) for i in range(args.n)}
        with serve(routes) as srv:
            urls = [srv.url(p) for p in routes]
            manifest = d / "bench.yaml"
            rows = "".join(f"  - id: c{i}\n    url: {u}\n" for i, u in enumerate(urls))
            manifest.write_text(f"name: bench\nsources:\n{rows}")
            (d / "ref").mkdir()
            reference(urls[:1], d / "ref")  # warm: imports and yt-dlp's URL patterns, untimed
            ref = reference(urls, d / "ref")
            print(
                f"{args.n} clips of {args.frames} frames {args.width}x{args.height}, "
                f"{len(body) / 1e3:.0f} kB each"
            )
            print(f"{'run':<28}{'s':>8}{'sources/s':>12}{'MB/s':>8}{'x ref':>8}")
            print(
                f"{'yt-dlp API (reference)':<28}{ref:8.2f}{args.n / ref:12.2f}"
                f"{mb / ref:8.2f}{1:8.2f}"
            )
            for jobs in (1, 2):
                root = d / f"root{jobs}"
                t = time.perf_counter()
                fetch([manifest], root=root, jobs=jobs, quiet=True)
                s = time.perf_counter() - t
                name = f"filmdata fetch --jobs {jobs}"
                print(f"{name:<28}{s:8.2f}{args.n / s:12.2f}{mb / s:8.2f}{ref / s:8.2f}")
            hits = len(srv.hits)
            t = time.perf_counter()
            fetch([manifest], root=d / "root2", jobs=2, quiet=True)
            s = time.perf_counter() - t
            name = "re-run (all skipped)"
            print(
                f"{name:<28}{s:8.2f}{args.n / s:12.2f}{mb / s:8.2f}{ref / s:8.2f}"
                f"   requests sent: {len(srv.hits) - hits}"
            )


if __name__ == "__main__":
    main()
