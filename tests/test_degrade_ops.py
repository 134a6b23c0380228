"""The same tests for every degradation op (as kornia does): smoke, T in {1, 5}, B in {0, 1, 2},
determinism, range, identity at neutral parameters, bad shapes; plus per-op properties."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from filmdata.degrade import OPS, apply_degradation, load_templates, sample_degradation
from filmdata.degrade.params import stack_params
from filmdata.degrade.presets import preset_from_data
from filmdata.errors import RefusedError

H, W = 24, 32
ALL = sorted(OPS)


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory):
    from filmdata.degrade.template_make import make_templates

    folder = tmp_path_factory.mktemp("templates")
    make_templates(
        folder, seed=1, counts={k: 2 for k in ("dust", "dirt", "hair", "scratch", "blotch", "edge")}
    )
    return load_templates(folder, "cpu")


def one_op(name: str, **cfg: object):
    return preset_from_data(
        {"name": f"only-{name}", "ops": [{"op": name, "p": 1.0, **cfg}]}, "test"
    )


def clip(b: int, t: int, c: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # A smooth gradient plus texture: filters and codecs act on something like a picture.
    ys = torch.linspace(0, 1, H).view(H, 1)
    xs = torch.linspace(0, 1, W).view(1, W)
    base = 0.25 + 0.5 * (ys * xs)
    return (base + 0.2 * torch.rand(b, t, c, H, W, generator=g)).clamp(0, 1)


def run(name: str, x: torch.Tensor, bank, seed: int = 3, key: str = "w") -> torch.Tensor:
    b, t = x.shape[:2]
    preset = one_op(name)
    degs = [sample_degradation(preset, seed, f"{key}{i}", t, H, W, bank) for i in range(b)]
    return apply_degradation(x, degs, bank)


def own_outputs(name: str, x: torch.Tensor, bank, seed: int = 3, **cfg: object) -> list:
    """The op's own output for each window of `x` (`OPS[name].apply`, no pipeline around it:
    `apply_degradation` clamps after the last op, so its output cannot show an op leaving
    [0, 1]; and after an op marked bounded it does not clamp at all)."""
    b, t, _, h, w = x.shape
    preset = one_op(name, **cfg)
    out = []
    for i in range(b):
        d = sample_degradation(preset, seed, f"w{i}", t, h, w, bank)
        out.append(OPS[name].apply(x[i : i + 1].clone(), stack_params([d.ops[0][1]]), bank))
    return out


# Float rounding that an op marked bounded may leave (a convex filter's sum: 1 + 2e-7); the
# pipeline's last clamp takes it.
ROUNDING = 1e-5


def assert_in_range(y: torch.Tensor, what: object) -> None:
    assert torch.isfinite(y).all(), what
    lo, hi = float(y.min()), float(y.max())
    assert lo >= -ROUNDING and hi <= 1 + ROUNDING, (what, lo, hi)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("b", [0, 1, 2])
@pytest.mark.parametrize("t", [1, 5])
def test_smoke_shapes_range(name: str, b: int, t: int, bank) -> None:
    x = clip(b, t)
    y = run(name, x, bank)
    assert y.shape == x.shape and y.dtype == x.dtype
    if b:
        assert torch.isfinite(y).all()
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    if OPS[name].bounded:  # the pipeline skips its clamp: the op itself must stay in range
        for y1 in own_outputs(name, x, bank):
            assert y1.shape == x[:1].shape
            assert_in_range(y1, name)


def _bounds_ends(name: str) -> list[dict]:
    """The op's config at the low and the high end of every range's bounds."""
    ends = []
    for end in (0, 1):
        cfg = {}
        for f, field in OPS[name].config.model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            if extra.get("bounds") is not None:
                cfg[f] = [extra["bounds"][end]] * 2
        ends.append(cfg)
    return ends


@pytest.mark.parametrize("name", sorted(n for n in ALL if OPS[n].bounded))
def test_bounded_ops_stay_in_range_on_their_own(name: str, bank) -> None:
    """An op marked bounded is not clamped by the pipeline, so the next op would get pixels
    outside [0, 1] if it left them: each one's own output, on a clip with saturated black
    and white areas, at its default config and at both ends of its preset bounds."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 5, 3, H, W, generator=g)
    x[:, :, :, :4] = 1.0
    x[:, :, :, -4:] = 0.0
    x[:, :, :, :, :3] = 1.0
    for cfg in [{}, *_bounds_ends(name)]:
        for seed in range(4):
            for y in own_outputs(name, x, bank, seed=seed, **cfg):
                assert_in_range(y, (name, cfg, seed))


