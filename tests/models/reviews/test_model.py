"""reviews classifier (models/reviews/model.py): the TF model reproduces the packaged checkpoint's
sentence embeddings (checked against an independent numpy BERT forward pass)."""
import json
import math

import numpy as np
import pytest
import tensorflow as tf

from models.common.text import checkpoint as ckpt
from models.reviews.model import build_classifier, head_tokens_of


@pytest.fixture(scope="module")
def packaged():
    return ckpt.packaged_checkpoint_dir()


def _layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x):
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def numpy_bert_mean_pooled(weights, config, input_ids, mask):
    """An independent BERT forward pass in numpy from the safetensors tensors (PyTorch layout)."""
    w = {k: v.astype(np.float64) for k, v in weights.items() if v.dtype != np.int64}
    eps = config["layer_norm_eps"]
    heads = config["num_attention_heads"]
    seq = input_ids.shape[1]
    x = (w["embeddings.word_embeddings.weight"][input_ids]
         + w["embeddings.position_embeddings.weight"][np.arange(seq)][None]
         + w["embeddings.token_type_embeddings.weight"][0][None, None])
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    bias = (1.0 - mask[:, None, None, :]) * -1e9
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        dense = lambda t, name: t @ w[p + name + ".weight"].T + w[p + name + ".bias"]  # noqa: E731
        batch, _, hidden = x.shape
        split = lambda t: t.reshape(batch, seq, heads, hidden // heads).transpose(0, 2, 1, 3)  # noqa: E731
        q, k, v = (split(dense(x, f"attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hidden // heads) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
        x = _layer_norm(dense(context, "attention.output.dense") + x,
                        w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        inner = _gelu(dense(x, "intermediate.dense"))
        x = _layer_norm(dense(inner, "output.dense") + x,
                        w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    m = mask[:, :, None]
    return (x * m).sum(1) / m.sum(1)


def test_tf_model_reproduces_the_checkpoint_sentence_embeddings(packaged):
    from safetensors.numpy import load_file

    sentences = ["A man is playing a guitar.", "The movie was surprisingly good!", "Terrible acting, awful plot."]
    model = build_classifier({"checkpoint": "packaged", "max_seq_length": 32})
    got = model.embed(tf.constant(sentences)).numpy()

    ids, mask = model.tokenizer(tf.constant(sentences))
    config = json.loads((packaged / "config.json").read_text())
    expected = numpy_bert_mean_pooled(load_file(str(packaged / "model.safetensors")), config,
                                      ids.numpy(), mask.numpy().astype(np.float64))
    np.testing.assert_allclose(got, expected, atol=2e-4, rtol=1e-3)
    # and the embeddings carry meaning: the two movie reviews are closer to each other than to the guitar
    unit = got / np.linalg.norm(got, axis=1, keepdims=True)
    assert unit[1] @ unit[2] > unit[0] @ unit[1]


def test_head_fraction_sets_how_many_leading_pieces_survive_truncation(packaged):
    assert head_tokens_of(None, 128) is None
    assert head_tokens_of(0.25, 128) == 32  # 32 head + 94 tail pieces
    assert head_tokens_of(0.25, 256) == 64
    assert head_tokens_of(0.0, 64) == 0
    with pytest.raises(ValueError, match="head_fraction must be between 0 and 1"):
        head_tokens_of(1.5, 128)
    model = build_classifier({"checkpoint": "packaged", "max_seq_length": 30, "head_fraction": 0.25})
    assert model.tokenizer.head_tokens == 7
