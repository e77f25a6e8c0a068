"""`mlops`: run task pipelines, check data versions, and read back what happened.

Each command group lives in its own module with a `register(subparsers)` function; COMMAND_MODULES
lists them in the order `mlops --help` shows them.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
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
    "pipelines.cli_kubeflow",
    "pipelines.cli_inspect",
]


class CliError(Exception):
    """An error to print as one clear line, with exit status 1 (2 for usage errors)."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def task_or_error(name: str, profile: Optional[str] = None):
    """The TaskConfig for `name` (and profile), or a usage error listing the known tasks."""
    from pipelines.tasks import UnknownTaskError, load_task

    try:
        return load_task(name, profile)
    except UnknownTaskError as exc:
        raise CliError(str(exc), status=2) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops", description="Per-task TFX pipelines: run locally, evaluate per slice, push blessed models."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
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


if __name__ == "__main__":
    # Run through the importable module, so `python -m pipelines.cli` and the command modules share
    # one CliError class (as under the `mlops` console script).
    from pipelines.cli import main as _main

    sys.exit(_main())
