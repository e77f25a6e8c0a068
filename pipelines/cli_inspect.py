"""`mlops runs`, `mlops slices` and `mlops report`: read back what pipeline runs did."""
from __future__ import annotations

from typing import Optional

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from pipelines.cli import CliError, console, non_negative_int

_SYMBOL_STYLES = {"✓": "green", "↺": "cyan", "✗": "bold red", "…": "yellow", "—": "dim"}


def _print_table(table: Table) -> None:
    """Fit the terminal; when piped, print at the table's natural width instead of wrapping at 80."""
    if console.is_terminal:
        console.print(table)
        return
    natural = Measurement.get(console, console.options.update(width=1000), table).maximum
    if natural <= console.width:
        console.print(table)
    else:
        Console(file=console.file, width=natural, highlight=False).print(table)


def _source(args, run_option: str = "--kfp-run"):
    """The run source the options name, chosen once: a Kubeflow host (--host, with its namespace and
    credentials, defaults from the environment as for `mlops submit`), else the local home."""
    import os

    from pipelines.cli_kubeflow import COOKIE_ENV, NAMESPACE_ENV, TOKEN_ENV
    from pipelines.runs import open_source

    host = getattr(args, "host", None)
    if getattr(args, "kfp_run", None) and not host:
        raise CliError(f"{run_option} needs the Kubeflow Pipelines host: add --host URL (e.g. http://localhost:8080)",
                       status=2)
    if host and not host.startswith(("http://", "https://")):
        raise CliError(f"--host must be an http(s) URL such as http://localhost:8080, got {host!r}", status=2)
    return open_source(host, namespace=getattr(args, "namespace", None) or os.environ.get(NAMESPACE_ENV) or None,
                       token=getattr(args, "token", None) or os.environ.get(TOKEN_ENV) or None,
                       cookie=getattr(args, "cookie", None) or os.environ.get(COOKIE_ENV) or None, home=args.home)


def _read_errors():
    """What reading a run may raise that is the user's to fix (one line each)."""
    from pipelines.kubeflow import KubeflowError
    from pipelines.runs import InspectError

    return InspectError, KubeflowError


def _quiet() -> None:
    """No TensorFlow/TFMA log noise (deprecation notices) around the tables."""
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _task_config(name: str):
    from pipelines.tasks import load_task

    try:
        return load_task(name)
    except Exception:  # an unregistered task may still have runs in the store
        return None


def _inspect_error(exc, task: Optional[str] = None) -> CliError:
    from pipelines.tasks import KNOWN_TASKS

    message = str(exc)
    if task is not None and task not in KNOWN_TASKS:
        message += f" (known tasks: {', '.join(sorted(KNOWN_TASKS))})"
    return CliError(message)


def _yes_no(value: Optional[bool]) -> Text:
    if value is None:
        return Text("—", style="dim")
    return Text("yes", style="green") if value else Text("no", style="yellow")


def infra_cell(row) -> Text:
    """The `infra` column of `mlops runs`: p50 at batch 1 when infra-validated, the failed check when
    not, `skipped` when the Evaluator did not bless the model, — when there was no InfraValidator."""
    if row.infra_blessed is None:
        return Text("—", style="dim")
    if row.infra_blessed:
        p50 = row.infra_latency_ms.get("batch_1_p50")
        return Text("yes" + (f" {p50:.1f}ms" if p50 is not None else ""), style="green")
    reason = row.infra_reason or ""
    if reason == "not blessed by the Evaluator":
        return Text("skipped", style="dim")
    return Text("no: " + (reason.partition(":")[0] or "?"), style="yellow")


