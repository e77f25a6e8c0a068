"""TFX Tuner entry point for news: `models.news.tuner.tuner_fn` (Keras Tuner, Bayesian search).

Search space (first trial = model.DEFAULT_HPARAMS; documented in pipelines/tasks/news.py), for one
network: the served ensemble's members share the chosen values, so trials never pay for a whole ensemble.
  embedding_dim   32 | 64 | 128
  num_heads       2 | 4
  ff_dim          64 | 128 | 256
  num_blocks      1 .. 2
  dropout         0.0 .. 0.4, step 0.1
  learning_rate   3e-4 .. 3e-3, log scale (AdamW)
"""
from __future__ import annotations

import keras_tuner
import tensorflow_transform as tft
from tfx.components.tuner.component import TunerFnResult

from models.common import training, tuning
from models.news import features as F
from models.news.model import DEFAULT_HPARAMS, build_model
from models.news.trainer import vocab_size


def search_space(hp: keras_tuner.HyperParameters) -> dict:
    """The search space; every default is DEFAULT_HPARAMS' value, the Tuner's first trial."""
    d = DEFAULT_HPARAMS
    return {
        "embedding_dim": hp.Choice("embedding_dim", [32, 64, 128], default=d["embedding_dim"]),
        "num_heads": hp.Choice("num_heads", [2, 4], default=d["num_heads"]),
        "ff_dim": hp.Choice("ff_dim", [64, 128, 256], default=d["ff_dim"]),
        "num_blocks": hp.Int("num_blocks", 1, 2, default=d["num_blocks"]),
        "dropout": hp.Float("dropout", 0.0, 0.4, step=0.1, default=d["dropout"]),
        "learning_rate": hp.Float("learning_rate", 3e-4, 3e-3, sampling="log", default=d["learning_rate"]),
    }


def tuner_fn(fn_args) -> TunerFnResult:
    config = fn_args.custom_config or {}
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    size = vocab_size(tf_transform_output)
    epochs, steps_per_epoch = training.epochs_for(fn_args.train_steps, checkpoints=3)

    def build(hp):
        return build_model({**dict(config.get("hparams") or {}), **search_space(hp), "ensemble_size": 1}, size,
                           num_classes=len(F.CLASS_NAMES))

    return tuning.bayesian_search(
        fn_args, build, objective="val_loss", direction="min", project="news", default_trials=4,
        default_hparams=DEFAULT_HPARAMS, tf_transform_output=tf_transform_output,
        model_features=(F.TOKENS_XF,), epochs=epochs, steps_per_epoch=steps_per_epoch)
