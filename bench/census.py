"""Census benchmark (not a test): full data, default budget.

Prints eval-split accuracy and AUC, wall time per component, total time, and the cached rerun time.
Usage: .venv/bin/python bench/census.py [--home DIR] [--data-root data] [--max-trials N] [--train-steps N]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.common import bench_home, metric, print_components, timed_run  # noqa: E402
from pipelines.tasks import load_task  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", help="state dir (default: a fresh temp dir, removed afterwards)")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--max-trials", type=int)
    parser.add_argument("--train-steps", type=int)
    parser.add_argument("--model", choices=["tabtransformer", "mlp"])
    args = parser.parse_args()

    task = load_task("census").with_overrides(tuner_max_trials=args.max_trials, train_steps=args.train_steps)
    if args.model:
        task = task.with_overrides(custom_config={**task.custom_config, "model": args.model})
    with bench_home(args.home, args.data_root, "bench-census-") as bench:
        first = timed_run(task, bench, "first")
        rerun = timed_run(task, bench, "rerun")

    print(f"census benchmark: model={task.custom_config.get('model')} max_trials={task.tuner_max_trials} "
          f"tuner_steps={task.tuner_train_steps} train_steps={task.train_steps} data md5={bench.version['md5']}")
    print_components(first.result)
    print(f"total wall time (first run):      {first.seconds:7.1f} s")
    print(f"cached rerun wall time:           {rerun.seconds:7.1f} s")
    m = first.metrics
    print(f"eval split: accuracy={metric(m, 'binary_accuracy'):.4f} auc={metric(m, 'auc'):.4f} "
          f"examples={int(m.get('example_count', 0))} blessed={first.result.blessed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
