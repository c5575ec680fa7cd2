"""The ``harmcli`` entry point: builds the Typer app and turns errors into one line and an exit code.

Command modules import only Typer and the standard library at module level, so ``--help`` and ``--version``
answer without loading torch or OpenCV.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Annotated, Optional

import typer

from harmcli import __version__

app = typer.Typer(
    name="harmcli",
    help="Make a pasted subject belong in its new background: predict curves + shading at low resolution, apply at any resolution.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"harmcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit.")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    """harmcli: parametric image harmonization."""


# Which module registers which command. A one-shot `harmcli harmonize` imports only its own module, so Typer
# builds one command instead of all of them; anything else (--help, a command missing here) imports them all.
COMMAND_MODULES = {
    "harmonize": "harmonize_cmd", "curves": "harmonize_cmd", "make-composites": "train_cmd", "train": "train_cmd",
    "eval": "eval_cmd", "bench": "bench_cmd", "export": "export_cmd", "average": "export_cmd", "render": "render_cmd",
}


def _register_commands(args: list[str] | None = None) -> None:
    # Each module adds its command(s) to ``app``; imported here so the order of --help is stable.
    import importlib

    command = next((a for a in args or () if not a.startswith("-")), None)
    if command in COMMAND_MODULES and "--help" not in args and "-h" not in args:
        importlib.import_module(f"harmcli.cli.{COMMAND_MODULES[command]}")
        return
    from harmcli.cli import commands  # noqa: F401


def check_device_name(device: str, option: str = "--device") -> str:
    """The --device value, normalised; a misspelt device is a usage error (exit 2) in every command, checked
    before any work (whether CUDA is really there is checked when the device is opened)."""
    import re

    from harmcli.errors import UsageError

    name = device.strip().lower()
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", name):
        raise UsageError(f"{option} must be auto, cpu or cuda (or cuda:N), not '{device}'")
    return name


BACKEND_NAMES = ("auto", "onnx", "torch")  # harmcli.pipeline.BACKENDS, kept here so --help loads nothing
BACKEND_HELP = (
    "Engine for the network: auto (ONNX Runtime on the CPU when an export of the weights lies beside them, "
    "PyTorch on CUDA or otherwise), onnx, or torch."
)

FLIP_HELP = (
    "One network pass: by default the adjustment is also predicted for the mirror image and the two are averaged "
    "(a second low-res pass, milliseconds, for a slightly better result; weights/README.md)."
)


def check_backend_name(backend: str) -> str:
    """The --backend value, normalised; anything else is a usage error (exit 2) before any work."""
    from harmcli.errors import UsageError

    name = backend.strip().lower()
    if name not in BACKEND_NAMES:
        raise UsageError(f"--backend must be {', '.join(BACKEND_NAMES[:-1])} or {BACKEND_NAMES[-1]}, not '{backend}'")
    return name


def _error(message: str) -> None:
    # One line on stderr, red when it is a terminal. rich is only imported on this (rare) path.
    from rich.console import Console
    from rich.markup import escape

    # escape: a message may hold brackets (pip extras like harmcli[render], paths) that are not markup.
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}", markup=True)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; never lets a traceback through unless ``--debug`` is given."""
    from harmcli.errors import HarmcliError, Interrupted

    # Recent typer bundles its own click (typer._click) whose exceptions are not click's; older typer uses click.
    try:
        from typer._click import exceptions as click_errors
    except ImportError:  # pragma: no cover - older typer
        from click import exceptions as click_errors
    exit_types = tuple({typer.Exit, getattr(click_errors, "Exit", typer.Exit)})
    abort_types = tuple({typer.Abort, getattr(click_errors, "Abort", typer.Abort)})

    args = list(sys.argv[1:] if argv is None else argv)
    # --debug is an option of harmcli itself, before the command; after it, it is an unknown option like any other
    # (one line, exit 2), not a request for that error's traceback.
    command_at = next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))
    debug = "--debug" in args[:command_at]
    _register_commands(args)
    command = typer.main.get_command(app)
    _adjust_params(command)
    from harmcli.cli.coercion import use_plain_coercion

    use_plain_coercion(command)  # before Typer converts anything: no pydantic import (see the module)
    stops: list[Interrupted] = []
    previous_handlers = _stop_cleanly_on_signals(stops)
    try:
        # Without standalone mode, click returns typer.Exit's code instead of exiting.
        result = command.main(args=args, prog_name="harmcli", standalone_mode=False)
        if stops:  # Typer turns a KeyboardInterrupt into exit code 130; say which signal, exit with its code
            raise stops[0]
    except exit_types as exc:
        if stops:
            _stopped(stops[0])
        sys.exit(exc.exit_code)
    except abort_types:
        _error("aborted")
        sys.exit(130)
    except click_errors.NoArgsIsHelpError as exc:  # bare 'harmcli' or a bare group: the help is the answer
        # Raising it already rendered the help: Rich's formatter printed it and left the message empty (asking the
        # context again printed it a second time); a plain formatter leaves it in the message.
        if exc.message:
            typer.echo(exc.message)
        sys.exit(0)
    except click_errors.ClickException as exc:  # bad usage: unknown option, missing argument, ...
        if debug:
            raise
        ctx_hint = ""
        if isinstance(exc, click_errors.UsageError) and exc.ctx is not None:
            ctx_hint = f" (see '{exc.ctx.command_path} --help')"
        _error(exc.format_message() + ctx_hint)
        sys.exit(exc.exit_code)
    except HarmcliError as exc:
        if debug:
            raise
        _error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:  # what was done is already reported by the command
        _stopped(stops[0] if stops else exc)
    except Exception as exc:  # a bug or an unexpected environment problem: still one line, but say how to see more
        if debug:
            raise
        _error(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)")
        sys.exit(1)
    finally:
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
    sys.exit(result if isinstance(result, int) else 0)


