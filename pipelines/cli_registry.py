"""`mlops registry`: list, show, promote, roll back and resolve registered model versions."""
from __future__ import annotations

import json
import logging

from rich.markup import escape
from rich.table import Table

from typing import Optional

from pipelines.cli import GROUPS, CliError, console, err_console


def _open(args, must_exist: bool = True):
    from components import registry
    from pipelines import local_runner

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    layout = local_runner.LocalLayout.resolve(args.home)
    try:
        return registry.Registry.open(layout.home, must_exist=must_exist).check()
    except registry.RegistryError as exc:
        raise CliError(str(exc)) from None


def _call(fn, *args, **kwargs):
    """Run a registry operation; its refusals become one-line CLI errors."""
    from mlflow.exceptions import MlflowException

    from components.registry import RegistryError

    try:
        return fn(*args, **kwargs)
    except RegistryError as exc:
        message = str(exc)
        if message.startswith("no registered model"):
            from pipelines.tasks import KNOWN_TASKS

            message += f"; known tasks: {', '.join(sorted(KNOWN_TASKS))}"
        raise CliError(message) from None
    except MlflowException as exc:
        raise CliError(f"registry error: {exc.message}") from None


def _waiting(message: str) -> None:
    err_console.print(f"waiting: {escape(message)}")


def cmd_list(args) -> int:
    reg = _open(args)
    if not args.task:
        models = _call(reg.models)
        if not models:
            console.print(f"no registered models in {escape(reg.location)}")
            return 0
        table = Table("model", "versions", "latest", "aliases")
        for model in models:
            aliases = ", ".join(f"{a}=v{v}" for a, v in sorted(model.aliases.items()))
            table.add_row(model.name, str(model.versions), f"v{model.latest}" if model.latest else "-", aliases or "-")
        console.print(table)
        return 0
    versions = _call(reg.versions, args.task)
    table = Table("version", "blessed", "aliases", "auc", "created (UTC)", "pushed SavedModel")
    refused = []
    for v in versions:
        problems = _call(reg.evidence, v)  # what promote and predict check, not the tag alone
        if problems:
            refused.append(f"  v{v.version} is not usable: " + "; ".join(problems))
        table.add_row(
            f"v{v.version}",
            "yes" if not problems else "[red]no[/]",
            ", ".join(sorted(v.aliases)) or "-",
            v.tags.get("metric.auc", "-"),
            v.created[:16].replace("T", " "),
            escape(v.pushed_path or v.source),
        )
    console.print(table if versions else f"{args.task} has no versions")
    for line in refused:
        console.print(escape(line))
    return 0


def cmd_show(args) -> int:
    from components import registry

    reg = _open(args)
    v = _call(reg.version, args.task, args.version)
    problems = _call(reg.evidence, v)
    verdict = "blessed" if not problems else "[red]not usable[/]: " + escape("; ".join(problems))
    console.print(f"[bold]{escape(v.name)} v{v.version}[/] ({verdict})")
    console.print(f"  created: {v.created}   status: {v.status}")
    console.print(f"  aliases: {', '.join(sorted(v.aliases)) or '-'}")
    console.print(f"  serving path: {escape(v.pushed_path or '-')}")
    console.print(f"  source: {escape(v.source)}")
    if v.run_id:
        console.print(f"  mlflow run: {v.run_id}")
    if v.description:
        console.print(f"  description: {escape(v.description)}")
    console.print("  tags:")
    for key in sorted(v.tags):
        if key == registry.TAG_SLICE_METRICS:
            continue
        console.print(f"    {escape(key)} = {escape(v.tags[key])}")
    slices = v.tags.get(registry.TAG_SLICE_METRICS)
    if slices:
        console.print("  metrics per slice:")
        try:
            table = json.loads(slices)
        except ValueError:
            table = {}
        for name, metrics in table.items():
            if isinstance(metrics, dict):
                console.print(f"    {escape(name)}: " + ", ".join(f"{k}={val}" for k, val in metrics.items()))
    return 0


def cmd_promote(args) -> int:
    reg = _open(args)
    result = _call(reg.promote, args.task, args.version, args.alias, on_wait=_waiting)
    if result.action == "unchanged":
        console.print(f"{result.name}@{result.alias} already is v{result.version}")
    else:
        was = f" (was v{result.previous})" if result.previous else ""
        console.print(f"[green]promoted[/] {result.name} v{result.version} to {result.alias}{was}")
    return 0


