"""The heart classifier in Keras 3: one-hot categoricals + z-scored numbers -> small MLP -> softmax.

As in the Keras structured-data example: one hidden layer of 32 ReLU units with dropout 0.5 (Adam).
The categorical inputs are TFT vocabulary ids, one-hot encoded here (vocabulary + OOV bucket wide).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import keras
from keras import layers

from models.heart import features as F

DEFAULT_HPARAMS = {
    "hidden_units": [32],
    "dropout": 0.5,
    "learning_rate": 1e-3,
    "batch_size": 32,
}


def build_model(
    vocab_sizes: Mapping[str, int],
    numeric: Sequence[str] = F.MODEL_NUMERIC,
    num_classes: int = 2,
    hparams: Mapping[str, object] = (),
) -> keras.Model:
    """vocab_sizes: transformed categorical feature -> number of ids (vocabulary + OOV buckets)."""
    hp = {**DEFAULT_HPARAMS, **dict(hparams)}
    cat_inputs = {n: keras.Input(shape=(), dtype="int64", name=n) for n in vocab_sizes}
    num_inputs = {n: keras.Input(shape=(), dtype="float32", name=n) for n in numeric}
    one_hot = [
        layers.CategoryEncoding(num_tokens=size, output_mode="one_hot", name=f"{n}_one_hot")(cat_inputs[n])
        for n, size in vocab_sizes.items()
    ]
    numbers = [layers.Reshape((1,), name=f"{n}_column")(num_inputs[n]) for n in numeric]
    x = layers.Concatenate(name="all_features")(one_hot + numbers)
    for i, units in enumerate(hp["hidden_units"]):
        x = layers.Dense(int(units), activation="relu", name=f"dense{i}")(x)
        x = layers.Dropout(float(hp["dropout"]), name=f"dropout{i}")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    model = keras.Model({**cat_inputs, **num_inputs}, outputs, name="heart_mlp")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=float(hp["learning_rate"])),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model
