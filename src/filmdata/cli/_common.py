"""Shared pieces of the CLI: the Typer app, common options, error translation, output."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer

from ..errors import FilmdataError

app = typer.Typer(
    name="filmdata",
    help="Build, curate and pair datasets of old film and VHS footage; train a baseline restorer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

RootOpt = typer.Option(
    None,
    "--root",
    envvar="FILMDATA_ROOT",
    help="Data root (default ./filmdata-data).",
    show_default=False,
)
JsonOpt = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bars.")
# on the commands that show no progress bar: taken and ignored, so that a script can pass
# --quiet to every command it runs
NoBarsOpt = typer.Option(
    False, "--quiet", "-q", help="Accepted for scripts; this command shows no progress bar."
)
DeviceOpt = typer.Option("auto", "--device", help="auto | cpu | cuda[:N].")
BackendOpt = typer.Option(
    "local", "--backend", help="local (a process pool here) or ray (tasks on a Ray cluster)."
)
RayAddressOpt = typer.Option(
    None,
    "--ray-address",
    envvar="RAY_ADDRESS",
    help="Ray cluster address (default $RAY_ADDRESS; 'local' starts one in-process).",
    show_default=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def translate_errors(fn: F) -> F:
    """Turn a `FilmdataError` into its one-line message and exit code (2 refused, 1 failed)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FilmdataError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def command(name: str | None = None, **kw: Any) -> Callable[[F], F]:
    """Register a command on the app with error translation; its help is its docstring, each
    paragraph on one line (`help_text`)."""

    def deco(fn: F) -> F:
        if fn.__doc__ and "help" not in kw:
            kw["help"] = help_text(fn.__doc__)
        app.command(name, **kw)(translate_errors(fn))
        return fn

    return deco


def help_text(doc: str) -> str:
    """A docstring as `--help` shows it: its paragraphs (split at blank lines), each one line.
    Typer's help keeps a docstring's line breaks, so a paragraph wrapped at the source's width
    was broken again at the terminal's: a line of one word between two full ones."""
    import inspect

    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


@contextmanager
def warnings_on_stderr() -> Iterator[None]:
    """Each warning given inside, as it comes, as one line `warning: MESSAGE` on stderr (stdout
    may be JSON). --quiet does not silence them: it silences progress bars."""
    import warnings

    def show(message: Warning | str, *_: Any, **__: Any) -> None:
        typer.echo(f"warning: {message}", err=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def print_json(obj: Any) -> None:
    """`obj` as strict JSON (NaN and infinities as null: `_json.finite`)."""
    from .._json import dumps

    typer.echo(dumps(obj, default=_json_default, indent=2))


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def print_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    file: Any = None,
    whole: Sequence[str] = (),
) -> None:
    """A plain aligned table for people; cells of more than 60 characters are cut short,
    but for the `whole` columns (a path to copy)."""
    out = file or sys.stdout
    if not rows:
        print("(none)", file=out)
        return
    cells = [[_cell(r.get(c), c not in whole) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(), file=out)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip(), file=out)


def _cell(v: Any, cut: bool = True) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}".rstrip("0").rstrip(".") if abs(v) < 1e6 else f"{v:.3g}"
    text = str(v)
    return text if len(text) <= 60 or not cut else text[:57] + "..."


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    """filmdata: paired datasets of old film and VHS footage for restoration research."""
    if version:
        from .. import __version__

        typer.echo(__version__)
        raise typer.Exit(0)
