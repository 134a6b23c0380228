"""Every command is documented and is a thin twin of a library function."""

from __future__ import annotations

import typer.main
from typer.testing import CliRunner

from filmdata.cli import app


def test_every_command_has_help() -> None:
    group = typer.main.get_command(app)
    assert group.commands, "no commands registered"
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        assert cmd.help and cmd.help.strip(), f"command {name!r} has no help text"


def test_help_runs(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "filmdata" in result.output.lower() or "Usage" in result.output
