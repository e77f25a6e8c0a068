"""`mlops compile` and `mlops submit`: the task's pipeline on Kubeflow Pipelines."""
from __future__ import annotations

import datetime
import os
import warnings
from pathlib import Path

from pipelines.cli import CliError, add_beam_arg_option, console, err_console, task_or_error
from pipelines.tasks import KNOWN_TASKS

IMAGE_ENV = "MLOPS_IMAGE"
PIPELINE_ROOT_ENV = "MLOPS_PIPELINE_ROOT"
TOKEN_ENV = "MLOPS_KFP_TOKEN"
COOKIE_ENV = "MLOPS_KFP_COOKIE"
NAMESPACE_ENV = "MLOPS_KFP_NAMESPACE"
DVC_REMOTE_ENV = "MLOPS_DVC_REMOTE"
DEFAULT_BUILD_DIR = "build"


def _default_output(task_name: str) -> Path:
    return Path(DEFAULT_BUILD_DIR) / f"{task_name}.yaml"


def _compile(task, args) -> Path:
    """Compile `task` with the command's options and write the package; returns its path."""
    from pipelines.kubeflow import KubeflowError, cluster, compiler, resources, storage

    image = args.image or os.environ.get(IMAGE_ENV)
    pipeline_root = args.pipeline_root or os.environ.get(PIPELINE_ROOT_ENV)
    if not image:
        raise CliError(f"--image is required (or ${IMAGE_ENV}): the pipeline image, see `make image`", 2)
    if not pipeline_root:
        raise CliError(
            f"--pipeline-root is required (or ${PIPELINE_ROOT_ENV}), e.g. the Terraform output pipeline_root", 2
        )
    output = Path(args.output) if args.output else _default_output(task.name)
    try:
        compiler.check_package_suffix(output)
    except KubeflowError as exc:
        raise CliError(str(exc), 2) from None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            s3 = storage.S3Access.from_options(args.s3_endpoint, args.s3_region, args.s3_secret, os.environ)
            compiled = compiler.compile_pipeline(
                task,
                image=image,
                pipeline_root=pipeline_root,
                data_root=args.data_root,
                serving_root=args.serving_root,
                package_root=args.package_root,
                baseline=not args.no_baseline,
                registry_uri=args.registry_uri,
                cluster=args.cluster,
                s3=s3,
                dvc_remote=args.dvc_remote or os.environ.get(DVC_REMOTE_ENV) or None,
            )
        except (KubeflowError, ValueError) as exc:
            raise CliError(str(exc)) from None
    compiled.write(output)

    data_root = args.data_root or compiler.default_data_root(pipeline_root)
    serving_root = args.serving_root or compiler.default_serving_root(pipeline_root)
    version = compiled.data_version
    console.print(f"[bold]compiled {task.name}[/] -> {output}")
    console.print(f"  image: {image}")
    console.print(f"  pipeline root: {pipeline_root}")
    dvc_remote = args.dvc_remote or os.environ.get(DVC_REMOTE_ENV)
    if dvc_remote:
        console.print(f"  data: dvc md5 {version['md5']} from {dvc_remote}, materialised by the first step")
    else:
        console.print(f"  data: {data_root.rstrip('/')}/{task.data_dir} (dvc md5 {version['md5']}, "
                      f"not checked: --dvc-remote makes the version a fact)")
    console.print(f"  serving: {serving_root.rstrip('/')}/{task.name}")
    if "://" in pipeline_root:
        console.print(f"  object store: {s3.endpoint or 'AWS S3'}"
                      + (f", region {s3.region}" if s3.region else "")
                      + f", credentials {'from secret ' + s3.secret if s3.secret else 'from the pod role (IRSA)'}")
    pools = cluster.CLUSTERS[compiled.cluster]
    console.print(f"  cluster: {pools.name} (requests fit CPU pool {', '.join(pools.cpu_pool)}, "
                  f"GPU pool {', '.join(pools.gpu_pool)})")
    from components.registry import redact

    console.print(f"  registry: {redact(compiled.registry_uri)}"
                  + ("" if args.no_baseline else f" (baseline: {task.name}@{task.baseline_alias}, else the newest blessed version)"))
    steps = resources.gpu_steps(task)
    if steps:
        console.print(
            f"  GPU steps: {', '.join(steps)} ({resources.GPU_RESOURCE}, node selector "
            + ", ".join(f"{k}={v}" for k, v in resources.GPU_NODE_LABEL.items())
            + f", toleration {resources.GPU_TOLERATION['key']}={resources.GPU_TOLERATION['value']}:{resources.GPU_TOLERATION['effect']})"
        )
    if version["md5"] == "untracked":
        err_console.print("[yellow]warning:[/] no data.dvc found; the data version is recorded as 'untracked'")
    for warning in compiled.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}")
    return output


