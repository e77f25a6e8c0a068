"""The reviews pipeline end to end with a tiny randomly initialised BERT (no Tuner in this task)."""
import csv
import glob
import os
import random

import numpy as np
import pytest
import tensorflow as tf

from components import metadata
from pipelines import lineage, local_runner, nodes
from pipelines.tasks import load_task

pytestmark = pytest.mark.e2e

POSITIVE = ["great", "wonderful", "loved", "brilliant", "superb", "enjoyable"]
NEGATIVE = ["awful", "terrible", "boring", "hated", "dull", "waste"]
NEUTRAL = ["the", "movie", "film", "plot", "actor", "was", "a", "and", "it", "story", "scene", "this"]


def write_tiny_checkpoint(directory):
    """config.json + vocab.txt of a 2-layer, 32-wide BERT (no weights: trained from scratch)."""
    from transformers import BertConfig

    directory.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "!", "<", ">", "/", "br"]
    vocab += POSITIVE + NEGATIVE + NEUTRAL
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=64, max_position_embeddings=64).to_json_file(str(directory / "config.json"))
    return directory


def synthetic_reviews(n, seed):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = rng.choices(NEUTRAL, k=rng.randint(4, 30)) + rng.choices(POSITIVE if label else NEGATIVE, k=2)
        rng.shuffle(words)
        text = " ".join(words) + (" <br /><br />" if rng.random() < 0.3 else "") + rng.choice([".", "!"])
        rows.append({"id": i, "rating": rng.randint(7, 10) if label else rng.randint(1, 4), "label": label, "text": text})
    return rows


@pytest.fixture(scope="module")
def reviews_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("reviews")
    checkpoint = write_tiny_checkpoint(root / "tiny-bert")
    data = root / "data" / "reviews"
    data.mkdir(parents=True)
    with open(data / "reviews.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "rating", "label", "text"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(synthetic_reviews(300, seed=2))
    task = load_task("reviews").with_overrides(
        train_steps=80,
        eval_steps=3,
        custom_config={
            "hparams": {"checkpoint": str(checkpoint), "pretrained": False, "max_seq_length": 24,
                        "batch_size": 16, "learning_rate": 2e-3, "dropout": 0.0,
                        # the default's head+tail truncation, and length-bucketed batches
                        "head_fraction": 0.25, "length_buckets": [10, 20]},
            "checkpoints": 2,
        },
    )
    layout = local_runner.LocalLayout.resolve(str(root / "home"))
    outcome = local_runner.run_pipeline(task, layout=layout, data_root=str(root / "data"),
                                       data_version={"md5": "test", "dirty": False})
    assert outcome.error is None, outcome.error
    store = metadata.open_store(str(layout.metadata_path))
    return layout, lineage.load_run(store, nodes.pipeline_name(task.name), outcome.run_id)


def test_pipeline_without_tuner_trains_blesses_and_pushes(reviews_run):
    _, record = reviews_run
    assert nodes.TUNER not in record.nodes
    for node in (nodes.TRANSFORM, nodes.TRAINER, nodes.EVALUATOR, nodes.PUSHER):
        assert record.nodes[node].state == "complete", node
    assert record.nodes[nodes.EVALUATOR].output("blessing").get("blessed") == 1
    assert record.nodes[nodes.PUSHER].output("pushed_model").get("pushed") == 1


def test_pushed_model_takes_raw_text_only(reviews_run):
    layout, _ = reviews_run
    versions = sorted(glob.glob(os.path.join(layout.serving_root, "reviews", "*")))
    model = tf.saved_model.load(versions[-1])
    texts = ["a great and wonderful film !", "boring , awful plot .", b"superb \xff movie"]
    examples = [
        tf.train.Example(features=tf.train.Features(feature={
            "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[t if isinstance(t, bytes) else t.encode()]))
        })).SerializeToString()
        for t in texts
    ]
    probs = model.signatures["serving_default"](examples=tf.constant(examples))["probabilities"].numpy()
    assert probs.shape == (3, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert probs[0, 1] > 0.5 > probs[1, 1]  # pos, neg


def test_throughput_is_recorded(reviews_run):
    _, record = reviews_run
    model_run = record.nodes[nodes.TRAINER].output("model_run")
    import json

    stats = json.loads(tf.io.gfile.GFile(os.path.join(model_run.uri, "throughput.json")).read())
    assert stats["train_examples_per_second"] > 0
