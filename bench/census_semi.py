"""Semi-supervised census benchmark (not a test): with only a fraction of the training labels kept,
pre-trained + fine-tuned TabTransformer vs the same TabTransformer trained on the labelled rows only.

Both arms run the census pipeline in profile "semi" (no Tuner, identical hyperparameters, the same
labelled rows: a hash of each row picks them) in one home, so ExampleGen/Transform run once and
every run is evaluated by TFMA on the same test split. The pre-trained arm first does masked-column
reconstruction on every training row without labels. Prints test-split AUC and accuracy per arm and
seed, their mean ± sample standard deviation, the pre-training loss, and wall times.
Usage: .venv/bin/python bench/census_semi.py [--home DIR] [--label-fraction 0.1] [--seeds 2] [--first-seed 42]
       [--pretrain-epochs N] [--train-steps N] [--full-labels]   (--full-labels adds a 100 %-label reference)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench.common import bench_home, format_spread, metric, print_components, timed_run  # noqa: E402

import tensorflow as tf  # noqa: E402  (after bench.common, which filters google's FutureWarnings)
from pipelines import nodes  # noqa: E402
from pipelines.tasks import load_task  # noqa: E402


def pretrain_history(run):
    """The masked-column pre-training history the Trainer wrote, or None (supervised arm)."""
    model_run = run.output_uri(nodes.TRAINER, "model_run")
    path = os.path.join(model_run, "pretrain_history.json") if model_run else ""
    return json.loads(tf.io.gfile.GFile(path).read()) if path and tf.io.gfile.exists(path) else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", help="state dir (default: a fresh temp dir, removed afterwards)")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--label-fraction", type=float, default=0.1)
    parser.add_argument("--seeds", type=int, default=2, help="number of training seeds per arm (default 2)")
    parser.add_argument("--first-seed", type=int, default=42, help="seeds run from this one upwards")
    parser.add_argument("--pretrain-epochs", type=float)
    parser.add_argument("--train-steps", type=int)
    parser.add_argument("--full-labels", action="store_true", help="also train supervised on every label")
    args = parser.parse_args()

    base = load_task("census", "semi").with_overrides(train_steps=args.train_steps)
    pretrain = dict(base.custom_config["pretrain"])
    if args.pretrain_epochs is not None:
        pretrain["epochs"] = args.pretrain_epochs
    supervised_config = {k: v for k, v in base.custom_config.items() if k != "pretrain"}
    arms = [
        ("supervised only", {**supervised_config, "label_fraction": args.label_fraction}),
        ("pre-trained + fine-tuned", {**supervised_config, "pretrain": pretrain,
                                      "label_fraction": args.label_fraction}),
    ]
    if args.full_labels:
        arms.append(("supervised, all labels", {**supervised_config, "label_fraction": 1.0}))
    results = []
    with bench_home(args.home, args.data_root, "bench-census-semi-") as bench:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for name, config in arms:
                task = dataclasses.replace(base, custom_config={**config, "seed": seed})
                run = timed_run(task, bench, f"semi-{name.split()[0]}-{seed}")
                results.append((name, seed, run, pretrain_history(run)))
                print(f"[{name}, seed {seed}] auc={metric(run.metrics, 'auc'):.4f} "
                      f"accuracy={metric(run.metrics, 'binary_accuracy'):.4f} wall={run.seconds:.0f} s", flush=True)

    print(f"census semi-supervised benchmark: label_fraction={args.label_fraction} pretrain={pretrain} "
          f"fine-tuning steps={base.train_steps} batch={base.custom_config.get('hparams', {}).get('batch_size', 256)} seeds={args.seeds} "
          f"data md5={bench.version['md5']}")
    print_components(results[0][2].result, "component (first run)")
    for name, seed, run, history in results:
        m = run.metrics
        trainer = next((s for n, _, s in run.result.components if n == nodes.TRAINER), float("nan"))
        extra = ""
        if history:
            extra = (f" pretrain {history['steps']} steps on {history['rows']} rows, "
                     f"loss {history['loss'][0]:.3f} -> {history['loss'][-1]:.3f}")
        print(f"{name:<26} seed {seed}: auc={metric(m, 'auc'):.4f} accuracy={metric(m, 'binary_accuracy'):.4f} "
              f"examples={int(m.get('example_count', 0))} trainer {trainer:.0f} s, run {run.seconds:.0f} s{extra}")
    for name, _ in arms:
        aucs = [metric(r[2].metrics, "auc") for r in results if r[0] == name]
        accs = [metric(r[2].metrics, "binary_accuracy") for r in results if r[0] == name]
        print(f"{name:<26} auc {format_spread(aucs)}  accuracy {format_spread(accs)}")
    print(f"total wall time: {sum(r[2].seconds for r in results):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
