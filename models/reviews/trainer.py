"""TFX Trainer entry point for reviews: `models.reviews.trainer.run_fn` (BERT fine-tuning, tf_keras).

The shared skeleton (models/common/trainer_base.py) trains; reviews builds the classifier over the
packaged checkpoint and serves raw text. throughput.json names its figure train_examples_per_second.
"""
from __future__ import annotations

import tf_keras
from absl import logging

from models.common import trainer_base
from models.common.text.batching import batches_by_length
from models.reviews import features as F
from models.reviews.model import DEFAULT_HPARAMS, build_classifier, compile_model


def build(run: trainer_base.TrainingRun):
    model = build_classifier(run.hparams, num_classes=len(F.CLASS_NAMES))
    compile_model(model, run.hparams, run.fn_args.train_steps)
    return model


def length_bucketed(run: trainer_base.TrainingRun, model, train_ds):
    """Training batches of reviews of similar length when hparams["length_buckets"] is set."""
    boundaries = list(run.hparams.get("length_buckets") or ())
    if not boundaries:
        return train_ds
    logging.info("reviews: training batches bucketed by word count at %s", boundaries)
    return batches_by_length(train_ds, F.TEXT_XF, run.batch_size, boundaries)


def run_fn(fn_args):
    return trainer_base.fit_and_export(
        fn_args,
        build_model=build,
        default_hparams=DEFAULT_HPARAMS,
        model_features=F.MODEL_FEATURES,
        label_key=F.LABEL_KEY,
        serving_features=[F.TEXT_KEY],
        keras_module=tf_keras,
        before_fit=length_bucketed,
        checkpoints=4,
        throughput_unit="train_examples",
    )
