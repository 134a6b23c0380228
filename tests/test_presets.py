"""Presets: the bundled ones load; user files are validated like manifests; unsafe YAML refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from filmdata.degrade import OPS, load_preset, preset_names
from filmdata.errors import ManifestError, RefusedError


def test_bundled_presets_load() -> None:
    assert {"film", "vhs"} <= set(preset_names())
    for name in ("film", "vhs"):
        p = load_preset(name)
        assert p.name == name and p.ops
        assert all(op in OPS for op, _ in p.ops)
    film = dict(load_preset("film").ops)
    assert {"damage", "flicker", "grain", "blur", "jpeg", "codec"} <= set(film)


def test_name_resolves_under_templates_dir(tmp_path: Path) -> None:
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "mine.yaml").write_text("name: mine\nops:\n  - op: grain\n")
    assert load_preset("mine", tmp_path).name == "mine"
    assert load_preset(tmp_path / "presets" / "mine.yaml").name == "mine"
    with pytest.raises(ManifestError, match="no such preset"):
        load_preset("nope", tmp_path)


def test_yaml_payload_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.yaml"
    bad.write_text(
        f'name: evil\nops:\n  - op: !!python/object/apply:os.system ["touch {marker}"]\n'
    )
    with pytest.raises(RefusedError) as e:
        load_preset(bad)
    assert str(bad) in str(e.value) and ":3" in str(e.value)
    assert e.value.exit_code == 2
    assert not marker.exists()


@pytest.mark.parametrize(
    "body,match",
    [
        ("ops:\n  - op: blurr\n", r"op #1: op: unknown op 'blurr'"),
        (
            "ops:\n  - op: blur\n    sigma: [2.0, 1.0]\n",
            r"op #1 'blur': sigma: must be \[lo, hi\] with lo <= hi",
        ),
        (
            "ops:\n  - op: grain\n  - op: grain\n    amount: [0, 9]\n",
            r"op #2 'grain': amount: must lie within",
        ),
        ("ops:\n  - op: grain\n    p: 1.5\n", r"op #1 'grain': p: .*probability"),
        ("ops:\n  - op: grain\n    amout: [0, 0.1]\n", r"op #1 'grain': amout: unknown field"),
        ("ops:\n  - op: blur\n    kind: [gaussian, box]\n", r"op #1 'blur': kind"),
        ("ops:\n  - op: damage\n    modes: [grain_merge, dodge]\n", r"op #1 'damage': .*modes"),
        ("ops: []\n", r"ops: must be a non-empty list"),
        ("name: Bad Name\nops:\n  - op: grain\n", r"name: must be a slug"),
        ("ops:\n  - op: grain\nextra: 1\n", r"extra: unknown field"),
        ("- just a list\n", r"expected a mapping"),
    ],
)
def test_bad_presets_name_file_op_and_field(tmp_path: Path, body: str, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ManifestError, match=match) as e:
        load_preset(path)
    msg = str(e.value)
    assert msg.startswith(str(path)) and "\n" not in msg


def test_preset_round_trips_through_json() -> None:
    from filmdata.degrade.presets import preset_from_json

    p = load_preset("vhs")
    assert preset_from_json(p.to_json()).to_json() == p.to_json()


@pytest.mark.parametrize(
    "op,field",
    [
        ("blur", "kind"),
        ("tint", "tint"),
        ("tape", "speed"),
        ("codec", "codec"),
        ("resample", "down"),
        ("resample", "up"),
    ],
)
def test_an_empty_choice_list_is_refused(tmp_path: Path, op: str, field: str) -> None:
    # `kind: []` was accepted and raised a RuntimeError from torch.randint when a window drew it
    path = tmp_path / "bad.yaml"
    path.write_text(f"ops:\n  - op: {op}\n    {field}: []\n")
    with pytest.raises(ManifestError, match=rf"op #1 '{op}': {field}: .*at least one") as e:
        load_preset(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_an_unknown_name_lists_every_preset_it_would_have_found(tmp_path: Path) -> None:
    # with a --templates folder of the user's own presets, the message listed only those
    # ("known: mine"), though the bundled film and vhs are found by name there too
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "mine.yaml").write_text("ops:\n  - op: grain\n")
    assert load_preset("vhs", tmp_path).name == "vhs"
    with pytest.raises(ManifestError, match=r"no such preset \(known: film, mine, vhs;"):
        load_preset("nosuch", tmp_path)
