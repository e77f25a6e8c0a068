"""TFX Trainer entry point for pets: `models.pets.trainer.run_fn`."""
from __future__ import annotations

import json
import os
import statistics
import time

import keras
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging  # TFX's logger: these lines land in the run log

from models.common import training
from models.pets import features as F
from models.pets.model import DEFAULT_HPARAMS, build_model, inference_model
from models.pets.preprocessing import image_size_of

MODEL_FEATURES = (F.IMAGE_XF,)
# What serving_default parses: only the image (no label, no file name).
SERVING_FEATURES = (F.IMAGE_KEY,)
THROUGHPUT_FILE = "throughput.json"


def datasets(fn_args, tf_transform_output, batch_size: int):
    def make(files, shuffle):
        return training.make_dataset(
            files, fn_args.data_accessor, tf_transform_output, batch_size, MODEL_FEATURES, shuffle=shuffle
        )

    return make(fn_args.train_files, True), make(fn_args.eval_files, False)


class ThroughputLogger(keras.callbacks.Callback):
    """Training images per second, per epoch (training batches only, validation excluded).

    The steady-state figure is the median over epochs after the first (which includes tracing);
    it is logged and, when `path` is given, written there as JSON after training.
    """

    def __init__(self, batch_size: int, path: str | None = None):
        super().__init__()
        self.batch_size = int(batch_size)
        self.path = path
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._last = self._start
        self._steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        self._last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = max(self._last - self._start, 1e-9)
        rate = self._steps * self.batch_size / seconds
        self.epochs.append({"epoch": epoch, "steps": self._steps, "seconds": round(seconds, 3),
                            "images_per_second": round(rate, 2)})
        logging.info("pets epoch %d: %.1f training images/s", epoch, rate)

    def summary(self) -> dict:
        rates = [e["images_per_second"] for e in self.epochs]
        steady = rates[1:] or rates
        return {
            "batch_size": self.batch_size,
            "images_per_second": round(statistics.median(steady), 2) if steady else None,
            "train_seconds": round(sum(e["seconds"] for e in self.epochs), 2),
            "images": sum(e["steps"] for e in self.epochs) * self.batch_size,
            "epochs": self.epochs,
        }

    def on_train_end(self, logs=None):
        result = self.summary()
        logging.info("pets training throughput: %s images/s (median over epochs)", result["images_per_second"])
        if self.path:
            tf.io.gfile.makedirs(os.path.dirname(self.path))
            with tf.io.gfile.GFile(self.path, "w") as f:
                f.write(json.dumps(result, indent=1))


def callbacks(model_run_dir: str, config) -> list:
    """TensorBoard logs; early stopping only when custom_config sets early_stopping_patience.

    By default the whole cosine schedule runs and its final weights are exported: the shared early
    stopping restores the epoch with the best eval loss, which would pick the checkpoint on the
    very split the Evaluator then reports as unseen photos.
    """
    patience = config.get("early_stopping_patience")
    if patience:
        return training.fit_callbacks(model_run_dir, patience=int(patience))
    return [keras.callbacks.TensorBoard(log_dir=model_run_dir, update_freq="epoch")]


def run_fn(fn_args):
    """Train Xception-lite with the best hyperparameters and export the serving model."""
    config = fn_args.custom_config or {}
    hparams = training.hyperparameters_from(fn_args, DEFAULT_HPARAMS, config.get("hparams", {}))
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    image_size = image_size_of(tf_transform_output)
    batch_size = int(config.get("batch_size", 32))
    logging.info("pets: %dx%d images, batch %d, hyperparameters %s", image_size, image_size, batch_size, hparams)
    train_ds, eval_ds = datasets(fn_args, tf_transform_output, batch_size)
    epochs, steps_per_epoch = training.epochs_for(fn_args.train_steps, checkpoints=int(config.get("checkpoints", 20)))
    model = build_model(hparams, image_size, num_classes=len(F.CLASS_NAMES), decay_steps=epochs * steps_per_epoch)
    throughput = ThroughputLogger(batch_size, os.path.join(fn_args.model_run_dir, THROUGHPUT_FILE))
    model.fit(
        train_ds,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=training.validation_set(eval_ds, fn_args.eval_steps),
        callbacks=callbacks(fn_args.model_run_dir, config) + [throughput],
        verbose=2,
    )
    # Exported without the augmentation layers (they are identity at inference anyway); with
    # custom_config["flip_average"], serving averages the photo and its mirror image.
    network = inference_model(model, flip_average=bool(config.get("flip_average", False)))
    training.ServingModule(
        network, tf_transform_output, F.LABEL_KEY, MODEL_FEATURES, serving_features=SERVING_FEATURES
    ).save(fn_args.serving_model_dir)
