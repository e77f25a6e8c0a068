"""`mlops`: run task pipelines, check data versions, and read back what happened.

Each command group lives in its own module with a `register(subparsers)` function; COMMAND_MODULES
lists them in the order `mlops --help` shows them.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import warnings
from pathlib import Path
from typing import List, Optional

from rich.console import Console

# google-api-core (pulled in by TFX) warns about Python 3.10 on every import; TFX 1.16 needs 3.10.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\..*")

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

COMMAND_MODULES = [
    "pipelines.cli_run",
    "pipelines.cli_data",
    "pipelines.cli_registry",
    "pipelines.cli_reproduce",
    "pipelines.cli_model_card",
    "pipelines.cli_kubeflow",
    "pipelines.cli_kfp_run",
    "pipelines.cli_inspect",
    "pipelines.cli_predict",
    "pipelines.cli_serving",
]


# Command groups other modules extend: name -> add(name, func, help) returning the sub-parser
# (e.g. GROUPS["registry"] adds `mlops registry NAME`, with --home). Filled by build_parser().
GROUPS: dict = {}


class CliError(Exception):
    """An error to print as one clear line, with exit status 1 (2 for usage errors)."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def int_at_least(minimum: int):
    """An argparse type: an integer >= minimum (so 0 is refused where 0 is no answer, not 'unset')."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            wanted = "a positive integer (1 or more)" if minimum == 1 else f"an integer >= {minimum}"
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


VERBOSE_FLAG = "--verbose"


def quiet_tensorflow(verbose: bool = False) -> None:
    """No TensorFlow C++ start-up lines (oneDNN, CUDA, TensorRT, cuFFT registration), gRPC chatter or
    library warnings on a normal command; --verbose keeps them. Must run before TensorFlow is
    imported (TF reads the level once). A run's full Python log still goes to its log file."""
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    warnings.simplefilter("ignore")


def task_or_error(name: str, profile: Optional[str] = None, beam_args: Optional[List[str]] = None):
    """The TaskConfig for `name` (and profile), with `--beam-arg` options after the task's own Beam
    options (Beam takes the last value of an option), or a usage error listing the known tasks."""
    from pipelines.tasks import UnknownTaskError, load_task

    try:
        task = load_task(name, profile)
    except UnknownTaskError as exc:
        raise CliError(str(exc), status=2) from None
    if beam_args:
        bad = [arg for arg in beam_args if not arg.startswith("--")]
        if bad:
            raise CliError(f"--beam-arg {bad[0]!r}: expected a Beam option such as --runner=FlinkRunner "
                           f"(write it as --beam-arg=--option=value)", status=2)
        task = task.with_overrides(beam_pipeline_args=tuple(task.beam_pipeline_args) + tuple(beam_args))
    return task


def add_beam_arg_option(parser) -> None:
    parser.add_argument(
        "--beam-arg", action="append", metavar="ARG", default=[],
        help="Beam pipeline option for the data-parallel steps, e.g. --beam-arg=--runner=FlinkRunner "
             "--beam-arg=--flink_master=HOST:8081 (repeatable; after the task's own options)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops", description="Per-task TFX pipelines: run locally, evaluate per slice, push blessed models."
    )
    parser.add_argument(VERBOSE_FLAG, action="store_true",
                        help="show TensorFlow's and the libraries' own log lines and warnings")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


# OSErrors that are the user's path or disk, each with its fix; any other error is unexpected.
PATH_ERRORS = {
    errno.EROFS: "pass a writable --home (or $MLOPS_HOME)",
    errno.EACCES: "pass a writable --home (or $MLOPS_HOME)",
    errno.EPERM: "pass a writable --home (or $MLOPS_HOME)",
    errno.ENOSPC: "free some space, or pass a --home on another disk",
    errno.EDQUOT: "free some space, or pass a --home on another disk",
    errno.ENOTDIR: "a file is in the way of that path; choose another (--home, --output)",
    errno.EEXIST: "a file is in the way of that path; choose another (--home, --output)",
}
# How a full disk reads when a library (TensorFlow, SQLite) reports it instead of an OSError.
DISK_FULL = ("No space left on device", "database or disk is full", "Disk quota exceeded")


def unexpected_error_log(args, argv: List[str], trace: str) -> Optional[Path]:
    """Write an unexpected error's traceback to <home>/logs/cli/ (the system temp folder when the home
    cannot take it); returns the file, None when nothing could be written."""
    import tempfile
    import time

    home = getattr(args, "home", None) or os.environ.get("MLOPS_HOME") or os.path.join(os.getcwd(), ".mlops")
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{getattr(args, 'command', None) or 'mlops'}-{os.getpid()}.log"
    text = f"mlops {' '.join(argv)}\n\n{trace}"
    # An existing home keeps the log; no home is created just for it.
    folders = [Path(home) / "logs" / "cli"] if Path(home).is_dir() else []
    for folder in folders + [Path(tempfile.gettempdir()) / "mlops-logs"]:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def report_unexpected(exc: BaseException, args, argv: List[str], verbose: bool) -> int:
    """One line for an error no command turned into a CliError: what it was and where the traceback
    is (--verbose prints the traceback too). A full disk reported by a library is named as such."""
    import traceback

    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    log = unexpected_error_log(args, argv, trace)
    if verbose:
        sys.stderr.write(trace)
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    where = f"traceback in {log}" if log else "traceback not written (no writable folder)"
    if any(sign in str(exc) for sign in DISK_FULL):
        err_console.print(f"[red]error:[/] the disk is full ({type(exc).__name__}: {escape_markup(first)}); free some "
                          f"space, or pass a --home on another disk ({where})")
        return 1
    hint = "" if verbose else "; --verbose shows it"
    err_console.print(f"[red]error:[/] {type(exc).__name__}: {escape_markup(first)} (unexpected: {where}{hint})")
    return 1


def escape_markup(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = VERBOSE_FLAG in argv
    quiet_tensorflow(verbose=verbose)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        return exc.status
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/]")
        return 130
    except OSError as exc:
        if exc.errno not in PATH_ERRORS:
            return report_unexpected(exc, args, argv, verbose)
        where = exc.filename or "a file"
        verb = "use" if exc.errno in (errno.ENOTDIR, errno.EEXIST) else "write"
        err_console.print(f"[red]error:[/] cannot {verb} {escape_markup(str(where))}: {os.strerror(exc.errno)}; "
                          f"{PATH_ERRORS[exc.errno]}")
        return 1
    except Exception as exc:  # noqa: BLE001 - the last resort: one line and the log, never a traceback
        return report_unexpected(exc, args, argv, verbose)


def entrypoint() -> None:
    """The `mlops` console script: main(), then leave at once. TensorFlow's function objects
    otherwise meet a half torn-down interpreter and print `Exception ignored in: ...
    AtomicFunction.__del__` tracebacks after every command that loaded a model."""
    try:
        status = main()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    # Run through the importable module, so `python -m pipelines.cli` and the command modules share
    # one CliError class (as under the `mlops` console script).
    from pipelines.cli import entrypoint as _entrypoint

    _entrypoint()
