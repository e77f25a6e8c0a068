"""news model code at toy size, no pipeline run: preprocessing, the from-scratch Transformer, the
MiniLM profile's classifier over a tiny randomly initialised BERT, the top-1 multi-class metrics and
the importer. (The whole pipeline: tests/e2e/test_news.py.)"""
import csv

import numpy as np
import pytest
import tensorflow as tf

from models.common import multiclass_metrics as M
from models.news import features as F
from models.news import preprocessing
from models.news.model import build_model
from tests.news_data import TOPIC_WORDS


def test_normalize_lowercases_and_drops_ag_news_escapes():
    text = tf.constant(["Oil\\pipeline #36;10 MILLION -- Reuters", "", "  Café's  "])
    assert [t.decode() for t in preprocessing.normalize(text).numpy()] == [
        "oil pipeline 10 million reuters", "", "café s"]


def test_label_ids_from_class_names_or_ag_news_indexes():
    ids = preprocessing.label_id(tf.constant(["World", "Sci/Tech", "2", " Business ", "Politics", ""]))
    assert ids.numpy().tolist() == [0, 3, 1, 2, -1, -1]


def _token_batch(rng, n):
    labels = rng.integers(0, 4, n)
    ids = np.zeros((n, F.MAX_TOKENS), np.int64)
    for i, label in enumerate(labels):
        length = rng.integers(0, 20)  # 0: an empty text
        ids[i, :length] = rng.integers(2, 50, length)
        ids[i, :min(length, 3)] = 50 + label  # the topic's token
    return {F.TOKENS_XF: ids}, labels


def test_transformer_trains_a_few_steps_and_handles_empty_text():
    rng = np.random.default_rng(0)
    model = build_model({"embedding_dim": 16, "num_heads": 2, "ff_dim": 32, "num_blocks": 2, "learning_rate": 3e-3,
                         "ensemble_size": 1}, vocab_size=60)
    x, y = _token_batch(rng, 64)
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    empty = {F.TOKENS_XF: np.zeros((2, F.MAX_TOKENS), np.int64)}
    probs = model.predict(empty, verbose=0)
    assert probs.shape == (2, 4) and np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_the_default_is_a_seed_ensemble_served_as_its_members_average():
    from models.news.model import DEFAULT_HPARAMS, served_model

    assert DEFAULT_HPARAMS["ensemble_size"] > 1
    rng = np.random.default_rng(1)
    model = build_model({"embedding_dim": 8, "num_heads": 2, "ff_dim": 16, "ensemble_size": 3}, vocab_size=60)
    x, y = _token_batch(rng, 32)
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    stacked = model.predict(x, verbose=0)
    assert stacked.shape == (32, 3, 4)
    assert not np.allclose(stacked[:, 0], stacked[:, 1])  # members start from their own weights
    served = served_model(model).predict(x, verbose=0)
    assert served.shape == (32, 4)
    np.testing.assert_allclose(served, stacked.mean(axis=1), rtol=1e-5, atol=1e-6)


def test_minilm_profile_classifier_builds_and_trains_over_a_tiny_bert(tmp_path):
    """The profile's code path (in-graph WordPiece, BERT, mean pooling, 4-way softmax, AdamW
    schedule) on a 2-layer, 32-wide randomly initialised BERT: no download, no packaged weights."""
    from transformers import BertConfig

    from models.news.minilm import build_classifier

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted({w for ws in TOPIC_WORDS.values() for w in ws})
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=64, max_position_embeddings=32).to_json_file(str(tmp_path / "config.json"))
    model = build_classifier({"checkpoint": str(tmp_path), "pretrained": False, "max_seq_length": 16,
                              "learning_rate": 1e-3}, total_steps=4)
    texts, labels = [], []
    for i in range(32):
        topic = F.CLASS_NAMES[i % 4]
        texts.append(" ".join(TOPIC_WORDS[topic][: 2 + i % 3]))
        labels.append(i % 4)
    data = tf.data.Dataset.from_tensor_slices(({F.TEXT_XF: texts}, labels)).batch(8)
    history = model.fit(data, epochs=1, steps_per_epoch=4, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    probs = model({F.TEXT_XF: tf.constant(["minister election", "", "unknownword"])}).numpy()
    assert probs.shape == (3, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_top_one_per_class_and_macro_metrics():
    counts = np.array([[8, 2, 0, 0],   # actual 0: 8 right, 2 taken for class 1
                       [0, 10, 0, 0],
                       [0, 0, 0, 0],   # no example of class 2, and never predicted
                       [0, 0, 5, 5]])  # actual 3: half predicted as 2
    values = M.per_class(counts)
    assert values["recall"][0] == pytest.approx(0.8) and values["precision"][1] == pytest.approx(10 / 12)
    assert np.isnan(values["recall"][2]) and values["precision"][2] == 0.0
    macro = M.macro_averages(counts)
    # Every class occurs (class 2 as a prediction): precision (1 + 10/12 + 0 + 1) / 4.
    assert macro["macro_precision"] == pytest.approx((1 + 10 / 12 + 0 + 1) / 4)
    assert macro["macro_recall"] == pytest.approx((0.8 + 1 + 0 + 0.5) / 4)
    assert all(np.isnan(v) for v in M.macro_averages(np.zeros((4, 4))).values())


def test_importer_maps_class_indexes_to_names_and_splits_train_by_hash(tmp_path):
    from pipelines.tasks.news import import_data

    source = tmp_path / "src"
    source.mkdir()
    with open(source / "train_sample_8000.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "content"])
        writer.writerows([[1 + i % 4, f'Article {i}, "quoted" \\ text'] for i in range(50)])
    (source / "test.csv").write_text('"3","Fears for T N pension","Unions say, ""no"""\n"4","Title","Desc"\n')
    out = import_data(source, tmp_path / "data")

    def read(split):
        with open(out / split / "news.csv", newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    train, validation, test = read("train"), read("validation"), read("test")
    assert len(train) + len(validation) == 50 and 0 < len(validation) < 15
    assert {r["title"] for r in train + validation} == {""}
    assert train[0]["description"].endswith('"quoted" \\ text')
    assert test == [{"topic": "Business", "title": "Fears for T N pension", "description": 'Unions say, "no"'},
                    {"topic": "Sci/Tech", "title": "Title", "description": "Desc"}]
    (source / "test.csv").write_text('"5","x","y"\n')
    with pytest.raises(ValueError, match="class index"):
        import_data(source, tmp_path / "data2")
