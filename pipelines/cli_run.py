"""`mlops run` and `mlops tasks`."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from models.common.contract import TEST_SPLIT
from pipelines.cli import CliError, add_beam_arg_option, console, non_negative_int, positive_int, task_or_error
from pipelines.tasks import KNOWN_TASKS, load_task


def with_run_options(task, args):
    """The task with --seed, --deterministic, --hparams-json and --no-tuner applied: the seed and
    determinism go to custom_config (the Trainer and Tuner read them there), the hyperparameters
    are merged over custom_config["hparams"] as the Tuner's best values would be, and --no-tuner
    builds the pipeline without a Tuner (`mlops registry reproduce` imports recorded values)."""
    config = dict(task.custom_config)
    if args.seed is not None:
        config["seed"] = args.seed
    if args.deterministic:
        config["deterministic"] = True
    if args.hparams_json is not None:
        try:
            hparams = json.loads(args.hparams_json)
        except ValueError as exc:
            raise CliError(f"--hparams-json: not JSON ({exc})", status=2) from None
        if not isinstance(hparams, dict):
            raise CliError("--hparams-json: expected a JSON object of hyperparameter values", status=2)
        config["hparams"] = {**dict(config.get("hparams") or {}), **hparams}
    if config != dict(task.custom_config):
        task = task.with_overrides(custom_config=config)
    if args.no_tuner:
        task = dataclasses.replace(task, tuner_fn=None)  # with_overrides ignores None
    return task


def unchanged_since_last_run(task, layout, data_root: Path, version, profile: str) -> bool:
    """--if-changed: True (after saying so) when the data version, the code commit and the effective
    config equal those of the task's newest successful run in this home; otherwise prints which
    of them changed and returns False."""
    from pipelines import run_identity

    now = run_identity.current(task, data_root=str(data_root), data_version=version, profile=profile)
    previous = run_identity.newest_successful(layout.metadata_path, task.name)
    if previous is None:
        console.print(f"--if-changed: no successful run of {task.name} in {layout.home} yet; running")
        return False
    run_id, before = previous
    if before is None:
        console.print(f"--if-changed: run {run_id} recorded no data/code/config identity; running")
        return False
    changes = now.changes_since(before)
    if not changes:
        console.print(
            f"nothing changed since run {run_id}: {run_identity.describe_data(now.data)}, "
            f"{run_identity.describe_code(now)}, config {now.config_hash[:12]}; not running (--if-changed)")
        return True
    console.print(f"--if-changed: since run {run_id}:")
    for line in changes:
        console.print(f"  {escape(line)}")
    return False


def cmd_run(args) -> int:
    if args.runner != "local":
        raise CliError(f"runner {args.runner!r} is not supported by `mlops run`; use `mlops compile` for Kubeflow")
    task = task_or_error(args.task, args.profile, args.beam_arg).with_overrides(
        tuner_max_trials=args.max_trials,
        train_steps=args.train_steps,
        tuner_train_steps=args.tuner_steps,
        eval_steps=args.eval_steps,
        baseline_alias=args.baseline_alias,
    )
    task = with_run_options(task, args)
    from components import data_version
    from components.registry import RegistryError
    from pipelines import local_runner

    layout = local_runner.LocalLayout.resolve(args.home)
    data_root = Path(args.data_root or os.environ.get("MLOPS_DATA") or "data").resolve()
    task_data = data_root / task.data_dir
    if not task_data.is_dir() or not any(task_data.iterdir()):
        raise CliError(
            f"no input data in {task_data}; restore it with `dvc pull` (or `make data`) or pass --data-root"
        )
    version = data_version.version_of(data_root)
    if version["md5"] != data_version.UNTRACKED and version["dirty"] and not args.allow_dirty:
        raise CliError(
            f"{data_root} does not match data.dvc (md5 {version['md5']}): restore it with `dvc pull --force "
            f"data.dvc` (discards the changes), record the change with `dvc add data`, or pass --allow-dirty to "
            f"train on it anyway (the run is then recorded as dirty)"
        )
    if args.if_changed and unchanged_since_last_run(task, layout, data_root, version, args.profile):
        return 0
    dirty = ", dirty" if version["dirty"] and version["md5"] != data_version.UNTRACKED else ""
    console.print(f"[bold]mlops run {task.name}[/] home={layout.home} data={task_data} (dvc md5 {version['md5']}{dirty})")
    try:
        outcome = local_runner.run_pipeline(
            task,
            layout=layout,
            data_root=str(data_root),
            data_version=version,
            enable_cache=not args.no_cache,
            on_event=ProgressPrinter(),
            log_file=layout.logs_dir(task.name) / f"{time.strftime('%Y%m%d-%H%M%S')}.log",
            profile=args.profile,
        )
    except (local_runner.RunLockedError, RegistryError) as exc:
        raise CliError(str(exc)) from None
    print_outcome(task, outcome)
    return outcome.exit_status


class ProgressPrinter:
    """Prints a line when a component starts and when it ends (with its time, or `cached`)."""

    def __init__(self):
        self.started = {}

    def __call__(self, node: str, event: str) -> None:
        if event == "running":
            self.started[node] = time.time()
            console.print(f"  [cyan]▶[/] {node} …")
        elif event == "cached":
            self.started[node] = None
        elif event == "finished":
            start = self.started.get(node, time.time())
            if start is None:  # the symbols `mlops runs` uses: ✓ ran, ↺ cached
                console.print(f"  [cyan]↺[/] {node} (cached)")
            else:
                console.print(f"  [green]✓[/] {node} {time.time() - start:.1f}s")


def headline_metrics(task, metrics: dict) -> dict:
    """The overall metrics a summary shows: those the task names, else every scalar one."""
    if task.headline_metrics:
        return {k: metrics[k] for k in task.headline_metrics if k in metrics}
    return dict(metrics)


def print_outcome(task, outcome) -> None:
    """The end-of-run summary: what the runner says happened, nothing worked out here."""
    from pipelines.outcome import infra_summary
    from pipelines.slices import fmt

    if outcome.interrupted_by:
        console.print(f"[red]✗ run interrupted[/] by {outcome.interrupted_by}")
    elif outcome.error:
        # escape: messages hold "[train]"-style text that rich would take for markup
        console.print(f"[red]✗ run failed[/]: {escape(outcome.error)}")
    if (outcome.error or outcome.interrupted_by) and outcome.log_file:
        console.print(f"  full log: {outcome.log_file}")
    console.print()
    console.print(f"[bold]Run[/] {outcome.run_id} ({task.name})")
    if outcome.data_md5 == "untracked":
        console.print("  data: untracked (a data root outside the DVC-tracked data/)")
    elif outcome.data_md5:
        console.print(f"  data: dvc md5 {outcome.data_md5}{' (dirty)' if outcome.data_dirty else ''}")
    for line in outcome.data_notes:
        console.print(f"  [yellow]data[/]: {escape(line)}")
    if outcome.baseline:
        console.print(f"  baseline: {escape(outcome.baseline)}")
    if outcome.blessed:
        console.print("  [green]blessed[/]: passed every threshold")
    elif outcome.blessed is False:
        console.print("  [yellow]not blessed[/]: " + escape("; ".join(outcome.reasons) or "thresholds not met"))
    else:
        console.print("  [yellow]not evaluated[/]: " + escape("; ".join(outcome.reasons)))
    infra = infra_summary(outcome)
    if outcome.infra_blessed:
        console.print(f"  [green]infra-validated[/]: {escape(infra)}")
    elif outcome.infra_blessed is False:
        console.print(f"  [yellow]not infra-validated[/]: {escape(infra)}")
    why_not = "only infra-validated models are pushed" if outcome.blessed and outcome.infra_blessed is False \
        else "only blessed models are pushed"
    console.print(f"  pushed: {outcome.pushed_path or f'no ({why_not})'}")
    if outcome.registered and outcome.unchanged:
        console.print(f"  [green]model unchanged[/]: {outcome.registered_as} (already pushed and registered; "
                      f"nothing new was)")
    elif outcome.registered:
        console.print(f"  [green]registered[/] as {outcome.registered_as}")
    elif outcome.registered is False:
        console.print(f"  [yellow]not registered[/]: {escape(outcome.registry_reason or '')}")
    shown = headline_metrics(task, outcome.metrics)
    if shown:
        console.print(f"  metrics ({TEST_SPLIT} split, overall): " + ", ".join(
            f"{k}={int(v)}" if k == "example_count" else f"{k}={fmt(v)}" for k, v in shown.items()
        ))
    if outcome.report_path:
        console.print(f"  report: {outcome.report_path}")
    for warning in outcome.warnings:
        console.print(f"  [yellow]warning[/]: {escape(warning)}")


def cmd_tasks(args) -> int:
    from pipelines.tasks import profiles

    table = Table("task", "model", "tuner", "blessing threshold", "profiles (--profile)")
    for name in sorted(KNOWN_TASKS):
        task = load_task(name)
        table.add_row(
            name,
            task.run_fn.rsplit(".", 1)[0],
            "yes" if task.tuner_fn else "no",
            f"{task.eval.threshold_metric.rpartition('.')[2]} >= {task.eval.min_value}",
            ", ".join(profiles(name)),
        )
    console.print(table)
    return 0




def register(sub) -> None:
    run = sub.add_parser("run", help="run a task's pipeline (local runner)")
    run.add_argument("task", help=f"one of: {', '.join(sorted(KNOWN_TASKS))}")
    run.add_argument("--runner", default="local", choices=["local"], help="where to run (default: local)")
    run.add_argument("--profile", default="default", help="task budget profile, e.g. gpu (default: default)")
    run.add_argument("--max-trials", type=positive_int, help="Tuner trials (overrides the task config)")
    run.add_argument("--train-steps", type=positive_int, help="Trainer steps (overrides the task config)")
    run.add_argument("--tuner-steps", type=positive_int, help="training steps per Tuner trial")
    run.add_argument("--eval-steps", type=positive_int, help="evaluation batches per validation pass")
    run.add_argument("--no-cache", action="store_true", help="rerun every component")
    run.add_argument("--baseline-alias", help="registry alias of the model to beat (default: production; "
                                              "without it, the newest blessed version)")
    run.add_argument("--home", help="local state directory (default: $MLOPS_HOME or ./.mlops)")
    run.add_argument("--data-root", help="input data root (default: $MLOPS_DATA or ./data)")
    run.add_argument("--allow-dirty", action="store_true",
                     help="run even if data/ does not match data.dvc (recorded as dirty in lineage)")
    run.add_argument("--seed", type=non_negative_int,
                     help="random seed of the Trainer and Tuner (default: the task's, else 42); recorded as the "
                          "registered version's `seed` tag")
    run.add_argument("--deterministic", action="store_true",
                     help="TensorFlow op determinism in the Trainer (same seed and data -> same weights; slower)")
    run.add_argument("--if-changed", action="store_true",
                     help="run only if the data version, code commit or effective config differ from the newest "
                          "successful run of the task in this home (else exit 0)")
    add_beam_arg_option(run)
    # For `mlops registry reproduce`: the recorded hyperparameters instead of a Tuner search.
    run.add_argument("--hparams-json", help=argparse.SUPPRESS)
    run.add_argument("--no-tuner", action="store_true", help=argparse.SUPPRESS)
    run.set_defaults(func=cmd_run)

    tasks = sub.add_parser("tasks", help="list the known tasks")
    tasks.set_defaults(func=cmd_tasks)
