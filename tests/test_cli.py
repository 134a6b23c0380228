"""Every command is documented and is a thin twin of a library function."""

from __future__ import annotations

import subprocess
import sys

import typer.main
from typer.testing import CliRunner

import filmdata
from filmdata.cli import app

# command -> its library twin, where the names differ (`eval` is a Python builtin; the listing
# commands are the list_* functions; `templates` is a group of make/extract)
TWINS = {
    "eval": "evaluate",
    "clips": "list_clips",
    "datasets": "list_datasets",
    "scenes": "detect_scenes",
    "templates": "make_templates",
}


def _commands() -> dict[str, object]:
    group = typer.main.get_command(app)
    return dict(group.commands)  # type: ignore[attr-defined]


def test_every_command_has_help_and_a_library_twin() -> None:
    commands = _commands()
    assert {
        "fetch",
        "sources",
        "scenes",
        "cut",
        "clips",
        "align",
        "pair",
        "synth",
        "verify",
        "preview",
        "datasets",
        "train",
        "eval",
        "restore",
        "demo",
    } <= set(commands)
    for name, cmd in commands.items():
        assert cmd.help and cmd.help.strip(), f"command {name!r} has no help text"
        twin = TWINS.get(name, name)
        assert twin in filmdata.__all__, f"command {name!r} has no library twin {twin!r}"
        assert callable(getattr(filmdata, twin))


def test_help_runs(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_import_is_light() -> None:
    code = (
        "import sys, filmdata.cli; "
        "heavy = [m for m in ('torch', 'datasets', 'diffusers', 'yt_dlp', 'pyarrow', 'ray') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
