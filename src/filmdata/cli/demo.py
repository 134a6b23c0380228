"""`filmdata demo`."""

from __future__ import annotations

from pathlib import Path

from ._common import JsonOpt, QuietOpt, RootOpt, command, print_json


@command("demo")
def demo_cmd(root: Path | None = RootOpt, quiet: bool = QuietOpt, json_: bool = JsonOpt) -> None:
    """Run the whole chain (fetch, cut, pair, synth, preview) on the bundled sample footage."""
    import typer

    from ..demo import demo

    result = demo(root, quiet=quiet, echo=(lambda s: None) if json_ else typer.echo)
    if json_:
        print_json(result)