def cmd_runs(args) -> int:
    from pipelines import runs as run_sources

    try:
        with _source(args) as source:
            runs, totals = source.list_runs(args.task, limit=args.limit)
    except _read_errors() as exc:
        raise _inspect_error(exc, args.task) from None
    if not runs:
        console.print(f"no pipeline runs in {source.where} yet; `mlops run TASK` makes one")
        return 0
    for task, rows in runs.items():
        nodes = run_sources.columns_for(rows)
        table = Table(title=f"[bold]{task}[/] — {totals[task]} run{'s' if totals[task] != 1 else ''}",
                      title_justify="left")
        table.add_column("run id", no_wrap=True)
        table.add_column("start", no_wrap=True)
        table.add_column("duration", justify="right")
        table.add_column("components", no_wrap=True)
        table.add_column("blessed")
        table.add_column("infra")
        table.add_column("pushed")
        table.add_column("registered")
        for row in rows:
            symbols = Text()
            for symbol in run_sources.symbols(row, nodes):
                symbols.append(symbol, style=_SYMBOL_STYLES.get(symbol, ""))
            registration = row.registration
            registered = Text(registration, style="yellow" if registration.startswith("no") else "green") \
                if registration else Text("—", style="dim")
            table.add_row(
                row.run_id,
                row.start.strftime("%Y-%m-%d %H:%M:%S") if row.start else "—",
                run_sources.format_duration(row.seconds),
                symbols,
                _yes_no(row.blessed),
                infra_cell(row),
                _yes_no(row.pushed),
                registered,
            )
        _print_table(table)
        for row in rows:
            if row.interrupted:
                console.print(f"  run {row.run_id} was interrupted at {', '.join(row.interrupted)} (a signal, or "
                              f"its process died); the next `mlops run` reruns it, finished components come "
                              f"from cache", style="yellow")
        console.print(f"  components, in order: {', '.join(nodes)}", style="dim")
        if totals[task] > len(rows):
            console.print(f"  {totals[task] - len(rows)} older runs not shown (--limit 0 shows all)", style="dim")
    console.print(f"  {run_sources.LEGEND}", style="dim")
    return 0


def cmd_slices(args) -> int:
    _quiet()
    from pipelines import nodes, slices

    task_config = _task_config(args.task)
    try:
        with _source(args) as source:
            record = source.resolve_run(args.task, args.kfp_run or args.run, need=nodes.EVALUATOR)
    except _read_errors() as exc:
        raise _inspect_error(exc, args.task) from None
    evaluator = record.nodes.get(nodes.EVALUATOR)
    evaluation = evaluator.output("evaluation") if evaluator else None
    if evaluation is None:
        state = evaluator.state if evaluator else "did not run"
        raise CliError(f"run {record.run_id} has no Evaluator output (Evaluator: {state})")
    table = slices.load_slice_table(evaluation.uri)

    preferred = task_config.eval.threshold_metric if task_config else None
    if args.metric:
        try:
            metric = table.resolve_metric(args.metric)
        except KeyError as exc:
            raise CliError(exc.args[0], status=2) from None
    else:
        metric = table.default_metric(preferred)
    if metric is None:
        raise CliError(f"the evaluation at {evaluation.uri} has no scalar metrics")

    console.print(f"[bold]{args.task}[/] run {record.run_id}  [dim]{evaluation.uri}[/]")
    compare = args.baseline and table.has_baseline
    if args.baseline and not table.has_baseline:
        console.print(
            "[yellow]no baseline[/]: this run's Evaluator had no blessed model to compare against "
            "(the first blessed run of a task has none), so there are no baseline metrics; "
            "showing the candidate only."
        )
    elif compare:
        blessing = evaluator.output("blessing")
        where = blessing.get("baseline_model") if blessing else None
        console.print(f"baseline: {where or 'the latest blessed model'}")

    shown = [metric] if (args.metric or compare) else table.metrics
    out = Table(show_edge=False, pad_edge=False)
    out.add_column("slice", overflow="fold")
    number = dict(justify="right", no_wrap=True, min_width=6)
    out.add_column("examples", **number)
    for name in shown:
        out.add_column(name, **number)
        if compare:
            out.add_column("baseline", **number)
            out.add_column("Δ", **number)
    out.add_column("threshold")
    for i, row in enumerate(table.rows):
        cells = [row.name, slices.fmt(row.example_count, 0)]
        for name in shown:
            cells.append(slices.fmt(row.candidate.get(name)))
            if compare:
                diff = row.diff(name)
                style = "" if diff is None or slices.fmt_diff(diff) == "±0" else ("green" if diff > 0 else "red")
                cells += [slices.fmt(row.baseline.get(name)), Text(slices.fmt_diff(diff), style=style)]
        status = row.status
        cells.append(Text(status, style="green" if status == "pass" else "bold red") if status
                     else Text("—", style="dim"))
        # A rule between slicing specs: Overall | gender=… | race=… …
        last_of_group = i + 1 < len(table.rows) and table.rows[i + 1].columns != row.columns
        out.add_row(*cells, end_section=last_of_group)
    _print_table(out)

    thresholds = "; ".join(t.text() for t in table.thresholds) or "none"
    console.print(f"thresholds: {thresholds}")
    if table.validation_ok:
        console.print("validation: [green]passed[/]")
    else:
        console.print("validation: [red]failed[/] — " + "; ".join(table.reasons))

    title = f"{args.task} · {metric} per slice · run {record.run_id}"
    for option, path, write in (("--png", args.png, lambda: slices.write_png(table, metric, args.png, baseline=compare or None)),
                                ("--html", args.html, lambda: slices.write_html(table, metric, args.html, title,
                                                                                baseline=compare or None))):
        if path:
            try:
                write()
            except OSError as exc:
                raise CliError(f"cannot write {path}: {exc.strerror or exc} (choose another {option})") from None
            console.print(f"chart: {path}")
    return 0