def cmd_rollback(args) -> int:
    reg = _open(args)
    result = _call(reg.rollback, args.task, args.alias, on_wait=_waiting)
    console.print(f"[green]rolled back[/] {result.name}@{result.alias}: v{result.previous} -> v{result.version}")
    return 0


def cmd_history(args) -> int:
    reg = _open(args)
    history = _call(reg.history, args.task, args.alias)
    if not history:
        console.print(f"{args.task}@{args.alias} was never promoted")
        return 0
    table = Table("when (UTC)", "action", "version", "previous", "by")
    for entry in history:
        previous = entry.get("previous")
        table.add_row(
            str(entry.get("at", "?")), str(entry.get("action")), f"v{entry.get('version')}",
            f"v{previous}" if previous else "-", escape(str(entry.get("by", "?"))),
        )
    console.print(table)
    return 0


def version_for(args, ref: str, default_alias: Optional[str] = None, action: Optional[str] = "served"):
    """The registered version a reference names: TASK@ALIAS, TASK:VERSION, or TASK alone (then
    default_alias, when given), once it shows the evidence promote asks for (action: what the
    caller does with it, for the refusal; None when the caller checks the files it loads itself).
    Shared by every command that takes a version reference."""
    name, sep, alias = ref.partition("@")
    number = None
    if sep:
        if not name or not alias:
            raise CliError(f"expected TASK@ALIAS (e.g. census@production), got {ref!r}", status=2)
    else:
        name, sep, number = ref.partition(":")
        if sep and (not name or not number):
            raise CliError(f"expected TASK:VERSION (e.g. census:3), got {ref!r}", status=2)
        if not sep:
            if not (default_alias and ref):
                raise CliError(f"expected TASK@ALIAS or TASK:VERSION (e.g. census@production or census:3), got "
                               f"{ref!r}", status=2)
            name, alias, number = ref, default_alias, None
    reg = _open(args)
    info = _call(reg.version, name, number) if number is not None else _call(reg.resolve, name, alias)
    return _call(reg.verified, info, action) if action else info


def cmd_path(args) -> int:
    version = version_for(args, args.ref)
    if not version.pushed_path:
        raise CliError(f"{version.name} v{version.version} has no pushed SavedModel path (tag pushed_model_path)")
    print(version.pushed_path, flush=True)
    return 0


def register(sub) -> None:
    from components.registry import DEFAULT_ALIAS

    reg = sub.add_parser(
        "registry",
        help="model registry: list, promote, roll back",
        description="The MLflow model registry: embedded <home>/mlflow.db, or the server in $MLFLOW_TRACKING_URI.",
    )
    reg_sub = reg.add_subparsers(dest="registry_command", metavar="SUBCOMMAND", required=True)

    def add(name, func, help_text):
        parser = reg_sub.add_parser(name, help=help_text)
        parser.add_argument("--home", help="local state directory (default: $MLOPS_HOME or ./.mlops)")
        parser.set_defaults(func=func)
        return parser

    # Later command modules add their `mlops registry ...` subcommands through GROUPS["registry"].
    GROUPS["registry"] = add

    p = add("list", cmd_list, "registered models, or the versions of one")
    p.add_argument("task", nargs="?", help="list this task's versions")
    p = add("show", cmd_show, "one version: lineage tags, metrics, serving path")
    p.add_argument("task")
    p.add_argument("version", help="version number (3 or v3)")
    p = add("promote", cmd_promote, "point an alias at a blessed version")
    p.add_argument("task")
    p.add_argument("version", help="version number (3 or v3)")
    p.add_argument("--alias", default=DEFAULT_ALIAS, help=f"default: {DEFAULT_ALIAS}")
    p = add("rollback", cmd_rollback, "move an alias back to the previously promoted version")
    p.add_argument("task")
    p.add_argument("--alias", default=DEFAULT_ALIAS, help=f"default: {DEFAULT_ALIAS}")
    p = add("history", cmd_history, "promotions and rollbacks of an alias")
    p.add_argument("task")
    p.add_argument("--alias", default=DEFAULT_ALIAS, help=f"default: {DEFAULT_ALIAS}")
    p = add("path", cmd_path, "the SavedModel path to serve for TASK@ALIAS or TASK:VERSION")
    p.add_argument("ref", metavar="TASK@ALIAS|TASK:VERSION")
