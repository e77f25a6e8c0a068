"""Census benchmark (not a test): full data, default budget.

Prints eval-split accuracy and AUC, wall time per component, total time, and the cached rerun time.
Usage: .venv/bin/python bench/census.py [--home DIR] [--data-root data] [--max-trials N] [--train-steps N]
"""
from __future__ import annotations

import argparse
import os
import shutil
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
    parser.add_argument("--max-trials", type=int)
    parser.add_argument("--train-steps", type=int)
    parser.add_argument("--model", choices=["tabtransformer", "mlp"])
    args = parser.parse_args()

    task = load_task("census").with_overrides(tuner_max_trials=args.max_trials, train_steps=args.train_steps)
    if args.model:
        task = task.with_overrides(custom_config={**task.custom_config, "model": args.model})
    home = args.home or tempfile.mkdtemp(prefix="bench-census-")
    layout = local_runner.LocalLayout.resolve(home)
    data_root = str(Path(args.data_root).resolve())
    version = cli_run.data_version(Path(data_root))
    try:
        first_s, first = timed_run(task, layout, data_root, version)
        rerun_s, _ = timed_run(task, layout, data_root, version)
    finally:
        if not args.home:
            shutil.rmtree(home, ignore_errors=True)

    print(f"census benchmark: model={task.custom_config.get('model')} max_trials={task.tuner_max_trials} "
          f"tuner_steps={task.tuner_train_steps} train_steps={task.train_steps} data md5={version['md5']}")
    print("component                         seconds  state")
    for node, state, seconds in first.components:
        print(f"  {node:<31} {seconds:7.1f}  {state}")
    print(f"total wall time (first run):      {first_s:7.1f} s")
    print(f"cached rerun wall time:           {rerun_s:7.1f} s")
    m = first.metrics
    print(f"eval split: accuracy={m.get('binary_accuracy', float('nan')):.4f} auc={m.get('auc', float('nan')):.4f} "
          f"examples={int(m.get('example_count', 0))} blessed={first.blessed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
