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


def test_json_output_is_strict_json(capsys) -> None:
    """`--json` is for machines: a NaN or an infinity (an alignment with no spatial estimate,
    a diverged loss) comes out as null, never as Python's `NaN`, which jq, JavaScript and strict
    parsers refuse along with the whole document."""
    import json

    import numpy as np

    from filmdata._json import dumps
    from filmdata.cli._common import print_json

    obj = {"spread": float("nan"), "rows": [1.5, float("inf"), {"x": -float("inf")}], "t": (2,)}
    print_json({**obj, "array": np.array([0.5, np.nan])})
    out = capsys.readouterr().out

    def refuse(token: str) -> None:
        raise ValueError(token)

    got = json.loads(out, parse_constant=refuse)
    assert got == {"spread": None, "rows": [1.5, None, {"x": None}], "t": [2], "array": [0.5, None]}
    assert json.loads(dumps(obj), parse_constant=refuse)["spread"] is None


def test_every_command_takes_quiet(runner: CliRunner, tmp_path) -> None:
    """A script passes --quiet to every command it runs: the commands that show no progress
    bar take it too (they refused it as an unknown option, exit 2)."""
    import filmdata.cli.templates  # noqa: F401  (registers `templates`)

    def leaves(cmd, path=()):
        subs = getattr(cmd, "commands", None)
        if not subs:
            yield path
            return
        for name, sub in subs.items():
            yield from leaves(sub, (*path, name))

    missing = []
    for path in leaves(typer.main.get_command(app)):
        r = runner.invoke(app, [*path, "--help"])
        if "--quiet" not in r.output:
            missing.append(" ".join(path))
    assert not missing, missing
    r = runner.invoke(app, ["datasets", "--root", str(tmp_path), "--quiet"])
    assert "No such option" not in r.output, r.output


def test_help_paragraphs_wrap_at_the_terminal_not_the_source() -> None:
    """A command's docstring wrapped at the source's width kept its line breaks in `--help`,
    and the terminal wrapped those lines again: `train --help` showed "all" alone on a line.
    Each paragraph of a command's help is one line now, wrapped by the terminal alone."""
    import typer.main

    from filmdata.cli import app as the_app

    def commands(group):  # type: ignore[no-untyped-def]
        for sub in getattr(group, "commands", {}).values():
            yield sub
            yield from commands(sub)

    helps = [c.help for c in commands(typer.main.get_command(the_app)) if c.help]
    assert len(helps) > 15
    for h in helps:
        assert all("\n" not in p for p in h.split("\n\n")), h
    train = CliRunner().invoke(the_app, ["train", "--help"], env={"COLUMNS": "80"})
    assert "(+ EMA and optimizer state, all safetensors)" in " ".join(train.output.split())
    assert not any(line.strip() == "all" for line in train.output.splitlines()), train.output
