"""Pets benchmark (not a test): the real photos in data/pets with the default budget.

Prints eval-split accuracy / AUC (overall and per class), training images/s (measured by the
Trainer's throughput callback, validation excluded), wall time per component and in total.
Usage: .venv/bin/python bench/pets.py [--profile default|gpu] [--home DIR] [--data-root data]
                                      [--max-trials N] [--tuner-steps N] [--train-steps N]
                                      [--hparams-json JSON] [--seed N] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench.common import add_training_options, bench_home, metric, print_components, timed_run, with_training_options  # noqa: E402
from pipelines.tasks import profiles  # noqa: E402
from models.common.trainer_base import THROUGHPUT_FILE  # noqa: E402
from components import evaluation  # noqa: E402
from pipelines import nodes  # noqa: E402


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
    load = os.getloadavg()
    with bench_home(args.home, args.data_root, "bench-pets-") as bench:
        run = timed_run(task, bench)
        throughput = json.loads(Path(run.output_uri(nodes.TRAINER, "model_run"), THROUGHPUT_FILE).read_text())
        per_slice = {m.slice: m.candidate for m in evaluation.load_slice_metrics(
            run.output_uri(nodes.EVALUATOR, "evaluation"))}
        examples = run.record.nodes[nodes.EXAMPLE_GEN].output("examples")
        skipped = examples.get("skipped_count") if examples else None
    result, wall, version = run.result, run.seconds, bench.version

    m = result.metrics
    print(f"pets benchmark: profile={args.profile} preprocessing={task.preprocessing_fn.rsplit('.', 1)[-1]} "
          f"max_trials={task.tuner_max_trials} tuner_steps={task.tuner_train_steps} "
          f"train_steps={task.train_steps} batch={throughput['batch_size']} "
          f"hparams={task.custom_config.get('hparams', {})} seed={task.custom_config.get('seed', 42)} "
          f"data md5={version['md5']}")
    print(f"load average at start (1/5/15 min): {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} cores")
    print_components(result)
    print(f"total wall time:                  {wall:7.1f} s")
    print(f"training throughput:              {throughput['images_per_second']} images/s "
          f"(every training batch but the first; {throughput['images']} images in {throughput['train_seconds']:.0f} s)")
    print(f"eval split: accuracy={metric(m, 'binary_accuracy'):.4f} auc={metric(m, 'auc'):.4f} "
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
