"""`mlops predict TASK[@ALIAS|:VERSION] --input PATH --output PATH`: batch inference with a registered
version (default alias `production`) through its serving signature, on Beam's RunInference
(components/batch_inference).

The input is in the task's raw form (TaskConfig.predict_input): CSV with the training columns for
census / heart / reviews, sentence pairs for sts, a folder of images for pets. The task's curated
schema says which columns the model reads and their types; the other columns are carried to the
output. Rows that cannot become examples go to the rejects file (`<output>.rejects.csv`) and never
stop the batch. The task's beam_pipeline_args run it (DirectRunner by default); `--beam-arg`
appends more (another runner, more workers).

The version must show what promote asks for (components.registry.evidence), checked on the very
files that are loaded: a version whose SavedModel changed since registration, or that was
registered by hand, is never served.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import urllib.parse
from pathlib import Path
from typing import Optional, Tuple

from rich.markup import escape

from pipelines.cli import (CliError, add_beam_arg_option, console, err_console, positive_int, quiet_tensorflow,
                           task_or_error)

REPO = Path(__file__).resolve().parent.parent
# Batch sizes: tabular models are cheap per row; BERT and CNN models are not.
DEFAULT_BATCH = 256
DEFAULT_BATCH_HEAVY = 32
SHOWN_REJECTS = 10


def task_name(ref: str) -> str:
    for sep in ("@", ":"):
        if sep in ref:
            return ref.partition(sep)[0]
    return ref


def default_batch_size(task) -> int:
    heavy = task.predict_input != "csv" or bool(task.custom_op_modules)
    return DEFAULT_BATCH_HEAVY if heavy else DEFAULT_BATCH


def serving_schema(task, input_path: str):
    """The task's curated schema's serving features; without one, ExampleGen's typing of the input."""
    from components import batch_inference as bi
    from components.batch_inference import readers

    if task.schema_file:
        path = REPO / task.schema_file
        if not path.exists():
            raise CliError(f"{task.name}'s schema {task.schema_file} is missing from this checkout")
        return bi.from_schema_file(str(path), task.label_key)
    if task.predict_input == bi.IMAGE_FOLDER:
        return bi.ServingSchema({"image": "BYTES"}, frozenset({"image"}), "image bytes")
    try:
        first = readers.csv_files(input_path)[0]
        return bi.infer_from_csv(first, task.label_key)
    except (bi.InputError, ValueError) as exc:
        raise CliError(str(exc)) from None


def _exists(path: str) -> bool:
    import tensorflow as tf

    try:
        return tf.io.gfile.exists(path)
    except Exception:  # an unknown filesystem scheme
        return False


def model_directory(version, registry_uri: str) -> Tuple[str, Optional[str]]:
    """(SavedModel directory, temp dir to delete): the version's pushed path, else its source
    (a runs:/ or models:/ source is downloaded with mlflow)."""
    label = f"{version.name} v{version.version}"
    if version.pushed_path and _exists(version.pushed_path):
        return version.pushed_path, None
    source = version.source or ""
    scheme = urllib.parse.urlparse(source).scheme
    if scheme in ("runs", "models", "mlflow-artifacts"):
        import mlflow.artifacts

        tmp = tempfile.mkdtemp(prefix="mlops-predict-")
        try:
            path = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp, tracking_uri=registry_uri)
        except Exception as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise CliError(f"cannot download {label} from {source}: {str(exc).splitlines()[0]}") from None
        return path, tmp
    if source and _exists(source):
        return source, None
    raise CliError(
        f"{label} has no SavedModel to load: pushed path {version.pushed_path or '-'} and source "
        f"{source or '-'} are both missing (promote a version whose files exist: `mlops registry list {version.name}`)"
    )


def _progress_bar():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("predicting"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rejected]} rejected"),
        TimeElapsedColumn(), console=err_console, transient=True,
    )


