"""sts siamese encoder (models/sts/model.py) on a tiny random BERT."""
import numpy as np
import pytest
import tensorflow as tf

from models.sts import features as F


def test_encoder_trims_padding_without_changing_embeddings(tmp_path):
    from models.common.text.bert import mean_pool
    from models.sts.model import build_model
    from tests.sts_data import write_tiny_checkpoint

    checkpoint = write_tiny_checkpoint(tmp_path / "tiny")
    model = build_model({"checkpoint": str(checkpoint), "pretrained": False, "max_seq_length": 24})
    text = tf.constant(["a man is playing the guitar on the beach.", "a dog."])
    trimmed = model.encoder(text).numpy()
    ids, mask = model.encoder.tokenizer(text)  # padded to 24
    full = mean_pool(model.encoder.bert(input_ids=ids, attention_mask=mask).last_hidden_state, mask).numpy()
    np.testing.assert_allclose(trimmed, full, atol=1e-5)
    pair = {F.SENTENCE1_XF: text, F.SENTENCE2_XF: tf.constant(["a dog.", "a dog."])}
    similarity = model(pair).numpy()
    assert similarity.shape == (2,) and similarity[1] == pytest.approx(1.0, abs=1e-5)


def test_cosent_loss_is_the_ranking_formula_and_rewards_the_gold_order():
    from models.common.text.siamese import cosent_loss

    gold = np.array([0.9, 0.1, 0.5, 0.5], np.float32)
    cos = np.array([0.2, 0.4, 0.7, 0.1], np.float32)
    expected = np.log(1 + sum(np.exp(20 * (cos[j] - cos[i]))
                              for i in range(4) for j in range(4) if gold[i] > gold[j]))
    assert float(cosent_loss(tf.constant(gold), tf.constant(cos))) == pytest.approx(expected, rel=1e-5)
    # the gold order with wide gaps costs almost nothing; the reverse order costs a lot
    in_order = float(cosent_loss(tf.constant(gold), tf.constant([0.9, -0.9, 0.0, 0.0])))
    reversed_order = float(cosent_loss(tf.constant(gold), tf.constant([-0.9, 0.9, 0.0, 0.0])))
    assert in_order < 1e-3 < 10 < reversed_order
    # ties in gold add no term; a batch of one pair has nothing to rank
    assert float(cosent_loss(tf.constant([0.5, 0.5]), tf.constant([0.1, 0.9]))) == pytest.approx(0.0)


def test_an_unknown_loss_is_named_with_the_choices(tmp_path):
    from models.common.text.siamese import compile_model
    from models.sts.model import build_model
    from tests.sts_data import write_tiny_checkpoint

    model = build_model({"checkpoint": str(write_tiny_checkpoint(tmp_path / "tiny")), "pretrained": False})
    with pytest.raises(ValueError, match=r"unknown siamese loss 'hinge'.*cosent"):
        compile_model(model, {"loss": "hinge"}, total_steps=10)
