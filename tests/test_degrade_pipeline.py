"""The pipeline: sampling from (seed, key) only, batched apply, JSON records and exact replay,
and what the bundled presets do to real-looking footage (PSNR band, frame-level flicker)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from filmdata.degrade import (
    Degradation,
    apply_degradation,
    bundled_dir,
    load_preset,
    load_templates,
    replay,
    sample_degradation,
)
from filmdata.errors import RefusedError
from filmdata.synthetic import render_shots


@pytest.fixture(scope="module")
def bank():
    return load_templates(bundled_dir(), "cpu")


@pytest.fixture(scope="module")
def footage() -> torch.Tensor:
    frames, _ = render_shots((6, 6, 6), 64, 64, seed=3)
    return torch.from_numpy(frames).float().div(255).permute(0, 3, 1, 2).reshape(3, 6, 3, 64, 64)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 10 * torch.log10(1 / ((a - b) ** 2).mean((-3, -2, -1)).clamp_min(1e-10))


@pytest.mark.parametrize("name", ["film", "vhs"])
def test_replay_is_bit_exact_and_batch_invariant(name: str, bank, footage) -> None:
    preset = load_preset(name)
    degs = [sample_degradation(preset, 11, f"src:clip:{i}", 6, 64, 64, bank) for i in range(3)]
    lq = apply_degradation(footage, degs, bank)
    for i, d in enumerate(degs):
        record = json.loads(json.dumps(d.to_json()))  # through real JSON text
        assert torch.equal(replay(footage[i], record, bank), lq[i])
        assert torch.equal(replay(footage[i : i + 1], record, bank), lq[i : i + 1])


def test_sampling_depends_on_seed_and_key_only(bank) -> None:
    preset = load_preset("film")
    a = sample_degradation(preset, 1, "k", 4, 32, 32, bank).to_json()
    sample_degradation(preset, 1, "other", 4, 32, 32, bank)  # drawing others changes nothing
    assert sample_degradation(preset, 1, "k", 4, 32, 32, bank).to_json() == a
    assert sample_degradation(preset, 2, "k", 4, 32, 32, bank).to_json()["ops"] != a["ops"]
    assert sample_degradation(preset, 1, "k2", 4, 32, 32, bank).to_json()["ops"] != a["ops"]


def test_record_is_json_and_round_trips(bank) -> None:
    d = sample_degradation(load_preset("vhs"), 3, "w", 4, 32, 32, bank)
    rec = d.to_json()
    text = json.dumps(rec, allow_nan=False)
    back = Degradation.from_json(json.loads(text))
    assert back.to_json() == rec
    assert rec["preset"]["name"] == "vhs" and rec["seed"] == 3 and rec["key"] == "w"
    assert [o["op"] for o in rec["ops"]] == [n for n, _ in d.ops]


def test_bad_records_are_refused(bank) -> None:
    rec = sample_degradation(load_preset("film"), 3, "w", 2, 16, 16, bank).to_json()
    for broken in (
        {**rec, "format": 99},
        {k: v for k, v in rec.items() if k != "ops"},
        {**rec, "ops": [{"step": 0, "op": "nope", "params": {}}]},
        {**rec, "preset": {"name": "x", "ops": [{"op": "grain", "amount": [1, 0]}]}},
    ):
        with pytest.raises(RefusedError):
            Degradation.from_json(broken)


def test_replay_checks_the_template_bank(bank, tmp_path) -> None:
    from filmdata.degrade.template_make import make_templates

    preset = load_preset("film")
    degs = [sample_degradation(preset, s, "w", 2, 16, 16, bank) for s in range(50)]
    d = next(d for d in degs if any(n == "damage" for n, _ in d.ops))
    make_templates(tmp_path, seed=0, counts={"dust": 1})
    other = load_templates(tmp_path, "cpu")
    with pytest.raises(RefusedError, match="templates"):
        replay(torch.rand(2, 3, 16, 16), d.to_json(), other)


def test_replay_refuses_a_pack_with_the_same_names_and_other_pixels(tmp_path) -> None:
    """`templates make` with two seeds gives packs of the same file names and other damage:
    a row made with one is not replayed with the other (the fingerprint hashes pixels)."""
    from filmdata.degrade.template_make import make_templates

    counts = {"dust": 2, "scratch": 1}
    make_templates(tmp_path / "a", seed=0, counts=counts)
    make_templates(tmp_path / "b", seed=1, counts=counts)
    a, b = load_templates(tmp_path / "a", "cpu"), load_templates(tmp_path / "b", "cpu")
    assert a.names == b.names and a.fingerprint() != b.fingerprint()
    preset = load_preset("film")
    degs = [sample_degradation(preset, s, "w", 2, 16, 16, a) for s in range(50)]
    d = next(d for d in degs if any(n == "damage" for n, _ in d.ops))
    gt = torch.rand(2, 3, 16, 16)
    assert torch.equal(replay(gt, d.to_json(), a), apply_degradation(gt[None], [d], a)[0])
    with pytest.raises(RefusedError, match=f"made with templates {a.fingerprint()}"):
        replay(gt, d.to_json(), b)
    # A record of the older names-only fingerprint is refused, saying why.
    old = {**d.to_json(), "templates": a.names_fingerprint()}
    with pytest.raises(RefusedError, match="older fingerprint of file names only"):
        replay(gt, old, a)


def test_empty_batch_and_count_mismatch(bank) -> None:
    out = apply_degradation(torch.rand(0, 2, 3, 8, 8), [], bank)
    assert out.shape == (0, 2, 3, 8, 8)
    d = sample_degradation(load_preset("film"), 0, "k", 2, 8, 8, bank)
    with pytest.raises(RefusedError, match="2 degradations for a batch of 1"):
        apply_degradation(torch.rand(1, 2, 3, 8, 8), [d, d], bank)


def test_input_is_not_modified(bank, footage) -> None:
    x = footage.clone()
    degs = [sample_degradation(load_preset("film"), 1, f"k{i}", 6, 64, 64, bank) for i in range(3)]
    apply_degradation(x, degs, bank)
    assert torch.equal(x, footage)


@pytest.mark.parametrize("name,lo,hi", [("film", 10.0, 32.0), ("vhs", 10.0, 34.0)])
def test_presets_degrade_within_band_with_flicker(name: str, lo: float, hi: float, bank) -> None:
    frames, _ = render_shots((8,) * 6, 96, 96, seed=5)
    gt = torch.from_numpy(frames).float().div(255).permute(0, 3, 1, 2).reshape(6, 8, 3, 96, 96)
    preset = load_preset(name)
    degs = [sample_degradation(preset, 0, f"w{i}", 8, 96, 96, bank) for i in range(6)]
    lq = apply_degradation(gt, degs, bank)
    p = float(psnr(lq, gt).mean())
    assert lo <= p <= hi, f"{name}: mean PSNR {p:.1f} dB"
    # Frame-level flicker: the LQ/GT ratio of frame means varies within windows.
    ratio = lq.mean((2, 3, 4)) / gt.mean((2, 3, 4))
    assert float(ratio.std(1).mean()) > (0.01 if name == "film" else 0.005)


def test_device_auto_and_bad_device(tmp_path) -> None:
    b = load_templates(bundled_dir(), "auto")
    assert b.device.type in ("cpu", "cuda")
    with pytest.raises(RefusedError, match="--device"):
        load_templates(bundled_dir(), "tpu:7")


def test_numpy_free_of_global_state(bank) -> None:
    # Sampling must not touch torch's or numpy's global generators.
    torch.manual_seed(0)
    np.random.seed(0)
    a, na = torch.rand(1), np.random.rand()
    torch.manual_seed(0)
    np.random.seed(0)
    sample_degradation(load_preset("vhs"), 1, "k", 3, 16, 16, bank)
    apply_degradation(
        torch.full((1, 3, 3, 16, 16), 0.5),
        [sample_degradation(load_preset("vhs"), 1, "k", 3, 16, 16, bank)],
        bank,
    )
    assert torch.equal(torch.rand(1), a) and np.random.rand() == na


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**63 - 1),
    key=st.text(max_size=40),
    preset=st.sampled_from(["film", "vhs"]),
)
def test_any_seed_and_key_round_trip_through_json(bank, seed: int, key: str, preset: str) -> None:
    d = sample_degradation(load_preset(preset), seed, key, 2, 12, 12, bank)
    rec = json.loads(json.dumps(d.to_json(), allow_nan=False))
    assert Degradation.from_json(rec).to_json() == d.to_json()


def _with_op(rec: dict, op: str) -> dict:
    return next(o for o in rec["ops"] if o["op"] == op)


def test_crafted_records_are_refused_before_running(bank) -> None:
    """A row's record is untrusted: out-of-range values are refused, not executed."""
    import copy

    preset = load_preset("film")
    degs = [sample_degradation(preset, s, "w", 4, 32, 32, bank).to_json() for s in range(40)]
    rec = next(r for r in degs if {"resample", "damage"} <= {o["op"] for o in r["ops"]})
    huge = copy.deepcopy(rec)
    _with_op(huge, "resample")["params"]["scale"] = 1e6  # a billion-pixel resize
    far = copy.deepcopy(rec)
    _with_op(far, "damage")["params"]["placements"] = [[0, "dust", 0, 0, 0, 10**7, 10**7, 0, -1.0]]
    nan = copy.deepcopy(rec)
    _with_op(nan, "resample")["params"]["scale"] = float("nan")
    moved = copy.deepcopy(rec)
    _with_op(moved, "resample")["step"] = 0  # step 0 of the film preset is weave
    big = copy.deepcopy(rec)
    big["shape"] = [10**6, 32, 32]
    for broken, match in (
        (huge, "scale"),
        (far, "placement"),
        (nan, "not finite"),
        (moved, "not in the preset"),
        (big, "shape"),
    ):
        with pytest.raises(RefusedError, match=match):
            replay(torch.rand(4, 3, 32, 32), json.loads(json.dumps(broken)), bank)


