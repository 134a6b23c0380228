"""The restorer: config, model, diffusion, data, sampling, and the train/eval/restore commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from filmdata.cli import app
from filmdata.errors import RefusedError
from filmdata.restorer import PRESETS, RestorerConfig, load_config
from filmdata.restorer.checkpoint import resolve_run
from filmdata.restorer.data import (
    augment,
    load_split,
    paired_transform,
    resolve_dataset,
    row_frames,
    split_files,
)
from filmdata.restorer.diffusion import from_target, loss, to_target, train_scheduler
from filmdata.restorer.model import SpaceTimeAttention, UNet
from filmdata.restorer.sampling import restore_array, restore_stream, sample_window
from filmdata.synthetic import render_shots
from filmdata.video import probe, write_video
from restorer_fixtures import QUICK, toy_dataset, toy_run  # noqa: F401

# ---- config


def test_presets_are_valid_and_grow() -> None:
    sizes = [sum(p.numel() for p in UNet(PRESETS[n]).parameters()) for n in PRESETS]
    assert sizes == sorted(sizes) and sizes[0] < 500_000


def test_config_from_yaml_and_json(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("base: small\nsteps: 7\nlr: 1\n")
    cfg = load_config(tmp_path / "mine.yaml")
    assert (cfg.name, cfg.steps, cfg.lr, cfg.channels) == ("mine", 7, 1.0, 32)
    (tmp_path / "c.json").write_text(json.dumps(PRESETS["tiny"].to_dict()))
    assert load_config(tmp_path / "c.json") == PRESETS["tiny"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("stepz: 3\n", "unknown field"),
        ("steps: three\n", "must be int"),
        ("objective: gan\n", "objective"),
        ("crop: 33\nmults: [1, 2]\n", "crop"),
        ("crop: 0\n", "crop=0"),
        ("shuffle_buffer: 0\n", "shuffle_buffer=0"),
        ("train_timesteps: 0\n", "train_timesteps=0"),
        ("train_timesteps: 1\n", "train_timesteps=1"),
        ("workers: -1\n", "workers=-1"),
        ("warmup: -1\n", "warmup=-1"),
        ("weight_decay: -1\n", "weight_decay=-1.0"),
        ("grad_clip: 0\n", "grad_clip=0.0"),
        # (nan and inf: a torch ValueError's traceback, or a run of NaN losses that exited 0)
        ("lr: .nan\n", "lr=nan"),
        ("lr: .inf\n", "lr=inf"),
        ("grad_clip: .nan\n", "grad_clip=nan"),
        ("weight_decay: .nan\n", "weight_decay=nan"),
        ("residual_scale: .inf\n", "residual_scale=inf"),
        # (a run folder made outside ROOT/runs/, where `eval NAME` does not look)
        ("name: ../../elsewhere\n", "name='../../elsewhere'"),
        ("name: a\\b\n", "name='a\\\\\\\\b'"),
        ("base: huge\n", "base"),
        ("!!python/object/apply:os.system ['touch x']\n", "refused"),
        # (more steps than the schedule has: diffusers' ValueError traceback in eval/restore)
        ("sample_steps: 1001\n", "sample_steps=1001"),
        ("start: 0.5\nsample_steps: 501\n", "sample_steps=501"),
    ],
)
def test_bad_config_refused(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(RefusedError, match=match):
        load_config(tmp_path / "bad.yaml")


def test_unknown_preset_refused() -> None:
    with pytest.raises(RefusedError, match="not a preset"):
        load_config("medium")


def test_a_config_folder_is_refused_as_a_folder(
    runner: CliRunner,
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """--config takes a preset or a file: a folder was refused as "no such file", though it
    exists. It is refused (exit 2, one line) saying it is a folder."""
    with pytest.raises(RefusedError, match="a folder, not a config file"):
        load_config(tmp_path)
    r = runner.invoke(app, ["train", "--data", str(toy_dataset), "--config", str(tmp_path)])
    assert r.exit_code == 2, r.output
    (line,) = r.output.strip().splitlines()
    assert line.startswith(f"error: config {str(tmp_path)!r}: a folder, not a config file")
    assert "no such file" not in line


def test_restore_refuses_a_folder_as_a_folder(runner: CliRunner, tmp_path: Path) -> None:
    """A folder given as the video is refused as a folder (exit 2, one line), before the run is
    loaded (it was refused only after the model was, and then as "no such file")."""
    folder = tmp_path / "reels"
    folder.mkdir()
    out = tmp_path / "out.mp4"
    r = runner.invoke(app, ["restore", str(folder), "-o", str(out), "--checkpoint", "nowhere"])
    assert r.exit_code == 2, r.output
    assert r.output.strip() == f"error: {folder}: a folder, not a video file"
    r = runner.invoke(app, ["restore", str(folder / "a.mp4"), "-o", str(out), "--checkpoint", "x"])
    assert r.exit_code == 2 and r.output.strip() == f"error: {folder / 'a.mp4'}: no such file"
    assert not out.exists()


def test_a_file_given_as_a_folder_is_refused_as_a_file(
    runner: CliRunner,
    toy_dataset: Path,  # noqa: F811
    toy_run: Path,  # noqa: F811
    root: Path,
    tmp_path: Path,
) -> None:
    """A file given where a dataset or run folder is read was called missing ("no such dataset
    folder", "no config.json there"). It is refused (exit 2, one line) saying it is a file."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    src = tmp_path / "in.mp4"
    write_video(src, render_shots([2], 32, 32, seed=7)[0], 24.0)
    with pytest.raises(RefusedError, match="a file, not a dataset folder"):
        resolve_dataset(a_file, root)
    with pytest.raises(RefusedError, match="a file, not a run folder"):
        resolve_run(a_file, root)
    data, run = str(toy_dataset), str(toy_run)
    cases = [
        (["train", "--data", str(a_file)], f"--data {str(a_file)!r}: a file, not a dataset folder"),
        (["eval", run, "--data", str(a_file)], f"--data {str(a_file)!r}: a file, not a dataset"),
        (["eval", str(a_file), "--data", data], f"run {str(a_file)!r}: a file, not a run folder"),
        (
            ["restore", str(src), "-o", str(tmp_path / "o.mp4"), "--checkpoint", str(a_file)],
            f"run {str(a_file)!r}: a file, not a run folder (config.json, weights)",
        ),
    ]
    for args, needle in cases:
        r = runner.invoke(app, [*args, "--root", str(root)])
        assert r.exit_code == 2, (args, r.output)
        (line,) = r.output.strip().splitlines()
        assert line.startswith(f"error: {needle}"), (args, line)
        assert "no such" not in line and "no config.json" not in line
    assert a_file.read_text() == "mine" and not (tmp_path / "o.mp4").exists()


# ---- model and diffusion


def test_model_shapes_and_temporal_mixing() -> None:
    torch.manual_seed(0)
    cfg = PRESETS["tiny"]
    model = UNet(cfg)
    for p in model.parameters():  # leave the zero init, so time mixing is exercised
        torch.nn.init.normal_(p, std=0.05)
    x = torch.randn(2, 3, 6, 16, 24)
    y = model(x, torch.tensor([1, 900]))
    assert y.shape == (2, 3, 3, 16, 24)
    x2 = x.clone()
    x2[:, 0] = torch.randn(2, 6, 16, 24)  # change the first frame only
    t = torch.tensor([1, 900])
    assert (model(x2, t)[:, 2] - y[:, 2]).abs().max() > 1e-6, "frame 2 must see frame 0"
    # control: without the temporal layers, frames are processed independently
    for name, p in model.named_parameters():
        if "temporal" in name or "_t." in name:
            torch.nn.init.zeros_(p)
    assert (model(x2, t)[:, 2] - model(x, t)[:, 2]).abs().max() < 1e-7
    with pytest.raises(ValueError, match="multiples of 2"):
        model(torch.randn(1, 3, 6, 15, 16), torch.tensor([1]))


def test_spatial_attention_runs_in_windows_of_the_training_crop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A map no larger than a training crop's is one window: plain global attention, as trained;
    a larger one is cut into windows of at most that size, so a position sees only its own and
    the cost grows with the area (restore's default 256-px tile once attended over 16k
    positions of a 32-px-crop run: 5x slower than 32-px tiles)."""
    torch.manual_seed(0)
    attn = SpaceTimeAttention(8, 2, window=4)
    for p in attn.parameters():  # leave the zero init, so the attention shows
        torch.nn.init.normal_(p, std=0.3)
    torch.nn.init.zeros_(attn.out_t.weight)  # space alone (time: the identity)
    torch.nn.init.zeros_(attn.out_t.bias)
    x = torch.randn(3, 8, 4, 3)  # (B*T, C, H, W): one window
    s = attn.norm_s(x).flatten(2).transpose(1, 2)  # (BT, HW, C): every position one sequence
    whole = x + attn._attend(s, attn.qkv_s, attn.out_s).transpose(1, 2).reshape(x.shape)
    assert torch.equal(attn(x, 3), whole)
    attn.norm_s = torch.nn.Identity()  # (GroupNorm's statistics span the map: set them aside)
    big = torch.randn(3, 8, 8, 11)  # windows: rows [0, 4), [4, 8); columns [0, 3), [3, 7), [7, 11)
    moved = big.clone()
    moved[:, :, :4, :3] += 1  # the first window only
    diff = (attn(moved, 3) - attn(big, 3)).abs().amax(dim=(0, 1))  # (H, W)
    assert diff[:4, :3].min() > 1e-3 and diff[4:].max() == 0 and diff[:, 3:].max() == 0
    # restore at its default tile attends over no more positions than a training crop has
    lengths: list[int] = []
    sdpa = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(
        "filmdata.restorer.model.F.scaled_dot_product_attention",
        lambda q, k, v: lengths.append(q.shape[-2]) or sdpa(q, k, v),
    )
    cfg = PRESETS["tiny"]
    frames = np.random.default_rng(0).integers(0, 256, (1, 96, 80, 3), dtype=np.uint8)
    restore_array(UNet(cfg).eval(), frames, cfg, steps=1)
    assert max(lengths) <= (cfg.crop // cfg.multiple) ** 2  # 16 x 16, not 48 x 40


def test_target_round_trip_and_losses() -> None:
    g = torch.Generator().manual_seed(0)
    gt, lq = torch.rand(2, 3, 3, 16, 16, generator=g), torch.rand(2, 3, 3, 16, 16, generator=g)
    cfg = PRESETS["tiny"]
    assert torch.allclose(from_target(to_target(gt, lq, cfg), lq, cfg), gt, atol=1e-6)
    for objective in ("diffusion", "regression"):
        c = cfg.replace(objective=objective)
        value = loss(UNet(c), train_scheduler(c), lq, gt, c, g)
        assert value.ndim == 0 and torch.isfinite(value) and value > 0


@pytest.mark.parametrize("objective", ["diffusion", "regression"])
def test_sample_window_pads_odd_sizes(objective: str) -> None:
    cfg = PRESETS["tiny"].replace(objective=objective)
    lq = torch.rand(1, 2, 3, 13, 7)
    out = sample_window(UNet(cfg).eval(), lq, cfg, steps=2)
    assert out.shape == lq.shape and out.min() >= 0 and out.max() <= 1
    if objective == "regression":  # a fresh model predicts a zero residual: the input
        assert torch.allclose(out, lq, atol=1e-5)
    else:  # the same generator seed gives the same sample
        again = [
            sample_window(
                UNet(cfg).eval(), lq, cfg, steps=2, generator=torch.Generator().manual_seed(1)
            )
            for _ in range(2)
        ]
        assert torch.equal(again[0], again[1])
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        sample_window(UNet(cfg), torch.rand(2, 3, 8, 8), cfg)


class _Oracle(torch.nn.Module):
    """A v-predictor that knows the true residual x0: any sampler must end on it."""

    def __init__(self, x0: torch.Tensor, cfg: RestorerConfig) -> None:
        super().__init__()
        self.x0, self.abar = x0.double(), train_scheduler(cfg).alphas_cumprod.double()
        self.p = torch.nn.Parameter(torch.zeros(1))  # sample_window reads the dtype

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self.abar[int(t[0])]
        xt = x[:, :, :3].double()
        eps = (xt - a.sqrt() * self.x0) / (1 - a).sqrt()  # x_t = sqrt(a) x0 + sqrt(1 - a) eps
        return (a.sqrt() * eps - (1 - a).sqrt() * self.x0).float()  # v


@pytest.mark.parametrize("steps", sorted({c.sample_steps for c in PRESETS.values()} | {6, 15}))
@pytest.mark.parametrize("start", [1.0, 0.5, 0.3])
@pytest.mark.parametrize("sampler", ["ddim", "dpm"])
def test_samplers_end_on_the_oracles_residual(sampler: str, start: float, steps: int) -> None:
    """Every sampler, from noise or part-way (`start` < 1), ends on an oracle's residual.

    DDIM once stepped last to the noise level of t = 0 (set_alpha_to_one=False; and for any
    `steps` that does not divide 1000, as 6 or 15), not to the clean estimate: 0.8/255 rms of
    noise left. DPM-Solver started part-way once took the sigma
    of t = T-1 for its first step (it indexes sigmas by step), 0.02 off.
    """
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(1, 3, 3, 16, 16, generator=g)
    lq = (gt + 0.1 * torch.randn(gt.shape, generator=g)).clamp(0, 1)
    cfg = PRESETS["tiny"].replace(sampler=sampler, start=start)
    oracle = _Oracle(to_target(gt, lq, cfg), cfg)
    out = sample_window(oracle, lq, cfg, steps=steps, generator=torch.Generator().manual_seed(1))
    assert (out - gt).abs().max() < 1e-4


def test_restore_array_windows_and_tiles() -> None:
    cfg = PRESETS["tiny"].replace(objective="regression")
    model = UNet(cfg).eval()
    frames = np.random.default_rng(0).integers(0, 256, (7, 37, 41, 3), dtype=np.uint8)
    out = restore_array(model, frames, cfg, window=3, overlap=1, tile=16, batch=3)
    assert out.shape == frames.shape
    assert np.abs(out.astype(int) - frames).max() <= 1  # identity model, exact blending
    long = restore_array(model, frames[:2], cfg, window=5)  # window longer than the clip
    assert long.shape == (2, 37, 41, 3)
    with pytest.raises(ValueError, match="overlap"):
        restore_array(model, frames, cfg, window=3, overlap=3)


@pytest.mark.parametrize("n", [16, 64, 255, 256, 257, 300, 320, 480, 576, 720, 1080, 1920])
@pytest.mark.parametrize(("tile", "overlap", "multiple"), [(256, 32, 8), (64, 8, 4), (32, 8, 8)])
def test_tiles_cover_a_side_with_little_more_than_it_holds(
    n: int, tile: int, overlap: int, multiple: int
) -> None:
    """As few tiles as cover the side sharing `overlap`, each as small as that allows: no
    more pixels sampled than the side and the overlaps need (a 320 px side: two of 176, not
    two of 256 sharing 192)."""
    from filmdata.restorer.sampling import _tiling

    side, starts = _tiling(n, tile, overlap, multiple)
    assert starts[0] == 0 and starts[-1] + side == n  # covered, from edge to edge
    k = len(starts)
    if n <= tile:
        assert (side, starts) == (n, [0])
        return
    assert k == -(-(n - overlap) // (tile - overlap))  # no more tiles than needed
    assert side <= tile + multiple - 1 and side % multiple == 0 or side == n
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert all(side - g >= overlap - 1 for g in gaps)  # each pair shares the overlap (rounding)
    assert k * side <= n + (k - 1) * overlap + k * multiple  # little more than needed
    if (n, tile, overlap, multiple) == (320, 256, 32, 8):
        assert (side, starts) == (176, [0, 144])


@pytest.mark.parametrize(
    ("n", "window", "overlap", "batch"),
    [(1, 3, 1, 4), (2, 4, 2, 1), (5, 1, 0, 2), (7, 4, 1, 1), (12, 3, 2, 4), (12, 5, 0, 3)],
)
def test_restore_covers_every_frame_once_blended(
    n: int, window: int, overlap: int, batch: int
) -> None:
    cfg = PRESETS["tiny"].replace(objective="regression")
    model = UNet(cfg).eval()  # a fresh regression model is the identity
    frames = np.random.default_rng(n).integers(0, 256, (n, 8, 10, 3), dtype=np.uint8)
    out = restore_array(model, frames, cfg, window=window, overlap=overlap, batch=batch)
    assert out.shape == frames.shape
    assert np.abs(out.astype(int) - frames).max() <= 1


def test_restore_stream_is_lazy() -> None:
    cfg = PRESETS["tiny"].replace(objective="regression")
    pulled = []

    def source():
        for i in range(16):
            pulled.append(i)
            yield np.full((8, 8, 3), i, np.uint8)

    stream = restore_stream(UNet(cfg).eval(), source(), cfg, window=3, overlap=1, batch=1)
    first = next(stream)
    assert first.shape == (8, 8, 3) and len(pulled) < 10  # not the whole film in memory
    rest = list(stream)
    assert len(rest) == 15 and [int(f[0, 0, 0]) for f in rest[:3]] == [1, 2, 3]


# ---- data


def test_a_name_is_the_roots_dataset_where_a_folder_of_that_name_here_is_none(
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--data demo` run where ./demo is some other folder (the root itself, say) named that
    folder, and failed with "no Parquet shards for split 'train'"; a folder that holds no
    dataset gives way to ROOT/datasets/NAME (a dataset folder given as a path still wins)."""
    root = tmp_path / "r"
    (root / "datasets").mkdir(parents=True)
    named = root / "datasets" / "toy"
    named.symlink_to(toy_dataset, target_is_directory=True)
    here = tmp_path / "cwd"
    (here / "toy" / "raw").mkdir(parents=True)  # a folder named like it, no dataset in it
    monkeypatch.chdir(here)
    assert resolve_dataset("toy", root) == named
    assert resolve_dataset(toy_dataset, root) == toy_dataset
    (root / "datasets" / "toy").unlink()
    assert resolve_dataset("toy", root) == (here / "toy").resolve()  # nothing else: as before


def test_a_name_is_a_dataset_the_catalog_knows_outside_the_roots_datasets(
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`synth --out /tmp/vhs-set` records the dataset in the root's catalog (`filmdata datasets`
    lists it, `verify vhs-set` and `preview vhs-set` find it), but `--data vhs-set` of train and
    eval looked only under ROOT/datasets and refused it ("no such dataset folder")."""
    from filmdata.catalog import Catalog
    from filmdata.shards import register_dataset

    root = tmp_path / "r"
    root.mkdir()
    with Catalog.at_root(root):
        pass
    register_dataset(root, toy_dataset)  # a dataset folder outside ROOT/datasets
    monkeypatch.chdir(tmp_path)
    assert resolve_dataset(toy_dataset.name, root) == toy_dataset


def test_dataset_resolution_and_splits(toy_dataset: Path, tmp_path: Path) -> None:  # noqa: F811
    root = toy_dataset.parent.parent
    assert resolve_dataset(toy_dataset, None) == toy_dataset
    (root / "datasets").mkdir(exist_ok=True)
    with pytest.raises(RefusedError, match="no such dataset"):
        resolve_dataset("nope", root)
    assert len(split_files(toy_dataset, "validation")) == 1
    with pytest.raises(RefusedError, match="split 'test'"):
        split_files(toy_dataset, "test")
    rows = list(load_split(toy_dataset, "validation"))
    lq, gt = row_frames(rows[0])
    assert lq.shape == gt.shape == (4, 24, 40, 3) and lq.dtype == np.uint8


def _flat_dataset(
    path: Path, rows: int, per_shard: int, frames: int = 3, gt_side: int = 16
) -> Path:
    """A dataset whose row k has every lq/gt pixel at 20 * k (flips and crops keep it), in
    shards of `per_shard` rows: a window tells which row it came from."""
    from filmdata.shards import write_card, write_split

    def row(k: int) -> dict:
        img = np.full((16, 16, 3), 20 * k, np.uint8)
        gt = np.full((gt_side, gt_side, 3), 20 * k, np.uint8)
        return {
            "id": f"flat-{k}", "source": "flat", "clip": "flat-0", "start_frame": k * frames,
            "fps": 24.0, "crop": {"x": 0, "y": 0, "w": 16, "h": 16},
            "gt": [gt] * frames, "lq": [img] * frames, "degradation": "{}",
            "origin": "synthetic",
        }  # fmt: skip

    write_split(path, "synthetic", "train", [row(k) for k in range(rows)], rows_per_shard=per_shard)
    write_card(path)
    return path


@pytest.mark.parametrize(("rows", "per_shard", "workers"), [(8, 2, 2), (6, 6, 4)])
def test_loader_workers_see_each_row_once_per_pass(
    tmp_path: Path, rows: int, per_shard: int, workers: int
) -> None:
    """The worker path CUDA training takes: each row once per pass, whether the files outnumber
    the workers (4 files, 2 workers) or not (1 file, `small`'s 4 workers)."""
    from collections import Counter

    from filmdata.restorer.data import Windows, loader

    ds = _flat_dataset(tmp_path / "flat", rows, per_shard)
    windows = Windows(ds, "train", frames=3, crop=8, seed=0, buffer=4)
    dl = loader(windows, batch_size=1, workers=workers)
    assert dl.num_workers == min(workers, rows // per_shard)
    it = iter(dl)
    seen = [round(float(next(it)[0][0, 0, 0, 0, 0]) * 255 / 20) for _ in range(2 * rows)]
    assert Counter(seen[:rows]) == Counter(range(rows)), seen
    assert Counter(seen) == Counter({k: 2 for k in range(rows)}), seen


def test_windows_refuse_a_split_without_a_window(tmp_path: Path) -> None:
    from filmdata.restorer.data import Windows

    ds = _flat_dataset(tmp_path / "flat", 2, 1, frames=2)
    with pytest.raises(RefusedError, match="no window of 3 frames"):
        Windows(ds, "train", frames=3, crop=8, seed=0)


def test_paired_augmentation_is_one_transform_for_all_frames() -> None:
    frames, _ = render_shots([3], 40, 30, seed=2)
    lq = frames.copy()
    tr = paired_transform(16, 3)
    tr.set_random_seed(0)
    for _ in range(5):
        a, b = augment(tr, lq, frames)
        assert a.shape == b.shape == (3, 16, 16, 3)
        assert np.array_equal(a, b), "lq and gt must get the same crop and flips"
    same = np.repeat(frames[:1], 3, 0)  # a still window stays still after augmentation
    a, _ = augment(tr, same, same)
    assert np.array_equal(a[0], a[1]) and np.array_equal(a[1], a[2])


# ---- the commands


def _lines(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_train_cli_writes_safe_run_and_resumes(
    runner: CliRunner,
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    cfg_file = tmp_path / "quick.json"
    cfg_file.write_text(json.dumps(QUICK | {"steps": 4}))
    run = tmp_path / "run"
    args = ["train", "--data", str(toy_dataset), "--config", str(cfg_file), "--out", str(run)]
    r = runner.invoke(app, [*args, "--quiet", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert {"config.json", "model.safetensors", "ema.safetensors", "metrics.jsonl"} <= {
        p.name for p in run.iterdir()
    }
    assert not [p for p in run.iterdir() if p.suffix in (".pt", ".pth", ".bin", ".pkl")]
    lines = _lines(run)
    assert [x["step"] for x in lines] == [2, 4]
    assert all(np.isfinite(x["loss"]) and x["lr"] > 0 for x in lines)
    r = runner.invoke(app, [*args, "--quiet"])
    assert r.exit_code == 2 and "--resume" in r.output
    at_4 = tmp_path / "at-4"
    shutil.copytree(run, at_4)
    r = runner.invoke(
        app, [*args, "--quiet", "--resume", "--steps", "6", "--objective", "diffusion"]
    )
    assert r.exit_code == 0, r.output
    assert [x["step"] for x in _lines(run)] == [2, 4, 6]
    r = runner.invoke(app, [*args, "--quiet", "--resume", "--steps", "6"])
    assert r.exit_code == 2 and "already at step 6" in r.output
    _assert_resume_loads_everything(toy_dataset, cfg_file, run, at_4)


def test_train_prints_one_loss_for_one_logged_interval(
    runner: CliRunner,
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A run that logs one interval prints its loss once ("loss 0.1234"), not the same number
    as first and last ("loss 0.1234 -> 0.1234"); one of two intervals prints first -> last."""
    import re

    for steps, logged in ((2, 1), (4, 2)):
        cfg_file = tmp_path / f"quick-{steps}.json"
        cfg_file.write_text(json.dumps(QUICK | {"steps": steps}))
        args = ["train", "--data", str(toy_dataset), "--config", str(cfg_file)]
        run = tmp_path / f"run-{steps}"
        r = runner.invoke(app, [*args, "--out", str(run), "--quiet", "--device", "cpu"])
        assert r.exit_code == 0, r.output
        shown = re.search(r"steps, loss (.*?), [\d.]+ steps/s", r.output)
        assert shown is not None, r.output
        losses = [float(x) for x in shown.group(1).split(" -> ")]
        assert len(losses) == logged, r.output
        assert losses[-1] == pytest.approx(_lines(run)[-1]["loss"], abs=1e-4)


def test_resume_after_a_kill_logs_each_step_once(
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed after logging step 6 but before its checkpoint (the last whole one: step 3), with
    a row cut short, the resumed run logs 4 and 6 again: metrics.jsonl keeps one row a step."""
    from filmdata.restorer import checkpoint as ckpt
    from filmdata.restorer import train

    cfg = PRESETS["tiny"].replace(**QUICK)
    run = tmp_path / "run"
    real = ckpt.save_checkpoint

    def killed_at_6(run: Path, *args: object) -> None:
        if args[-1]["step"] == 6:  # type: ignore[index]
            with (run / "metrics.jsonl").open("a") as f:
                f.write('{"step": 8, "lo')
            raise KeyboardInterrupt
        real(run, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ckpt, "save_checkpoint", killed_at_6)
    with pytest.raises(KeyboardInterrupt):
        train(toy_dataset, cfg, out=run, device="cpu", quiet=True)
    monkeypatch.setattr(ckpt, "save_checkpoint", real)
    assert ckpt.checkpoint_step(run) == 3
    train(toy_dataset, cfg, out=run, device="cpu", quiet=True, resume=True)
    assert [x["step"] for x in _lines(run)] == [2, 4, 6]


def _assert_resume_loads_everything(dataset: Path, cfg: Path, run: Path, at_4: Path) -> None:
    """`run` was resumed from `at_4` (4 steps) to 6: the optimizer went on counting, and the
    weights and EMA it continued from are the stored ones. Copies of `at_4` resumed the same
    way: unchanged, they end identical to `run` (CPU training replays exactly); with the
    weights or the EMA swapped for another init, they end elsewhere, which they could not if
    resuming ignored that file."""
    from safetensors.torch import load_file, save_file

    from filmdata.restorer import checkpoint as ckpt
    from filmdata.restorer import train

    adam_steps = {v.item() for k, v in load_file(run / ckpt.OPTIM).items() if k.endswith(".step")}
    assert adam_steps == {6.0}  # 2 had the optimizer started afresh
    torch.manual_seed(123)
    other = UNet(load_config(cfg)).state_dict()
    ends = {}
    for swapped in (None, ckpt.MODEL, ckpt.EMA):
        copy = at_4.with_name(f"at-4-{swapped}")
        shutil.copytree(at_4, copy)
        if swapped:
            save_file(other, str(copy / swapped), {"step": "4", "format": "filmdata-restorer-1"})
        train(dataset, cfg, steps=6, out=copy, device="cpu", quiet=True, resume=True)
        ends[swapped] = {f: load_file(copy / f) for f in (ckpt.MODEL, ckpt.EMA)}
    ref = {f: load_file(run / f) for f in (ckpt.MODEL, ckpt.EMA)}

    def same(swapped: str | None, f: str) -> bool:
        return all(torch.equal(ends[swapped][f][k], ref[f][k]) for k in ref[f])

    assert same(None, ckpt.MODEL) and same(None, ckpt.EMA), "CPU training no longer replays"
    assert not same(ckpt.MODEL, ckpt.MODEL), "resuming ignored model.safetensors"
    assert not same(ckpt.EMA, ckpt.EMA), "resuming ignored ema.safetensors"


def test_train_refuses_gt_off_the_lq_grid_before_the_run_folder(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Pairs exported with --gt-scale (the GT at its own, finer scale) cannot be trained on:
    refused up front, naming the option, and no run folder is left behind."""
    ds = _flat_dataset(tmp_path / "gts", 2, 2, frames=4, gt_side=24)
    run = tmp_path / "run"
    r = runner.invoke(app, ["train", "--data", str(ds), "--out", str(run), "--device", "cpu"])
    assert r.exit_code == 2, r.output
    assert "gt frames are 24x24, lq 16x16" in r.output and "--gt-scale" in r.output
    assert not run.exists()


class _Crash(Exception):
    pass


def _steps(run: Path) -> dict[str, str]:
    from safetensors import safe_open

    from filmdata.restorer import checkpoint as ckpt

    out = {ckpt.STATE: str(json.loads((run / ckpt.STATE).read_text())["step"])}
    for name in (ckpt.MODEL, ckpt.EMA, ckpt.OPTIM):
        with safe_open(str(run / name), "pt") as f:
            out[name] = f.metadata()["step"]
    return out


def test_a_crash_while_checkpointing_never_resumes_mixed(
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed while step 6's checkpoint is written: before its files are renamed in, the run
    resumes from step 3 whole; among the renames, resuming is refused (never weights of one
    step with the EMA and optimizer of another)."""
    import os

    from safetensors import safe_open

    from filmdata.restorer import checkpoint as ckpt
    from filmdata.restorer import train

    cfg = PRESETS["tiny"].replace(**QUICK)  # checkpoints at steps 3 and 6
    save_file, replace = ckpt.save_file, os.replace

    def crash_saving(tensors: dict, path: str, meta: dict) -> None:
        if meta["step"] == "6" and ckpt.EMA in path:
            raise _Crash(path)
        return save_file(tensors, path, meta)

    def crash_renaming(src: str, dst: str) -> None:
        if str(dst).endswith(ckpt.EMA):
            with safe_open(str(src), "pt") as f:
                if f.metadata()["step"] == "6":
                    raise _Crash(dst)
        return replace(src, dst)

    for name, where, patch in [("save", ckpt, crash_saving), ("rename", os, crash_renaming)]:
        run = tmp_path / name
        with monkeypatch.context() as m:
            m.setattr(where, "save_file" if name == "save" else "replace", patch)
            with pytest.raises(_Crash):
                train(toy_dataset, cfg, out=run, device="cpu", quiet=True)
        if name == "save":  # the previous checkpoint is whole and resumes
            assert set(_steps(run).values()) == {"3"}
            assert not list(run.glob(".*.tmp"))
            resumed = train(toy_dataset, cfg, out=run, device="cpu", quiet=True, resume=True)
            assert resumed.steps == 6
        else:
            assert _steps(run)[ckpt.MODEL] == "6" and _steps(run)[ckpt.EMA] == "3"
            with pytest.raises(RefusedError, match="model.safetensors: of step 6, but state.json"):
                train(toy_dataset, cfg, out=run, device="cpu", quiet=True, resume=True)


def test_train_refuses_bad_input(runner: CliRunner, toy_dataset: Path, root: Path) -> None:  # noqa: F811
    r = runner.invoke(app, ["train", "--data", "missing", "--root", str(root)])
    assert r.exit_code == 2 and "no such dataset" in r.output
    r = runner.invoke(app, ["train", "--data", str(toy_dataset), "--config", "huge"])
    assert r.exit_code == 2 and "not a preset" in r.output
    r = runner.invoke(
        app, ["train", "--data", str(toy_dataset), "--objective", "gan", "--root", str(root)]
    )
    assert r.exit_code == 2 and "objective" in r.output
    a_file = root / "notes.txt"
    a_file.write_text("mine")
    for opt in ("--out", "--root"):  # (a NotADirectoryError traceback after loading the data)
        target = a_file / "run" if opt == "--out" else a_file
        r = runner.invoke(app, ["train", "--data", str(toy_dataset), opt, str(target), "-q"])
        assert r.exit_code == 2, r.output
        (line,) = [s for s in r.output.splitlines() if s.strip()]
        assert line.startswith(f"error: {opt} ") and f"{a_file} is a file, not a folder" in line
    assert a_file.read_text() == "mine"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("lr: -1\n", "lr=-1.0"),
        ("residual_scale: 0\n", "residual_scale=0.0"),
        ("ema: 1.5\n", "ema=1.5"),
        ("crop: 33\n", "crop=33"),
        ("lr: .nan\n", "lr=nan"),
        # numpy's SeedSequence refuses it: a ValueError traceback once the data was loaded
        ("seed: -1\n", "seed=-1"),
        # a multiple of 4, but the way up concatenates 24 + 12 = 36 channels, which GroupNorm's
        # 8 groups do not divide: a ValueError traceback from building the model
        ("channels: 12\n", "channels=12"),
        # trained a model without the way up's blocks, silently
        ("blocks: -1\n", "blocks=-1"),
    ],
)
def test_train_names_the_config_file_and_field_of_a_bad_value(
    runner: CliRunner,
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
    text: str,
    field: str,
) -> None:
    """A bad value in a config file is refused in one line naming the file and the field: it
    named the config by its name (the file's stem, "config 'bad'"), not where to fix it, and
    lumped lr and residual_scale together."""
    cfg = tmp_path / "configs" / "bad.yaml"
    cfg.parent.mkdir()
    cfg.write_text(text)
    args = ["train", "--data", str(toy_dataset), "--config", str(cfg), "--out", str(tmp_path / "r")]
    r = runner.invoke(app, [*args, "-q"])
    assert r.exit_code == 2, r.output
    (line,) = [s for s in r.output.splitlines() if s.strip()]
    assert line.startswith(f"error: {cfg}: field {field} is invalid; "), line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("crop", [100000, 42])
def test_train_refuses_a_crop_bigger_than_the_frames(
    runner: CliRunner,
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
    crop: int,
) -> None:
    """A crop larger than the dataset's frames (40x24) on both sides is refused before the run
    folder is made (exit 2, one line naming the field and the frames): 100000 was a cv2
    allocation traceback (a 30 GB padded frame), and 42 trained on frames mostly mirrored."""
    cfg = tmp_path / "big.yaml"
    cfg.write_text(f"crop: {crop}\nsteps: 1\nbatch_size: 1\n")
    run = tmp_path / "run"
    args = ["train", "--data", str(toy_dataset), "--config", str(cfg), "--out", str(run)]
    r = runner.invoke(app, [*args, "-q", "--device", "cpu"])
    assert r.exit_code == 2, r.output
    (line,) = [s for s in r.output.splitlines() if s.strip()]
    assert line.startswith("error: ") and f"crop={crop}" in line and "40x24" in line, line
    assert "at most 40" in line and not run.exists()


def test_eval_cli_json(runner: CliRunner, toy_run: Path, toy_dataset: Path) -> None:  # noqa: F811
    args = ["eval", str(toy_run), "--data", str(toy_dataset), "--split", "validation"]
    r = runner.invoke(app, [*args, "--steps", "2", "--json", "--quiet"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert set(report) == {"model", "input", "median", "gt"}
    for name in ("model", "input", "median"):
        assert {"psnr", "ssim", "ewarp", "tof", "sec_per_frame"} <= set(report[name])
        assert 5 < report[name]["psnr"] < 60 and 0 < report[name]["ssim"] <= 1
    assert report["gt"]["ssim"] == 1.0 and report["gt"]["tof"] == 0.0
    assert report["model"]["frames"] == 8
    r = runner.invoke(app, [*args, "--steps", "1", "--limit", "1", "--quiet"])
    assert r.exit_code == 0 and "median" in r.output and "ewarp" in r.output


def test_eval_takes_the_dataset_the_run_was_trained_on_by_default(
    runner: CliRunner,
    toy_run: Path,  # noqa: F811
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    args = ["eval", "--steps", "1", "--limit", "1", "--json", "--quiet"]
    named = runner.invoke(app, [*args, str(toy_run), "--data", str(toy_dataset)])
    r = runner.invoke(app, [*args, str(toy_run)])
    assert r.exit_code == 0 and named.exit_code == 0, r.output
    same = ("psnr", "ssim", "frames")
    a, b = json.loads(r.stdout)["input"], json.loads(named.stdout)["input"]
    assert [a[k] for k in same] == [b[k] for k in same]
    # a run whose config names no dataset (copied, edited) is refused in one line
    bare = tmp_path / "bare"
    shutil.copytree(toy_run, bare)
    cfg = json.loads((bare / "config.json").read_text())
    cfg.pop("filmdata")
    (bare / "config.json").write_text(json.dumps(cfg))
    r = runner.invoke(app, [*args, str(bare)])
    assert r.exit_code == 2 and "names no dataset; pass --data" in r.output, r.output


def test_restore_cli_keeps_size_count_and_fps(
    runner: CliRunner,
    toy_run: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    frames, _ = render_shots([12], 128, 96, seed=5)
    src = tmp_path / "in.mp4"
    write_video(src, frames, 24.0)
    out = tmp_path / "out.mp4"
    r = runner.invoke(
        app, ["restore", str(src), "-o", str(out), "--checkpoint", str(toy_run), "--steps", "1"]
    )
    assert r.exit_code == 0, r.output
    a, b = probe(src), probe(out)
    assert (b.frames, b.width, b.height, b.fps) == (12, 128, 96, 24.0) == (a.frames, 128, 96, a.fps)


def test_restore_keeps_odd_sizes(runner: CliRunner, toy_run: Path, tmp_path: Path) -> None:  # noqa: F811
    frames, _ = render_shots([3], 45, 27, seed=6)
    src = tmp_path / "odd.mkv"
    write_video(src, frames, 25.0, pix_fmt="yuv444p")
    out = tmp_path / "odd-out.mkv"
    r = runner.invoke(
        app,
        ["restore", str(src), "-o", str(out), "--checkpoint", str(toy_run), "--steps", "1",
         "--window", "2", "--overlap", "1", "--quiet"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    p = probe(out)
    assert (p.frames, p.width, p.height) == (3, 45, 27)
    other = tmp_path / "odd-other.mkv"
    r = runner.invoke(
        app, ["restore", str(src), "-o", str(other), "--checkpoint", str(tmp_path), "--quiet"]
    )
    assert r.exit_code == 2 and "config.json" in r.output


@pytest.mark.parametrize("name", ["restored", "restored.webm"])
def test_restore_refuses_an_output_it_cannot_write(
    runner: CliRunner,
    toy_run: Path,  # noqa: F811
    tmp_path: Path,
    name: str,
) -> None:
    """An output name with no container for H.264 4:4:4 is refused before any work, naming -o."""
    src = tmp_path / "in.mp4"
    write_video(src, render_shots([3], 32, 32, seed=1)[0], 24.0)
    out = tmp_path / name
    r = runner.invoke(app, ["restore", str(src), "-o", str(out), "--checkpoint", str(toy_run)])
    assert r.exit_code == 2, r.output
    assert r.output.startswith(f"error: -o {out}:") and ".mp4" in r.output
    assert not list(tmp_path.glob("*restored*"))


def test_restore_refuses_an_output_that_is_a_folder_or_under_a_file(
    runner: CliRunner,
    toy_run: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """-o naming a folder, or a path under a file, is refused before any work (it was an
    IsADirectoryError or FileExistsError traceback, the first after the whole restoration)."""
    src = tmp_path / "in.mp4"
    write_video(src, render_shots([3], 32, 32, seed=1)[0], 24.0)
    (tmp_path / "a.mp4").mkdir()
    for out, why in [
        (tmp_path / "a.mp4", "is a folder"),
        (src / "out.mp4", f"{src} is a file, not a folder"),
    ]:
        r = runner.invoke(
            app, ["restore", str(src), "-o", str(out), "--checkpoint", str(toy_run), "-q"]
        )
        assert r.exit_code == 2, r.output
        (line,) = [s for s in r.output.splitlines() if s.strip()]
        assert line.startswith(f"error: -o {out}: {why}"), line
    assert not list((tmp_path / "a.mp4").iterdir())


def test_restore_refuses_to_write_over_its_input(
    runner: CliRunner,
    toy_run: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """-o naming the input video (by any path) is refused: the restoration replaced the source."""
    src = tmp_path / "in.mp4"
    write_video(src, render_shots([3], 32, 32, seed=1)[0], 24.0)
    before = src.read_bytes()
    for out in (src, tmp_path / "." / "in.mp4"):
        r = runner.invoke(
            app, ["restore", str(src), "-o", str(out), "--checkpoint", str(toy_run), "-q"]
        )
        assert r.exit_code == 2, r.output
        assert r.output.startswith(f"error: -o {out}: is the input video"), r.output
    assert src.read_bytes() == before


def test_restore_refuses_to_replace_an_output_unless_told(
    runner: CliRunner,
    toy_run: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """An -o file that exists (a restoration made before, maybe hours of work) was replaced
    silently; it is refused before any work (exit 2, one line naming it), and replaced
    with --overwrite."""
    src = tmp_path / "in.mp4"
    write_video(src, render_shots([3], 32, 32, seed=1)[0], 24.0)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"last night's restoration")
    args = ["restore", str(src), "-o", str(out), "--checkpoint", str(toy_run), "--steps", "1"]
    r = runner.invoke(app, [*args, "-q"])
    assert r.exit_code == 2, r.output
    (line,) = [s for s in r.output.splitlines() if s.strip()]
    assert line.startswith(f"error: -o {out}: exists; pass --overwrite"), line
    assert out.read_bytes() == b"last night's restoration"
    r = runner.invoke(app, [*args, "-q", "--overwrite"])
    assert r.exit_code == 0, r.output
    assert probe(out).frames == 3


def test_eval_and_restore_refuse_more_steps_than_the_schedule_has(
    runner: CliRunner,
    toy_run: Path,  # noqa: F811
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """--steps beyond the run's train_timesteps (1000) was diffusers' ValueError traceback
    (exit 1) from the scheduler, after the video was opened or the split loaded; refused in
    one line (exit 2), nothing written."""
    src = tmp_path / "in.mp4"
    write_video(src, render_shots([3], 32, 32, seed=1)[0], 24.0)
    out = tmp_path / "out.mp4"
    for args in (
        ["restore", str(src), "-o", str(out), "--checkpoint", str(toy_run)],
        ["eval", str(toy_run), "--data", str(toy_dataset)],
    ):
        r = runner.invoke(app, [*args, "--steps", "1001", "-q", "--device", "cpu", "--json"])
        assert r.exit_code == 2, r.output
        (line,) = [s for s in r.output.splitlines() if s.strip()]
        assert line.startswith("error: --steps 1001: ") and "1000" in line, line
    assert not out.exists()


@pytest.mark.slow
def test_tiny_learns_in_60_cpu_steps(toy_dataset: Path, tmp_path: Path) -> None:  # noqa: F811
    from filmdata.restorer import train

    result = train(toy_dataset, "tiny", steps=60, out=tmp_path / "run", device="cpu", quiet=True)
    losses = [x["loss"] for x in _lines(result.run)]
    assert len(losses) == 6 and losses[-1] < 0.75 * losses[0]


def test_readme_points_eval_and_restore_at_the_run_train_makes() -> None:
    """README step 6 trains, then evaluates and restores with the run: by the folder that
    `train` names it (`<dataset>-<config>-<objective>` under ROOT/runs)."""
    import re

    from filmdata.restorer.train import _run_name

    text = (Path(__file__).parents[1] / "README.md").read_text()
    trained = re.search(r"filmdata train --data (\S+) --config (\S+)", text)
    assert trained
    data, config = trained.groups()
    run = f"filmdata-data/runs/{_run_name(Path(data), load_config(config))}"
    assert re.search(rf"filmdata eval {run} ", text)
    assert re.search(rf"--checkpoint {run}\n", text)


def test_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        PRESETS["tiny"].steps = 3  # type: ignore[misc]
    assert isinstance(RestorerConfig.from_dict({"steps": 2}), RestorerConfig)


def _cut_shard(dataset: Path, tmp_path: Path, split: str) -> tuple[Path, Path]:
    """A copy of `dataset` whose first `split` shard is cut in half (a copy interrupted)."""
    copy = tmp_path / "cut"
    shutil.copytree(dataset, copy)
    shard = sorted(copy.glob(f"data/*/{split}-*.parquet"))[0]
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    return copy, shard


def test_eval_refuses_a_cut_shard_in_one_line_naming_it(
    runner: CliRunner,
    toy_run: Path,  # noqa: F811
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A shard cut short (its footer gone) is refused before any window, in one line naming
    the file (exit 2): eval ended in pyarrow's traceback (exit 1)."""
    copy, shard = _cut_shard(toy_dataset, tmp_path, "validation")
    r = runner.invoke(app, ["eval", str(toy_run), "--data", str(copy), "--quiet", "--steps", "1"])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(shard) in lines[0] and "filmdata verify" in lines[0], lines


def _with_sound(path: Path, frames: list[np.ndarray], fps: int, codec: str) -> Path:
    """A video of `frames` with a 440 Hz tone as long as they last, in `codec`."""
    import av

    rate = 48000
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=fps)
        v.height, v.width = frames[0].shape[:2]
        v.pix_fmt = "yuv444p"
        a = c.add_stream(codec, rate=rate)
        a.layout = "mono"
        for f in frames:
            c.mux(v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(v.encode())
        n = rate * len(frames) // fps
        tone = (np.sin(np.arange(n) * 2 * np.pi * 440 / rate) * 8000).astype(np.int16)
        fmt = a.codec_context.format.name
        for i in range(0, n, 1024):
            chunk = tone[None, i : i + 1024]
            if fmt.startswith("flt"):
                chunk = chunk.astype(np.float32) / 32768
            af = av.AudioFrame.from_ndarray(chunk, format=fmt, layout="mono")
            af.sample_rate, af.pts = rate, i
            c.mux(a.encode(af))
        c.mux(a.encode())
    return path


@pytest.mark.parametrize(
    ("codec", "ext", "out_ext"), [("aac", ".mp4", ".mkv"), ("pcm_s16le", ".mkv", ".mp4")]
)
def test_restore_keeps_the_sound(
    runner: CliRunner,
    toy_run: Path,  # noqa: F811
    tmp_path: Path,
    codec: str,
    ext: str,
    out_ext: str,
) -> None:
    """A restored video keeps the input's sound, as long as the pictures (copied, or encoded to
    AAC where the output's container does not take it): the sound track was dropped (a sound
    film came back silent)."""
    import av

    frames, _ = render_shots([10], 32, 24, seed=7)
    src = _with_sound(tmp_path / f"in{ext}", list(frames), 25, codec)
    out = tmp_path / f"out{out_ext}"
    r = runner.invoke(
        app,
        ["restore", str(src), "-o", str(out), "--checkpoint", str(toy_run), "--steps", "1",
         "--quiet"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    p = probe(out)
    assert p.audio and (p.frames, p.width, p.height, p.fps) == (10, 32, 24, 25.0)
    with av.open(str(out)) as c:
        samples = sum(f.samples for f in c.decode(audio=0))
    assert abs(samples - 48000 * 10 // 25) <= 2048, samples  # (AAC's priming frame)
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted([src.name, out.name])


def test_a_fresh_start_after_a_kill_before_any_checkpoint_logs_each_step_once(
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed before its first checkpoint (step 3), a run has nothing to resume and starts
    again without --resume: its metrics.jsonl starts again too. The new rows were appended to
    the killed run's (step 2 twice, and the first of each taken for the run's start)."""
    from filmdata.restorer import checkpoint as ckpt
    from filmdata.restorer import train

    cfg = PRESETS["tiny"].replace(**QUICK)
    run = tmp_path / "run"
    real = ckpt.save_checkpoint

    def killed_at_3(run: Path, *args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "save_checkpoint", killed_at_3)
    with pytest.raises(KeyboardInterrupt):
        train(toy_dataset, cfg, out=run, device="cpu", quiet=True)
    monkeypatch.setattr(ckpt, "save_checkpoint", real)
    assert [x["step"] for x in _lines(run)] == [2]
    with pytest.raises(RefusedError, match="no checkpoint"):
        train(toy_dataset, cfg, out=run, device="cpu", quiet=True, resume=True)
    train(toy_dataset, cfg, out=run, device="cpu", quiet=True)
    assert [x["step"] for x in _lines(run)] == [2, 4, 6]


def test_eval_and_restore_refuse_a_checkpoint_interrupted_while_written(
    runner: CliRunner,
    toy_run: Path,  # noqa: F811
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A run killed among its checkpoint's renames (an EMA of another step than state.json's)
    or before its first state.json is refused by eval and restore in one line naming the file
    (exit 2), as --resume refuses it: they loaded whatever weights were there, as if whole."""
    from safetensors.torch import load_file, save_file

    from filmdata.restorer import checkpoint as ckpt

    frames, _ = render_shots([2], 32, 24, seed=8)
    src = tmp_path / "in.mp4"
    write_video(src, frames, 25.0)
    mixed, first = tmp_path / "mixed", tmp_path / "first"
    shutil.copytree(toy_run, mixed)
    ema = mixed / ckpt.EMA
    save_file(load_file(str(ema)), str(ema), {"step": "999", "format": "filmdata-restorer-1"})
    shutil.copytree(toy_run, first)
    (first / ckpt.STATE).unlink()
    for run, name in [(mixed, ckpt.EMA), (first, ckpt.STATE)]:
        for args in (
            ["eval", str(run), "--data", str(toy_dataset), "--steps", "1"],
            ["restore", str(src), "-o", str(tmp_path / "out.mp4"), "--checkpoint", str(run)],
        ):
            r = runner.invoke(app, [*args, "--quiet"])
            assert r.exit_code == 2, r.output
            (line,) = r.stderr.strip().splitlines()
            assert str(run / name) in line, line
    assert not (tmp_path / "out.mp4").exists()


def test_a_run_killed_in_its_first_checkpoint_can_start_again(
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed among its first checkpoint's renames (weights in, no state.json yet), a run has
    nothing to resume and starts again without --resume. Both were refused, each pointing at
    the other ("a run is already there; pass --resume" / "no checkpoint; drop --resume")."""
    import os

    from filmdata.restorer import checkpoint as ckpt
    from filmdata.restorer import train

    cfg = PRESETS["tiny"].replace(**QUICK)
    run = tmp_path / "run"
    replace = os.replace

    def killed_renaming(src: str, dst: str) -> None:
        replace(src, dst)
        if str(dst).endswith(ckpt.EMA):
            raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(os, "replace", killed_renaming)
        with pytest.raises(KeyboardInterrupt):
            train(toy_dataset, cfg, out=run, device="cpu", quiet=True)
    assert (run / ckpt.MODEL).is_file() and not (run / ckpt.STATE).exists()
    with pytest.raises(RefusedError, match="no checkpoint"):
        train(toy_dataset, cfg, out=run, device="cpu", quiet=True, resume=True)
    done = train(toy_dataset, cfg, out=run, device="cpu", quiet=True)
    assert done.steps == 6 and ckpt.checkpoint_step(run) == 6


def test_eval_names_a_window_that_does_not_decode_and_evaluates_the_rest(
    runner: CliRunner,
    toy_run: Path,  # noqa: F811
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A window whose frame does not decode (bytes damaged in a readable shard) is named with
    its reason and the others are evaluated, exit 1: eval ended in PIL's traceback, inside
    `datasets`' iterator, losing every window."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    copy = tmp_path / "damaged"
    shutil.copytree(toy_dataset, copy)
    shard = sorted(copy.glob("data/*/validation-*.parquet"))[0]
    table = pq.read_table(shard)
    rows = table.to_pylist()
    assert len(rows) == 2
    rows[0]["lq"][1]["bytes"] = b"not a picture"
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard)
    args = ["eval", str(toy_run), "--data", str(copy), "--steps", "1", "--quiet"]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 1, r.output
    report = json.loads(r.stdout)
    assert report["model"]["windows"] == 1 and report["model"]["frames"] == 4
    assert [f["id"] for f in report["failed"]] == [rows[0]["id"]]
    (line,) = r.stderr.strip().splitlines()
    assert rows[0]["id"] in line and "lq frame 1" in line, line
    r = runner.invoke(app, args)
    assert r.exit_code == 1 and "median" in r.stdout, r.output


def test_train_names_a_window_that_does_not_decode(
    runner: CliRunner,
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A training window whose frame does not decode (bytes damaged in a readable shard) stops
    the run in one line naming the row, column and frame (exit 2): it was PIL's traceback from
    inside `datasets`' batch decoding."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    copy = tmp_path / "damaged"
    shutil.copytree(toy_dataset, copy)
    for shard in sorted(copy.glob("data/*/train-*.parquet")):
        table = pq.read_table(shard)
        rows = table.to_pylist()
        for row in rows:
            row["gt"][2]["bytes"] = b"not a picture"
        pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard)
    cfg = tmp_path / "quick.json"
    cfg.write_text(json.dumps(QUICK))
    args = ["train", "--data", str(copy), "--config", str(cfg), "--out", str(tmp_path / "run")]
    r = runner.invoke(app, [*args, "--quiet", "--device", "cpu"])
    assert r.exit_code == 2, r.output
    (line,) = r.stderr.strip().splitlines()
    assert "gt frame 2 does not decode" in line and "filmdata verify" in line, line


def test_restore_names_a_picture_size_that_changes_mid_file(
    runner: CliRunner,
    toy_run: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A video whose picture size changes part-way (two MPEG-TS recordings joined) is refused
    in one line naming the file and the frame (exit 2), nothing written: it was a ValueError
    traceback."""
    parts = []
    for i, w in enumerate((32, 48)):
        frames, _ = render_shots([3], w, 24, seed=9 + i)
        parts.append(write_video(tmp_path / f"p{i}.ts", frames, 25.0) and tmp_path / f"p{i}.ts")
    src = tmp_path / "joined.ts"
    src.write_bytes(b"".join(p.read_bytes() for p in parts))
    out = tmp_path / "out.mp4"
    r = runner.invoke(
        app, ["restore", str(src), "-o", str(out), "--checkpoint", str(toy_run), "--steps", "1",
              "--quiet"],
    )  # fmt: skip
    assert r.exit_code == 2, r.output
    (line,) = r.stderr.strip().splitlines()
    assert str(src) in line and "frame 3" in line, line
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_weights_of_another_config_are_refused_naming_what_differs(
    toy_run: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Weights that do not fit config.json are refused naming the first thing that differs
    (a tensor's shapes): the message ended at torch's heading, "Error(s) in loading state_dict
    for UNet:", which names nothing."""
    from filmdata.restorer.checkpoint import load_model

    run = tmp_path / "run"
    shutil.copytree(toy_run, run)
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(cfg | {"channels": cfg["channels"] * 2}))
    with pytest.raises(RefusedError) as e:
        load_model(run)
    assert "does not match config.json" in str(e.value)
    assert "size mismatch for" in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_weights_take_the_folders_usual_permissions(toy_run: Path) -> None:  # noqa: F811
    """The safetensors writer creates its files readable by their owner only (0600): a run
    folder shared with colleagues held weights they could not read, beside config.json and
    state.json that they could. Weights now take the mode every other file gets (0666 less
    the umask)."""
    import os

    umask = os.umask(0)
    os.umask(umask)
    want = 0o666 & ~umask
    modes = {p.name: p.stat().st_mode & 0o777 for p in toy_run.iterdir() if p.is_file()}
    assert modes["config.json"] == want
    assert {n: m for n, m in modes.items() if n.endswith(".safetensors")} == {
        n: want for n in modes if n.endswith(".safetensors")
    }
    assert any(n.endswith(".safetensors") for n in modes)


def test_restore_of_a_truncated_file_says_what_it_lacks(
    runner: CliRunner,
    toy_run: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A capture cut off mid-write (a Matroska file whose frames end at half of those it
    declares) is restored as far as it decodes, with one line naming the file and both counts,
    and exit 1: it gave a shorter video, exit 0, without a word."""
    frames, _ = render_shots([40], 64, 48, seed=11)
    whole = tmp_path / "whole.mkv"
    write_video(whole, frames, 25.0)
    src = tmp_path / "cut off.mkv"
    data = whole.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.mkv"
    r = runner.invoke(
        app, ["restore", str(src), "-o", str(out), "--checkpoint", str(toy_run), "--steps", "1",
              "--quiet", "--json"],
    )  # fmt: skip
    assert r.exit_code == 1, r.output
    got = json.loads(r.stdout)
    assert got["frames"] == probe(out).frames < got["declared_frames"] == 40
    (line,) = r.stderr.strip().splitlines()
    assert str(src) in line and f"{got['frames']} of the 40" in line, line
    r = runner.invoke(
        app, ["restore", str(whole), "-o", str(out), "--checkpoint", str(toy_run), "--steps", "1",
              "--quiet", "--overwrite"],
    )  # fmt: skip
    assert r.exit_code == 0 and not r.stderr, r.output
    # a variable frame rate (a phone's, a capture card's dropped frames): its duration at the
    # declared rate counts twice its frames, and none is missing
    import fractions

    import av

    vfr = tmp_path / "vfr.mkv"
    with av.open(str(vfr), "w") as o:
        st = o.add_stream("libx264", rate=30)
        st.width, st.height, st.pix_fmt = 64, 48, "yuv420p"
        st.codec_context.time_base = st.time_base = fractions.Fraction(1, 1000)
        for k, img in enumerate(frames[:24]):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = 133 * (k // 2) + 100 * (k % 2), fractions.Fraction(1, 1000)
            o.mux(st.encode(f))
        o.mux(st.encode())
    p = probe(vfr)
    assert p.frames == 24 and p.declared_frames > 1.5 * p.frames, p
    r = runner.invoke(
        app, ["restore", str(vfr), "-o", str(out), "--checkpoint", str(toy_run), "--steps", "1",
              "--quiet", "--overwrite"],
    )  # fmt: skip
    assert r.exit_code == 0 and not r.stderr, r.output


def test_train_refuses_a_dataset_a_run_left_part_made(tmp_path: Path) -> None:
    """A synth or export stopped part-way leaves a card that names every planned shard, so
    that `load_dataset` fails on the first one missing; train and eval read the card's names
    as patterns, dropped the missing ones and trained on the part made as if it were whole."""
    from conftest import make_clip
    from filmdata import shards
    from filmdata.degrade.presets import bundled_dir
    from filmdata.synth import synth

    video, _ = make_clip(tmp_path / "v.mp4", (10, 10), (64, 48), seed=4)
    dataset = tmp_path / "ds"
    synth(bundled_dir(), "film", [video], out=dataset, root=tmp_path / "root", clip_len=2,
          size=16, seed=2, device="cpu", rows_per_shard=2, max_windows=6, quiet=True)  # fmt: skip
    assert len(split_files(dataset, "train")) == 3
    record = shards.read_record(dataset, "synthetic")
    name = "train-00001-of-00003.parquet"
    del record["shards"][name]  # planned, not made yet: as a stopped run leaves it
    shards.write_record(dataset, "synthetic", record)
    (shards.config_dir(dataset, "synthetic") / name).unlink()
    shards.write_card(dataset)
    with pytest.raises(RefusedError, match=f"{name}: missing"):
        split_files(dataset, "train")


def test_train_refuses_an_out_on_a_read_only_file_system(
    runner: CliRunner,
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
    read_only,
) -> None:
    """--out on a read-only file system was an OSError traceback from the run folder's mkdir
    (exit 1), after the dataset was loaded; it is refused in one line (exit 2)."""
    (tmp_path / "mine").mkdir()
    ro = read_only(tmp_path / "mine")
    args = ["train", "--data", str(toy_dataset), "--out", str(ro / "run"), "--device", "cpu"]
    r = runner.invoke(app, [*args, "-q", "--steps", "1"])
    assert r.exit_code == 2, r.output
    assert not isinstance(r.exception, OSError), r.exception
    (line,) = [s for s in r.output.splitlines() if s.strip()]
    assert f"--out {ro / 'run'}: {ro} is on a read-only file system" in line, line


def test_the_configs_channel_walk_is_the_models() -> None:
    """`config._normed_widths` restates the channel counts `UNet` puts through GroupNorm (so
    that a config is refused before the model is built): it must stay the model's."""
    import dataclasses
    import itertools

    from filmdata.restorer.config import _normed_widths

    base = PRESETS[next(iter(PRESETS))]
    for ch, mults, blocks in itertools.product(
        range(4, 37, 4), [(1,), (1, 2), (1, 2, 4), (1, 2, 2, 3)], (0, 1, 2)
    ):
        c = dataclasses.replace(base)  # (unchecked: the model decides what builds)
        for field, value in (("channels", ch), ("mults", mults), ("blocks", blocks)):
            object.__setattr__(c, field, value)
        try:
            model = UNet(c)
        except ValueError:  # GroupNorm: its groups do not divide a count
            assert any(n % min(8, n // 4) for n in _normed_widths(c)), (ch, mults, blocks)
            continue
        normed = {m.num_channels for m in model.modules() if isinstance(m, torch.nn.GroupNorm)}
        assert normed == _normed_widths(c), (ch, mults, blocks)


def test_the_ddim_sampler_is_the_training_schedule_without_importing_dpm_solver() -> None:
    """DDIM is built from the schedule's own arguments: the same config (and so the same
    timesteps and alphas) as diffusers' `from_config` of the training scheduler gives, without
    the import of every compatible scheduler that `from_config` makes (DPM-Solver's module
    imports `scipy.stats`: 1.3 s at every eval and restore)."""
    import subprocess
    import sys

    from diffusers import DDIMScheduler

    from filmdata.restorer import PRESETS
    from filmdata.restorer.diffusion import sample_scheduler, train_scheduler

    for cfg in PRESETS.values():
        ours = sample_scheduler(cfg, "ddim")
        theirs = DDIMScheduler.from_config(train_scheduler(cfg).config, set_alpha_to_one=True)
        assert dict(ours.config) == dict(theirs.config)
    code = (
        "import sys; from filmdata.restorer import PRESETS; "
        "from filmdata.restorer.diffusion import sample_scheduler; "
        "sample_scheduler(PRESETS['tiny'], 'ddim'); print('scipy.stats' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_resume_on_another_dataset_is_refused(
    runner: CliRunner,
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A run resumed with another --data went on training on it and recorded that dataset
    alone, as if every step had been trained on it (and `eval` takes it by default). It is
    refused, naming both; resuming on the recorded one goes on."""
    cfg_file = tmp_path / "quick.json"
    cfg_file.write_text(json.dumps(QUICK | {"steps": 2}))
    other = tmp_path / "other"
    shutil.copytree(toy_dataset, other)
    run = tmp_path / "run"
    common = ["train", "--config", str(cfg_file), "--out", str(run), "--quiet", "--device", "cpu"]
    r = runner.invoke(app, [*common, "--data", str(toy_dataset)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*common, "--data", str(other), "--resume", "--steps", "4"])
    assert r.exit_code == 2, r.output
    assert f"was trained on {toy_dataset}, not {other}" in r.output
    assert json.loads((run / "config.json").read_text())["filmdata"]["dataset"] == str(toy_dataset)
    r = runner.invoke(app, [*common, "--data", str(toy_dataset), "--resume", "--steps", "4"])
    assert r.exit_code == 0, r.output


def test_eval_of_a_dataset_without_validation_says_so(
    runner: CliRunner,
    toy_run: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """`eval` reads the validation split by default, which a dataset made with synth's default
    --val-fraction 0 does not have: it said "check the split name (train, validation)", as if
    the name were wrong. It now names the splits there are and what to do."""
    from filmdata.restorer.toydata import make_toy_dataset

    only_train = make_toy_dataset(
        tmp_path / "train-only", windows={"train": 4}, frames=4, size=(40, 24)
    )
    r = runner.invoke(
        app, ["eval", str(toy_run), "--data", str(only_train), "--device", "cpu", "-q"]
    )
    assert r.exit_code == 2, r.output
    assert "no Parquet shards for split 'validation' (it has: train)" in r.output
    assert "--split train" in r.output and "--val-fraction" in r.output


def test_resume_with_another_objective_is_refused(
    runner: CliRunner,
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A regression run resumed with --objective diffusion went on with the other loss and
    recorded `diffusion` alone in config.json, as if every step had been trained so (and eval
    and restore then sample it as a diffusion model). It is refused, naming both; the run's
    own objective, given or not, goes on."""
    cfg_file = tmp_path / "quick.json"
    cfg_file.write_text(json.dumps(QUICK | {"steps": 2, "objective": "regression"}))
    run = tmp_path / "run"
    common = ["train", "--data", str(toy_dataset), "--config", str(cfg_file), "--out", str(run)]
    common += ["--quiet", "--device", "cpu"]
    r = runner.invoke(app, common)
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*common, "--resume", "--steps", "4", "--objective", "diffusion"])
    assert r.exit_code == 2, r.output
    (line,) = r.stderr.strip().splitlines()
    assert str(run) in line and "regression" in line and "diffusion" in line, line
    assert json.loads((run / "config.json").read_text())["objective"] == "regression"
    r = runner.invoke(app, [*common, "--resume", "--steps", "4", "--objective", "regression"])
    assert r.exit_code == 0, r.output


def test_a_regression_config_names_the_sampling_fields_it_ignores(
    runner: CliRunner,
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A regression config setting the diffusion's sampling fields (`sampler: dpm`,
    `sample_steps: 20`) was taken without a word, though a regression run never samples: the
    user believed them to matter. train warns in one line naming the file and the fields; a
    regression config that leaves them at its preset's values gets no warning, nor does the
    run's own config.json (which records every field) when eval loads it."""
    told = tmp_path / "told.json"
    told.write_text(
        json.dumps(QUICK | {"steps": 1, "objective": "regression", "sampler": "dpm",
                            "sample_steps": 20})
    )  # fmt: skip
    plain = tmp_path / "plain.json"
    plain.write_text(  # (small's own sample_steps)
        json.dumps(QUICK | {"steps": 1, "objective": "regression", "base": "small", "window": 3,
                            "sample_steps": 8})
    )  # fmt: skip
    for cfg_file, warned in ((told, True), (plain, False)):
        run = tmp_path / f"run-{cfg_file.stem}"
        r = runner.invoke(
            app,
            ["train", "--data", str(toy_dataset), "--config", str(cfg_file), "--out", str(run),
             "--quiet", "--device", "cpu"],
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        lines = r.stderr.strip().splitlines()
        if warned:
            (line,) = lines
            assert line.startswith(f"warning: {cfg_file}: sampler, sample_steps set"), line
            assert "regression" in line and "ignored" in line, line
        else:
            assert not lines, r.stderr
    r = runner.invoke(
        app, ["eval", str(tmp_path / "run-told"), "--data", str(toy_dataset), "--limit", "1",
              "--quiet", "--device", "cpu"],
    )  # fmt: skip
    assert r.exit_code == 0 and "warning" not in r.stderr, r.output


def test_eval_table_keeps_the_digits_of_small_metrics(
    runner: CliRunner,
    toy_run: Path,  # noqa: F811
    toy_dataset: Path,  # noqa: F811
) -> None:
    """E_warp is of the order of 1e-3 to 1e-4: rounded to 3 decimals, the table showed the
    GT's floor as 0 and the median's 0.0034 as 0.003. Each metric shows 4 significant digits."""
    args = ["eval", str(toy_run), "--data", str(toy_dataset), "--steps", "1", "--limit", "1"]
    report = json.loads(runner.invoke(app, [*args, "--json", "--quiet"]).stdout)
    r = runner.invoke(app, [*args, "--quiet"])
    assert r.exit_code == 0, r.output
    _run, header, *rows = [line.split() for line in r.stdout.strip().splitlines()]
    for row in rows:
        cells = dict(zip(header, row, strict=True))
        got = report[cells["method"]]
        for key in ("ssim", "ewarp", "tof"):
            assert cells[key] == f"{got[key]:.4g}", (cells, got)
    assert float(dict(zip(header, rows[-1], strict=True))["ewarp"]) > 0, rows


def test_resume_with_another_config_is_refused(
    runner: CliRunner,
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """`--resume --config small` on a tiny run went on training the tiny run, the config
    given dropped without a word. A config that differs from the run's (but for the steps
    and batch size a resume may set) is refused, naming the fields; the run's own config, or
    none, goes on."""
    cfg_file = tmp_path / "quick.json"
    cfg_file.write_text(json.dumps(QUICK | {"steps": 2}))
    other = tmp_path / "other.json"
    other.write_text(json.dumps(QUICK | {"steps": 2, "channels": 8}))
    run = tmp_path / "run"
    common = ["train", "--data", str(toy_dataset), "--out", str(run), "--quiet", "--device", "cpu"]
    r = runner.invoke(app, [*common, "--config", str(cfg_file)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*common, "--config", str(other), "--resume", "--steps", "4"])
    assert r.exit_code == 2, r.output
    (line,) = r.stderr.strip().splitlines()
    assert str(run) in line and "channels=8" in line and "--config" in line, line
    r = runner.invoke(
        app, [*common, "--config", str(cfg_file), "--resume", "--steps", "4", "--batch-size", "1"]
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*common, "--resume", "--steps", "6"])
    assert r.exit_code == 0, r.output
    assert json.loads((run / "config.json").read_text())["channels"] == PRESETS["tiny"].channels


def test_train_refuses_an_out_that_holds_other_files(
    runner: CliRunner,
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """`--out` naming the dataset folder (or any folder of other files) wrote the run's
    config.json, weights and log among them, and `eval` then took the dataset for a run. A
    folder that holds files but no run is refused, naming it, before anything is written; an
    empty one is taken."""
    data = tmp_path / "data"
    shutil.copytree(toy_dataset, data)
    before = sorted(p.name for p in data.iterdir())
    args = ["train", "--data", str(data), "--steps", "1", "--quiet", "--device", "cpu"]
    r = runner.invoke(app, [*args, "--out", str(data)])
    assert r.exit_code == 2, r.output
    (line,) = r.stderr.strip().splitlines()
    assert str(data) in line and "--out" in line, line
    assert sorted(p.name for p in data.iterdir()) == before
    (tmp_path / "empty").mkdir()
    r = runner.invoke(app, [*args, "--batch-size", "1", "--out", str(tmp_path / "empty")])
    assert r.exit_code == 0, r.output


def test_eval_and_restore_say_a_run_stopped_part_way(
    runner: CliRunner,
    toy_run: Path,  # noqa: F811
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A run whose last checkpoint is short of its config's steps (killed, or still training)
    is evaluated and restored (researchers evaluate mid-training), but nothing said so. eval's
    JSON names the checkpoint's step and the config's steps in its model row, its table says
    `run RUN at step S of N`, and eval and restore warn in one line on stderr (stdout may be
    JSON; --quiet silences progress bars, not warnings). A finished run warns of nothing."""
    part = tmp_path / "part"
    shutil.copytree(toy_run, part)
    cfg = json.loads((part / "config.json").read_text())
    (part / "config.json").write_text(json.dumps(cfg | {"steps": 12}))  # stopped at 6 of 12
    src = tmp_path / "in.mp4"
    write_video(src, render_shots([3], 32, 32, seed=1)[0], 24.0)
    for run, planned in ((part, 12), (toy_run, 6)):
        warned = planned > 6
        args = ["eval", str(run), "--data", str(toy_dataset), "--steps", "1", "--limit", "1", "-q"]
        r = runner.invoke(app, [*args, "--json"])
        assert r.exit_code == 0, r.output
        report = json.loads(r.stdout)
        assert set(report) == {"model", "input", "median", "gt"}
        assert (report["model"]["step"], report["model"]["train_steps"]) == (6, planned)
        table = runner.invoke(app, args)
        assert table.exit_code == 0, table.output
        assert table.stdout.splitlines()[0] == f"run {run.resolve()} at step 6 of {planned}"
        out = tmp_path / f"out-{planned}.mp4"
        restored = runner.invoke(
            app, ["restore", str(src), "-o", str(out), "--checkpoint", str(run), "--steps", "1",
                  "-q", "--json"],
        )  # fmt: skip
        assert restored.exit_code == 0, restored.output
        done = json.loads(restored.stdout)
        assert (done["step"], done["train_steps"]) == (6, planned)
        for res in (r, table, restored):
            lines = [s for s in res.stderr.splitlines() if s.strip()]
            if warned:
                (line,) = lines
                assert line.startswith(f"warning: {run.resolve()}: ") and "step 6 of" in line
                assert "12" in line, line
            else:
                assert lines == [], lines


def test_eval_and_restore_refuse_steps_for_a_regression_run(
    runner: CliRunner,
    toy_run: Path,  # noqa: F811
    toy_dataset: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A regression run restores in one pass: it has no sampling steps, and --steps was taken
    and dropped without a word (the same output at any --steps). Refused in one line naming the
    run and its objective (exit 2, nothing written), as other options that do not apply are
    (synth --scenes without --input, fetch --prune with --only); without --steps it runs."""
    reg = tmp_path / "reg"
    shutil.copytree(toy_run, reg)  # (the backbone is the same for both objectives)
    cfg = json.loads((reg / "config.json").read_text())
    (reg / "config.json").write_text(json.dumps(cfg | {"objective": "regression"}))
    src = tmp_path / "in.mp4"
    write_video(src, render_shots([3], 32, 32, seed=1)[0], 24.0)
    out = tmp_path / "out.mp4"
    for args in (
        ["restore", str(src), "-o", str(out), "--checkpoint", str(reg)],
        ["eval", str(reg), "--data", str(toy_dataset), "--limit", "1"],
    ):
        r = runner.invoke(app, [*args, "--steps", "2", "-q", "--device", "cpu", "--json"])
        assert r.exit_code == 2, r.output
        (line,) = [s for s in r.output.splitlines() if s.strip()]
        assert line.startswith("error: --steps 2: ") and str(reg.resolve()) in line, line
        assert "regression" in line and "drop --steps" in line, line
        assert not out.exists()
        r = runner.invoke(app, [*args, "-q", "--device", "cpu", "--json"])
        assert r.exit_code == 0, r.output
        out.unlink(missing_ok=True)


def test_eval_times_the_model_without_its_first_calls_one_off_costs(
    toy_run: Path,  # noqa: F811
    toy_dataset: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The model's sec_per_frame timed its first window with the one-off costs of a first call
    (diffusers' import, about 2 s on two cores; torch's first kernels): on a short eval (the
    toy's 2 windows, a --limit) they were most of it. The first window is run once untimed."""
    import importlib
    import time

    from filmdata.restorer import evaluate

    calls: list[int] = []

    def first_call_slow(model: object, lq: np.ndarray, cfg: object, **_: object) -> np.ndarray:
        if not calls:
            time.sleep(0.5)  # (an import, a warm-up)
        calls.append(1)
        return lq

    # (the module: the package's `evaluate` is the function)
    module = importlib.import_module("filmdata.restorer.evaluate")
    monkeypatch.setattr(module, "restore_array", first_call_slow)
    report = evaluate(toy_run, toy_dataset, device="cpu", limit=1, quiet=True)
    assert report["model"]["frames"] == 4
    assert report["model"]["sec_per_frame"] < 0.05, report["model"]


def test_the_restorer_options_help_names_their_defaults() -> None:
    """restore --overlap ("Frames shared by windows.") and train --batch-size ("Windows per
    batch.") did not say what they are when not given (half the window; the config's), as
    the options beside them do."""
    import typer

    group = typer.main.get_command(app)
    helps = {
        (name, p.name): p.help or ""
        for name, cmd in group.commands.items()  # type: ignore[attr-defined]
        for p in cmd.params
    }
    assert "default: half the window" in helps[("restore", "overlap")]
    assert "default: config" in helps[("train", "batch_size")]


def test_restore_names_the_window_it_refuses_an_overlap_against(
    runner: CliRunner,
    toy_run: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """An --overlap as long as the run's window was refused as `--window 3 --overlap 3`,
    naming a --window the user had not given. A window not given is said to be the run's."""
    src = tmp_path / "in.mp4"
    write_video(src, render_shots([3], 32, 32, seed=1)[0], 24.0)
    window = json.loads((toy_run / "config.json").read_text())["window"]
    out = tmp_path / "out.mp4"
    base = ["restore", str(src), "-o", str(out), "--checkpoint", str(toy_run), "-q"]
    for extra, want in (
        (["--overlap", str(window)], f"--overlap {window} with the run's window {window}:"),
        (["--window", "2", "--overlap", "2"], "--overlap 2 with --window 2:"),
    ):
        r = runner.invoke(app, [*base, *extra])
        assert r.exit_code == 2, r.output
        (line,) = [s for s in r.output.splitlines() if s.strip()]
        assert line.startswith(f"error: {want}"), line
        assert not out.exists()
