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
