"""Batch prediction benchmark (not a test): `mlops predict` throughput on the real data, against the
same SavedModel's serving_default called in a plain Python loop.

census: every row of data/census/adult.csv; reviews: the first --reviews-rows rows of
data/reviews/imdb_train.csv. The model is the newest blessed registered version in --home whose
SavedModel exists; without one, the task's pipeline runs once there with a small budget (and if that
run's model is not blessed, so never registered, its Trainer's SavedModel is used and the output
says so). Each round runs, on the same rows with the same batch size:

  predict  the code path of `mlops predict` (pipelines/cli_predict.py -> components.batch_inference:
           Beam DirectRunner with the task's beam_pipeline_args, RunInference, the output and
           rejects CSVs), timed from the input file to the written output, model loading included;
  plain    load the SavedModel, read the CSV, encode the rows with the same schema and call
           serving_default batch by batch in a Python loop (no output file).

Each side of a round runs in a fresh process (as `mlops predict` does), so neither pays for the
other's memory or warm-up; rounds alternate which side goes first. Prints rows/s of both and
predict/plain per round, then mean ± spread (half the range) over rounds.
Usage: .venv/bin/python bench/predict.py [--home DIR] [--tasks census,reviews] [--rounds 2]
                                         [--reviews-rows 3000] [--batch-size N]
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench.common import bench_home, timed_run  # noqa: E402
from components import batch_inference as bi  # noqa: E402
from components.batch_inference.handler import import_custom_ops  # noqa: E402
from components.registry import Registry  # noqa: E402
from pipelines import cli_predict, nodes  # noqa: E402
from pipelines.tasks import load_task  # noqa: E402

# Small budgets for a task that has no registered version yet.
BUDGETS = {
    "census": dict(tuner_max_trials=1, tuner_train_steps=100, train_steps=600),
    "reviews": dict(train_steps=150, eval_steps=5),
}


def registered_model(home: str, task: str):
    """SavedModel dir of the newest blessed version whose files exist, else None."""
    try:
        versions = Registry.open(home, must_exist=True).versions(task)
    except Exception:
        return None
    for version in reversed(versions):
        if version.blessed and version.pushed_path and os.path.isdir(version.pushed_path):
            return version.pushed_path, f"{task} v{version.version}"
    return None


def model_for(task, home: str, data_root: str):
    found = registered_model(home, task.name)
    if found:
        return found
    print(f"{task.name}: no registered version in {home}; running the pipeline with {BUDGETS[task.name]}", flush=True)
    with bench_home(home, data_root, f"bench-predict-{task.name}-") as bench:
        run = timed_run(task.with_overrides(**BUDGETS[task.name]), bench, f"predict-{int(time.time())}")
    print(f"{task.name}: pipeline {run.seconds:.0f} s, blessed={run.result.blessed}", flush=True)
    found = registered_model(home, task.name)
    if found:
        return found
    trainer = os.path.join(run.output_uri(nodes.TRAINER, "model"), "Format-Serving")
    return trainer, f"{task.name} Trainer output of run {run.result.run_id} (not blessed, not registered)"


def input_rows(task, data_root: str, reviews_rows: int, tmp: str) -> str:
    if task.name == "census":
        return str(Path(data_root) / "census" / "adult.csv")
    path = os.path.join(tmp, "reviews.csv")
    with open(Path(data_root) / "reviews" / "imdb_train.csv", newline="", encoding="utf-8") as src, \
            open(path, "w", newline="", encoding="utf-8") as dst:
        reader, writer = csv.reader(src), csv.writer(dst, lineterminator="\n")
        for i, row in enumerate(reader):
            if i > reviews_rows:
                break
            writer.writerow(row)
    return path


def plain_loop(task, model_dir: str, path: str, schema, batch: int):
    """(rows, seconds): load, encode every row, call serving_default batch by batch."""
    import tensorflow as tf

    start = time.perf_counter()
    import_custom_ops(task.custom_op_modules)
    function = tf.saved_model.load(model_dir).signatures["serving_default"]
    examples = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                examples.append(schema.encode(row))
            except bi.EncodeError:
                pass
    outputs = []
    for i in range(0, len(examples), batch):
        outputs.append(function(examples=tf.constant(examples[i:i + batch]))[task.eval.prediction_key].numpy())
    return len(examples), time.perf_counter() - start


def spec_for(task, model_dir: str, path: str):
    schema = cli_predict.serving_schema(task, path)
    return schema, bi.ModelSpec(model_dir, schema, task.eval.prediction_key, tuple(task.class_names),
                                tuple(task.custom_op_modules), task.eval.positive_class_id)


def measure_one(args) -> int:
    """One side of one round, in this fresh process: prints 'rows seconds rejected'."""
    task = load_task(args.task)
    schema, spec = spec_for(task, args.model_dir, args.input)
    if args.one == "predict":
        outcome = bi.predict(spec, args.input, task.predict_input, args.output, batch_size=args.batch_size,
                             beam_args=task.beam_pipeline_args)
        print(f"RESULT {outcome.total} {outcome.seconds} {outcome.rejected}", flush=True)
    else:
        rows, seconds = plain_loop(task, args.model_dir, args.input, schema, args.batch_size)
        print(f"RESULT {rows} {seconds} 0", flush=True)
    os._exit(0)  # skip TensorFlow's slow, noisy teardown


def run_side(side: str, task: str, model_dir: str, path: str, batch: int, output: str):
    command = [sys.executable, __file__, "--one", side, "--task", task, "--model-dir", model_dir, "--input", path,
               "--batch-size", str(batch), "--output", output]
    result = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        raise SystemExit(f"{side} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    rows, seconds, rejected = lines[-1].split()[1:]
    return int(rows), float(seconds), int(rejected)


def bench_task(name: str, args, tmp: str) -> None:
    task = load_task(name)
    model_dir, label = model_for(task, args.home, args.data_root)
    path = input_rows(task, args.data_root, args.reviews_rows, tmp)
    batch = args.batch_size or cli_predict.default_batch_size(task)
    print(f"\n{name}: {label}, input {path}, batch {batch}, beam args {' '.join(task.beam_pipeline_args)}; "
          f"each side in a fresh process", flush=True)
    output = os.path.join(tmp, f"{name}-predictions.csv")
    ours, plain, ratios = [], [], []
    for round_no in range(1, args.rounds + 1):
        sides = ["predict", "plain"] if round_no % 2 else ["plain", "predict"]  # alternate the order
        results = {side: run_side(side, name, model_dir, path, batch, output) for side in sides}
        (rows, seconds, rejected), (plain_rows, plain_seconds, _) = results["predict"], results["plain"]
        ours.append(rows / seconds)
        plain.append(plain_rows / plain_seconds)
        ratios.append(ours[-1] / plain[-1])
        print(f"  round {round_no}: predict {rows} rows ({rejected} rejected) in {seconds:.1f} s = {ours[-1]:.1f} rows/s; "
              f"plain loop {plain_rows} rows in {plain_seconds:.1f} s = {plain[-1]:.1f} rows/s; ratio {ratios[-1]:.2f}",
              flush=True)

    def summary(values):
        return f"{statistics.mean(values):.2f} ± {(max(values) - min(values)) / 2:.2f}"

    print(f"{name} (batch {batch}, {args.rounds} rounds): predict {summary(ours)} rows/s, plain loop "
          f"{summary(plain)} rows/s, ratio {summary(ratios)} (goal ≥ 0.8)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default="build/bench-predict", help="state dir with (or for) the registered models")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--tasks", default="census,reviews")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--reviews-rows", type=int, default=3000)
    parser.add_argument("--batch-size", type=int)
    # One measured side in a fresh process (used by the rounds above).
    parser.add_argument("--one", choices=["predict", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return measure_one(args)
    args.home = str(Path(args.home).resolve())
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        for name in args.tasks.split(","):
            bench_task(name.strip(), args, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
