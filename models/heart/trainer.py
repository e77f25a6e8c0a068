"""TFX Trainer entry point for heart: `models.heart.trainer.run_fn` (no Tuner)."""
from __future__ import annotations

import logging

import keras
import tensorflow_transform as tft

from models.common import training
from models.heart import features as F
from models.heart.model import DEFAULT_HPARAMS, build_model


def vocab_sizes(tf_transform_output: tft.TFTransformOutput) -> dict:
    return {
        F.xf(name): tf_transform_output.vocabulary_size_by_name(F.vocab_name(name)) + F.NUM_OOV_BUCKETS
        for name in F.CATEGORICAL_FEATURES
    }


def run_fn(fn_args):
    config = fn_args.custom_config or {}
    hparams = training.hyperparameters_from(fn_args, DEFAULT_HPARAMS, config.get("hparams", {}))
    logging.info("heart hyperparameters: %s", hparams)
    keras.utils.set_random_seed(int(config.get("seed", 42)))
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    batch_size = int(hparams["batch_size"])

    def dataset(files, shuffle):
        return training.make_dataset(
            files, fn_args.data_accessor, tf_transform_output, batch_size, F.MODEL_FEATURES, shuffle=shuffle
        )

    model = build_model(vocab_sizes(tf_transform_output), num_classes=len(F.CLASS_NAMES), hparams=hparams)
    epochs, steps_per_epoch = training.epochs_for(fn_args.train_steps, checkpoints=int(config.get("checkpoints", 10)))
    model.fit(
        dataset(fn_args.train_files, True),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=training.validation_set(dataset(fn_args.eval_files, False), fn_args.eval_steps),
        callbacks=training.fit_callbacks(fn_args.model_run_dir, patience=int(config.get("patience", 3))),
        verbose=2,
    )
    training.ServingModule(model, tf_transform_output, F.LABEL_KEY, F.MODEL_FEATURES).save(
        fn_args.serving_model_dir
    )
