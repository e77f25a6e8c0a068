"""Semi-supervised census benchmark (not a test): with only a fraction of the training labels kept,
pre-trained + fine-tuned TabTransformer vs the same TabTransformer trained on the labelled rows only.

Both arms run the census pipeline in profile "semi" (no Tuner, identical hyperparameters, the same
labelled rows: a hash of each row picks them) in one home, so ExampleGen/Transform run once and
every run is evaluated by TFMA on the same eval split. The pre-trained arm first does masked-column
reconstruction on every training row without labels. Prints eval-split AUC and accuracy per arm and
seed, their means, the pre-training loss, and wall times.
Usage: .venv/bin/python bench/census_semi.py [--home DIR] [--label-fraction 0.1] [--seeds 1]
       [--pretrain-epochs N] [--train-steps N] [--full-labels]   (--full-labels adds a 100 %-label reference)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses  # noqa: E402

import tensorflow as tf  # noqa: E402
from ml_metadata import metadata_store  # noqa: E402

from pipelines import cli_run, factory, lineage, local_runner, summary  # noqa: E402
from pipelines.config import load_task  # noqa: E402


def timed_run(task, layout, data_root, version, label):
    start = time.time()
    run_id = local_runner.run_pipeline(task, layout=layout, data_root=data_root, data_version=version,
                                       log_file=layout.logs_dir(task.name) / f"bench-semi-{label}.log")
    elapsed = time.time() - start
    store = metadata_store.MetadataStore(lineage.sqlite_config(str(layout.metadata_path)))
    record = lineage.load_run(store, factory.pipeline_name(task), run_id)
    pretrain = None
    model_run = record.nodes[factory.TRAINER].output("model_run")
    history = os.path.join(model_run.uri, "pretrain_history.json") if model_run else ""
    if history and tf.io.gfile.exists(history):
        pretrain = json.loads(tf.io.gfile.GFile(history).read())
    return elapsed, summary.summarize(record), pretrain


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", help="state dir (default: a fresh temp dir, removed afterwards)")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--label-fraction", type=float, default=0.1)
    parser.add_argument("--seeds", type=int, default=1)
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
    home = args.home or tempfile.mkdtemp(prefix="bench-census-semi-")
    layout = local_runner.LocalLayout.resolve(home)
    data_root = str(Path(args.data_root).resolve())
    version = cli_run.data_version(Path(data_root))
    results = []
    try:
        for seed in range(42, 42 + args.seeds):
            for name, config in arms:
                task = dataclasses.replace(base, custom_config={**config, "seed": seed})
                label = f"{name.split()[0]}-{seed}"
                results.append((name, seed, *timed_run(task, layout, data_root, version, label)))
                m = results[-1][3].metrics
                print(f"[{name}, seed {seed}] auc={m.get('auc', float('nan')):.4f} "
                      f"accuracy={m.get('binary_accuracy', float('nan')):.4f} wall={results[-1][2]:.0f} s", flush=True)
    finally:
        if not args.home:
            shutil.rmtree(home, ignore_errors=True)

    print(f"census semi-supervised benchmark: label_fraction={args.label_fraction} pretrain={pretrain} "
          f"fine-tuning steps={base.train_steps} batch={base.custom_config['batch_size']} seeds={args.seeds} "
          f"data md5={version['md5']}")
    print("components of the first run:")
    for node, state, seconds in results[0][3].components:
        print(f"  {node:<31} {seconds:7.1f}  {state}")
    for name, seed, wall, result, history in results:
        m = result.metrics
        trainer = next((s for n, _, s in result.components if n == factory.TRAINER), float("nan"))
        extra = ""
        if history:
            extra = (f" pretrain {history['steps']} steps on {history['rows']} rows, "
                     f"loss {history['loss'][0]:.3f} -> {history['loss'][-1]:.3f}")
        print(f"{name:<26} seed {seed}: auc={m.get('auc', float('nan')):.4f} "
              f"accuracy={m.get('binary_accuracy', float('nan')):.4f} examples={int(m.get('example_count', 0))} "
              f"trainer {trainer:.0f} s, run {wall:.0f} s{extra}")
    for name, _ in arms:
        aucs = [r[3].metrics.get("auc", float("nan")) for r in results if r[0] == name]
        accs = [r[3].metrics.get("binary_accuracy", float("nan")) for r in results if r[0] == name]
        print(f"mean {name:<26} auc={statistics.mean(aucs):.4f} accuracy={statistics.mean(accs):.4f} "
              f"(n={len(aucs)})")
    print(f"total wall time: {sum(r[2] for r in results):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
