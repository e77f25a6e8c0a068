"""TFX Trainer entry point for census: `models.census.trainer.run_fn`.

The shared skeleton (models/common/trainer_base.py) does the training; census adds the embedding
sizes of its token columns, fnlwgt as the sample weight, custom_config["model"] (tabtransformer or
mlp) and the semi-supervised start of profile "semi" (models/census/semi.py).
"""
from __future__ import annotations

import tensorflow_transform as tft
from absl import logging

from models.census import features as F
from models.census.model import DEFAULT_HPARAMS, build_model, served_model
from models.census.preprocessing import NUM_OOV_BUCKETS
from models.common import trainer_base, training
from models.common.training_info import write_json


def embedding_sizes(tf_transform_output: tft.TFTransformOutput) -> dict:
    """Embedding table sizes of the token columns: vocabularies plus their OOV buckets, and the
    quantile buckets of the numeric columns."""
    sizes = training.vocabulary_sizes(
        tf_transform_output, {F.xf(name): F.vocab_name(name) for name in F.CATEGORICAL_FEATURES}, NUM_OOV_BUCKETS)
    sizes.update({F.bin_name(name): F.NUM_BINS for name in F.NUMERIC_FEATURES})
    return sizes


def uses_semi_supervision(config) -> bool:
    return bool(config.get("pretrain")) or float(config.get("label_fraction", 1.0)) < 1.0


def build(run: trainer_base.TrainingRun):
    sizes = embedding_sizes(run.tf_transform_output)
    if run.config.get("pretrain"):
        from models.census import semi

        sizes = semi.with_mask_tokens(sizes)
    return build_model(run.hparams, sizes, num_classes=len(F.CLASS_NAMES), total_steps=run.scheduled_steps)


def export(run: trainer_base.TrainingRun, model):
    """What is served: an ensemble's members averaged (same inputs, [batch, 2] probabilities)."""
    return served_model(model)


def semi_supervised_start(run: trainer_base.TrainingRun, model, train_ds):
    """Profile "semi": masked-column pre-training on every training row (labels unused) when
    custom_config["pretrain"] is set; returns the training set restricted to the rows whose label
    is kept (custom_config["label_fraction"])."""
    import os

    from models.census import semi

    config, fn_args = run.config, run.fn_args
    settings = config.get("pretrain") or {}
    if settings:
        sizes = semi.with_mask_tokens(embedding_sizes(run.tf_transform_output))
        rows = semi.count_rows(fn_args.train_files, fn_args.data_accessor, run.tf_transform_output)
        steps = semi.pretrain_steps(settings, rows, run.batch_size)
        logging.info("census pre-training: %d steps over %d unlabelled rows, %s", steps, rows, settings)
        history = semi.pretrain(model, train_ds, sizes, run.hparams, settings, steps)
        write_json(os.path.join(fn_args.model_run_dir, "pretrain_history.json"),
                   {"steps": steps, "rows": rows, "settings": dict(settings),
                    "loss": [float(v) for v in history.history["loss"]]})
    return semi.keep_labelled(train_ds, float(config.get("label_fraction", 1.0)), run.batch_size)


def run_fn(fn_args):
    """Train with the best hyperparameters (fnlwgt as sample weight) and export the serving model."""
    config = fn_args.custom_config or {}
    return trainer_base.fit_and_export(
        fn_args,
        build_model=build,
        default_hparams=DEFAULT_HPARAMS,
        fixed_hparams={"model": config["model"]} if "model" in config else {},
        model_features=F.MODEL_FEATURES,
        label_key=F.LABEL_KEY,
        # fnlwgt / mean as the sample weight, unless custom_config["example_weight"] is False.
        weight_key=F.WEIGHT_XF if config.get("example_weight", True) else None,
        early_stopping_patience=3,
        export_model=export,
        before_fit=semi_supervised_start if uses_semi_supervision(config) else None,
    )
