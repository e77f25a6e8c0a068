"""`mlops run` and `mlops tasks`."""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Optional

from rich.markup import escape
from rich.table import Table

from pipelines.cli import CliError, console, quiet_tensorflow, task_or_error
from pipelines.config import KNOWN_TASKS, load_task

HEADLINE_METRICS = ("auc", "binary_accuracy", "precision", "recall", "calibration", "spearman", "pearson",
                    "example_count")


def data_version(data_root: Path) -> dict:
    """The DVC version of data_root when it is the data/ tracked by data.dvc, else 'untracked'."""
    from pipelines import datasets

    try:
        root = datasets.repo_root(data_root)
    except FileNotFoundError:
        return {"md5": "untracked", "dirty": True, "target": str(data_root)}
    if (root / "data").resolve() != data_root.resolve():
        return {"md5": "untracked", "dirty": True, "target": str(data_root)}
    status = datasets.data_status(root)
    return {"md5": status["md5"], "dirty": status["dirty"], "target": "data.dvc"}


def cmd_run(args) -> int:
    if args.runner != "local":
        raise CliError(f"runner {args.runner!r} is not supported by `mlops run`; use `mlops compile` for Kubeflow")
    task = task_or_error(args.task, args.profile).with_overrides(
        tuner_max_trials=args.max_trials,
        train_steps=args.train_steps,
        tuner_train_steps=args.tuner_steps,
        eval_steps=args.eval_steps,
    )
    quiet_tensorflow()
    from pipelines import local_runner

    layout = local_runner.LocalLayout.resolve(args.home)
    data_root = Path(args.data_root or os.environ.get("MLOPS_DATA") or "data").resolve()
    task_data = data_root / task.data_dir
    if not task_data.is_dir() or not any(task_data.iterdir()):
        raise CliError(
            f"no input data in {task_data}; restore it with `dvc pull` (or `make data`) or pass --data-root"
        )
    version = data_version(data_root)
    if version["md5"] != "untracked" and version["dirty"] and not args.allow_dirty:
        raise CliError(
            f"{data_root} does not match data.dvc (md5 {version['md5']}): restore it with `dvc checkout` / "
            f"`dvc pull`, record the change with `dvc add data`, or pass --allow-dirty to train on it anyway "
            f"(the run is then recorded as dirty)"
        )
    # One run per task and home at a time; the lock is held until the summary and report are written.
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(local_runner.task_lock(layout, task.name))
        except local_runner.RunLockedError as exc:
            raise CliError(str(exc)) from None
        return _run_and_report(args, task, layout, data_root, task_data, version)


def _run_and_report(args, task, layout, data_root: Path, task_data: Path, version: dict) -> int:
    from pipelines import lineage, local_runner, summary as summary_mod

    console.print(
        f"[bold]mlops run {task.name}[/] home={layout.home} data={task_data} "
        f"(dvc md5 {version['md5']}{', dirty' if version['dirty'] and version['md5'] != 'untracked' else ''})"
    )

    started = {}

    def on_event(node: str, event: str) -> None:
        if event == "running":
            started[node] = time.time()
            console.print(f"  [cyan]▶[/] {node} …")
        elif event == "cached":
            started[node] = -1
        elif event == "finished":
            if started.get(node) == -1:
                console.print(f"  [green]✓[/] {node} (cached)")
            else:
                console.print(f"  [green]✓[/] {node} {time.time() - started.get(node, time.time()):.1f}s")

    log_file = layout.logs_dir(task.name) / f"{time.strftime('%Y%m%d-%H%M%S')}.log"
    error: Optional[BaseException] = None
    run_id = None
    try:
        run_id = local_runner.run_pipeline(
            task,
            layout=layout,
            data_root=str(data_root),
            data_version=version,
            enable_cache=not args.no_cache,
            on_event=on_event,
            log_file=log_file,
        )
    except (Exception, local_runner.RunInterrupted) as exc:  # a component failed or SIGTERM: report, summarise
        error = exc

    from ml_metadata import metadata_store

    store = metadata_store.MetadataStore(lineage.sqlite_config(str(layout.metadata_path)))
    from pipelines.factory import pipeline_name

    if run_id is None:
        runs = lineage.list_run_ids(store, pipeline_name(task))
        run_id = runs[0] if runs else None
    record = lineage.load_run(store, pipeline_name(task), run_id) if run_id else None
    if error is not None:
        # escape: messages hold "[train]"-style text that rich would take for markup
        console.print(f"[red]✗ run failed[/]: {type(error).__name__}: {escape(str(error))}")
        console.print(f"  full log: {log_file}")
    status = 0
    if error is not None:
        status = 128 + error.signum if isinstance(error, local_runner.RunInterrupted) else 1
    if record is None:
        return status or 1
    result = summary_mod.summarize(record)
    _print_summary(task, result)
    try:  # the run report (pipelines/report.py); a problem with it must never fail the run
        from pipelines.report import write_report

        console.print(f"  report: {write_report(layout, task.name, record.run_id, store=store, task_config=task)}")
    except Exception as exc:
        console.print(f"  [yellow]warning[/]: could not write the run report: {type(exc).__name__}: {exc}")
    return status


