"""`mlops kfp-run`: run a compiled package on this machine as the open-source KFP backend would."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from rich.markup import escape

from pipelines.cli import CliError, console, err_console


def _parse_params(items) -> dict:
    texts = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CliError(f"--param {item!r}: expected NAME=VALUE", 2)
        texts[name] = value
    return texts


def _progress(event: str, task) -> None:
    from pipelines.kubeflow import dry_run

    if event == "start":
        console.print(f"▶ {task.name} …")
    elif task.state == dry_run.SUCCEEDED:
        console.print(f"[green]✓[/] {task.name} {task.seconds:.1f}s")
    elif task.state == dry_run.SKIPPED:
        console.print(f"[yellow]–[/] {task.name} skipped ({escape(task.error)})")
    else:
        status = f"exit {task.exit_status}" if task.exit_status is not None else "not started"
        console.print(f"[red]✗[/] {task.name} {task.seconds:.1f}s ({status})")


def _secrets(names) -> dict:
    """Each named cluster secret, with this shell's AWS credentials as its accesskey/secretkey."""
    import os

    from pipelines.kubeflow.storage import SECRET_KEYS

    secrets = {}
    for name in names or []:
        missing = [var for var in SECRET_KEYS.values() if not os.environ.get(var)]
        if missing:
            raise CliError(f"--secret {name}: set {' and '.join(missing)} in this shell (the secret's "
                           f"{', '.join(SECRET_KEYS)} values)", 2)
        secrets[name] = {key: os.environ[var] for key, var in SECRET_KEYS.items()}
    return secrets


# Dry-run task states as ML Metadata would hold them (`mlops runs` symbols).
_STATES = {"succeeded": "complete", "failed": "failed", "skipped": "canceled"}


def _run_record(result, scratch: Path):
    """The dry run as a RunRecord, so its summary is `mlops run`'s (pipelines.outcome): the
    Evaluator's output on an object store is read from a local copy (boto3), since TensorFlow
    touching s3:// would abort this process at exit (tensorflow-io 0.37.1)."""
    from pipelines import lineage, nodes
    from pipelines.kubeflow import object_store
    from pipelines.runs.kubeflow import unwrap

    records, clock = {}, 0
    for index, (name, task) in enumerate(result.tasks.items(), start=1):
        outputs = {}
        for key, artifact in task.artifacts.items():
            uri = artifact.uri
            if name == nodes.EVALUATOR and key == "evaluation" and object_store.is_remote(uri):
                local = scratch / name / key
                object_store.S3Store().download(uri, local)
                uri = str(local)
            props = {k: unwrap(v.get("__value__", v) if isinstance(v, dict) else v)
                     for k, v in artifact.metadata.items()}
            outputs[key] = [lineage.ArtifactRecord(artifact.id, "", uri, key, props)]
        start, clock = clock, clock + int(task.seconds * 1000)
        records[name] = lineage.NodeExecution(name, index, _STATES.get(task.state, task.state), start, clock, outputs)
    return lineage.RunRecord(result.pipeline_name, result.run_id, records)


def _print_summary(result, scratch: Path, verbose: bool = False) -> int:
    """`mlops run`'s end-of-run summary for the dry run; its exit status (0, 3 not blessed, 1)."""
    from pipelines import nodes
    from pipelines.cli_run import print_outcome
    from pipelines.outcome import outcome_of
    from pipelines.tasks import KNOWN_TASKS, load_task

    task_name = nodes.task_of(result.pipeline_name)
    if task_name not in KNOWN_TASKS:
        return 0 if result.ok else 1
    if not verbose:  # TFMA's reader of the evaluation logs TF deprecation notices
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    outcome = outcome_of(_run_record(result, scratch), task_name)
    print_outcome(load_task(task_name), outcome)
    return outcome.exit_status


def cmd_kfp_run(args) -> int:
    from pipelines.kubeflow import KubeflowError, backend_semantics, dry_run
    from pipelines.kubeflow.compiler import read_package

    try:
        try:
            package = read_package(Path(args.package))
        except UnicodeDecodeError:
            raise CliError(f"{args.package} is not a pipeline package (not UTF-8 text): give the .yaml "
                           f"`mlops compile` wrote") from None
        parameters = backend_semantics.coerce_parameters(package.pipeline_spec, _parse_params(args.param))
        console.print(f"[bold]kfp-run {escape(package.name)}[/] pipeline root={args.pipeline_root}")
        result = dry_run.dry_run(package, pipeline_root=args.pipeline_root, parameters=parameters,
                                 progress=_progress, secrets=_secrets(args.secret))
    except KubeflowError as exc:
        raise CliError(str(exc)) from None
    ok = sum(1 for t in result.tasks.values() if t.state == dry_run.SUCCEEDED)
    skipped = sum(1 for t in result.tasks.values() if t.state == dry_run.SKIPPED)
    failed = result.failed
    summary = f"{ok} step(s) ok" + (f", {skipped} skipped" if skipped else "") + f" in {result.seconds:.1f}s"
    console.print(f"run {result.run_id}: {result.run_root}")
    if failed is None:
        console.print(f"[bold green]{summary}[/]")
    else:
        console.print(summary)
        err_console.print(f"[red]failed:[/] {failed.name}: {escape(failed.error or 'failed')}"
                          + (f" (log: {failed.log})" if failed.log else ""))
    try:
        with tempfile.TemporaryDirectory(prefix="mlops-kfp-run-") as scratch:
            status = _print_summary(result, Path(scratch), getattr(args, "verbose", False))
    except Exception as exc:  # noqa: BLE001 - the steps' outcome above stands; the summary is extra
        err_console.print(f"[yellow]warning:[/] no run summary: {escape(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}")
        status = 0
    return 1 if failed is not None else status


def register(sub) -> None:
    parser = sub.add_parser(
        "kfp-run",
        help="run a compiled package here as the open-source Kubeflow Pipelines backend would (a dry run)",
    )
    parser.add_argument("package", help="the package `mlops compile` wrote (.yaml)")
    parser.add_argument("--pipeline-root", required=True,
                        help="the run's artifact root: a local directory, or s3://bucket/prefix (the S3 API of "
                             "this shell's AWS_ENDPOINT_URL and credentials)")
    parser.add_argument("--secret", action="append", metavar="NAME",
                        help="a Kubernetes secret the package maps to env (e.g. mlpipeline-minio-artifact), "
                             "holding this shell's AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; repeatable")
    parser.add_argument("--param", action="append", metavar="NAME=VALUE",
                        help="a pipeline parameter (runtimeConfig.parameterValues); repeatable")
    parser.set_defaults(func=cmd_kfp_run)
