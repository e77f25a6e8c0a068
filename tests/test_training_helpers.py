"""Shared training helpers (models/common/training.py)."""
import keras
import numpy as np
import tensorflow as tf

from models.common import training


def test_validation_set_is_the_first_batches_finite_and_the_same_every_pass():
    endless = tf.data.Dataset.range(100).batch(4).repeat()
    validation = training.validation_set(endless, 3)
    first = [batch.numpy().tolist() for batch in validation]
    second = [batch.numpy().tolist() for batch in validation]
    assert first == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert second == first
    assert len(list(training.validation_set(endless, 0))) == 1  # at least one batch


def test_fit_validates_on_every_batch_of_the_validation_set():
    x = np.arange(64, dtype="float32").reshape(-1, 1) / 64
    y = (x[:, 0] > 0.5).astype("int64")
    endless = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).repeat()
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    seen = []

    class CountBatches(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            seen.append(0)

        def on_test_batch_end(self, batch, logs=None):
            seen[-1] += 1

    model.fit(endless, epochs=3, steps_per_epoch=2, validation_data=training.validation_set(endless, 5),
              callbacks=[CountBatches()], verbose=0)
    assert seen == [5, 5, 5]
