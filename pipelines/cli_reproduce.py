"""`mlops registry reproduce`: rebuild a registered version from its lineage and compare its metrics."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from pipelines.cli import GROUPS, CliError, console, err_console
from pipelines.cli_registry import version_for


def _number(value) -> str:
    from pipelines.reproduce import _undefined

    return "n/a" if _undefined(value) else f"{value:.6g}"


def _difference(row) -> str:
    diff = row.difference
    if diff is None:
        return "—" if row.ok else "missing"
    return f"{diff:+.5f}"


def print_result(result, all_metrics: bool = False) -> None:
    """The comparison table and the verdict. The Overall slice comes with every metric, the other
    slices with the task's primary metric (the first of its reproduce_tolerance) and their example
    count; all_metrics shows every metric of every slice."""
    from pipelines.reproduce import OVERALL
    from pipelines.tasks import load_task

    primary = next(iter(load_task(result.plan.task).reproduce_tolerance), None)
    table = Table(highlight=False)
    table.add_column("slice", overflow="fold")
    table.add_column("metric", no_wrap=True)
    for name in ("registered", "reproduced", "difference", "tolerance"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    hidden = 0
    for row in result.rows:
        if row.slice != OVERALL and not all_metrics and primary and row.metric not in (primary, "example_count"):
            hidden += 1
            continue
        mark = "" if row.slice != OVERALL else ("[green]ok[/]" if row.ok else "[red]outside[/]")
        if row.slice != OVERALL and not row.ok:
            mark = "[yellow]outside[/]"
        table.add_row(escape(row.slice), row.metric, _number(row.registered), _number(row.reproduced),
                      _difference(row), f"{row.tolerance:g}", mark)
    # Piped output has no terminal width (rich assumes 80): as wide as the table needs, never wrapped.
    out = console
    if not console.is_terminal:
        needed = Measurement.get(console, console.options.update_width(1000), table).maximum
        out = Console(highlight=False, width=max(console.width, needed))
    out.print(table)
    if hidden:
        console.print(f"  ({hidden} more per-slice rows: --all-metrics shows them)")
    for note in result.notes:
        console.print(f"  [yellow]note[/]: {escape(note)}")
    console.print(f"  reproduction run {result.run_id} in {result.home} ({result.seconds:.0f} s); the worktree "
                  f"is removed")
    failing = [r for r in result.overall if not r.ok]
    if result.reproduced:
        console.print(f"[green]reproduced[/]: {result.plan.label}, every overall metric within its tolerance "
                      f"(the verdict is on the overall metrics; slices are shown for information)")
    else:
        what = "; ".join(f"{r.metric} {_number(r.registered)} -> {_number(r.reproduced)} "
                         f"(tolerance {r.tolerance:g})" for r in failing) or "no overall metrics to compare"
        console.print(f"[red]not reproduced[/]: {result.plan.label}: {escape(what)}")


def cmd_reproduce(args) -> int:
    import logging

    from pipelines import interrupts, local_runner, reproduce

    if not args.verbose:  # TFMA's reader of the rebuilt evaluation logs TF deprecation warnings
        logging.getLogger("tensorflow").setLevel(logging.ERROR)

    version = version_for(args, args.ref, action="reproduced")
    layout = local_runner.LocalLayout.resolve(args.home)
    try:
        with interrupts.interruptible():
            result = reproduce.reproduce(
                version, home=layout.home, allow_dirty=args.allow_dirty, deterministic=args.deterministic,
                echo=lambda line: console.print(escape(line)),
            )
    except reproduce.ReproduceError as exc:
        raise CliError(str(exc)) from None
    except interrupts.Interrupted as exc:
        err_console.print(f"[red]interrupted[/] ({exc}): the reproduction run was stopped and its worktree removed")
        return exc.exit_status
    print_result(result, all_metrics=args.all_metrics)
    return 0 if result.reproduced else 1


def register(sub) -> None:
    p = GROUPS["registry"](
        "reproduce", cmd_reproduce,
        "rebuild a version from its lineage (commit, DVC data, hyperparameters, seed) and compare its metrics",
    )
    p.add_argument("ref", metavar="TASK@ALIAS|TASK:VERSION")
    p.add_argument("--allow-dirty", action="store_true",
                   help="reproduce a version registered from a dirty tree or dirty data as far as possible")
    p.add_argument("--deterministic", action="store_true",
                   help="TensorFlow op determinism in the rebuild (on anyway when the version recorded it)")
    p.add_argument("--all-metrics", action="store_true", help="show every metric of every slice")
