"""Census benchmark (not a test): full data, default budget, against a gradient-boosted tree.

Runs the census pipeline once per training seed (--seeds, default 2) in one home, so every run
after the first reuses ExampleGen/Transform from the cache and retrains Tuner and Trainer, then a
cached rerun of the first. On the same run's ExampleGen output it trains the reference the
pipeline's model must beat: scikit-learn's HistGradientBoostingClassifier (300 iterations,
native categorical features) on Split-train, scored on Split-test, so both models see exactly the
same rows (see `gbdt_scores`). Neither model's selection saw the test rows: the pipeline tunes and
validates on Split-validation, the GBDT has no validation at all.

Prints, per run: test-split accuracy and AUC (TFMA), wall time per component and in total, the
1-minute load average; then mean ± sample standard deviation over the seeds for the pipeline,
the GBDT's numbers (its fit is deterministic: no early stopping, no subsampling), and the
pipeline-minus-GBDT difference per run with a paired bootstrap 95 % interval over the test rows
(how much of the margin the ~3.3k test rows can tell apart). It also scores both models on
Split-validation: a change to the defaults is chosen on those numbers, never on the test ones.
Usage: .venv/bin/python bench/census.py [--home DIR] [--data-root data] [--seeds 2] [--first-seed 42]
       [--max-trials N] [--train-steps N] [--model tabtransformer|mlp]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from bench.common import (add_training_options, bench_home, format_spread, load_average, metric,  # noqa: E402
                          print_components, seeds_of, timed_run, with_seed, with_training_options)  # noqa: E402
from models.census import features as F  # noqa: E402
from models.common.contract import TEST_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT  # noqa: E402
from pipelines import nodes  # noqa: E402
from pipelines.tasks import load_task  # noqa: E402

# The reference of issue 19: 300 boosting iterations, no early stopping (so no random validation
# split: the fit is deterministic), everything else scikit-learn's defaults.
GBDT_PARAMS = {"max_iter": 300, "early_stopping": False}
BOOTSTRAP = 1000


def read_split(examples_uri: str, split: str) -> Dict[str, list]:
    """{column: [value per row]} of one split of an Examples artifact (raw tf.Examples, GZIP
    TFRecords, in file order); a feature absent from a row (an empty CSV cell) reads None."""
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    if not files:
        raise FileNotFoundError(f"no Split-{split} records under {examples_uri}")
    columns: Dict[str, list] = {name: [] for name in F.CSV_COLUMNS}
    columns["_serialized"] = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        serialized = record.numpy()
        feature = tf.train.Example.FromString(serialized).features.feature
        columns["_serialized"].append(serialized)
        for name in F.CSV_COLUMNS:
            value = None
            if name in feature:
                kind = feature[name].WhichOneof("kind")
                values = getattr(feature[name], kind).value if kind else []
                value = values[0] if len(values) else None
            columns[name].append(value.decode("utf-8") if isinstance(value, bytes) else value)
    return columns


def labels_of(split: Dict[str, list]) -> np.ndarray:
    return np.array([1 if (v or "").strip() == F.CLASS_NAMES[1] else 0 for v in split[F.LABEL_KEY]])


def encode(train: Dict[str, list], other: Dict[str, list]) -> Tuple[np.ndarray, np.ndarray, List[bool]]:
    """(X_train, X_other, categorical mask) over the pipeline model's features (5 numeric, 8
    categorical; fnlwgt is a sampling weight, not a feature). Numbers as floats (missing: NaN);
    categories as codes of the train split's sorted values, a value the train split lacks as the
    code after them, so the GBDT treats them as native categorical features."""
    def numeric(column):
        return np.array([np.nan if v is None else float(v) for v in column], dtype=np.float64)

    x_train, x_other, mask = [], [], []
    for name in F.NUMERIC_FEATURES:
        x_train.append(numeric(train[name]))
        x_other.append(numeric(other[name]))
        mask.append(False)
    for name in F.CATEGORICAL_FEATURES:
        values = sorted({"?" if v is None else v.strip() for v in train[name]})
        codes = {v: i for i, v in enumerate(values)}
        for source, target in ((train, x_train), (other, x_other)):
            target.append(np.array([codes.get("?" if v is None else v.strip(), len(values)) for v in source[name]],
                                   dtype=np.float64))
        mask.append(True)
    return np.stack(x_train, 1), np.stack(x_other, 1), mask


def gbdt_scores(train: Dict[str, list], *others: Dict[str, list]) -> List[np.ndarray]:
    """The GBDT trained on the train split (unweighted, as TFMA's metrics are): P(>50K) per row of
    each other split."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    encoded = [encode(train, other) for other in others]  # train's codes are the same in each
    x_train, _, mask = encoded[0]
    model = HistGradientBoostingClassifier(categorical_features=mask, random_state=0, **GBDT_PARAMS)
    model.fit(x_train, labels_of(train))
    return [model.predict_proba(x_other)[:, 1] for _, x_other, _ in encoded]


def model_test(model_dir: str, test: Dict[str, list]) -> np.ndarray:
    """The Trainer's SavedModel (serving_default, raw tf.Examples) on the test split: P(>50K) per row."""
    import tensorflow as tf

    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    rows = test["_serialized"]
    return np.concatenate([serve(examples=tf.constant(rows[i:i + 1024]))["probabilities"].numpy()[:, 1]
                           for i in range(0, len(rows), 1024)])


def scores(labels: np.ndarray, p: np.ndarray) -> Tuple[float, float]:
    from sklearn.metrics import roc_auc_score

    return float(np.mean((p >= 0.5) == labels)), float(roc_auc_score(labels, p))


def paired_bootstrap(labels, p_model, p_gbdt, n=BOOTSTRAP, seed=0):
    """95 % intervals of (accuracy, AUC) of the model minus the GBDT, resampling test rows."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n):
        i = rng.integers(0, len(labels), len(labels))
        a, b = scores(labels[i], p_model[i]), scores(labels[i], p_gbdt[i])
        diffs.append((a[0] - b[0], a[1] - b[1]))
    diffs = np.array(diffs)
    return np.percentile(diffs[:, 0], [2.5, 97.5]), np.percentile(diffs[:, 1], [2.5, 97.5])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", help="state dir (default: a fresh temp dir, removed afterwards)")
    parser.add_argument("--data-root", default="data")
    add_training_options(parser)
    parser.add_argument("--max-trials", type=int)
    parser.add_argument("--train-steps", type=int)
    parser.add_argument("--model", choices=["tabtransformer", "mlp"])
    args = parser.parse_args()

    base = with_training_options(
        load_task("census").with_overrides(tuner_max_trials=args.max_trials, train_steps=args.train_steps), args)
    if args.model:
        base = base.with_overrides(custom_config={**base.custom_config, "model": args.model})
    runs = []
    with bench_home(args.home, args.data_root, "bench-census-") as bench:
        for seed in seeds_of(args):
            run = timed_run(with_seed(base, seed), bench, f"seed-{seed}")
            runs.append((seed, run, load_average()))
            print(f"[seed {seed}] accuracy={metric(run.metrics, 'binary_accuracy'):.4f} "
                  f"auc={metric(run.metrics, 'auc'):.4f} wall={run.seconds:.0f} s load={runs[-1][2]:.1f}", flush=True)
        rerun = timed_run(with_seed(base, args.first_seed), bench, "rerun")
        examples = runs[0][1].output_uri(nodes.EXAMPLE_GEN, "examples")
        train, test = read_split(examples, TRAIN_SPLIT), read_split(examples, TEST_SPLIT)
        validation = read_split(examples, VALIDATION_SPLIT)
        labels, validation_labels = labels_of(test), labels_of(validation)
        p_gbdt, p_gbdt_validation = gbdt_scores(train, test, validation)
        serving = [os.path.join(run.output_uri(nodes.TRAINER, "model"), "Format-Serving") for _, run, _ in runs]
        p_models = [model_test(model_dir, test) for model_dir in serving]
        p_models_validation = [model_test(model_dir, validation) for model_dir in serving]

    print(f"\ncensus benchmark: model={base.custom_config.get('model')} max_trials={base.tuner_max_trials} "
          f"tuner_steps={base.tuner_train_steps} train_steps={base.train_steps} "
          f"hparams={base.custom_config.get('hparams', {})} seeds={args.seeds} data md5={bench.version['md5']}")
    print(f"train rows {len(train[F.LABEL_KEY])}, test rows {len(labels)} (ExampleGen's splits, both models)")
    print_components(runs[0][1].result, "component (first run)")
    accuracies, aucs = [], []
    for (seed, run, load), p_model in zip(runs, p_models):
        m = run.metrics
        accuracies.append(metric(m, "binary_accuracy"))
        aucs.append(metric(m, "auc"))
        times = " ".join(f"{node} {seconds:.0f}" for node, state, seconds in run.result.components if state == "complete")
        print(f"seed {seed}: TFMA accuracy={accuracies[-1]:.4f} auc={aucs[-1]:.4f} (SavedModel re-scored "
              f"{scores(labels, p_model)[0]:.4f} / {scores(labels, p_model)[1]:.4f}) blessed={run.result.blessed} "
              f"wall={run.seconds:.0f} s load={load:.1f} [{times}]")
    gbdt_accuracy, gbdt_auc = scores(labels, p_gbdt)
    print(f"pipeline test split: accuracy {format_spread(accuracies)}  auc {format_spread(aucs)}")
    print(f"GBDT (HistGradientBoosting {GBDT_PARAMS}, deterministic): accuracy={gbdt_accuracy:.4f} auc={gbdt_auc:.4f}")
    for (seed, _, _), accuracy, auc, p_model in zip(runs, accuracies, aucs, p_models):
        ci_accuracy, ci_auc = paired_bootstrap(labels, p_model, p_gbdt)
        print(f"seed {seed} minus GBDT: accuracy {accuracy - gbdt_accuracy:+.4f} "
              f"(95 % paired bootstrap {ci_accuracy[0]:+.4f}..{ci_accuracy[1]:+.4f}), auc {auc - gbdt_auc:+.4f} "
              f"({ci_auc[0]:+.4f}..{ci_auc[1]:+.4f})")
    print(f"mean minus GBDT: accuracy {np.mean(accuracies) - gbdt_accuracy:+.4f} auc {np.mean(aucs) - gbdt_auc:+.4f}")
    validation_scores = [scores(validation_labels, p) for p in p_models_validation]
    gbdt_validation = scores(validation_labels, p_gbdt_validation)
    print(f"validation split ({len(validation_labels)} rows; where defaults are chosen): pipeline accuracy "
          f"{format_spread([a for a, _ in validation_scores])}  auc {format_spread([u for _, u in validation_scores])}; "
          f"GBDT {gbdt_validation[0]:.4f} / {gbdt_validation[1]:.4f}")
    walls = [run.seconds for _, run, _ in runs]
    print(f"wall time per run: {format_spread(walls, 0)} s; cached rerun {rerun.seconds:.0f} s; "
          f"1-min load average {min(r[2] for r in runs):.1f}-{max(r[2] for r in runs):.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
