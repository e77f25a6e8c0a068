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
