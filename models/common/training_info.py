"""What a training run did (seed, determinism, hyperparameters, steps, throughput), written next to
its logs and inside the exported SavedModel so that it travels with the model.

Inside the SavedModel it goes to assets.extra/, TF Serving's place for extra files next to a model;
any component holding the Model artifact can read it with `read_training_info(artifact.uri)`.
Only json and tf.io.gfile here, so readers in other layers need no Keras.
"""
from __future__ import annotations

import json
import os
from typing import Mapping

import tensorflow as tf

TRAINING_INFO_FILE = "training_info.json"
EXTRA_ASSETS_DIR = "assets.extra"
# TFX's Trainer exports the serving model into this folder of the Model artifact.
SERVING_MODEL_DIR = "Format-Serving"


def write_json(path: str, content: Mapping) -> None:
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(content, indent=1, sort_keys=True, default=str))


def write_training_info(info: Mapping, model_run_dir: str, serving_model_dir: str) -> None:
    """training_info.json into the run's log folder and into the SavedModel's assets.extra/."""
    write_json(os.path.join(model_run_dir, TRAINING_INFO_FILE), info)
    write_json(os.path.join(serving_model_dir, EXTRA_ASSETS_DIR, TRAINING_INFO_FILE), info)


def read_training_info(model_dir: str) -> dict:
    """The training_info.json of a model: model_dir may be a SavedModel folder, a TFX Model artifact
    (its Format-Serving/ SavedModel) or a Trainer's model_run folder. FileNotFoundError when none has one
    (models exported before training info existed)."""
    candidates = [
        os.path.join(model_dir, EXTRA_ASSETS_DIR, TRAINING_INFO_FILE),
        os.path.join(model_dir, SERVING_MODEL_DIR, EXTRA_ASSETS_DIR, TRAINING_INFO_FILE),
        os.path.join(model_dir, TRAINING_INFO_FILE),
    ]
    for path in candidates:
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path) as f:
                return json.loads(f.read())
    raise FileNotFoundError(f"no {TRAINING_INFO_FILE} in {model_dir} (looked at {', '.join(candidates)})")
