"""Heart benchmark (not a test): the 303-row Cleveland data, default budget.

Runs the pipeline once per training seed in one home (the seed only changes the Trainer, so every
run after the first reuses ExampleGen/Transform from the cache), then prints eval-split accuracy and
AUC per seed with their mean, wall time per component of the first run, and each run's wall time.
The eval split is ~70 rows, so the per-seed spread says how much of a difference is noise.
Usage: .venv/bin/python bench/heart.py [--home DIR] [--data-root data] [--seeds 3] [--train-steps N]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ml_metadata import metadata_store  # noqa: E402

from pipelines import cli_run, lineage, local_runner, summary  # noqa: E402
from pipelines.config import load_task  # noqa: E402
from pipelines.factory import pipeline_name  # noqa: E402


def timed_run(task, layout, data_root, version):
    start = time.time()
    run_id = local_runner.run_pipeline(
        task, layout=layout, data_root=data_root, data_version=version,
        log_file=layout.logs_dir(task.name) / f"bench-{int(start)}.log",
    )
    elapsed = time.time() - start
    store = metadata_store.MetadataStore(lineage.sqlite_config(str(layout.metadata_path)))
    return elapsed, summary.summarize(lineage.load_run(store, pipeline_name(task), run_id))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", help="state dir (default: a fresh temp dir, removed afterwards)")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 42, 43, ... (one run each)")
    parser.add_argument("--train-steps", type=int)
    args = parser.parse_args()

    base = load_task("heart").with_overrides(train_steps=args.train_steps)
    home = args.home or tempfile.mkdtemp(prefix="bench-heart-")
    layout = local_runner.LocalLayout.resolve(home)
    data_root = str(Path(args.data_root).resolve())
    version = cli_run.data_version(Path(data_root))
    results = []
    try:
        for seed in range(42, 42 + args.seeds):
            task = base.with_overrides(custom_config={**base.custom_config, "seed": seed})
            results.append((seed, *timed_run(task, layout, data_root, version)))
    finally:
        if not args.home:
            shutil.rmtree(home, ignore_errors=True)

    print(f"heart benchmark: train_steps={base.train_steps} eval_steps={base.eval_steps} "
          f"seeds={args.seeds} data md5={version['md5']}")
    print("component (first run)             seconds  state")
    for node, state, seconds in results[0][2].components:
        print(f"  {node:<31} {seconds:7.1f}  {state}")
    accuracies, aucs = [], []
    for seed, wall, result in results:
        m = result.metrics
        accuracies.append(m.get("binary_accuracy", float("nan")))
        aucs.append(m.get("auc", float("nan")))
        print(f"seed {seed}: accuracy={accuracies[-1]:.4f} auc={aucs[-1]:.4f} "
              f"examples={int(m.get('example_count', 0))} blessed={result.blessed} wall={wall:.1f} s")
    spread = (lambda xs: statistics.pstdev(xs) if len(xs) > 1 else 0.0)
    print(f"eval split mean over {len(results)} seeds: accuracy={statistics.mean(accuracies):.4f} "
          f"(± {spread(accuracies):.4f}) auc={statistics.mean(aucs):.4f} (± {spread(aucs):.4f})")
    print(f"total wall time: {sum(r[1] for r in results):.1f} s (first run {results[0][1]:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
