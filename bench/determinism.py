"""Determinism benchmark (not a test): how close two census runs with the same seed land, with and
without TensorFlow op determinism (`mlops run --seed N [--deterministic]`).

Runs `mlops run census` four times as subprocesses (each in a fresh home, --no-cache, so every step
reruns): twice without and twice with --deterministic, all with the same seed. Prints overall AUC and
accuracy of each run, the differences within each pair, the largest weight difference between the
pair's trained models, and Trainer / total times.
Usage: .venv/bin/python bench/determinism.py [--data-root data] [--seed 42] [--max-trials 1]
       [--train-steps 600] [--tuner-steps 100] [--keep DIR]
With one Tuner trial the Tuner always picks the defaults (its first trial), so its own budget only
costs time; --tuner-steps keeps it short.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from components import metadata  # noqa: E402
from pipelines import lineage, nodes  # noqa: E402
from pipelines.outcome import outcome_of  # noqa: E402


def run_once(home: Path, args, deterministic: bool) -> dict:
    cmd = [sys.executable, "-m", "pipelines.cli", "run", "census", "--home", str(home), "--data-root",
           args.data_root, "--no-cache", "--seed", str(args.seed), "--max-trials", str(args.max_trials),
           "--train-steps", str(args.train_steps), "--tuner-steps", str(args.tuner_steps)]
    if deterministic:
        cmd.append("--deterministic")
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLOPS_HOME")}
    start = time.time()
    status = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL).returncode
    seconds = time.time() - start
    if status not in (0, 3):
        raise SystemExit(f"{' '.join(cmd)} exited {status}")
    store = metadata.open_store(str(home / "metadata.sqlite"))
    pipeline = nodes.pipeline_name("census")
    record = lineage.load_run(store, pipeline, lineage.list_run_ids(store, pipeline)[0])
    outcome = outcome_of(record, "census")
    trainer = next(s for n, _, s in outcome.components if n == nodes.TRAINER)
    return {"seconds": seconds, "trainer": trainer, "metrics": outcome.metrics,
            "model": record.nodes[nodes.TRAINER].output("model").uri}


def max_weight_difference(model_a: str, model_b: str) -> float:
    """The largest absolute difference between same-named variables of two Trainer models."""
    import numpy as np
    import tensorflow as tf

    def reader(uri):
        return tf.train.load_checkpoint(os.path.join(uri, "Format-Serving", "variables", "variables"))

    a, b = reader(model_a), reader(model_b)
    worst = 0.0
    for name, _ in tf.train.list_variables(os.path.join(model_a, "Format-Serving", "variables", "variables")):
        if name.startswith("_CHECKPOINTABLE_OBJECT_GRAPH"):
            continue
        x, y = a.get_tensor(name), b.get_tensor(name)
        if getattr(x, "dtype", None) is not None and np.issubdtype(x.dtype, np.floating) and x.shape == y.shape:
            worst = max(worst, float(np.max(np.abs(x - y))) if x.size else 0.0)
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=str(REPO / "data"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-trials", type=int, default=1)
    parser.add_argument("--train-steps", type=int, default=600)
    parser.add_argument("--tuner-steps", type=int, default=100)
    parser.add_argument("--keep", help="keep the four homes under this directory")
    args = parser.parse_args()

    root = Path(args.keep or tempfile.mkdtemp(prefix="bench-determinism-"))
    results = {}
    try:
        for mode, deterministic in (("off", False), ("on", True)):
            for i in (1, 2):
                home = root / f"{mode}-{i}"
                print(f"run {i} with --deterministic {mode} ...", flush=True)
                results[(mode, i)] = run_once(home, args, deterministic)
        print(f"\ncensus, seed {args.seed}, {args.max_trials} Tuner trial(s) x {args.tuner_steps} steps, "
              f"{args.train_steps} training steps, data {args.data_root}")
        print(f"{'deterministic':<14}{'run':>4}{'auc':>10}{'accuracy':>10}{'trainer s':>11}{'total s':>9}")
        for (mode, i), r in results.items():
            m = r["metrics"]
            print(f"{mode:<14}{i:>4}{m.get('auc', float('nan')):>10.5f}{m.get('binary_accuracy', float('nan')):>10.5f}"
                  f"{r['trainer']:>11.1f}{r['seconds']:>9.1f}")
        for mode in ("off", "on"):
            a, b = results[(mode, 1)], results[(mode, 2)]
            d_auc = abs(a["metrics"]["auc"] - b["metrics"]["auc"])
            d_acc = abs(a["metrics"]["binary_accuracy"] - b["metrics"]["binary_accuracy"])
            print(f"--deterministic {mode}: |d auc| {d_auc:.5f}, |d accuracy| {d_acc:.5f}, max |d weight| "
                  f"{max_weight_difference(a['model'], b['model']):.3g}, trainer {a['trainer']:.1f}/{b['trainer']:.1f} s")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
