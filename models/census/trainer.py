"""TFX Trainer entry point for census: `models.census.trainer.run_fn`."""
from __future__ import annotations

import logging

import tensorflow_transform as tft

from models.census import features as F
from models.census.model import DEFAULT_HPARAMS, build_model
from models.census.preprocessing import NUM_OOV_BUCKETS
from models.common import training

MODEL_FEATURES = F.MODEL_FEATURES


def vocab_sizes(tf_transform_output: tft.TFTransformOutput) -> dict:
    """Embedding table sizes: vocabulary plus the OOV buckets."""
    sizes = {
        F.xf(name): tf_transform_output.vocabulary_size_by_name(F.vocab_name(name)) + NUM_OOV_BUCKETS
        for name in F.CATEGORICAL_FEATURES
    }
    sizes.update({F.bin_name(name): F.NUM_BINS for name in F.NUMERIC_FEATURES})
    return sizes


def datasets(fn_args, tf_transform_output, batch_size: int):
    def make(files, shuffle):
        return training.make_dataset(
            files, fn_args.data_accessor, tf_transform_output, batch_size, MODEL_FEATURES,
            weight_key=F.WEIGHT_XF, shuffle=shuffle,
        )

    return make(fn_args.train_files, True), make(fn_args.eval_files, False)


def run_fn(fn_args):
    """Train with the best hyperparameters (fnlwgt as sample weight) and export the serving model."""
    config = fn_args.custom_config or {}
    hparams = training.hyperparameters_from(fn_args, DEFAULT_HPARAMS, config.get("hparams", {}))
    hparams["model"] = config.get("model", hparams["model"])
    logging.info("census hyperparameters: %s", hparams)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    train_ds, eval_ds = datasets(fn_args, tf_transform_output, int(config.get("batch_size", 256)))
    model = build_model(hparams, vocab_sizes(tf_transform_output), num_classes=len(F.CLASS_NAMES))
    epochs, steps_per_epoch = training.epochs_for(fn_args.train_steps)
    model.fit(
        train_ds,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=eval_ds,
        validation_steps=max(1, fn_args.eval_steps),
        callbacks=training.fit_callbacks(fn_args.model_run_dir),
        verbose=2,
    )
    training.ServingModule(model, tf_transform_output, F.LABEL_KEY, MODEL_FEATURES).save(
        fn_args.serving_model_dir
    )
