"""The one Trainer skeleton every task's `run_fn` calls (as TFX's penguin_utils_base is to its
variants): hyperparameters, batch size, seed, datasets, fit, export and the run's record.

A task supplies only what differs: how to build (and compile) its model from a `TrainingRun`, its
model features, weight key and serving contract, plus optional hooks. Everything else comes from
the Trainer's fn_args and custom_config:

  hyperparameters   defaults < custom_config["hparams"] < the Tuner's best hyperparameters
  batch size        hparams["batch_size"] (the one place; each task's DEFAULT_HPARAMS has one)
  seed              custom_config["seed"] (default 42), always set before anything random is built
  deterministic     custom_config["deterministic"]: TensorFlow op determinism on (slower)
  checkpoints       custom_config["checkpoints"]: validation passes (Keras epochs) per run
  early stopping    custom_config["early_stopping_patience"] (0 or None: off)

Each run writes training_info.json (models/common/training_info.py) into model_run_dir and into
the SavedModel's assets.extra/, and throughput.json (models/common/throughput.py) into model_run_dir.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Mapping, Optional, Sequence

import tensorflow as tf
import tensorflow_transform as tft
from absl import logging  # TFX's logger: these lines land in the run log

from models.common import training
from models.common.throughput import ThroughputMeter, throughput_callback
from models.common.training_info import write_json, write_training_info

DEFAULT_SEED = 42
THROUGHPUT_FILE = "throughput.json"


@dataclasses.dataclass
class TrainingRun:
    """What a task's hooks need to know about the run being trained."""

    fn_args: Any
    config: Mapping[str, Any]  # custom_config
    hparams: dict  # final hyperparameters, batch_size included
    seed: int
    deterministic: bool
    tf_transform_output: tft.TFTransformOutput
    epochs: int
    steps_per_epoch: int
    keras: Any  # the keras module the model is built with: keras (Keras 3) or tf_keras

    @property
    def batch_size(self) -> int:
        return int(self.hparams["batch_size"])

    @property
    def scheduled_steps(self) -> int:
        """Steps fit will run without early stopping: epochs × steps per epoch (≥ train_steps, as the
        budget is rounded up to whole epochs)."""
        return self.epochs * self.steps_per_epoch


