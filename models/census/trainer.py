"""TFX Trainer entry point for census: `models.census.trainer.run_fn`."""
from __future__ import annotations

import logging

import keras
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


def semi_supervised_start(fn_args, config, hparams, model, sizes, tf_transform_output, train_ds):
    """Profile "semi" (models/census/semi.py): masked-column pre-training on every training row
    (labels unused) when custom_config["pretrain"] is set; returns the training set restricted to
    the rows whose label is kept (custom_config["label_fraction"])."""
    import json
    import os

    import tensorflow as tf

    from models.census import semi

    batch_size = int(config.get("batch_size", 256))
    settings = config.get("pretrain") or {}
    if settings:
        rows = semi.count_rows(fn_args.train_files, fn_args.data_accessor, tf_transform_output)
        steps = semi.pretrain_steps(settings, rows, batch_size)
        logging.info("census pre-training: %d steps over %d unlabelled rows, %s", steps, rows, settings)
        history = semi.pretrain(model, train_ds, sizes, hparams, settings, steps)
        tf.io.gfile.makedirs(fn_args.model_run_dir)
        with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "pretrain_history.json"), "w") as f:
            f.write(json.dumps({"steps": steps, "rows": rows, "settings": dict(settings),
                                "loss": [float(v) for v in history.history["loss"]]}))
    return semi.keep_labelled(train_ds, float(config.get("label_fraction", 1.0)), batch_size)


def run_fn(fn_args):
    """Train with the best hyperparameters (fnlwgt as sample weight) and export the serving model."""
    config = fn_args.custom_config or {}
    hparams = training.hyperparameters_from(fn_args, DEFAULT_HPARAMS, config.get("hparams", {}))
    hparams["model"] = config.get("model", hparams["model"])
    logging.info("census hyperparameters: %s", hparams)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    batch_size = int(config.get("batch_size", 256))
    train_ds, eval_ds = datasets(fn_args, tf_transform_output, batch_size)
    if "seed" in config:
        keras.utils.set_random_seed(int(config["seed"]))
    sizes = vocab_sizes(tf_transform_output)
    if config.get("pretrain"):
        from models.census import semi

        sizes = semi.with_mask_tokens(sizes)
    model = build_model(hparams, sizes, num_classes=len(F.CLASS_NAMES))
    if config.get("pretrain") or float(config.get("label_fraction", 1.0)) < 1.0:
        train_ds = semi_supervised_start(fn_args, config, hparams, model, sizes, tf_transform_output, train_ds)
    epochs, steps_per_epoch = training.epochs_for(fn_args.train_steps)
    model.fit(
        train_ds,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=training.validation_set(eval_ds, fn_args.eval_steps),
        callbacks=training.fit_callbacks(fn_args.model_run_dir),
        verbose=2,
    )
    training.ServingModule(model, tf_transform_output, F.LABEL_KEY, MODEL_FEATURES).save(
        fn_args.serving_model_dir
    )