def _stopped(exc: BaseException) -> None:
    """One line and the exit code of a stop signal: 130 for Ctrl-C (SIGINT), 143 for SIGTERM."""
    from harmcli.errors import Interrupted

    name = exc.name if isinstance(exc, Interrupted) else "SIGINT"
    _error(f"stopped by {name}{' (Ctrl-C)' if name == 'SIGINT' else ''}")
    sys.exit(getattr(exc, "exit_code", 130))


def _stop_cleanly_on_signals(stops: list) -> dict:
    """Make SIGINT and SIGTERM raise :class:`~harmcli.errors.Interrupted` (a KeyboardInterrupt) in the main
    thread and note it in ``stops``, so that a stopped run finishes the writes under way, removes its temporary
    files and reports what it did (Python's default for SIGTERM ends the process on the spot). Returns the
    previous handlers, to put back; none are installed outside the main thread."""
    from harmcli.errors import Interrupted

    def stop(signum, frame):
        interrupt = Interrupted(signum, signal.Signals(signum).name)
        stops.append(interrupt)
        raise interrupt

    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is signal.SIG_IGN:  # e.g. SIGINT of a background job (`cmd &`): keep ignoring
            continue
        previous[signum] = signal.signal(signum, stop)
    return previous


def _adjust_params(command) -> None:
    """Two corrections to what Typer makes of our parameters, for every command (those added later too).

    On/off flags (--overwrite, --quiet, --help) are shown without the ``<bool>`` this Typer prints after
    them, which reads as if they took a value (an empty metavar leaves the type column empty). And Typer's
    own "is not readable" check on paths is switched off: it would answer an unreadable input with a usage
    error (exit 2) where harmcli's readers name the file and the problem with exit 1, as the README says.
    """
    try:
        from typer._click import Context
    except ImportError:  # pragma: no cover - older typer, on click
        from click import Context

    help_option = command.get_help_option(Context(command))
    for param in [*command.params, *([help_option] if help_option is not None else [])]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        info = getattr(getattr(param, "type_descriptor", None), "parameter_info", None)  # this Typer
        for holder in (info, getattr(param, "type", None)):  # older Typer: a click.Path type
            if getattr(holder, "readable", None) is True and hasattr(holder, "exists"):
                holder.readable = False
    for sub in getattr(command, "commands", {}).values():
        _adjust_params(sub)
