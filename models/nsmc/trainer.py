"""TFX Trainer entry point for nsmc: `models.nsmc.trainer.run_fn` (multilingual-e5-small fine-tuning,
tf_keras). The shared skeleton (models/common/trainer_base.py) trains and exports the default
serving module (raw `text` in, class probabilities out)."""
from __future__ import annotations

import tensorflow as tf
import tf_keras

from models.common import trainer_base, training
from models.nsmc import features as F
from models.nsmc.model import DEFAULT_HPARAMS, build_classifier, compile_model


def build(run: trainer_base.TrainingRun):
    # The train split once, unshuffled, for the vocabulary (hparams["vocabulary"] == "train").
    train = training.make_dataset(run.fn_args.train_files, run.fn_args.data_accessor, run.tf_transform_output,
                                  1024, F.MODEL_FEATURES, shuffle=False, repeat=False)
    texts = train.map(lambda features, *_: tf.reshape(features[F.TEXT_XF], [-1]))
    model = build_classifier(run.hparams, num_classes=len(F.CLASS_NAMES), train_texts=texts)
    compile_model(model, run.hparams, run.fn_args.train_steps)
    return model


def run_fn(fn_args):
    return trainer_base.fit_and_export(
        fn_args,
        build_model=build,
        default_hparams=DEFAULT_HPARAMS,
        model_features=F.MODEL_FEATURES,
        label_key=F.LABEL_KEY,
        serving_features=[F.TEXT_KEY],
        keras_module=tf_keras,
        checkpoints=4,
        throughput_unit="train_examples",
    )