@pytest.mark.parametrize("name", ALL)
def test_deterministic_and_seeded(name: str, bank) -> None:
    x = clip(2, 3)
    preset = one_op(name)
    a = sample_degradation(preset, 5, "k", 3, H, W, bank)
    again = sample_degradation(preset, 5, "k", 3, H, W, bank)
    assert a.to_json() == again.to_json()
    y1 = apply_degradation(x[:1], [a], bank)
    y2 = apply_degradation(x[:1], [again], bank)
    assert torch.equal(y1, y2)
    if dataclasses.fields(OPS[name].params):
        others = [sample_degradation(preset, s, "k", 3, H, W, bank).to_json() for s in (6, 7, 8)]
        assert any(o["ops"] != a.to_json()["ops"] for o in others), "another seed, same params"


@pytest.mark.parametrize("name", ALL)
def test_changes_the_clip(name: str, bank) -> None:
    x = clip(1, 5, seed=4)
    x[:, :, :, :, : W // 2] *= 0.3  # an edge, and motion for interlace
    x[:, 1::2] = x[:, 1::2].flip(-1)
    y = run(name, x, bank)
    assert not torch.equal(y, x), f"{name} did nothing with its default config"


@pytest.mark.parametrize("name", ALL)
def test_bad_shape(name: str, bank) -> None:
    deg = sample_degradation(one_op(name), 0, "k", 1, H, W, bank)
    with pytest.raises(RefusedError, match=r"expected \(B, T, C, H, W\), got \(3, 64, 64\)"):
        apply_degradation(torch.rand(3, 64, 64), [deg], bank)


def test_window_shape_must_match(bank) -> None:
    deg = sample_degradation(one_op("grain"), 0, "k", 4, H, W, bank)
    with pytest.raises(RefusedError, match="sampled for"):
        apply_degradation(clip(1, 5), [deg], bank)


def _neutral() -> dict[str, object]:
    from filmdata.degrade import blur, color, composite, flicker, grain, resample, vhs, weave
    from filmdata.degrade.damage import DamageParams

    t = 5
    z, one = torch.zeros(t), torch.ones(t)
    return {
        "flicker": flicker.FlickerParams(one, z, 0.0, 2, 1),
        "grain": grain.GrainParams(z, 1.0, 0.0, 1),
        "blur": blur.BlurParams("gaussian", z, 0.0),
        "resample": resample.ResampleParams(1.0, "area", "bilinear"),
        "weave": weave.WeaveParams(z, z, z),
        "contrast": color.ContrastParams(one, 0.0, 1.0, 0.0),
        "vignette": color.VignetteParams(0.0, 0.5, torch.zeros(2)),
        "tint": color.TintParams(torch.ones(3), 0.0),
        "fade": color.FadeParams(1.0, torch.zeros(3)),
        "saturation": color.SaturationParams(one),
        "damage": DamageParams("overlay", ()),
        "snow": vhs.SnowParams(z, 0.0, torch.tensor([1, 2]), 1),
        "lines": vhs.LinesParams(0.0, z, torch.full((t,), -9.0), 0.1, 0.0, z, 1),
        "chroma": composite.ChromaParams(z, 0.0, 0.0, False, 1),
    }


@pytest.mark.parametrize("name", sorted(_neutral()))
def test_identity_at_neutral_params(name: str, bank) -> None:
    x = clip(2, 5)
    p = stack_params([_neutral()[name]] * 2)
    y = OPS[name].apply(x, p, bank)
    torch.testing.assert_close(y, x, atol=2e-6, rtol=0)


def test_interlace_single_frame_is_identity(bank) -> None:
    x = clip(2, 1)
    assert torch.equal(run("interlace", x, bank), x)


def test_monochrome_makes_grey(bank) -> None:
    y = run("monochrome", clip(1, 2), bank)
    assert torch.allclose(y[:, :, 0], y[:, :, 1]) and torch.allclose(y[:, :, 1], y[:, :, 2])


@pytest.mark.parametrize("name", ["grain", "blur", "flicker", "contrast", "jpeg", "weave"])
def test_single_channel_clips(name: str, bank) -> None:
    x = clip(1, 3, c=1)
    y = run(name, x, bank)
    assert y.shape == x.shape


def _yiq(x: torch.Tensor) -> torch.Tensor:
    from filmdata.degrade.composite import to_yiq

    return to_yiq(x)


def _chroma(x: torch.Tensor, **kw: object) -> torch.Tensor:
    from filmdata.degrade.composite import ChromaParams, chroma

    t = x.shape[1]
    p = dict(phase=torch.zeros(t), noise=0.0, loss=0.0, blend=False, seed=9) | kw
    return chroma(x, stack_params([ChromaParams(**p)] * x.shape[0]))  # type: ignore[arg-type]


def _saturation(yiq: torch.Tensor) -> torch.Tensor:
    return yiq[:, :, 1].hypot(yiq[:, :, 2])


def _hue_turn(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The hue of `b` less that of `a` (YIQ clips), in (-pi, pi]."""
    d = torch.atan2(b[:, :, 2], b[:, :, 1]) - torch.atan2(a[:, :, 2], a[:, :, 1])
    return torch.remainder(d + torch.pi, 2 * torch.pi) - torch.pi


def test_chroma_phase_error_turns_the_hue_and_keeps_luma_and_saturation() -> None:
    x = clip(2, 3)
    turn = torch.tensor([0.3, 0.3, 0.5])
    a, b = _yiq(x), _yiq(_chroma(x, phase=turn))
    torch.testing.assert_close(b[:, :, 0], a[:, :, 0], atol=1e-5, rtol=0)  # luma
    torch.testing.assert_close(_saturation(b), _saturation(a), atol=1e-5, rtol=0)  # saturation
    got = _hue_turn(a, b)
    strong = _saturation(a) > 0.02  # where the hue is defined
    for f in range(3):  # every line of frame f turned by that frame's angle
        torch.testing.assert_close(
            got[:, f][strong[:, f]],
            torch.full_like(got[:, f][strong[:, f]], float(turn[f])),
            atol=1e-3,
            rtol=0,
        )


def test_chroma_noise_differs_per_line_and_frame_and_loss_makes_grey_lines() -> None:
    x = clip(1, 2)
    a = _yiq(x)
    b = _yiq(_chroma(x, noise=0.3))
    per_line = _hue_turn(a, b).median(-1).values  # (1, T, H): one turn per line
    assert float(per_line.std()) > 0.1
    assert not torch.allclose(per_line[:, 0], per_line[:, 1])  # new every frame
    y = _chroma(x, loss=1.0)  # every line loses its colour: grey, at the luma
    torch.testing.assert_close(y[:, :, 0], y[:, :, 1], atol=1e-5, rtol=0)
    torch.testing.assert_close(y[:, :, 1], y[:, :, 2], atol=1e-5, rtol=0)
    torch.testing.assert_close(_yiq(y)[:, :, 0], a[:, :, 0], atol=1e-5, rtol=0)
    part = _yiq(_chroma(x, loss=0.3))
    grey = part[:, :, 1:].abs().amax((2, 4)) < 1e-5  # (1, T, H): lines without chroma
    assert 0 < int(grey.sum()) < grey.numel()


def test_chroma_vertical_blend_averages_each_line_with_the_one_above() -> None:
    x = clip(1, 2)
    a, b = _yiq(x), _yiq(_chroma(x, blend=True))
    torch.testing.assert_close(b[..., 0, :], a[..., 0, :], atol=1e-5, rtol=0)  # first line
    want = 0.5 * (a[:, :, 1:, 1:] + a[:, :, 1:, :-1])
    torch.testing.assert_close(b[:, :, 1:, 1:], want, atol=1e-5, rtol=0)
    torch.testing.assert_close(b[:, :, 0], a[:, :, 0], atol=1e-5, rtol=0)  # luma untouched


def test_chroma_leaves_grey_clips_alone(bank) -> None:
    x = clip(1, 3, c=1)
    assert torch.equal(run("chroma", x, bank), x)


def test_flicker_varies_mean_per_frame(bank) -> None:
    x = clip(1, 8)
    preset = one_op("flicker", gain=[0.1, 0.1], field=[0.0, 0.0], offset=[0.0, 0.0])
    deg = sample_degradation(preset, 1, "k", 8, H, W)
    y = apply_degradation(x, [deg])
    ratio = y.mean((2, 3, 4)) / x.mean((2, 3, 4))
    assert float(ratio.std()) > 0.02


def test_grain_is_new_every_frame_and_strongest_in_midtones(bank) -> None:
    x = torch.full((1, 2, 1, 64, 64), 0.5)
    x[..., :32] = 0.02
    preset = one_op("grain", amount=[0.05, 0.05], size=[1.0, 1.0], chroma=[0.0, 0.0])
    y = apply_degradation(x, [sample_degradation(preset, 1, "k", 2, 64, 64)])
    n = y - x
    assert not torch.equal(n[:, 0], n[:, 1])
    assert float(n[..., 32:].std()) > 2 * float(n[..., :32].std())


def test_scratches_persist_and_dust_does_not(bank) -> None:
    from filmdata.degrade.damage import DamageConfig, sample_damage

    g = torch.Generator().manual_seed(0)
    cfg = DamageConfig(
        dust=(3, 3), scratch=(1, 1), dirt=(0, 0), blotch=(0, 0), hair=(0, 0), edge=0.0
    )
    p = sample_damage(g, cfg, 4, 64, 64, bank)
    scratches = [pl for pl in p.placements if pl[1] == "scratch"]
    dust = [pl for pl in p.placements if pl[1] == "dust"]
    assert sorted({pl[0] for pl in scratches}) == [0, 1, 2, 3]  # one scratch, in every frame
    assert max(pl[4] for pl in scratches) - min(pl[4] for pl in scratches) <= 12  # drifts a little
    assert len(dust) == 12 and len({(pl[3], pl[4]) for pl in dust}) > 6  # new dust every frame


def test_cpu_fast_paths_match_torch() -> None:
    """The OpenCV CPU paths compute the same maps as the torch paths other devices take."""
    import torch.nn.functional as F

    from filmdata.degrade.blur import _blur, blur_kernels
    from filmdata.degrade.composite import gauss_kernel, hfilter
    from filmdata.degrade.resample import ResampleParams, _resize_torch, resample

    x = clip(2, 3)
    for down in ("area", "bilinear"):
        for up in ("bilinear", "bicubic"):
            p = stack_params([ResampleParams(0.55, down, up)] * 2)
            ref = torch.stack(
                [_resize_torch(_resize_torch(x[i], (13, 18), down), (H, W), up) for i in range(2)]
            )
            torch.testing.assert_close(resample(x, p), ref, atol=1e-5, rtol=0)
    for kind in ("gaussian", "defocus", "motion"):
        sizes = torch.full((2, 3), 1.7)
        got = _blur(x, kind, sizes, torch.full((2,), 0.6), 5)
        k = blur_kernels(kind, sizes.reshape(6), torch.full((6,), 0.6), 5).repeat_interleave(3, 0)
        y = F.pad(x.reshape(1, 18, H, W), (5, 5, 5, 5), mode="reflect")
        if kind == "gaussian":
            y = F.conv2d(
                F.conv2d(y, k[:, None, None, :], groups=18), k[:, None, :, None], groups=18
            )
        else:
            y = F.conv2d(y, k[:, None], groups=18)
        torch.testing.assert_close(got, y.reshape(x.shape), atol=1e-5, rtol=0)
    rows = x.reshape(-1, H, W)
    k = gauss_kernel(torch.full((len(rows),), 1.3), 4)
    ref = F.conv2d(
        F.pad(rows[None], (4, 4, 0, 0), mode="replicate"), k[:, None, None, :], groups=len(rows)
    )[0]
    torch.testing.assert_close(hfilter(rows, k), ref, atol=1e-5, rtol=0)


def test_damage_layer_numpy_equals_torch(bank) -> None:
    """The CPU pastes damage with numpy, other devices with torch: the same layer, bit for bit."""
    from filmdata.degrade.damage import _layer_numpy, _layer_torch

    preset = one_op("damage", dust=[5, 30], hair=[1, 3], scratch=[1, 4], edge=1.0)
    pasted = 0
    for i in range(12):
        d = sample_degradation(preset, 4, f"k{i}", 6, 61, 90, bank)
        ((_, _, p),) = d.steps
        ref = _layer_torch(p.placements, 6, 61, 90, bank)
        got = torch.from_numpy(_layer_numpy(p.placements, 6, 61, 90, bank))
        assert torch.equal(got, ref)
        again = _layer_numpy(p.placements, 6, 61, 90, bank)  # the bank's oriented templates
        assert torch.equal(torch.from_numpy(again), ref)
        pasted += int((ref != 0).any())
    assert pasted == 12


@pytest.mark.gpu
@pytest.mark.parametrize("name", [n for n in ALL if n not in ("jpeg", "codec")])
def test_cpu_and_cuda_agree(name: str, bank) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    gbank = load_templates(bank.folder, "cuda")
    x = clip(2, 5)
    preset = one_op(name)
    degs = [sample_degradation(preset, 9, f"k{i}", 5, H, W, bank) for i in range(2)]
    cpu = apply_degradation(x, degs, bank)
    gpu = apply_degradation(x.cuda(), degs, gbank).cpu()
    torch.testing.assert_close(gpu, cpu, atol=2e-4, rtol=0)


@pytest.mark.parametrize("name", [n for n in ALL if n not in ("jpeg", "codec")])
def test_torch_paths_agree_with_cpu_fast_paths(name: str, bank) -> None:
    """float64 clips take the torch paths other devices take (no OpenCV shortcuts): the two
    agree within float noise, as CPU and CUDA must."""
    x = clip(2, 3)
    preset = one_op(name)
    degs = [sample_degradation(preset, 2, f"k{i}", 3, H, W, bank) for i in range(2)]
    fast = apply_degradation(x, degs, bank)
    slow = apply_degradation(x.double(), degs, bank)
    assert slow.dtype == torch.float64
    torch.testing.assert_close(slow.float(), fast, atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "mode", ["grain_merge", "grain_extract", "overlay", "screen", "multiply", "soft_light"]
)
def test_fused_blend_equals_the_editor_formula(mode: str) -> None:
    from filmdata.degrade.blend import apply_layer, blend, overlay_for

    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 3, 8, 8, generator=g)
    layer = torch.rand(2, 3, 1, 8, 8, generator=g) * 2 - 1
    torch.testing.assert_close(
        apply_layer(a, layer, mode), blend(a, overlay_for(mode, layer), mode)
    )
    torch.testing.assert_close(apply_layer(a, torch.zeros_like(layer), mode), a)


def test_grain_merge_is_gimp() -> None:
    from filmdata.degrade.blend import grain_merge

    a, b = torch.tensor([0.2, 0.7, 0.9]), torch.tensor([0.5, 0.3, 0.8])
    torch.testing.assert_close(grain_merge(a, b), torch.tensor([0.2, 0.5, 1.0]))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batched_call_equals_window_by_window(name: str, dtype: torch.dtype, bank) -> None:
    """What the GPU path does (one batched call per op) gives each window the pixels a
    window-by-window replay gives it: nothing in a window depends on its batch."""
    from filmdata.degrade.pipeline import _apply

    x = clip(3, 3).to(dtype)
    preset = one_op(name)
    degs = [sample_degradation(preset, s, "k", 3, H, W, bank) for s in range(3)]
    full = _apply(x, degs, bank)
    for i in range(3):
        assert torch.equal(_apply(x[i : i + 1], [degs[i]], bank), full[i : i + 1])


def test_weave_picks_its_warp_per_window() -> None:
    """A window without rotation is shifted, one with rotation resampled: in a batch mixing
    both, each window gets the pixels it gets alone."""
    from types import SimpleNamespace

    from filmdata.degrade.weave import weave

    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 4, 3, H, W, generator=g)
    rot = torch.zeros(3, 4)
    rot[1] = torch.randn(4, generator=g)
    p = SimpleNamespace(
        dx=torch.randn(3, 4, generator=g), dy=torch.randn(3, 4, generator=g), rot=rot
    )
    full = weave(x, p)
    for i in range(3):
        one = SimpleNamespace(dx=p.dx[i : i + 1], dy=p.dy[i : i + 1], rot=p.rot[i : i + 1])
        assert torch.equal(weave(x[i : i + 1], one), full[i : i + 1])
    assert not torch.equal(
        full[1],
        weave(x[1:2], SimpleNamespace(dx=p.dx[1:2], dy=p.dy[1:2], rot=torch.zeros(1, 4)))[0],
    )


@pytest.mark.parametrize("name", ALL)
def test_ops_overwrite_only_the_pipelines_own_clip_to_the_same_values(name: str, bank) -> None:
    # Inside the pipeline an op may write its result into the working clip it is handed
    # (`params.handing`); called on its own it is pure. Either way the very same values.
    from filmdata.degrade.params import handing

    x = clip(1, 5, seed=4)
    preset = one_op(name)
    d = sample_degradation(preset, 7, "own", 5, H, W, bank)
    op = OPS[name]
    with torch.no_grad():
        for _, op_name, p in d.steps:
            params = stack_params([p])
            before = x.clone()
            pure = op.apply(x, params, bank)
            assert torch.equal(x, before)  # not handed over: the input is untouched
            mine = x.clone()
            with handing(mine):
                given = op.apply(mine, params, bank)
            assert op_name == name and torch.equal(given, pure)


def test_codec_round_trip_equals_a_matroska_round_trip() -> None:
    # The packets skip the container; the pixels are those of an .mkv made and read by PyAV.
    import io

    import av
    import numpy as np

    from filmdata.degrade.compress import codec_roundtrip

    rng = np.random.default_rng(0)
    frames = (clip(1, 6, seed=2)[0].permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    frames = np.clip(frames.astype(int) + rng.integers(-20, 20, frames.shape), 0, 255)
    frames = frames.astype(np.uint8)[:, :, :31]  # an odd width: padded, then cut back
    for codec, quality, gop in (("h264", 30, 4), ("mpeg2", 6, 3)):
        buf = io.BytesIO()
        t, h, w, _ = frames.shape
        padded = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        with av.open(buf, "w", format="matroska") as out:
            if codec == "h264":
                s = out.add_stream("libx264", rate=24)
                s.options = {
                    "crf": str(quality),
                    "preset": "superfast",
                    "threads": "1",
                    "tune": "zerolatency",
                    "x264-params": "log=-1",
                }
            else:
                s = out.add_stream("mpeg2video", rate=24)
                s.codec_context.qmin = s.codec_context.qmax = quality
                s.options = {"threads": "1"}
            s.width, s.height, s.pix_fmt = padded.shape[2], padded.shape[1], "yuv420p"
            s.codec_context.gop_size = gop
            for f in padded:
                for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    out.mux(pkt)
            for pkt in s.encode():
                out.mux(pkt)
        buf.seek(0)
        with av.open(buf) as inp:
            want = np.stack([f.to_ndarray(format="rgb24") for f in inp.decode(video=0)])
        got = codec_roundtrip(frames, codec, quality, gop, "rgb24")
        assert got.shape == frames.shape
        assert np.array_equal(got, want[:t, :h, :w])


def test_tracking_bands_persist_and_move_smoothly_across_a_window(bank) -> None:
    """A tracking band is one band rolling through the picture as the tape's tracking error
    drifts: from frame to frame it moves a little, it does not jump to a new place. Seen in
    the pixels: on a flat grey clip, with no wave, jitter or head switching, only the band's
    lines change (its hiss); in every frame that shows the whole band their centre is the
    recorded `band_y`, and from one frame to the next it moves by under 0.15 of the height."""
    t, h, w = 8, 96, 64
    x = torch.full((1, t, 3, h, w), 0.5)
    cfg = {"wave": [0, 0], "jitter": [0, 0], "head_switch": [0, 0], "tracking": 1.0}
    preset = one_op("lines", band=[0.1, 0.1], **cfg)
    rows = (torch.arange(h, dtype=torch.float32) + 0.5) / h
    seen = moves = 0
    for seed in range(40):
        (name, p), *_ = sample_degradation(preset, seed, "w", t, h, w, bank).ops
        y = OPS[name].apply(x.clone(), stack_params([p]), bank)
        weight = (y - x).abs().amax((2, 4))[0]  # (T, H): how much each line changed
        centres: list[float | None] = []
        for k in range(t):
            whole = 0.06 < float(p.band_y[k]) < 0.94  # the band's half-height is 0.05
            if not whole:
                centres.append(None)
                continue
            centre = float((weight[k] * rows).sum() / weight[k].sum())
            assert abs(centre - float(p.band_y[k])) < 0.02, (seed, k, centre, p.band_y)
            centres.append(centre)
            seen += 1
        for a, b in zip(centres, centres[1:]):
            if a is not None and b is not None:
                assert abs(b - a) < 0.15, (seed, centres)
                moves += 1
    assert seen > 40 and moves > 30  # enough frames with a whole band to judge


def _apply(name: str, x: torch.Tensor, params: object) -> torch.Tensor:
    return OPS[name].apply(x.clone(), stack_params([params]), None)


def test_flicker_is_gain_times_x_plus_offset() -> None:
    from filmdata.degrade.flicker import FlickerParams

    x = torch.full((1, 2, 3, H, W), 0.5)
    p = FlickerParams(torch.tensor([1.2, 0.8]), torch.tensor([0.05, -0.05]), 0.0, 2, 1)
    y = _apply("flicker", x, p)
    torch.testing.assert_close(y[0, :, 0, 0, 0], torch.tensor([0.65, 0.35]))


def test_flicker_field_scales_the_gain_by_at_most_its_amplitude() -> None:
    # out = x (1 + amp field), the field in [-1.25, 1.25] (clamped to 2.5, halved)
    from filmdata.degrade.flicker import FlickerParams

    x = torch.full((1, 4, 1, 48, 48), 0.5)
    deviations = []
    for seed in range(6):
        p = FlickerParams(torch.ones(4), torch.zeros(4), 0.1, 3, seed)
        deviations.append((_apply("flicker", x, p) / x - 1).abs().amax())
    dev = torch.stack(deviations)
    assert float(dev.max()) <= 0.1 * 1.25 + 1e-6
    assert float(dev.min()) > 0.03  # the field is there, at the amplitude's scale


def _impulse(n: int = 31) -> torch.Tensor:
    x = torch.zeros((1, 1, 1, n, n))
    x[..., n // 2, n // 2] = 1.0
    return x


def test_gaussian_blur_of_an_impulse_has_the_sigma_asked_for() -> None:
    # the kernel reaches 3 sigma: its variance is sigma^2 within the tails' 2%
    from filmdata.degrade.blur import BlurParams

    y = _apply("blur", _impulse(), BlurParams("gaussian", torch.tensor([2.0]), 0.0))[0, 0, 0]
    ax = torch.arange(31.0) - 15
    var_x = float((y.sum(0) * ax**2).sum())
    assert float(y.sum()) == pytest.approx(1.0, abs=1e-5)
    assert var_x == pytest.approx(4.0, rel=0.02)


def test_blur_kernels_of_defocus_and_motion_have_their_size() -> None:
    from filmdata.degrade.blur import blur_kernels

    # a disk of radius 3 with a one-pixel soft edge: every pixel within 3.5 of the centre
    disk = blur_kernels("defocus", torch.tensor([3.0]), torch.zeros(1), 5)[0]
    yy, xx = torch.meshgrid(torch.arange(-5.0, 6), torch.arange(-5.0, 6), indexing="ij")
    assert torch.equal(disk > 0, (yy**2 + xx**2).sqrt() < 3.5)
    # a horizontal line 6 px long: 5 whole pixels and a half at each end
    line = blur_kernels("motion", torch.tensor([6.0]), torch.zeros(1), 5)[0]
    want = torch.tensor([0, 0, 0.5, 1, 1, 1, 1, 1, 0.5, 0, 0]) / 6
    torch.testing.assert_close(line[5], want)
    assert float(line.sum()) == pytest.approx(float(line[5].sum()))  # nothing off the row


def test_fade_and_tint_known_values() -> None:
    from filmdata.degrade import color

    rgb = torch.tensor([0.6, 0.4, 0.2])
    x = rgb.view(1, 1, 3, 1, 1).expand(1, 1, 3, 4, 4).contiguous()
    lum = 0.299 * 0.6 + 0.587 * 0.4 + 0.114 * 0.2

    def px(y: torch.Tensor) -> torch.Tensor:
        return y[0, 0, :, 0, 0]

    cast = torch.tensor([0.1, -0.05, 0.0])
    torch.testing.assert_close(px(_apply("fade", x, color.FadeParams(1.0, cast))), rgb + cast)
    grey = px(_apply("fade", x, color.FadeParams(0.0, torch.zeros(3))))
    torch.testing.assert_close(grey, torch.full((3,), lum))
    sepia = torch.tensor(color.TINTS["sepia"])
    toned = px(_apply("tint", x, color.TintParams(sepia, 1.0)))
    torch.testing.assert_close(toned, lum * sepia)
    half = px(_apply("tint", x, color.TintParams(sepia, 0.5)))
    torch.testing.assert_close(half, (rgb + lum * sepia) / 2)


def test_contrast_curve_known_values() -> None:
    from filmdata.degrade.color import ContrastParams

    x = torch.tensor([0.0, 0.25, 0.5, 0.6, 1.0]).view(1, 1, 1, 1, 5)
    one = torch.ones(1)
    # the mid-tone curve y + m y (1 - y)
    y = _apply("contrast", x, ContrastParams(one, 0.0, 1.0, 0.5))
    torch.testing.assert_close(y.flatten(), torch.tensor([0.0, 0.34375, 0.625, 0.72, 1.0]))
    # black and white levels: black + (white - black) y
    y = _apply("contrast", x, ContrastParams(one, 0.1, 0.9, 0.0))
    torch.testing.assert_close(y.flatten(), torch.tensor([0.1, 0.3, 0.5, 0.58, 0.9]))
    # contrast around mid-grey, clamped
    y = _apply("contrast", x, ContrastParams(2 * one, 0.0, 1.0, 0.0))
    torch.testing.assert_close(y.flatten(), torch.tensor([0.0, 0.0, 0.5, 0.7, 1.0]))


def test_vignette_falls_off_quadratically_to_the_corners() -> None:
    from filmdata.degrade.color import VignetteParams

    x = torch.ones((1, 1, 1, 5, 5))  # pixel centres at -1, -0.5, 0, 0.5, 1
    y = _apply("vignette", x, VignetteParams(0.5, 0.0, torch.zeros(2)))[0, 0, 0]
    # r = |(x, y)| / sqrt 2: 0 at the centre, 0.5 at (0.5, 0.5), 1 at a corner
    assert float(y[2, 2]) == pytest.approx(1.0)
    assert float(y[3, 3]) == pytest.approx(1 - 0.5 * 0.5**2)
    assert float(y[4, 4]) == pytest.approx(0.5)


@pytest.mark.parametrize("size", [1.0, 1.3, 2.0, 3.7])
@pytest.mark.parametrize("hw", [(256, 256), (200, 300)])
def test_grain_fields_have_unit_deviation_at_every_size(size: float, hw: tuple[int, int]) -> None:
    """The grain's noise, drawn coarse and upsampled bilinearly, is brought to unit deviation
    by a factor known from the upsampling grid (no sample's std): its amount then means the
    same at every grain size."""
    from filmdata.degrade.grain import _unit_field

    h, w = hw
    f = _unit_field(3, 16, 1, h, w, size)
    assert f.shape == (16, 1, h, w)
    assert float(f.std()) == pytest.approx(1.0, abs=0.02)
    assert abs(float(f.mean())) < 0.02
