"""Sentence-similarity benchmark (not a test): fine-tune a similarity task through the pipeline, then
score its validation and test splits side by side with the untuned checkpoint: sts (the packaged
MiniLM on STS-B; validation = STS-B dev) or sts_ko (`--task sts_ko`: multilingual-e5-small on KLUE
STS; test = KLUE's official dev set).

Prints the Evaluator's test-split Spearman/Pearson and blessing, then
Spearman and Pearson × 100 on validation and test for the untuned checkpoint and for the fine-tuned
model (the Trainer's exported SavedModel, through its serving_default signature), the wall time per
component, the total and the load.
Usage: .venv/bin/python bench/sts.py [--task sts|sts_ko] [--home DIR] [--data-root data] [--train-steps N]
       [--hparams-json JSON] [--seeds 2] [--first-seed 42]
One pipeline run per training seed in one home; test scores as mean ± sample standard deviation.
"""
from __future__ import annotations

import argparse
import csv
import importlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench.common import (add_training_options, bench_home, format_spread, load_average, metric,  # noqa: E402
                          print_components, seeds_of, timed_run, with_seed, with_training_options)
from models.common.contract import TEST_SPLIT, VALIDATION_SPLIT  # noqa: E402
from models.common.text import pairs as F  # noqa: E402
from models.sts.metrics import pearson, spearman  # noqa: E402
from pipelines import nodes  # noqa: E402
from pipelines.tasks import load_task  # noqa: E402


def read_split(folder: Path, label_key: str):
    """(sentence1s, sentence2s, gold scores) of the CSV files in a split's folder."""
    rows = []
    for path in sorted(folder.glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            rows += list(csv.DictReader(f))
    return [r[F.SENTENCE1_KEY] for r in rows], [r[F.SENTENCE2_KEY] for r in rows], np.array(
        [float(r[label_key]) for r in rows])


def task_defaults(task_name: str) -> dict:
    if task_name == "sts_ko":
        from models.sts_ko.trainer import DEFAULT_HPARAMS
    else:
        from models.sts.model import DEFAULT_HPARAMS
    return DEFAULT_HPARAMS


def untuned_similarity(first, second, hparams, batch=64):
    """The checkpoint's similarities before fine-tuning (an e5 encoder keeps its full vocabulary)."""
    from models.common.text.siamese import build_model

    model = build_model(hparams)
    out = []
    for i in range(0, len(first), batch):
        out.append(model({F.SENTENCE1_XF: tf.constant(first[i:i + batch]),
                          F.SENTENCE2_XF: tf.constant(second[i:i + batch])}).numpy())
    return np.concatenate(out)


def served_similarity(saved_model_dir, first, second, batch=64):
    serve = tf.saved_model.load(saved_model_dir).signatures["serving_default"]

    def example(a, b):
        return tf.train.Example(features=tf.train.Features(feature={
            F.SENTENCE1_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[a.encode()])),
            F.SENTENCE2_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b.encode()])),
        })).SerializeToString()

    out = []
    for i in range(0, len(first), batch):
        examples = [example(a, b) for a, b in zip(first[i:i + batch], second[i:i + batch])]
        out.append(serve(examples=tf.constant(examples))[F.SIMILARITY].numpy())
    return np.concatenate(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", default="sts", choices=("sts", "sts_ko"))
    parser.add_argument("--home", help="state dir (default: a fresh temp dir, removed afterwards)")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--train-steps", type=int)
    add_training_options(parser)
    args = parser.parse_args()

    task = with_training_options(load_task(args.task).with_overrides(train_steps=args.train_steps), args)
    features = importlib.import_module(f"models.{args.task}.features")
    hparams = {**task_defaults(args.task), **task.custom_config.get("hparams", {})}
    runs, scores = [], {}  # scores[(split, model)] = [(spearman, pearson) per seed]
    with bench_home(args.home, args.data_root, f"bench-{args.task}-") as bench:
        data_dir = Path(bench.data_root) / task.data_dir
        splits = {split: read_split(data_dir / features.SPLITS[split], task.label_key)
                  for split in (VALIDATION_SPLIT, TEST_SPLIT)}
        for folder, (first, second, gold) in splits.items():
            untuned = untuned_similarity(first, second, hparams)
            scores[(folder, "untuned checkpoint")] = [(100 * spearman(gold, untuned), 100 * pearson(gold, untuned))]
        for seed in seeds_of(args):
            load = load_average()
            run = timed_run(with_seed(task, seed), bench, f"seed-{seed}")
            runs.append((seed, run, load))
            candidate = os.path.join(run.output_uri(nodes.TRAINER, "model"), "Format-Serving")
            for folder, (first, second, gold) in splits.items():
                fine_tuned = served_similarity(candidate, first, second)
                scores.setdefault((folder, "fine-tuned"), []).append(
                    (100 * spearman(gold, fine_tuned), 100 * pearson(gold, fine_tuned)))
            print(f"[seed {seed}] test spearman={metric(run.metrics, 'spearman'):.4f} wall={run.seconds:.0f} s "
                  f"load={load:.1f}", flush=True)

    print(f"{args.task} benchmark: encoder={hparams['encoder']} train_steps={task.train_steps} batch={hparams['batch_size']} "
          f"max_seq_length={hparams['max_seq_length']} lr={hparams['learning_rate']} data md5={bench.version['md5']}")
    for seed, run, load in runs:
        result, m = run.result, run.result.metrics
        print(f"\n[seed {seed}] load average at start {load:.1f} on {os.cpu_count()} cores"
              + ("" if seed == runs[0][0] else " (Transform and the steps before it cached)"))
        print_components(result)
        print(f"Evaluator (test split): spearman={metric(m, 'spearman'):.4f} "
              f"pearson={metric(m, 'pearson'):.4f} examples={int(m.get('example_count', 0))} "
              f"blessed={result.blessed} {'; '.join(result.reasons)}")
        print(f"total pipeline wall time: {run.seconds:.0f} s")
    print(f"\nsplit       model                spearman×100 ({len(runs)} seed(s))   pearson×100")
    for (folder, name), values in scores.items():
        print(f"{folder:<11} {name:<20} {format_spread([v[0] for v in values], 2):>24} "
              f"{format_spread([v[1] for v in values], 2):>24}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