def apply_seed(keras_module, seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy, TensorFlow and the framework's own generators; with `deterministic`,
    also make TensorFlow's ops deterministic (same seed and data -> same weights, slower)."""
    keras_module.utils.set_random_seed(int(seed))
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def fit_callbacks(keras_module, log_dir: str, early_stopping_patience: Optional[int]) -> list:
    """TensorBoard logs, plus early stopping on the validation loss (best weights kept) when a patience
    is given."""
    callbacks = [keras_module.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch")]
    if early_stopping_patience:
        callbacks.append(keras_module.callbacks.EarlyStopping(
            monitor="val_loss", patience=int(early_stopping_patience), restore_best_weights=True))
    return callbacks


def framework_name(keras_module) -> str:
    return "tf_keras" if keras_module.__name__.startswith("tf_keras") else "keras"


def fit_and_export(
    fn_args,
    *,
    build_model: Callable[[TrainingRun], Any],
    default_hparams: Mapping[str, Any],
    model_features: Sequence[str],
    label_key: Optional[str] = None,
    weight_key: Optional[str] = None,
    serving_features: Optional[Sequence[str]] = None,
    keras_module=None,
    fixed_hparams: Mapping[str, Any] = (),
    checkpoints: int = 10,
    early_stopping_patience: Optional[int] = None,
    before_fit: Optional[Callable[[TrainingRun, Any, tf.data.Dataset], tf.data.Dataset]] = None,
    export_model: Optional[Callable[[TrainingRun, Any], Any]] = None,
    serving_module: Optional[Callable[[TrainingRun, Any], Any]] = None,
    throughput_unit: str = "examples",
) -> dict:
    """Train the task's model on the Transform output and export it for serving; returns the
    training info it recorded.

    build_model(run): the compiled model (built after the seed is set).
    keras_module: the framework the model is built with, keras (default) or tf_keras.
    fixed_hparams: values neither custom_config["hparams"] nor the Tuner may change.
    checkpoints / early_stopping_patience: the task's defaults for the custom_config keys above.
    before_fit(run, model, train_ds): work before the supervised fit (e.g. pre-training); returns
        the training set to fit on.
    export_model(run, model): the model to serve (default: the trained model).
    serving_module(run, model): an object with save(dir) (default: training.ServingModule with
        `probabilities`, over model_features, label_key left out of serving_features).
    throughput_unit: what an example is called in throughput.json ("images" -> images_per_second).
    """
    if keras_module is None:
        import keras as keras_module
    config = dict(fn_args.custom_config or {})
    hparams = {**training.task_hyperparameters(fn_args, default_hparams), **dict(fixed_hparams)}
    seed = int(config.get("seed", DEFAULT_SEED))
    deterministic = bool(config.get("deterministic", False))
    apply_seed(keras_module, seed, deterministic)
    epochs, steps_per_epoch = training.epochs_for(
        fn_args.train_steps, checkpoints=int(config.get("checkpoints", checkpoints)))
    run = TrainingRun(
        fn_args=fn_args, config=config, hparams=hparams, seed=seed, deterministic=deterministic,
        tf_transform_output=tft.TFTransformOutput(fn_args.transform_graph_path),
        epochs=epochs, steps_per_epoch=steps_per_epoch, keras=keras_module,
    )
    logging.info("training with seed %d%s, batch %d, hyperparameters %s", seed,
                 " (deterministic ops)" if deterministic else "", run.batch_size, hparams)
    train_ds, eval_ds = training.train_and_eval_datasets(
        fn_args, run.tf_transform_output, run.batch_size, model_features, weight_key=weight_key)
    model = build_model(run)
    if before_fit is not None:
        train_ds = before_fit(run, model, train_ds)
    patience = config.get("early_stopping_patience", early_stopping_patience)
    throughput = throughput_callback(keras_module, run.batch_size)
    history = model.fit(
        train_ds,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=training.validation_set(eval_ds, fn_args.eval_steps),
        callbacks=fit_callbacks(keras_module, fn_args.model_run_dir, patience) + [throughput],
        verbose=2,
    )
    served = export_model(run, model) if export_model is not None else model
    if serving_module is not None:
        module = serving_module(run, served)
    else:
        module = training.ServingModule(served, run.tf_transform_output, label_key, model_features,
                                        serving_features=serving_features)
    module.save(fn_args.serving_model_dir)
    return record_run(run, throughput, len(history.epoch), patience, throughput_unit)


def record_run(run: TrainingRun, throughput: ThroughputMeter, epochs_run: int,
               early_stopping_patience: Optional[int], throughput_unit: str) -> dict:
    """Write throughput.json and training_info.json (both places); returns the training info."""
    fn_args = run.fn_args
    logging.info("training throughput: %.1f %s/s", throughput.examples_per_second, throughput_unit)
    write_json(os.path.join(fn_args.model_run_dir, THROUGHPUT_FILE), throughput.summary(throughput_unit))
    info = {
        "seed": run.seed,
        "deterministic": run.deterministic,
        "framework": framework_name(run.keras),
        "framework_version": run.keras.__version__,
        "tensorflow_version": tf.__version__,
        "hparams": run.hparams,
        "batch_size": run.batch_size,
        "train_steps": int(fn_args.train_steps),
        "eval_steps": int(fn_args.eval_steps),
        "epochs": run.epochs,
        "steps_per_epoch": run.steps_per_epoch,
        "epochs_run": int(epochs_run),
        "early_stopping_patience": int(early_stopping_patience) if early_stopping_patience else None,
        "examples_per_second": round(throughput.examples_per_second, 2),
    }
    write_training_info(info, fn_args.model_run_dir, fn_args.serving_model_dir)
    return info
