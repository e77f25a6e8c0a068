"""TFX Trainer entry point for pets: `models.pets.trainer.run_fn`.

The shared skeleton (models/common/trainer_base.py) trains; pets adds the image size read back from
the transform graph, the cosine schedule's length, and what gets served: the network without its
augmentation layers, averaged with the mirror image when custom_config["flip_average"] is set.

No early stopping by default: the whole cosine schedule runs and its final weights are exported.
Early stopping would restore the epoch with the best eval loss, picking the checkpoint on the very
split the Evaluator then reports as unseen photos (custom_config["early_stopping_patience"] turns
it on).
"""
from __future__ import annotations

from absl import logging

from models.common import trainer_base
from models.pets import features as F
from models.pets.mixup import mix_batches
from models.pets.model import DEFAULT_HPARAMS, build_model, inference_model
from models.pets.preprocessing import image_size_of

MODEL_FEATURES = (F.IMAGE_XF,)
# What serving_default parses: only the image (no label, no file name).
SERVING_FEATURES = (F.IMAGE_KEY,)


def build(run: trainer_base.TrainingRun):
    image_size = image_size_of(run.tf_transform_output)
    logging.info("pets: %dx%d images", image_size, image_size)
    return build_model(run.hparams, image_size, num_classes=len(F.CLASS_NAMES), decay_steps=run.scheduled_steps)


def mixed_training_set(run: trainer_base.TrainingRun, model, train_ds):
    """Mixup of the training batches when hparams["mixup_alpha"] > 0 (validation stays unmixed)."""
    alpha = float(run.hparams.get("mixup_alpha") or 0.0)
    if alpha <= 0:
        return train_ds
    logging.info("pets: mixup with Beta(%g, %g)", alpha, alpha)
    return mix_batches(train_ds, alpha, len(F.CLASS_NAMES), run.seed)


def served_network(run: trainer_base.TrainingRun, model):
    """The network without augmentation layers (identity at inference anyway); with
    custom_config["flip_average"], the average over the photo and its mirror image."""
    return inference_model(model, flip_average=bool(run.config.get("flip_average", False)))


def run_fn(fn_args):
    """Train the pets network with the best hyperparameters and export the serving model."""
    return trainer_base.fit_and_export(
        fn_args,
        build_model=build,
        default_hparams=DEFAULT_HPARAMS,
        model_features=MODEL_FEATURES,
        label_key=F.LABEL_KEY,
        serving_features=SERVING_FEATURES,
        checkpoints=20,
        early_stopping_patience=None,
        before_fit=mixed_training_set,
        export_model=served_network,
        throughput_unit="images",
    )
