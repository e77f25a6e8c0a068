"""Pets benchmark (not a test): the real photos in data/pets with the default budget.

Prints eval-split accuracy / AUC (overall and per class), training images/s (measured by the
Trainer's throughput callback, validation excluded), wall time per component and in total.
Usage: .venv/bin/python bench/pets.py [--profile default|gpu] [--home DIR] [--data-root data]
                                      [--max-trials N] [--tuner-steps N] [--train-steps N]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ml_metadata import metadata_store  # noqa: E402

from models.pets.config import PROFILES  # noqa: E402
from models.pets.trainer import THROUGHPUT_FILE  # noqa: E402
from pipelines import cli_run, evaluation, factory, lineage, local_runner, summary  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default", choices=sorted(PROFILES))
    parser.add_argument("--home", help="state dir (default: a fresh temp dir, removed afterwards)")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--max-trials", type=int)
    parser.add_argument("--tuner-steps", type=int)
    parser.add_argument("--train-steps", type=int)
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    args = parser.parse_args()

    task = PROFILES[args.profile].with_overrides(
        tuner_max_trials=args.max_trials, tuner_train_steps=args.tuner_steps, train_steps=args.train_steps
    )
    home = args.home or tempfile.mkdtemp(prefix="bench-pets-")
    layout = local_runner.LocalLayout.resolve(home)
    data_root = str(Path(args.data_root).resolve())
    version = cli_run.data_version(Path(data_root))
    load = os.getloadavg()
    try:
        start = time.time()
        run_id = local_runner.run_pipeline(
            task, layout=layout, data_root=data_root, data_version=version,
            log_file=layout.logs_dir(task.name) / f"bench-{int(start)}.log",
        )
        wall = time.time() - start
        store = metadata_store.MetadataStore(lineage.sqlite_config(str(layout.metadata_path)))
        record = lineage.load_run(store, factory.pipeline_name(task), run_id)
        result = summary.summarize(record)
        throughput = json.loads(
            Path(record.nodes[factory.TRAINER].output("model_run").uri, THROUGHPUT_FILE).read_text()
        )
        per_slice = {m.slice: m.candidate for m in evaluation.load_slice_metrics(
            record.nodes[factory.EVALUATOR].output("evaluation").uri)}
        examples = record.nodes[factory.EXAMPLE_GEN].output("examples")
        skipped = examples.get("skipped_count") if examples else None
    finally:
        if not args.home:
            shutil.rmtree(home, ignore_errors=True)

    m = result.metrics
    print(f"pets benchmark: profile={args.profile} preprocessing={task.preprocessing_fn.rsplit('.', 1)[-1]} "
          f"max_trials={task.tuner_max_trials} tuner_steps={task.tuner_train_steps} "
          f"train_steps={task.train_steps} batch={task.custom_config.get('batch_size')} data md5={version['md5']}")
    print(f"load average at start (1/5/15 min): {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} cores")
    print("component                         seconds  state")
    for node, state, seconds in result.components:
        print(f"  {node:<31} {seconds:7.1f}  {state}")
    print(f"total wall time:                  {wall:7.1f} s")
    print(f"training throughput:              {throughput['images_per_second']} images/s "
          f"(median over epochs; {throughput['images']} images in {throughput['train_seconds']:.0f} s of training)")
    print(f"eval split: accuracy={m.get('binary_accuracy', float('nan')):.4f} auc={m.get('auc', float('nan')):.4f} "
          f"examples={int(m.get('example_count', 0))} blessed={result.blessed} skipped_files={skipped}")
    for name, values in sorted(per_slice.items()):
        if name != "Overall":
            print(f"  {name}: accuracy={values.get('binary_accuracy', float('nan')):.4f} "
                  f"examples={int(values.get('example_count', 0))}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "profile": args.profile, "wall_seconds": round(wall, 1), "metrics": m,
            "per_slice": per_slice, "throughput": throughput, "components": result.components,
            "blessed": result.blessed, "load_average": load,
        }, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
