"""Mixup and label smoothing for pets (Zhang et al. 2018; Szegedy et al. 2016).

Mixup trains on convex combinations of two photos with the same combination of their labels, so
the training batches carry class-probability targets while validation keeps integer class ids.
The loss and the accuracy here take either kind of target, told apart by rank: [batch] ids or
[batch, num_classes] probabilities.
"""
from __future__ import annotations

from typing import Optional

import keras
import tensorflow as tf

from models.pets import features as F


def _targets(y_true, num_classes: int):
    """Class probabilities [batch, num_classes] from ids [batch] (or [batch, 1]) or probabilities."""
    if len(y_true.shape) == 2 and y_true.shape[-1] == num_classes:
        return keras.ops.cast(y_true, "float32")
    ids = keras.ops.cast(keras.ops.reshape(y_true, [-1]), "int32")
    return keras.ops.one_hot(ids, num_classes)


@keras.saving.register_keras_serializable(package="pets")
class SoftTargetCrossentropy(keras.losses.Loss):
    """Cross-entropy of probabilities against class ids or class probabilities, with the targets
    smoothed towards uniform by label_smoothing."""

    def __init__(self, num_classes: int, label_smoothing: float = 0.0, name="soft_target_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        targets = _targets(y_true, self.num_classes)
        if self.label_smoothing:
            targets = targets * (1.0 - self.label_smoothing) + self.label_smoothing / self.num_classes
        return keras.losses.categorical_crossentropy(targets, y_pred)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "label_smoothing": self.label_smoothing}


def accuracy_metric(num_classes: int) -> keras.metrics.Metric:
    """Accuracy against the most probable target class (the id itself for integer targets)."""
    def accuracy(y_true, y_pred):
        targets = keras.ops.argmax(_targets(y_true, num_classes), axis=-1)
        return keras.ops.cast(keras.ops.equal(targets, keras.ops.argmax(y_pred, axis=-1)), "float32")

    return keras.metrics.MeanMetricWrapper(accuracy, name="accuracy")


def mix_batches(dataset: tf.data.Dataset, alpha: float, num_classes: int, seed: Optional[int]) -> tf.data.Dataset:
    """Mixup over a dataset of ({IMAGE_XF: images}, class ids) batches: each photo is blended with
    its neighbour in the (shuffled) batch by a weight λ ~ Beta(alpha, alpha), kept ≥ 0.5 so the
    photo stays the dominant one, and so are the one-hot labels. Stateless random numbers keyed
    by (seed, batch number), so a seeded run mixes the same way every time."""
    base = int(seed or 0)

    def mix(index, batch):
        inputs, ids = batch
        images = inputs[F.IMAGE_XF]
        targets = tf.one_hot(tf.reshape(ids, [-1]), num_classes)
        size = tf.shape(images)[:1]
        key = tf.stack([tf.cast(base, tf.int64), index])
        a = tf.random.stateless_gamma(size, key, alpha=alpha)
        b = tf.random.stateless_gamma(size, key + [0, 1 << 40], alpha=alpha)
        lam = a / (a + b)
        lam = tf.maximum(lam, 1.0 - lam)
        partner_images = tf.roll(images, shift=1, axis=0)
        partner_targets = tf.roll(targets, shift=1, axis=0)
        mixed = lam[:, None, None, None] * images + (1.0 - lam[:, None, None, None]) * partner_images
        mixed_targets = lam[:, None] * targets + (1.0 - lam[:, None]) * partner_targets
        return {**inputs, F.IMAGE_XF: mixed}, mixed_targets

    return dataset.enumerate().map(mix, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
