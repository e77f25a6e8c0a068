"""TFX Tuner entry point for pets: `models.pets.tuner.tuner_fn` (Keras Tuner, Bayesian search)."""
from __future__ import annotations

import keras_tuner
import tensorflow_transform as tft
from tfx.components.tuner.component import TunerFnResult

from models.common import training, tuning
from models.pets import features as F
from models.pets.model import DEFAULT_HPARAMS, build_model
from models.pets.preprocessing import image_size_of
from models.pets.trainer import MODEL_FEATURES

# The search space (documented in pipelines/tasks/pets.py). Base widths are a task setting
# (custom_config["tuner_base_widths"]): with a fixed step budget, width decides the run time.
BASE_WIDTHS = (24, 32)
NUM_BLOCKS = (3, 4)
DROPOUT = (0.2, 0.4, 0.1)
LEARNING_RATE = (1e-3, 3e-3)


def search_space(hp: keras_tuner.HyperParameters, base_widths=BASE_WIDTHS, backbone: str = "") -> dict:
    """The search space; defaults (the Tuner's first trial) are DEFAULT_HPARAMS' values where the
    space holds them. Width and depth are searched only for the Xception-lite backbone (a pretrained
    backbone's shape is fixed by its weights)."""
    d = DEFAULT_HPARAMS
    space = {}
    if (backbone or d["backbone"]) == "xception_lite":
        widths = [int(w) for w in base_widths]
        space["base_width"] = hp.Choice("base_width", widths, default=d["base_width"] if d["base_width"] in widths else None)
        space["num_blocks"] = hp.Int("num_blocks", *NUM_BLOCKS, default=d["num_blocks"])
    space["dropout"] = hp.Float("dropout", *DROPOUT[:2], step=DROPOUT[2], default=d["dropout"])
    space["learning_rate"] = hp.Float("learning_rate", *LEARNING_RATE, sampling="log", default=d["learning_rate"])
    return space


def tuner_fn(fn_args) -> TunerFnResult:
    config = fn_args.custom_config or {}
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    image_size = image_size_of(tf_transform_output)
    epochs, steps_per_epoch = training.epochs_for(fn_args.train_steps, checkpoints=int(config.get("tuner_checkpoints", 4)))
    fixed = dict(config.get("hparams", {}))
    base_widths = config.get("tuner_base_widths", BASE_WIDTHS)
    backbone = str({**DEFAULT_HPARAMS, **fixed}["backbone"])

    def build(hp):
        values = {**fixed, **search_space(hp, base_widths, backbone)}
        return build_model(values, image_size, num_classes=len(F.CLASS_NAMES), decay_steps=epochs * steps_per_epoch)

    return tuning.bayesian_search(
        fn_args, build, objective="val_accuracy", direction="max", project="pets", default_trials=2,
        default_hparams=DEFAULT_HPARAMS, tf_transform_output=tf_transform_output,
        model_features=MODEL_FEATURES, epochs=epochs, steps_per_epoch=steps_per_epoch)
