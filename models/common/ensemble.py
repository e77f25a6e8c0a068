"""A seed ensemble of Keras models in one graph, trained together and served as one model
(census and news use it).

K members (the same architecture, each with its own initial weights and dropout masks) read the
same inputs. For training they are stacked, [batch, K, classes], and each member is fitted to the
labels on its own (`MemberCrossentropy`: the members' losses averaged, not the loss of their
average, so each stays a model in its own right). The served model is the members' average,
[batch, classes]: the same inputs and output as a single model, so the SavedModel's serving
contract (`serving_default` -> `probabilities` [batch, classes]) does not change.

Training the members in one graph costs less than K separate fits on a small CPU: one input
pipeline and one step per batch drive all of them.
"""
from __future__ import annotations

from typing import Callable

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="ensemble")
class MemberStack(layers.Layer):
    """[batch, classes] × K -> [batch, K, classes]."""

    def call(self, tensors):
        return keras.ops.stack(tensors, axis=1)


@keras.saving.register_keras_serializable(package="ensemble")
class MemberMean(layers.Layer):
    """[batch, K, classes] -> [batch, classes]: the members' average probabilities."""

    def call(self, stacked):
        return keras.ops.mean(stacked, axis=1)


@keras.saving.register_keras_serializable(package="ensemble")
class MemberCrossentropy(keras.losses.Loss):
    """Per example, the mean over members of each member's sparse categorical cross-entropy.
    y_true [batch] (class ids), y_pred [batch, K, classes] (probabilities)."""

    def __init__(self, name="member_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        members = keras.ops.shape(y_pred)[1]
        tiled = keras.ops.repeat(keras.ops.expand_dims(labels, 1), members, axis=1)
        per_member = keras.losses.sparse_categorical_crossentropy(tiled, y_pred)  # [batch, K]
        return keras.ops.mean(per_member, axis=1)


@keras.saving.register_keras_serializable(package="ensemble")
class EnsembleAccuracy(keras.metrics.SparseCategoricalAccuracy):
    """Accuracy of the members' average (what is served), from the stacked [batch, K, classes]."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(y_true, keras.ops.mean(y_pred, axis=1), sample_weight=sample_weight)


def build_ensemble(build_member: Callable[[int], keras.Model], size: int) -> keras.Model:
    """The training form of an ensemble of `size` members made by build_member(i) (each a
    keras.Model named uniquely, with the same dict of inputs and a [batch, classes] output): their
    stacked outputs [batch, K, classes]. `served(model)` is its serving form."""
    if size < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {size}")
    members = [build_member(i) for i in range(size)]
    inputs = {name: keras.Input(shape=tensor.shape[1:], dtype=tensor.dtype, name=name)
              for name, tensor in members[0].input.items()}
    stacked = MemberStack(name="members")([member(inputs) for member in members])
    return keras.Model(inputs, stacked, name="ensemble_members")

def served(model: keras.Model) -> keras.Model:
    """The serving form of a model built by build_ensemble (its members' average, sharing their
    weights); any other model unchanged."""
    if not isinstance(model.output, (list, tuple, dict)) and len(model.output.shape) == 3:
        return keras.Model(model.input, MemberMean(name="probabilities")(model.output), name="ensemble")
    return model
