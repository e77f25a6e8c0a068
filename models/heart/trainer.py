"""TFX Trainer entry point for heart: `models.heart.trainer.run_fn` (no Tuner).

The shared skeleton (models/common/trainer_base.py) trains; heart adds its one-hot widths and early
stopping on the eval loss (patience 3, best weights kept).
"""
from __future__ import annotations

import tensorflow_transform as tft

from models.common import trainer_base, training
from models.heart import features as F
from models.heart.model import DEFAULT_HPARAMS, build_model


def one_hot_widths(tf_transform_output: tft.TFTransformOutput) -> dict:
    """One-hot width of each categorical: its vocabulary plus the OOV bucket."""
    return training.vocabulary_sizes(
        tf_transform_output, {F.xf(name): F.vocab_name(name) for name in F.CATEGORICAL_FEATURES}, F.NUM_OOV_BUCKETS)


def build(run: trainer_base.TrainingRun):
    return build_model(one_hot_widths(run.tf_transform_output), num_classes=len(F.CLASS_NAMES), hparams=run.hparams)


def run_fn(fn_args):
    return trainer_base.fit_and_export(
        fn_args,
        build_model=build,
        default_hparams=DEFAULT_HPARAMS,
        model_features=F.MODEL_FEATURES,
        label_key=F.LABEL_KEY,
        early_stopping_patience=3,
    )
