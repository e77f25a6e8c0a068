"""`mlops data`: the DVC-versioned data/."""
from __future__ import annotations

from pathlib import Path

from pipelines.cli import CliError, console, task_or_error


def cmd_data_status(args) -> int:
    from components import data_version

    try:
        root = data_version.repo_root(Path(args.repo) if args.repo else None)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from None
    status = data_version.data_status(root)
    if status["dirty"]:
        console.print(f"[yellow]data/ does not match data.dvc[/] (md5 {status['md5']})")
        for target, changes in status["changes"].items():
            console.print(f"  {target}: {changes}")
        console.print("  restore with `dvc pull --force data.dvc` (discards the changes), or record the change "
                      "with `dvc add data`")
        return 1
    console.print(f"[green]data/ matches data.dvc[/] (md5 {status['md5']})")
    return 0


def cmd_data_import(args) -> int:
    task = task_or_error(args.task)
    if task.importer is None:
        raise CliError(f"task {task.name!r} declares no importer (TaskConfig.importer)", 2)
    try:
        target = task.importer(Path(args.source), Path(args.data_root))
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    console.print(f"imported {args.task} -> {target}; record it with `dvc add data && dvc push`")
    return 0


def register(sub) -> None:
    data = sub.add_parser("data", help="data versioned by DVC")
    data_sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    status = data_sub.add_parser("status", help="does data/ match data.dvc?")
    status.add_argument("--repo", help="project checkout (default: search upwards from the cwd)")
    status.set_defaults(func=cmd_data_status)
    imp = data_sub.add_parser("import", help="import a raw dataset into data/ (then `dvc add data`)")
    imp.add_argument("task")
    imp.add_argument("--source", required=True, help="folder with the raw files")
    imp.add_argument("--data-root", default="data")
    imp.set_defaults(func=cmd_data_import)
