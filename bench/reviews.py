"""Sentiment benchmark (not a test): fine-tune a text classifier task on its real data: reviews (the
packaged MiniLM on IMDB, the default) or nsmc (multilingual-e5-small on NSMC, `--task nsmc`).

Prints test-split accuracy/AUC/F1, the pipeline Trainer's fine-tuning throughput (examples/s), the
wall time per component and the load; for reviews also the throughput of a plain transformers
TFBertForSequenceClassification.fit on the same tokenised data in this process and their ratio.
Usage: .venv/bin/python bench/reviews.py [--task reviews|nsmc] [--home DIR] [--profile default|gpu]
       [--train-steps N] [--hparams-json JSON] [--seeds 2] [--first-seed 42]
One pipeline run per training seed in one home, then mean ± sample standard deviation of the test
metrics over the seeds.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

from bench.common import (add_training_options, bench_home, format_spread, load_average, metric,  # noqa: E402
                          print_components, seeds_of, timed_run, with_seed, with_training_options)
from models.common.trainer_base import THROUGHPUT_FILE  # noqa: E402
from pipelines import nodes  # noqa: E402
from pipelines.tasks import load_task  # noqa: E402


def paired_throughput(texts, labels, hparams, steps: int, rounds: int = 2):
    """examples/s of this project's TextClassifier (raw text, in-graph tokenizer, as in the Trainer)
    and of a plain transformers TFBertForSequenceClassification.fit on pre-tokenised ids, measured
    alternately in this process so both see the same machine load. Returns (ours, plain) medians."""
    import statistics

    import tf_keras
    from transformers import TFBertForSequenceClassification

    from models.common.text import checkpoint as ckpt
    from models.common.text.bert import make_optimizer
    from models.reviews import features as F
    from models.reviews.model import build_classifier

    batch = int(hparams["batch_size"])
    ours = build_classifier(hparams)
    ours.compile(optimizer=make_optimizer(hparams, 10 * steps)[0],
                 loss=tf_keras.losses.SparseCategoricalCrossentropy())
    raw = tf.data.Dataset.from_tensor_slices(({F.TEXT_XF: tf.constant(texts)}, labels)).repeat().batch(batch)

    ids, mask = ours.tokenizer(tf.constant(texts))
    plain = TFBertForSequenceClassification(ours.bert.config)
    plain(plain.dummy_inputs)
    plain.bert.set_weights(ckpt.load_bert(ckpt.resolve(hparams["checkpoint"])).bert.get_weights())
    plain.compile(optimizer=make_optimizer(hparams, 10 * steps)[0],
                  loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    tokenised = tf.data.Dataset.from_tensor_slices(({"input_ids": ids, "attention_mask": mask}, labels)).repeat().batch(batch)

    def rate(model, data):
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
        return steps * batch / (time.perf_counter() - start)

    ours.fit(raw, steps_per_epoch=2, epochs=1, verbose=0)  # trace + warm up
    plain.fit(tokenised, steps_per_epoch=2, epochs=1, verbose=0)
    ours_rates, plain_rates = [], []
    for _ in range(rounds):
        ours_rates.append(rate(ours, raw))
        plain_rates.append(rate(plain, tokenised))
    return statistics.median(ours_rates), statistics.median(plain_rates)


def default_hparams(task_name: str) -> dict:
    if task_name == "nsmc":
        from models.nsmc.model import DEFAULT_HPARAMS
    else:
        from models.reviews.model import DEFAULT_HPARAMS
    return DEFAULT_HPARAMS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", default="reviews", choices=("reviews", "nsmc"))
    parser.add_argument("--home", help="state dir (default: a fresh temp dir, removed afterwards)")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--profile", default="default")
    parser.add_argument("--train-steps", type=int)
    add_training_options(parser)
    parser.add_argument("--plain-steps", type=int, default=15, help="steps per throughput measurement")
    args = parser.parse_args()

    task = with_training_options(load_task(args.task, args.profile).with_overrides(train_steps=args.train_steps), args)
    runs = []
    with bench_home(args.home, args.data_root, f"bench-{args.task}-") as bench:
        for seed in seeds_of(args):
            load = load_average()
            run = timed_run(with_seed(task, seed), bench, f"seed-{seed}")
            stats = json.loads(tf.io.gfile.GFile(os.path.join(run.output_uri(nodes.TRAINER, "model_run"),
                                                              THROUGHPUT_FILE)).read())
            runs.append((seed, run, stats, load))
            print(f"[seed {seed}] accuracy={metric(run.metrics, 'binary_accuracy'):.4f} "
                  f"auc={metric(run.metrics, 'auc'):.4f} wall={run.seconds:.0f} s load={load:.1f}", flush=True)

        hparams = {**default_hparams(args.task), **task.custom_config.get("hparams", {})}
        paired = None
        if args.task == "reviews" and args.plain_steps > 0:  # the plain comparison is MiniLM's
            import csv

            with open(Path(bench.data_root) / task.data_dir / "imdb_train.csv", newline="") as f:
                rows = list(csv.DictReader(f))[: 32 * (args.plain_steps + 2)]
            paired = paired_throughput([r["text"] for r in rows], [int(r["label"]) for r in rows],
                                       hparams, args.plain_steps)

    print(f"{args.task} benchmark: profile={args.profile} train_steps={task.train_steps} "
          f"batch={hparams['batch_size']} max_seq_length={hparams['max_seq_length']} "
          f"encoder={hparams['encoder']} length_buckets={list(hparams['length_buckets'])} {hparams.get('length_unit', 'words')} "
          f"data md5={bench.version['md5']}")
    for seed, run, stats, load in runs:
        result, m = run.result, run.result.metrics
        print(f"\n[seed {seed}] load average at start {load:.1f} on {os.cpu_count()} cores"
              + ("" if seed == runs[0][0] else " (Transform and the steps before it cached from the first run)"))
        print_components(result)
        print(f"test split: accuracy={metric(m, 'binary_accuracy'):.4f} auc={metric(m, 'auc'):.4f} "
              f"f1={metric(m, 'f1_score'):.4f} examples={int(m.get('example_count', 0))} blessed={result.blessed}")
        print(f"fine-tuning throughput in the pipeline's Trainer: {stats['train_examples_per_second']:.2f} ex/s")
        print(f"total pipeline wall time: {run.seconds:.0f} s")
    print(f"\ntest split over {len(runs)} seed(s): "
          f"accuracy {format_spread([metric(r.metrics, 'binary_accuracy') for _, r, _, _ in runs])}  "
          f"auc {format_spread([metric(r.metrics, 'auc') for _, r, _, _ in runs])}  "
          f"f1 {format_spread([metric(r.metrics, 'f1_score') for _, r, _, _ in runs])}")
    if paired:
        ours, plain = paired
        print(f"paired, same process and load: this project's model {ours:.2f} ex/s, plain transformers "
              f"fit {plain:.2f} ex/s, ratio {ours / plain:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
