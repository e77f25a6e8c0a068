"""The news pipeline end to end on 400 synthetic articles (four topics): the product's first model
with more than two classes, through blessing, push, registration, `mlops slices`, the report and
`mlops predict`. One real `mlops run news` process (Tuner: one tiny trial) shared by every test."""
import csv
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from components import evaluation
from models.news import features as F
from pipelines import cli, nodes
from tests.news_data import synthetic_articles, write_news_csv, write_news_data
from tests.records import serialized_examples

pytestmark = pytest.mark.e2e

NEWS_BUDGET = ["--max-trials", "1", "--tuner-steps", "10", "--train-steps", "60", "--eval-steps", "2"]


@pytest.fixture(scope="session")
def news_run(tmp_path_factory):
    """(home, exit status, run record, finished process) of one `mlops run news` as a user runs it."""
    from tests.records import latest_run

    root = tmp_path_factory.mktemp("news")
    write_news_data(root / "data", train=240, validation=40, test=120)
    home = root / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "MLFLOW_TRACKING_URI")}
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "news", "--home", str(home),
                           "--data-root", str(root / "data")] + NEWS_BUDGET, capture_output=True, text=True,
                          env=env, cwd=root)
    return home, done.returncode, latest_run(home, "mlops-news"), done


@pytest.fixture
def private_home(news_run, tmp_path, no_server):
    """A copy of the run's registry (the shared one stays as the pipeline left it)."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(news_run[0] / "mlflow.db", home / "mlflow.db")
    return home


def test_a_four_class_model_is_tuned_blessed_pushed_and_registered(news_run):
    home, status, record, done = news_run
    assert status == 0, done.stdout + done.stderr
    assert done.stderr == "" and "Traceback" not in done.stdout
    for node in (nodes.TRANSFORM, nodes.TUNER, nodes.TRAINER, nodes.EVALUATOR, nodes.INFRA_VALIDATOR,
                 nodes.PUSHER, nodes.REGISTRAR):
        assert record.nodes[node].state == "complete", node
    assert record.nodes[nodes.EVALUATOR].output("blessing").get("blessed") == 1
    assert record.nodes[nodes.PUSHER].output("pushed_model").get("pushed") == 1
    assert record.nodes[nodes.REGISTRAR].output("registered_model").get("model_version") == "1"
    assert "registered as news v1" in done.stdout and "sparse_categorical_accuracy=" in done.stdout
    assert "macro_f1_score=" in done.stdout


def test_evaluation_has_per_class_and_macro_metrics_sliced_by_topic_and_length(news_run):
    _, _, record, _ = news_run
    uri = record.nodes[nodes.EVALUATOR].output("evaluation").uri
    by_slice = {m.slice: m.candidate for m in evaluation.load_slice_metrics(uri)}
    assert {f"topic={name}" for name in F.CLASS_NAMES} | {"Overall"} <= set(by_slice)
    assert any(name.startswith("length_bucket=") for name in by_slice)
    overall = by_slice["Overall"]
    assert overall["sparse_categorical_accuracy"] > 0.6 and overall["example_count"] == 120
    for metric in ("precision", "recall", "f1_score"):
        assert {f"{metric}/class_{i}" for i in range(4)} <= set(overall)
    assert {"macro_precision", "macro_recall", "macro_f1_score"} <= set(overall)
    # On the Sports slice, recall is defined for Sports only.
    sports = by_slice["topic=Sports"]
    assert not np.isnan(sports["recall/class_1"]) and np.isnan(sports["recall/class_0"])
    counts = evaluation.load_confusion_matrix(uri, 4)
    assert len(counts) == 4 and sum(map(sum, counts)) == 120 and all(sum(row) == 30 for row in counts)
    gates = [t.text() for t in evaluation.load_thresholds(uri)]
    assert "sparse_categorical_accuracy >= 0.85 on Overall" in gates


def test_slices_and_report_show_four_classes_and_the_confusion_matrix(news_run, capsys):
    home, _, _, _ = news_run
    assert cli.main(["slices", "news", "--home", str(home), "--metric", "recall/class_2"]) == 0
    out = capsys.readouterr().out
    assert "topic=Sci/Tech" in out and "recall/class_2" in out
    assert cli.main(["report", "news", "--home", str(home)]) == 0
    path = capsys.readouterr().out.strip().split("report: ")[-1].strip()
    html = open(path, encoding="utf-8").read()
    assert "Confusion matrix" in html
    for name in F.CLASS_NAMES:
        assert f'<th class="num">{name}</th>' in html


def test_pushed_model_takes_raw_text_with_unknown_words_and_empty_text(news_run):
    home, _, _, _ = news_run
    [version] = [name for name in os.listdir(home / "serving" / "news") if not name.startswith(".")]
    model = tf.saved_model.load(str(home / "serving" / "news" / version))
    rows = synthetic_articles(40, seed=99)
    rows[0][F.DESCRIPTION_KEY] = "zyxwv qwertyuiop"  # nothing in the vocabulary
    rows[1][F.TITLE_KEY], rows[1][F.DESCRIPTION_KEY] = "", ""  # no text at all
    probs = model.signatures["serving_default"](
        examples=tf.constant(serialized_examples(rows, drop={F.TOPIC_KEY})))["probabilities"].numpy()
    assert probs.shape == (40, 4) and np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    labels = np.array([F.CLASS_NAMES.index(r[F.TOPIC_KEY]) for r in rows])
    assert (np.argmax(probs, axis=1) == labels)[2:].mean() > 0.6


def test_predict_writes_four_probability_columns_and_accuracy(news_run, private_home, tmp_path, capsys):
    write_news_csv(tmp_path / "in.csv", synthetic_articles(60, seed=12))
    status = cli.main(["predict", "news:1", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "o.csv"),
                       "--label-column", F.TOPIC_KEY, "--home", str(private_home)])
    out, err = capsys.readouterr()
    assert status == 0, err
    with open(tmp_path / "o.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 60
    assert [c for c in rows[0] if c.startswith("probability_")] == [f"probability_{n}" for n in F.CLASS_NAMES]
    for row in rows:
        assert abs(sum(float(row[f"probability_{n}"]) for n in F.CLASS_NAMES) - 1.0) < 1e-4
    accuracy = float(out.split("accuracy ")[1].split()[0])
    assert accuracy > 0.6


def test_model_card_lists_the_per_class_metrics_and_gates(news_run, private_home, capsys):
    assert cli.main(["registry", "card", "news:1", "--home", str(private_home)]) == 0
    card = capsys.readouterr().out
    for text in ("sparse_categorical_accuracy", "recall/class_3", "macro_f1_score", "topic=World", "Sci/Tech"):
        assert text in card, text