def cmd_predict(args) -> int:
    from pipelines.cli_registry import _call, _open, version_for

    quiet_tensorflow()
    for name in ("mlflow", "alembic", "apache_beam"):
        logging.getLogger(name).setLevel(logging.WARNING)
    task = task_or_error(task_name(args.ref), beam_args=args.beam_arg)
    if not _exists(args.input):
        raise CliError(f"input {args.input} does not exist (give a {'folder of images' if task.predict_input != 'csv' else 'CSV file'})")
    version = version_for(args, args.ref, default_alias="production", action=None)
    reg = _open(args)

    from components import batch_inference as bi

    schema = serving_schema(task, args.input)
    model_dir, tmp = model_directory(version, reg.uri)
    try:  # the files about to be loaded, checked as promote checks them
        _call(reg.verified, version, "served", model_dir)
    except BaseException:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    spec = bi.ModelSpec(
        model_dir=model_dir, schema=schema, output_key=task.eval.prediction_key,
        class_names=tuple(task.class_names), custom_op_modules=tuple(task.custom_op_modules),
        positive_class_id=task.eval.positive_class_id,
    )
    batch_size = args.batch_size or default_batch_size(task)
    err_console.print(f"{version.name} v{version.version} from {escape(model_dir)} (batch {batch_size})")
    try:
        with _progress_bar() as bar:
            job = bar.add_task("predict", total=None, rejected=0)

            def on_progress(done: int, rejected: int, total: int) -> None:
                bar.update(job, completed=done, total=total or None, rejected=rejected)

            outcome = bi.predict(
                spec, args.input, task.predict_input, args.output, rejects_path=args.rejects,
                batch_size=batch_size, beam_args=list(task.beam_pipeline_args),
                label_column=args.label_column, on_progress=on_progress, staging_root=args.staging_dir,
            )
    except bi.InputError as exc:
        raise CliError(str(exc)) from None
    except ImportError as exc:
        raise CliError(str(exc)) from None
    except Exception as exc:  # the runner re-raises the worker's error, possibly wrapped
        problem = _load_problem(exc)
        if problem is None:
            raise
        raise CliError(f"{version.name} v{version.version} cannot be served: {problem} (its files are damaged or need "
                       f"ops this environment lacks; use another version)") from None
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    _summary(outcome, args)
    return 0


def _load_problem(exc: BaseException) -> Optional[str]:
    """The model-load failure behind a runner's error (one line), None when it is another error."""
    from components.batch_inference import LOAD_ERROR

    seen = exc
    while seen is not None:
        text = str(seen)
        if LOAD_ERROR in text:
            line = text[text.index(LOAD_ERROR):].splitlines()[0]
            return line.split(" [while running")[0].strip()
        seen = seen.__cause__ or seen.__context__
    return None


def _summary(outcome, args) -> None:
    console.print(
        f"predicted {outcome.predicted} of {outcome.total} rows in {outcome.seconds:.1f} s "
        f"({outcome.rows_per_second:.1f} rows/s)"
    )
    console.print(f"wrote {escape(outcome.output)} ({escape(', '.join(outcome.columns))})")
    if outcome.rejected:
        console.print(f"[yellow]rejected {outcome.rejected} row(s)[/] -> {escape(outcome.rejects_path)}")
        for reject in outcome.first_rejects[:SHOWN_REJECTS]:
            console.print(f"  {escape(reject.location)}: {escape(reject.reason)}")
        if outcome.rejected > SHOWN_REJECTS:
            console.print(f"  … and {outcome.rejected - SHOWN_REJECTS} more")
    else:
        console.print("rejected 0 rows")
    if outcome.metrics is not None:
        m = outcome.metrics
        extra = f", {m['unlabelled']} without a known label" if m.get("unlabelled") else ""
        console.print(
            f"accuracy {m['accuracy']:.4f}  AUC {m['auc']:.4f} on {m['labelled']} labelled rows "
            f"(column {escape(args.label_column)}{extra})"
        )


def register(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="batch predictions with a registered model version",
        description="Batch inference with TASK@ALIAS, TASK:VERSION or TASK (= TASK@production) on Beam RunInference.",
    )
    p.add_argument("ref", metavar="TASK[@ALIAS|:VERSION]")
    p.add_argument("--input", required=True, help="CSV file / folder of CSVs / glob, or a folder of images (pets)")
    p.add_argument("--output", required=True, help="output CSV: carried columns, then the prediction")
    p.add_argument("--rejects", help="rows that could not be predicted, with the reason (default: OUTPUT.rejects.csv)")
    p.add_argument("--label-column", help="compare with this input column: accuracy and AUC (classifiers)")
    p.add_argument("--batch-size", type=positive_int, help=f"examples per model call (default {DEFAULT_BATCH}; {DEFAULT_BATCH_HEAVY} for text and image models)")
    add_beam_arg_option(p)
    p.add_argument("--staging-dir", help="folder the workers write their output shards to, reachable by every worker "
                                         "and this machine (a distributed runner: e.g. s3://…); default: next to --output")
    p.add_argument("--home", help="local state directory (default: $MLOPS_HOME or ./.mlops)")
    p.set_defaults(func=cmd_predict)