def cmd_compile(args) -> int:
    task = task_or_error(args.task, args.profile, args.beam_arg)
    _compile(task, args)
    return 0


def cmd_submit(args) -> int:
    from pipelines.kubeflow import KubeflowError, client, compiler
    from pipelines.nodes import pipeline_name

    task = task_or_error(args.task, args.profile, args.beam_arg)
    token = args.token or os.environ.get(TOKEN_ENV) or None
    cookie = args.cookie or os.environ.get(COOKIE_ENV) or None
    namespace = args.namespace or os.environ.get(NAMESPACE_ENV) or None
    if args.schedule is not None:
        try:  # a usage error, before anything is compiled or sent
            schedule = client.kfp_cron(args.schedule)
        except KubeflowError as exc:
            raise CliError(str(exc), 2) from None
        if schedule != " ".join(args.schedule.split()):
            console.print(f"schedule: {args.schedule!r} is standard 5-field cron; KFP gets {schedule!r} (seconds first)")
    try:
        # Fail fast on an unreachable API or rejected credentials, before compiling.
        client.check_endpoint(args.host, token, cookie=cookie, namespace=namespace)
        if args.package:
            package = Path(args.package)
            compiled = compiler.read_package(package)
            if compiled.name != pipeline_name(task.name):
                raise CliError(f"{package} is the pipeline {compiled.name!r}, not {pipeline_name(task.name)!r}", 2)
        else:
            package = _compile(task, args)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = client.submit_package(
                package,
                host=args.host,
                experiment=args.experiment or pipeline_name(task.name),
                run_name=args.run_name or f"{task.name}-{stamp}",
                token=token,
                schedule=args.schedule,
                cookie=cookie,
                namespace=namespace,
            )
    except KubeflowError as exc:
        raise CliError(str(exc)) from None
    where = f" (namespace {namespace})" if namespace else ""
    if result.recurring_run_id:
        console.print(f"[green]scheduled[/] {package} on {args.host}{where}: cron {result.schedule!r} (UTC)")
        console.print(f"  pipeline {result.pipeline_id}, version {result.version_id}, experiment {result.experiment_id}")
        console.print(f"  recurring run {result.recurring_run_id}: {result.run_url}")
        return 0
    console.print(f"[green]submitted[/] {package} to {args.host}{where}")
    console.print(f"  pipeline {result.pipeline_id}, version {result.version_id}, experiment {result.experiment_id}")
    console.print(f"  run {result.run_id}: {result.run_url}")
    return 0


