"""Census models: build, output shape, and SavedModel round trip."""
import numpy as np
import pytest
import tensorflow as tf

from models.census import features as F
from models.census.model import build_model, parse_factors

VOCAB = {name: 5 + i for i, name in enumerate(F.MODEL_CATEGORICAL)}


def _batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    batch = {name: rng.integers(0, VOCAB[name], size=n).astype("int64") for name in F.MODEL_CATEGORICAL}
    batch.update({name: rng.normal(size=n).astype("float32") for name in F.MODEL_NUMERIC})
    return batch


@pytest.mark.parametrize("kind", ["tabtransformer", "mlp"])
def test_model_outputs_class_probabilities(kind):
    model = build_model({"model": kind, "num_transformer_blocks": 1, "embedding_dim": 8}, VOCAB)
    probs = model(_batch(), training=False).numpy()
    assert probs.shape == (8, 2)
    assert np.all(probs >= 0) and np.all(probs <= 1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_tabtransformer_has_the_configured_blocks_and_column_embedding():
    model = build_model({"num_transformer_blocks": 2, "num_heads": 2, "embedding_dim": 8}, VOCAB)
    names = [layer.name for layer in model.layers]
    assert sum(n.startswith("attention") and not n.startswith("attention_") for n in names) == 2
    assert "column_embedding" in names
    without = build_model({"num_transformer_blocks": 1, "use_column_embedding": False}, VOCAB)
    assert "column_embedding" not in [layer.name for layer in without.layers]


def test_unknown_model_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown census model 'xgboost'"):
        build_model({"model": "xgboost"}, VOCAB)


def test_tuner_factor_strings_parse():
    assert parse_factors("2,1") == [2.0, 1.0]
    assert parse_factors([4, 2]) == [4.0, 2.0]


def test_model_survives_a_saved_model_round_trip(tmp_path):
    model = build_model({"num_transformer_blocks": 1, "embedding_dim": 8}, VOCAB)
    batch = _batch(seed=1)
    expected = model(batch, training=False).numpy()

    class Wrapper(tf.Module):
        def __init__(self, m):
            super().__init__()
            self.model = m
            specs = {k: tf.TensorSpec([None], tf.as_dtype(v.dtype), name=k) for k, v in batch.items()}
            self.serve = tf.function(lambda inputs: {"probabilities": self.model(inputs, training=False)},
                                     input_signature=[specs])

    wrapper = Wrapper(model)
    tf.saved_model.save(wrapper, str(tmp_path / "m"), signatures={"serving_default": wrapper.serve.get_concrete_function()})
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    got = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in batch.items()})["probabilities"]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_periodic_embedding_maps_each_number_to_a_vector_that_depends_on_it():
    from models.census.model import PeriodicEmbedding

    layer = PeriodicEmbedding(num_features=3, frequencies=4, dim=6, sigma=3.0)
    x = np.array([[0.0, 1.0, -2.0], [0.5, 1.0, -2.0]], dtype="float32")
    out = layer(x).numpy()
    assert out.shape == (2, 3, 6) and np.all(out >= 0)  # ReLU
    assert not np.allclose(out[0, 0], out[1, 0])  # the first feature differs between the rows
    np.testing.assert_allclose(out[0, 1:], out[1, 1:], rtol=1e-6)  # features are embedded separately
    assert np.std(layer.coefficients.numpy()) > 1.0  # frequencies drawn at scale sigma


def test_numeric_embedding_is_selectable_and_validated():
    plain = build_model({"num_transformer_blocks": 1, "numeric_embedding": "none"}, VOCAB)
    periodic = build_model({"num_transformer_blocks": 1, "numeric_embedding": "periodic"}, VOCAB)
    assert "numeric_periodic" in [layer.name for layer in periodic.layers]
    assert "numeric_periodic" not in [layer.name for layer in plain.layers]
    assert periodic(_batch(), training=False).shape == (8, 2)
    with pytest.raises(ValueError, match="unknown numeric_embedding 'fourier'"):
        build_model({"numeric_embedding": "fourier"}, VOCAB)


def test_tuner_space_defaults_are_the_hand_tuned_hyperparameters():
    import keras_tuner

    from models.census.model import DEFAULT_HPARAMS, parse_factors
    from models.census.tuner import search_space

    values = search_space(keras_tuner.HyperParameters(), "tabtransformer")
    for name in ("embedding_dim", "dropout", "learning_rate", "weight_decay", "num_transformer_blocks",
                 "num_heads", "periodic_sigma"):
        assert values[name] == pytest.approx(DEFAULT_HPARAMS[name]), name
    assert parse_factors(values["mlp_hidden_factors"]) == parse_factors(DEFAULT_HPARAMS["mlp_hidden_factors"])


def test_warm_started_search_measures_the_defaults_first(tmp_path):
    import keras
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
