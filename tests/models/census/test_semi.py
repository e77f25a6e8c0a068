"""Semi-supervised census (profile "semi"): masked-column pre-training shares the classifier's
layers, masks only what it should, and the labelled subset is deterministic."""
import numpy as np
import pytest
import tensorflow as tf

from models.census import features as F
from models.census import semi
from models.census.model import build_model

VOCAB = semi.with_mask_tokens({name: 5 + i for i, name in enumerate(F.MODEL_CATEGORICAL)})
HPARAMS = {"num_transformer_blocks": 2, "num_heads": 2, "embedding_dim": 8, "learning_rate": 3e-3,
           "weight_decay": 1e-4, "model": "tabtransformer"}


def _rows(n=64, seed=0):
    rng = np.random.default_rng(seed)
    features = {name: rng.integers(0, VOCAB[name] - 1, size=n).astype("int64") for name in F.MODEL_CATEGORICAL}
    features.update({name: rng.normal(size=n).astype("float32") for name in F.MODEL_NUMERIC})
    labels = rng.integers(0, 2, size=n).astype("int64")
    return features, labels, np.ones(n, "float32")


def test_pretrainer_shares_embeddings_and_blocks_with_the_classifier():
    classifier = build_model(HPARAMS, VOCAB)
    pretrainer = semi.build_pretrainer(classifier, VOCAB, num_transformer_blocks=2)
    for name in ("workclass_xf_embedding", "column_embedding", "attention0", "ffn1_dense", "ffn_norm1"):
        assert pretrainer.get_layer(name) is classifier.get_layer(name)
    features, _, _ = _rows(4)
    outputs = pretrainer({n: features[n] for n in F.MODEL_CATEGORICAL})
    assert set(outputs) == {semi.reconstruction_head_name(n) for n in F.MODEL_CATEGORICAL}
    # A head predicts the column's real categories, never its [MASK] id.
    assert outputs[semi.reconstruction_head_name("workclass_xf")].shape == (4, VOCAB["workclass_xf"] - 1)


def test_masking_replaces_ids_by_the_mask_id_and_targets_only_masked_positions():
    features, labels, weights = _rows(2000)
    mask = semi.masking_fn(semi.mask_ids(VOCAB), mask_rate=0.15)
    inputs, targets = mask({k: tf.constant(v) for k, v in features.items()}, labels, weights)
    assert set(inputs) == set(F.MODEL_CATEGORICAL)
    for name in F.MODEL_CATEGORICAL:
        masked = inputs[name].numpy() == VOCAB[name] - 1
        target = targets[semi.reconstruction_head_name(name)].numpy()
        np.testing.assert_array_equal(target[masked], features[name][masked])
        assert np.all(target[~masked] == semi.IGNORE)
        np.testing.assert_array_equal(inputs[name].numpy()[~masked], features[name][~masked])
        assert 0.10 < masked.mean() < 0.20


def test_pretraining_updates_the_shared_embeddings():
    features, labels, weights = _rows(256)
    dataset = tf.data.Dataset.from_tensor_slices((features, labels, weights)).repeat().batch(64)
    classifier = build_model(HPARAMS, VOCAB)
    before = classifier.get_layer("education_xf_embedding").get_weights()[0].copy()
    history = semi.pretrain(classifier, dataset, VOCAB, HPARAMS, {"mask_rate": 0.3}, steps=4)
    assert len(history.history["loss"]) == 4 and np.isfinite(history.history["loss"]).all()
    assert not np.allclose(before, classifier.get_layer("education_xf_embedding").get_weights()[0])
    probs = classifier(features, training=False).numpy()  # the classifier itself still works
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_pretraining_needs_the_tabtransformer():
    with pytest.raises(ValueError, match="TabTransformer"):
        semi.pretrain(None, None, VOCAB, {**HPARAMS, "model": "mlp"}, {}, steps=1)


def test_labelled_subset_is_deterministic_and_about_the_fraction():
    features, labels, weights = _rows(4000, seed=1)
    dataset = tf.data.Dataset.from_tensor_slices((features, labels, weights)).batch(100)

    def kept_ids(ds):
        return sorted(float(x) for batch in ds for x in batch[0]["age_xf"].numpy())

    first = kept_ids(semi.keep_labelled(dataset, 0.1, 50))
    reshuffled = dataset.unbatch().shuffle(4000, seed=3).batch(37)  # other rows share each batch
    second = kept_ids(semi.keep_labelled(reshuffled, 0.1, 50))
    assert first == second
    assert 300 < len(first) < 500
    assert semi.keep_labelled(dataset, 1.0, 50) is dataset


def test_pretrain_steps_from_epochs_or_steps():
    assert semi.pretrain_steps({"epochs": 2}, train_rows=1000, batch_size=256) == 8
    assert semi.pretrain_steps({"steps": 5, "epochs": 2}, train_rows=1000, batch_size=256) == 5