def _print_summary(task, result) -> None:
    console.print()
    console.print(f"[bold]Run[/] {result.run_id} ({task.name})")
    if result.data_md5 == "untracked":
        console.print("  data: untracked (a data root outside the DVC-tracked data/)")
    elif result.data_md5:
        console.print(f"  data: dvc md5 {result.data_md5}{' (dirty)' if result.data_dirty else ''}")
    for line in result.data_notes:
        console.print(f"  [yellow]data[/]: {escape(line)}")
    if result.blessed:
        console.print("  [green]blessed[/]: passed every threshold")
    elif result.blessed is False:
        console.print("  [yellow]not blessed[/]: " + ("; ".join(result.reasons) or "thresholds not met"))
    else:
        console.print("  [yellow]not evaluated[/]: " + "; ".join(result.reasons))
    console.print(f"  pushed: {result.pushed_path or 'no (only blessed models are pushed)'}")
    if result.registered:
        console.print(f"  [green]registered[/] as {result.registered_as}")
    elif result.registered is False:
        console.print(f"  [yellow]not registered[/]: {result.registry_reason}")
    shown = {k: v for k, v in result.metrics.items() if k in HEADLINE_METRICS}
    if shown:
        console.print("  metrics (eval split, overall): " + ", ".join(
            f"{k}={v:.4f}" if k != "example_count" else f"{k}={int(v)}" for k, v in shown.items()
        ))


def cmd_tasks(args) -> int:
    table = Table("task", "model", "tuner", "blessing threshold")
    for name in sorted(KNOWN_TASKS):
        task = load_task(name)
        table.add_row(
            name,
            task.run_fn.rsplit(".", 1)[0],
            "yes" if task.tuner_fn else "no",
            f"{task.eval.threshold_metric.rpartition('.')[2]} >= {task.eval.min_value}",
        )
    console.print(table)
    return 0




def register(sub) -> None:
    run = sub.add_parser("run", help="run a task's pipeline (local runner)")
    run.add_argument("task", help=f"one of: {', '.join(sorted(KNOWN_TASKS))}")
    run.add_argument("--runner", default="local", choices=["local"], help="where to run (default: local)")
    run.add_argument("--profile", default="default", help="task budget profile, e.g. gpu (default: default)")
    run.add_argument("--max-trials", type=int, help="Tuner trials (overrides the task config)")
    run.add_argument("--train-steps", type=int, help="Trainer steps (overrides the task config)")
    run.add_argument("--tuner-steps", type=int, help="training steps per Tuner trial")
    run.add_argument("--eval-steps", type=int, help="evaluation batches per validation pass")
    run.add_argument("--no-cache", action="store_true", help="rerun every component")
    run.add_argument("--home", help="local state directory (default: $MLOPS_HOME or ./.mlops)")
    run.add_argument("--data-root", help="input data root (default: $MLOPS_DATA or ./data)")
    run.add_argument("--allow-dirty", action="store_true",
                     help="run even if data/ does not match data.dvc (recorded as dirty in lineage)")
    run.set_defaults(func=cmd_run)

    tasks = sub.add_parser("tasks", help="list the known tasks")
    tasks.set_defaults(func=cmd_tasks)