def _add_compile_options(parser) -> None:
    from pipelines.kubeflow.compiler import IMAGE_PACKAGE_ROOT

    from pipelines.kubeflow.cluster import CLUSTER_ENV, CLUSTERS, DEFAULT_CLUSTER

    parser.add_argument("--profile", default="default", help="task budget profile, e.g. gpu (default: default)")
    parser.add_argument(
        "--cluster", choices=sorted(CLUSTERS),
        help=f"Terraform environment whose node pools every step's request must fit "
             f"(default: ${CLUSTER_ENV}, else {DEFAULT_CLUSTER})")
    parser.add_argument("--image", help=f"pipeline image for every step (default: ${IMAGE_ENV})")
    parser.add_argument(
        "--pipeline-root", help=f"artifact root, e.g. s3://bucket/pipelines (default: ${PIPELINE_ROOT_ENV})"
    )
    parser.add_argument("--data-root", help="input data root on the cluster (default: <pipeline-root>/data)")
    parser.add_argument(
        "--dvc-remote", help=f"DVC remote (s3://...) the run's first step reads data.dvc's version from, by md5 "
                             f"(default: ${DVC_REMOTE_ENV}; excludes --data-root)")
    parser.add_argument(
        "--registry-uri",
        help="MLflow registry the Baseline and Registrar steps use in the cluster (default: $MLFLOW_TRACKING_URI)",
    )
    parser.add_argument(
        "--no-baseline", action="store_true",
        help="opt out of the registry baseline: no comparison with the model to beat and no drift check "
        "(value thresholds only)",
    )
    parser.add_argument("--serving-root", help="where blessed models are pushed (default: <pipeline-root>/serving)")
    from pipelines.kubeflow import storage

    parser.add_argument(
        "--s3-endpoint", help=f"S3 API of the roots when not AWS, e.g. {storage.STOCK_MINIO_ENDPOINT} "
                              f"(default: ${storage.ENDPOINT_ENV})")
    parser.add_argument("--s3-region", help=f"S3 region for every step (default: ${storage.REGION_ENV})")
    parser.add_argument(
        "--s3-secret", help=f"Kubernetes secret with keys accesskey/secretkey for every step, e.g. "
                            f"{storage.STOCK_MINIO_SECRET} (default: ${storage.SECRET_ENV}; none: the pod's IAM "
                            f"role, IRSA)")
    add_beam_arg_option(parser)
    parser.add_argument(
        "--package-root",
        default=IMAGE_PACKAGE_ROOT,
        help=f"where the project lives inside the image (default: {IMAGE_PACKAGE_ROOT})",
    )


def register(sub) -> None:
    tasks = ", ".join(sorted(KNOWN_TASKS))
    compile_ = sub.add_parser("compile", help="compile a task's pipeline for Kubeflow Pipelines")
    compile_.add_argument("task", help=f"one of: {tasks}")
    compile_.add_argument("--output", help="package to write, .yaml (default: build/TASK.yaml)")
    _add_compile_options(compile_)
    compile_.set_defaults(func=cmd_compile)

    submit = sub.add_parser("submit", help="upload a task's pipeline to Kubeflow Pipelines and start a run")
    submit.add_argument("task", help=f"one of: {tasks}")
    submit.add_argument("--host", required=True, help="KFP API URL, e.g. http://localhost:8080")
    submit.add_argument("--experiment", help="experiment name (default: mlops-TASK)")
    submit.add_argument("--run-name", help="run name (default: TASK-<timestamp>)")
    submit.add_argument("--package", help="submit this compiled package instead of compiling")
    submit.add_argument("--token", help=f"bearer token for the KFP API (default: ${TOKEN_ENV})")
    submit.add_argument(
        "--cookie", help=f"session cookie sent on every request, e.g. 'authservice_session=...' from the Kubeflow "
                         f"central dashboard (default: ${COOKIE_ENV})")
    submit.add_argument(
        "--namespace", help=f"Kubeflow profile namespace (multi-user Kubeflow) the pipeline, experiment and runs "
                            f"are created in (default: ${NAMESPACE_ENV})")
    submit.add_argument(
        "--schedule", metavar="CRON",
        help="create a recurring run on this cron schedule (UTC) instead of one run: 5 fields (minute hour "
             "day-of-month month day-of-week), KFP's 6 (seconds first) or @daily/@hourly/'@every 6h'")
    submit.add_argument("--output", help="where to write the compiled package (default: build/TASK.yaml)")
    _add_compile_options(submit)
    submit.set_defaults(func=cmd_submit)
