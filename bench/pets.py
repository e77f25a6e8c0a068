"""Pets benchmark (not a test): the real photos in data/pets with the default budget.

Prints test-split accuracy / AUC (overall and per class), training images/s (measured by the
Trainer's throughput callback, validation excluded), wall time per component and in total.
Usage: .venv/bin/python bench/pets.py [--profile default|gpu] [--home DIR] [--data-root data]
                                      [--max-trials N] [--tuner-steps N] [--train-steps N]
                                      [--hparams-json JSON] [--seeds 2] [--first-seed 42] [--json FILE]
One pipeline run per training seed in one home (the second run reuses the first one's ExampleGen and
Transform), then mean ± sample standard deviation of the test metrics over the seeds.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench.common import (add_training_options, bench_home, format_spread, load_average, metric,  # noqa: E402
                          print_components, seeds_of, timed_run, with_seed, with_training_options)
from pipelines.tasks import profiles  # noqa: E402
from models.common.trainer_base import THROUGHPUT_FILE  # noqa: E402
from components import evaluation  # noqa: E402
from pipelines import nodes  # noqa: E402


def measure(task, bench, seed: int) -> dict:
    """One pipeline run with this training seed, and what the summary prints of it."""
    load = load_average()
    run = timed_run(with_seed(task, seed), bench, f"seed-{seed}")
    throughput = json.loads(Path(run.output_uri(nodes.TRAINER, "model_run"), THROUGHPUT_FILE).read_text())
    per_slice = {m.slice: m.candidate for m in evaluation.load_slice_metrics(
        run.output_uri(nodes.EVALUATOR, "evaluation"))}
    examples = run.record.nodes[nodes.EXAMPLE_GEN].output("examples")
    m = run.result.metrics
    print(f"[seed {seed}] accuracy={metric(m, 'binary_accuracy'):.4f} auc={metric(m, 'auc'):.4f} "
          f"wall={run.seconds:.0f} s load={load:.1f}", flush=True)
    return {"seed": seed, "run": run, "throughput": throughput, "per_slice": per_slice, "load_average": load,
            "skipped": examples.get("skipped_count") if examples else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default", choices=sorted(profiles("pets")))
    parser.add_argument("--home", help="state dir (default: a fresh temp dir, removed afterwards)")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--max-trials", type=int)
    parser.add_argument("--tuner-steps", type=int)
    parser.add_argument("--train-steps", type=int)
    add_training_options(parser)
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    args = parser.parse_args()

    task = with_training_options(profiles("pets")[args.profile].with_overrides(
        tuner_max_trials=args.max_trials, tuner_train_steps=args.tuner_steps, train_steps=args.train_steps
    ), args)
    with bench_home(args.home, args.data_root, "bench-pets-") as bench:
        rows = [measure(task, bench, seed) for seed in seeds_of(args)]

    print(f"pets benchmark: profile={args.profile} preprocessing={task.preprocessing_fn.rsplit('.', 1)[-1]} "
          f"max_trials={task.tuner_max_trials} tuner_steps={task.tuner_train_steps} "
          f"train_steps={task.train_steps} batch={rows[0]['throughput']['batch_size']} "
          f"hparams={task.custom_config.get('hparams', {})} data md5={bench.version['md5']}")
    for row in rows:
        result, throughput, m = row["run"].result, row["throughput"], row["run"].result.metrics
        print(f"\n[seed {row['seed']}] load average at start {row['load_average']:.1f} on {os.cpu_count()} cores"
              + ("" if row is rows[0] else " (Transform and the steps before it cached from the first run)"))
        print_components(result)
        print(f"total wall time:                  {row['run'].seconds:7.1f} s")
        print(f"training throughput:              {throughput['images_per_second']} images/s "
              f"(every training batch but the first; {throughput['images']} images in {throughput['train_seconds']:.0f} s)")
        print(f"test split: accuracy={metric(m, 'binary_accuracy'):.4f} auc={metric(m, 'auc'):.4f} "
              f"examples={int(m.get('example_count', 0))} blessed={result.blessed} skipped_files={row['skipped']}")
        for name, values in sorted(row["per_slice"].items()):
            if name != "Overall":
                print(f"  {name}: accuracy={values.get('binary_accuracy', float('nan')):.4f} "
                      f"examples={int(values.get('example_count', 0))}")
    print(f"\ntest split over {len(rows)} seed(s): "
          f"accuracy {format_spread([metric(r['run'].metrics, 'binary_accuracy') for r in rows])}  "
          f"auc {format_spread([metric(r['run'].metrics, 'auc') for r in rows])}")
    if args.json:
        Path(args.json).write_text(json.dumps([{
            "profile": args.profile, "seed": row["seed"], "wall_seconds": round(row["run"].seconds, 1),
            "metrics": row["run"].metrics, "per_slice": row["per_slice"], "throughput": row["throughput"],
            "components": row["run"].result.components, "blessed": row["run"].result.blessed,
            "load_average": row["load_average"],
        } for row in rows], indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
