"""STS benchmark (not a test): fine-tune the packaged MiniLM on STS-B train through the pipeline
(validated on dev, the pipeline's validation split), then score dev and test side by side with the
untuned checkpoint.

Prints the Evaluator's test-split Spearman/Pearson and blessing, then
Spearman and Pearson × 100 on dev and test for the untuned checkpoint and for the fine-tuned model
(the Trainer's exported SavedModel, through its serving_default signature), the wall time per
component and the total.
Usage: .venv/bin/python bench/sts.py [--home DIR] [--data-root data] [--train-steps N]
       [--hparams-json JSON] [--seeds 2] [--first-seed 42]
One pipeline run per training seed in one home; test scores as mean ± sample standard deviation.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench.common import (add_training_options, bench_home, format_spread, metric, print_components,  # noqa: E402
                          seeds_of, timed_run, with_seed, with_training_options)
from models.sts import features as F  # noqa: E402
from models.sts.metrics import pearson, spearman  # noqa: E402
from pipelines import nodes  # noqa: E402
from pipelines.tasks import load_task  # noqa: E402


def read_split(data_root: Path, folder: str):
    with open(data_root / "sts" / folder / F.SOURCE_FILES[folder], newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r[F.SENTENCE1_KEY] for r in rows], [r[F.SENTENCE2_KEY] for r in rows], np.array(
        [float(r[F.LABEL_KEY]) for r in rows])


def untuned_similarity(first, second, hparams, batch=64):
    from models.sts.model import build_model

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
    parser.add_argument("--home", help="state dir (default: a fresh temp dir, removed afterwards)")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--train-steps", type=int)
    add_training_options(parser)
    args = parser.parse_args()

    task = with_training_options(load_task("sts").with_overrides(train_steps=args.train_steps), args)
    from models.sts.model import DEFAULT_HPARAMS

    hparams = {**DEFAULT_HPARAMS, **task.custom_config.get("hparams", {})}
    runs, scores = [], {}  # scores[(split, model)] = [(spearman, pearson) per seed]
    with bench_home(args.home, args.data_root, "bench-sts-") as bench:
        data_root = Path(bench.data_root)
        splits = {folder: read_split(data_root, folder) for folder in ("dev", "test")}
        for folder, (first, second, gold) in splits.items():
            untuned = untuned_similarity(first, second, hparams)
            scores[(folder, "untuned checkpoint")] = [(100 * spearman(gold, untuned), 100 * pearson(gold, untuned))]
        for seed in seeds_of(args):
            run = timed_run(with_seed(task, seed), bench, f"seed-{seed}")
            runs.append((seed, run))
            candidate = os.path.join(run.output_uri(nodes.TRAINER, "model"), "Format-Serving")
            for folder, (first, second, gold) in splits.items():
                fine_tuned = served_similarity(candidate, first, second)
                scores.setdefault((folder, "fine-tuned"), []).append(
                    (100 * spearman(gold, fine_tuned), 100 * pearson(gold, fine_tuned)))
            print(f"[seed {seed}] test spearman={metric(run.metrics, 'spearman'):.4f} wall={run.seconds:.0f} s",
                  flush=True)

    print(f"sts benchmark: train_steps={task.train_steps} batch={hparams['batch_size']} "
          f"max_seq_length={hparams['max_seq_length']} lr={hparams['learning_rate']} data md5={bench.version['md5']}")
    for seed, run in runs:
        result, m = run.result, run.result.metrics
        print(f"\n[seed {seed}]" + ("" if seed == runs[0][0] else " (Transform and the steps before it cached)"))
        print_components(result)
        print(f"Evaluator (test split): spearman={metric(m, 'spearman'):.4f} "
              f"pearson={metric(m, 'pearson'):.4f} examples={int(m.get('example_count', 0))} "
              f"blessed={result.blessed} {'; '.join(result.reasons)}")
        print(f"total pipeline wall time: {run.seconds:.0f} s")
    print(f"\nsplit  model                spearman×100 ({len(runs)} seed(s))   pearson×100")
    for (folder, name), values in scores.items():
        print(f"{folder:<6} {name:<20} {format_spread([v[0] for v in values], 2):>24} "
              f"{format_spread([v[1] for v in values], 2):>24}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
