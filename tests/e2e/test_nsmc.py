"""The nsmc pipeline end to end at toy size: the packaged multilingual-e5-small cut to its first 2
layers and to the pieces of a tiny synthetic Korean training split; blessing, push, and the served
model on raw Korean text."""
import csv
import glob
import os
import random

import numpy as np
import pytest
import tensorflow as tf

from components import evaluation, metadata
from models.common.contract import SPLITS
from models.nsmc import features as F
from pipelines import lineage, local_runner, nodes
from pipelines.tasks import load_task

pytestmark = pytest.mark.e2e

POSITIVE = ["최고", "재밌다", "감동", "추천", "명작"]
NEGATIVE = ["최악", "지루하다", "별로", "실망", "졸작"]
NEUTRAL = ["영화", "배우", "연기", "스토리", "정말", "진짜", "이", "그", "ㅋㅋ", "ㅠㅠ", "!!", "..."]


def synthetic_reviews(n, seed):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = rng.choices(NEUTRAL, k=rng.randint(2, 10)) + rng.choices(POSITIVE if label else NEGATIVE, k=2)
        rng.shuffle(words)
        rows.append({"id": 1000 + i, "text": " ".join(words), "label": label})
    return rows


@pytest.fixture(scope="module")
def nsmc_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("nsmc")
    for offset, (folder, size) in enumerate((("train", 320), ("validation", 64), ("test", 64))):
        path = root / "data" / "nsmc" / folder / F.FILES[folder]
        path.parent.mkdir(parents=True)
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(F.CSV_COLUMNS), lineterminator="\n")
            writer.writeheader()
            writer.writerows(synthetic_reviews(size, seed=10 + offset))
    task = load_task("nsmc").with_overrides(
        train_steps=30,
        eval_steps=2,
        custom_config={"hparams": {"num_layers": 2, "vocabulary": "train", "max_seq_length": 24, "batch_size": 16,
                                   "learning_rate": 2e-4, "dropout": 0.0}, "checkpoints": 2},
    )
    layout = local_runner.LocalLayout.resolve(str(root / "home"))
    outcome = local_runner.run_pipeline(task, layout=layout, data_root=str(root / "data"),
                                       data_version={"md5": "test", "dirty": False})
    assert outcome.error is None, outcome.error
    store = metadata.open_store(str(layout.metadata_path))
    return layout, lineage.load_run(store, nodes.pipeline_name(task.name), outcome.run_id)


def test_three_splits_train_bless_and_push_with_slices(nsmc_run):
    _, record = nsmc_run
    assert sorted(eval(record.nodes[nodes.EXAMPLE_GEN].output("examples").get("split_names"))) == sorted(SPLITS)
    for node in (nodes.TRANSFORM, nodes.TRAINER, nodes.EVALUATOR, nodes.PUSHER):
        assert record.nodes[node].state == "complete", node
    assert record.nodes[nodes.EVALUATOR].output("blessing").get("blessed") == 1
    by_slice = {m.slice: m.candidate
                for m in evaluation.load_slice_metrics(record.nodes[nodes.EVALUATOR].output("evaluation").uri)}
    assert by_slice["Overall"]["example_count"] == 64  # the test split only
    assert any(name.startswith("length_bucket=") for name in by_slice)
    assert any(name.startswith("label=") for name in by_slice)


def test_pushed_model_classifies_raw_korean_text(nsmc_run):
    layout, _ = nsmc_run
    model = tf.saved_model.load(sorted(glob.glob(os.path.join(layout.serving_root, "nsmc", "*")))[-1])
    rows = synthetic_reviews(40, seed=77) + [{"id": 0, "text": "", "label": 0},
                                             {"id": 1, "text": "처음 보는 낱말 뷁 👍", "label": 1}]
    examples = tf.constant([tf.train.Example(features=tf.train.Features(feature={
        "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[r["text"].encode()]))})).SerializeToString()
        for r in rows])
    probabilities = list(model.signatures["serving_default"](examples=examples).values())[0].numpy()
    assert probabilities.shape == (42, 2) and np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    accuracy = np.mean(probabilities[:40].argmax(axis=1) == np.array([r["label"] for r in rows[:40]]))
    assert accuracy >= 0.8
