"""`mlops data`: the DVC-versioned data/."""
from __future__ import annotations

from pathlib import Path

from pipelines.cli import CliError, console


def cmd_data_status(args) -> int:
    from pipelines import datasets

    try:
        root = datasets.repo_root(Path(args.repo) if args.repo else None)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from None
    status = datasets.data_status(root)
    if status["dirty"]:
        console.print(f"[yellow]data/ does not match data.dvc[/] (md5 {status['md5']})")
        for target, changes in status["changes"].items():
            console.print(f"  {target}: {changes}")
        console.print("  restore with `dvc pull` / `dvc checkout`, or record the change with `dvc add data`")
        return 1
    console.print(f"[green]data/ matches data.dvc[/] (md5 {status['md5']})")
    return 0


def cmd_data_import(args) -> int:
    from pipelines import datasets

    if args.task not in datasets.IMPORTERS:
        raise CliError(f"no importer for {args.task!r}; importers exist for: {', '.join(sorted(datasets.IMPORTERS))}", 2)
    target = datasets.IMPORTERS[args.task](Path(args.source), Path(args.data_root))
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