def cmd_report(args) -> int:
    _quiet()
    from pipelines.layout import LocalLayout
    from pipelines.report import write_report

    try:
        with _source(args) as source:
            path = write_report(source, args.task, args.kfp_run or args.run, home=LocalLayout.resolve(args.home).home,
                                task_config=_task_config(args.task))
    except _read_errors() as exc:
        raise _inspect_error(exc, args.task) from None
    console.print(f"report: {path}")
    return 0


def _kubeflow_options(parser, what: str) -> None:
    from pipelines.cli_kubeflow import COOKIE_ENV, NAMESPACE_ENV, TOKEN_ENV

    parser.add_argument("--host", help=f"read {what} from Kubeflow Pipelines at this URL (e.g. http://localhost:8080) "
                                        "instead of the local metadata store")
    parser.add_argument("--namespace", help=f"Kubeflow profile namespace (multi-user Kubeflow; default: ${NAMESPACE_ENV})")
    parser.add_argument("--token", help=f"bearer token for the KFP API (default: ${TOKEN_ENV})")
    parser.add_argument("--cookie", help=f"session cookie sent on every request (default: ${COOKIE_ENV})")


def register(sub) -> None:
    home_help = "local state directory (default: $MLOPS_HOME or ./.mlops)"

    runs = sub.add_parser("runs", help="list pipeline runs: components, blessed, pushed, registered")
    runs.add_argument("task", nargs="?", help="only this task's runs (default: every task)")
    runs.add_argument("--limit", type=non_negative_int, default=20, help="newest N runs per task (default 20; 0 = all)")
    runs.add_argument("--home", help=home_help)
    _kubeflow_options(runs, "the runs")
    runs.set_defaults(func=cmd_runs)

    sl = sub.add_parser("slices", help="TFMA metrics per slice of a run, with thresholds and charts")
    sl.add_argument("task")
    sl.add_argument("--run", default="latest",
                    help="run id (or a unique prefix), default: latest run with an evaluation")
    sl.add_argument("--kfp-run", metavar="RUN_ID", help="a Kubeflow run's id (or a unique prefix); needs --host")
    sl.add_argument("--metric", help="only this metric, e.g. auc or AUC (default for charts: the threshold metric)")
    sl.add_argument("--baseline", action="store_true",
                    help="candidate vs baseline model and the difference for --metric (default: the threshold metric)")
    sl.add_argument("--png", metavar="FILE", help="write a bar chart of the metric per slice (PNG)")
    sl.add_argument("--html", metavar="FILE", help="write the chart and its numbers as a self-contained HTML page")
    sl.add_argument("--home", help=home_help + "; with --host, where Kubeflow artifacts are cached")
    _kubeflow_options(sl, "the run")
    sl.set_defaults(func=cmd_slices)

    rep = sub.add_parser("report", help="(re)write a run's self-contained report.html")
    rep.add_argument("task")
    rep.add_argument("--run", default="latest", help="run id (or a unique prefix), default: latest")
    rep.add_argument("--kfp-run", metavar="RUN_ID", help="a Kubeflow run's id (or a unique prefix); needs --host")
    rep.add_argument("--home", help=home_help + "; the report is written under it")
    _kubeflow_options(rep, "the run")
    rep.set_defaults(func=cmd_report)
