"""TFX Trainer entry point for reviews: `models.reviews.trainer.run_fn` (BERT fine-tuning)."""
from __future__ import annotations

import json
import logging
import os
import time

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras

from models.common import training
from models.reviews import features as F
from models.reviews.model import DEFAULT_HPARAMS, build_classifier, make_optimizer


class Throughput(tf_keras.callbacks.Callback):
    """Training examples per second, measured over whole epochs (the first batch's tracing excluded)."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size
        self.examples = 0
        self.seconds = 0.0
        self._start = None
        self._skip_first = True

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self._skip_first:
            self._skip_first = False
            return
        self.seconds += time.perf_counter() - self._start
        self.examples += self.batch_size

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.seconds if self.seconds else 0.0


def run_fn(fn_args):
    config = fn_args.custom_config or {}
    hparams = training.hyperparameters_from(fn_args, DEFAULT_HPARAMS, config.get("hparams", {}))
    logging.info("reviews hyperparameters: %s", hparams)
    batch_size = int(hparams["batch_size"])
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)

    def dataset(files, shuffle):
        return training.make_dataset(
            files, fn_args.data_accessor, tf_transform_output, batch_size, F.MODEL_FEATURES, shuffle=shuffle
        )

    model = build_classifier(hparams, num_classes=len(F.CLASS_NAMES))
    optimizer, _ = make_optimizer(hparams, fn_args.train_steps)
    model.compile(
        optimizer=optimizer,
        loss=tf_keras.losses.SparseCategoricalCrossentropy(),
        metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    epochs, steps_per_epoch = training.epochs_for(fn_args.train_steps, checkpoints=int(config.get("checkpoints", 4)))
    throughput = Throughput(batch_size)
    model.fit(
        dataset(fn_args.train_files, True),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=training.validation_set(dataset(fn_args.eval_files, False), fn_args.eval_steps),
        callbacks=[tf_keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir), throughput],
        verbose=2,
    )
    stats = {"train_examples_per_second": throughput.examples_per_second, "batch_size": batch_size,
             "max_seq_length": int(hparams["max_seq_length"]), "train_steps": fn_args.train_steps}
    logging.info("reviews training throughput: %s", stats)
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "throughput.json"), "w") as f:
        f.write(json.dumps(stats))
    training.ServingModule(
        model, tf_transform_output, F.LABEL_KEY, F.MODEL_FEATURES, serving_features=[F.TEXT_KEY]
    ).save(
        fn_args.serving_model_dir
    )
