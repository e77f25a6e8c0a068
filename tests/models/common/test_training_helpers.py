"""Shared training and tuning helpers (models/common/training.py, models/common/tuning.py)."""
import keras
import numpy as np
import pytest
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


def test_warm_started_search_measures_the_defaults_first(tmp_path):
    import keras_tuner

    from models.common.tuning import WarmStartBayesianOracle

    tried = []

    def build(hp):
        units = hp.Choice("units", [1, 2, 3, 4, 5, 6, 7, 8], default=7)
        rate = hp.Float("rate", 1e-4, 1e-1, sampling="log", default=3e-3)
        tried.append((units, rate))
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(units), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(rate), loss="mse")
        return model

    tuner = keras_tuner.Tuner(
        oracle=WarmStartBayesianOracle(objective=keras_tuner.Objective("loss", "min"), max_trials=3, seed=0),
        hypermodel=build, directory=str(tmp_path), project_name="warm", overwrite=True)
    x = np.random.default_rng(0).normal(size=(16, 2)).astype("float32")
    tuner.search(x, x[:, :1], epochs=1, verbose=0)
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: t.trial_id)
    assert len(trials) == 3
    assert trials[0].hyperparameters.values == {"units": 7, "rate": 3e-3}
    assert any(t.hyperparameters.values != trials[0].hyperparameters.values for t in trials[1:])


@pytest.mark.parametrize("margin, defaults_win", [(0.05, True), (0.01, False)])
def test_search_keeps_the_defaults_unless_a_trial_beats_them_by_the_margin(tmp_path, margin, defaults_win):
    import keras_tuner

    from models.common.tuning import WarmStartBayesianOracle

    class Scored(keras_tuner.Tuner):
        """A trial's score is a fixed function of its hyperparameters (no training)."""

        def run_trial(self, trial, *args, **kwargs):
            units = trial.hyperparameters.get("units")
            return {"val_accuracy": 0.80 if units == 7 else 0.80 + 0.003 * units}

    oracle = WarmStartBayesianOracle(objective=keras_tuner.Objective("val_accuracy", "max"), max_trials=4,
                                     seed=0, min_improvement=margin)
    tuner = Scored(oracle=oracle, hypermodel=lambda hp: hp.Int("units", 1, 8, default=7),
                   directory=str(tmp_path), project_name="margin", overwrite=True)
    tuner.search(verbose=0)
    scores = sorted(t.score for t in tuner.oracle.trials.values())
    assert len(scores) == 4 and max(scores) > 0.80 + 0.01  # some trial beat the defaults by > 0.01
    best = tuner.get_best_hyperparameters()[0].values
    assert (best == {"units": 7}) == defaults_win
    # The margin survives the oracle's saved state (TFX's Tuner executor reloads it).
    reloaded = WarmStartBayesianOracle(objective=keras_tuner.Objective("val_accuracy", "max"), max_trials=4)
    reloaded.set_state(oracle.get_state())
    assert reloaded.min_improvement == margin and reloaded.defaults_trial_id == oracle.defaults_trial_id
