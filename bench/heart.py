"""Heart benchmark (not a test): the 303-row Cleveland data, default budget.

Runs the pipeline once per training seed in one home (the seed only changes the Trainer, so every
run after the first reuses ExampleGen/Transform from the cache), then prints test-split accuracy and
AUC per seed with their mean ± sample standard deviation, wall time per component of the first run, and each run's wall time.
The test split is 73 rows, so the per-seed spread says how much of a difference is noise.
Usage: .venv/bin/python bench/heart.py [--home DIR] [--data-root data] [--seeds 3] [--train-steps N]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench.common import bench_home, format_spread, metric, print_components, timed_run  # noqa: E402
from pipelines.tasks import load_task  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", help="state dir (default: a fresh temp dir, removed afterwards)")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 42, 43, ... (one run each)")
    parser.add_argument("--train-steps", type=int)
    args = parser.parse_args()

    base = load_task("heart").with_overrides(train_steps=args.train_steps)
    runs = []
    with bench_home(args.home, args.data_root, "bench-heart-") as bench:
        for seed in range(42, 42 + args.seeds):
            task = base.with_overrides(custom_config={**base.custom_config, "seed": seed})
            runs.append((seed, timed_run(task, bench, f"seed-{seed}")))

    print(f"heart benchmark: train_steps={base.train_steps} eval_steps={base.eval_steps} "
          f"seeds={args.seeds} data md5={bench.version['md5']}")
    print_components(runs[0][1].result, "component (first run)")
    accuracies, aucs = [], []
    for seed, run in runs:
        m = run.metrics
        accuracies.append(metric(m, "binary_accuracy"))
        aucs.append(metric(m, "auc"))
        print(f"seed {seed}: accuracy={accuracies[-1]:.4f} auc={aucs[-1]:.4f} "
              f"examples={int(m.get('example_count', 0))} blessed={run.result.blessed} wall={run.seconds:.1f} s")
    print(f"test split over {len(runs)} seeds: accuracy {format_spread(accuracies)}  auc {format_spread(aucs)}")
    print(f"total wall time: {sum(r.seconds for _, r in runs):.1f} s (first run {runs[0][1].seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
