"""TFX Tuner entry point for census: `models.census.tuner.tuner_fn` (Keras Tuner, Bayesian search)."""
from __future__ import annotations

import keras_tuner
import tensorflow_transform as tft
from tfx.components.tuner.component import TunerFnResult

from models.census import features as F
from models.census.model import DEFAULT_HPARAMS, build_model
from models.census.trainer import embedding_sizes
from models.common import training, tuning

# The search space (documented in pipelines/tasks/census.py).
MLP_FACTORS = ["2,1", "1,0.5", "4,2"]
PERIODIC_SIGMAS = [3.0, 10.0, 30.0]


def search_space(hp: keras_tuner.HyperParameters, model: str) -> dict:
    """The search space; every default is DEFAULT_HPARAMS' value, the Tuner's first trial."""
    d = DEFAULT_HPARAMS
    values = {
        "model": model,
        "embedding_dim": hp.Choice("embedding_dim", [8, 16, 32], default=d["embedding_dim"]),
        "dropout": hp.Float("dropout", 0.0, 0.3, step=0.1, default=d["dropout"]),
        "mlp_hidden_factors": hp.Choice("mlp_hidden_factors", MLP_FACTORS,
                                        default=",".join(f"{f:g}" for f in d["mlp_hidden_factors"])),
        "learning_rate": hp.Float("learning_rate", 1e-4, 3e-3, sampling="log", default=d["learning_rate"]),
        "weight_decay": hp.Float("weight_decay", 1e-5, 1e-3, sampling="log", default=d["weight_decay"]),
    }
    if model == "tabtransformer":
        values["num_transformer_blocks"] = hp.Int("num_transformer_blocks", 1, 3, default=d["num_transformer_blocks"])
        values["num_heads"] = hp.Choice("num_heads", [2, 4], default=d["num_heads"])
        values["periodic_sigma"] = hp.Choice("periodic_sigma", PERIODIC_SIGMAS, default=d["periodic_sigma"])
    return values


def trial_hparams(config_hparams, searched) -> dict:
    """A trial's hyperparameters: the task's own (custom_config["hparams"], e.g. the learning-rate
    schedule) under the searched values, for one model: an ensemble's members share their
    hyperparameters, so trials never pay for a whole ensemble."""
    return {**dict(config_hparams or {}), **dict(searched), "ensemble_size": 1}


def tuner_fn(fn_args) -> TunerFnResult:
    config = fn_args.custom_config or {}
    model_kind = config.get("model", "tabtransformer")
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    sizes = embedding_sizes(tf_transform_output)

    epochs, steps_per_epoch = training.epochs_for(fn_args.train_steps, checkpoints=3)

    def build(hp):
        return build_model(trial_hparams(config.get("hparams"), search_space(hp, model_kind)), sizes,
                           num_classes=len(F.CLASS_NAMES), total_steps=epochs * steps_per_epoch)

    return tuning.bayesian_search(
        fn_args, build, objective="val_loss", direction="min", project="census", default_trials=4,
        default_hparams=DEFAULT_HPARAMS, tf_transform_output=tf_transform_output,
        model_features=F.MODEL_FEATURES, weight_key=F.WEIGHT_XF if config.get("example_weight", True) else None,
        epochs=epochs, steps_per_epoch=steps_per_epoch)