def _extreme_presets() -> list[dict]:
    """For every op, one preset of each end of every range's bounds (`[lo, lo]`, `[hi, hi]`),
    and each single choice of its choice fields (`speed: [EP]`): what a valid preset can ask."""
    from filmdata.degrade.params import OPS as ops

    out = []
    for name, op in ops.items():
        fields = op.config.model_fields
        for end in (0, 1):
            d: dict = {"op": name, "p": 1.0}
            for f, field in fields.items():
                extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
                if extra.get("bounds") is not None:
                    d[f] = [extra["bounds"][end]] * 2
            choices = {
                f: field.default
                for f, field in fields.items()
                if isinstance(field.default, tuple)
                and field.default
                and all(isinstance(v, str) for v in field.default)
            }
            out += [{**d, f: [v]} for f, vs in choices.items() for v in vs] or [d]
    return out


@pytest.mark.parametrize("h,w", [(16, 64), (16, 1024), (16, 4096), (16, 16384)])
def test_what_a_valid_preset_makes_is_replayed_at_any_width(bank, h: int, w: int) -> None:
    """Every op at the ends of its preset bounds, sampled for a window of any width, gives a
    record that `from_json` accepts: the record's limits scale with the width as the samplers
    do (tape's chroma delay of 20 at 1024 px is 80 px; its EP chroma blur at 4096 px, 92)."""
    from filmdata.degrade.presets import preset_from_json

    for op in _extreme_presets():
        preset = preset_from_json({"name": "extreme", "ops": [op]})
        for seed in range(2):
            rec = sample_degradation(preset, seed, "w", 2, h, w, bank).to_json()
            assert Degradation.from_json(json.loads(json.dumps(rec))).to_json() == rec, op


def test_tape_records_beyond_the_width_scaled_limit_are_refused(bank) -> None:
    from filmdata.degrade.presets import preset_from_json

    preset = preset_from_json({"name": "t", "ops": [{"op": "tape", "chroma_delay": [18, 20]}]})
    rec = sample_degradation(preset, 0, "w", 2, 16, 1024, bank).to_json()
    assert 72 <= _with_op(rec, "tape")["params"]["chroma_delay"] <= 80
    Degradation.from_json(rec)
    _with_op(rec, "tape")["params"]["chroma_delay"] = 257.0  # past 64 per 256 px at 1024
    with pytest.raises(RefusedError, match=r"chroma_delay: 257.0 outside \[-256.0, 256.0\]"):
        Degradation.from_json(rec)
