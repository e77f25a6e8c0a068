"""The news task: AG News topic classification (World, Sports, Business, Sci/Tech), four classes.

Data (`mlops data import news --source DIR` with AG News' train_sample_8000.csv and test.csv):
the 8,000-article train sample (2,000 per class; it carries the description only, no title) is
split by a hash of the text (SHA-256 mod 10 == 0 -> validation) into train (7,241) and validation
(759), which the Tuner and the Trainer read; AG News' own test set (7,600 articles, 1,900 per
class, title + description) is the test split the Evaluator alone reads
(components.example_gen.presplit_csv_example_gen: no re-splitting).
Transform (models/news/preprocessing.py) normalises title + description, learns the vocabulary on
the train split (at most 20,000 tokens seen twice or more; the rest share one OOV id) and writes
64 token ids per article, so the served model takes the raw text.
Default profile: a Transformer trained from scratch (models/news/model.py: token + position
embeddings, encoder blocks, masked mean pooling, dropout, softmax; a seed ensemble of five served as
their average, models/common/ensemble.py), Keras Tuner (one network), Bayesian search,
objective validation loss, first trial = the defaults (model.DEFAULT_HPARAMS):
  embedding_dim   32 | 64 | 128          (default 64)
  num_heads       2 | 4                  (default 4)
  ff_dim          64 | 128 | 256         (default 128)
  num_blocks      1 .. 2                 (default 1)
  dropout         0.0 .. 0.4, step 0.1   (default 0.3)
  learning_rate   3e-4 .. 3e-3, log      (default 5e-4, AdamW, weight decay 1e-4)
Profile "minilm" (`--profile minilm`): the packaged all-MiniLM-L6-v2 encoder that reviews ships,
fine-tuned on the same splits (models/news/minilm.py; no Tuner).
Evaluation: accuracy; precision, recall and F1 per class (one-vs-rest) and their macro average; the
multi-class confusion matrix; slices by topic and by length. Blessed when test accuracy >= 0.85 and
at most 0.01 below the baseline's, and no topic's recall is more than 0.03 below the baseline's.
"""
import dataclasses
from pathlib import Path

from models.news import features as F
from pipelines.config import ClassGate, ComponentResources, EvalSpec, TaskConfig

# Validation: the rows whose text hashes to bucket 0 of VALIDATION_BUCKETS (759 of the 8,000).
VALIDATION_BUCKETS = 10
SOURCE_FILES = {"train": "train_sample_8000.csv", "test": "test.csv"}


def _bucket(text: str) -> int:
    import hashlib

    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % VALIDATION_BUCKETS


def import_data(source_dir: Path, data_root: Path) -> Path:
    """AG News train_sample_8000.csv (label 1-4, content) and test.csv (class 1-4, title,
    description; no header) -> data/news/{train,validation,test}/news.csv with a header row
    topic,title,description (topic: the class name of classes.txt' order). Texts are unchanged."""
    import csv

    source_dir = Path(source_dir)
    missing = [name for name in SOURCE_FILES.values() if not (source_dir / name).exists()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} not found in {source_dir} (expected AG News files)")

    def topic(index: str, where: str) -> str:
        if not index.strip().isdigit() or not 1 <= int(index) <= len(F.CLASS_NAMES):
            raise ValueError(f"{where}: class index {index!r} is not 1-{len(F.CLASS_NAMES)}")
        return F.CLASS_NAMES[int(index) - 1]

    rows = {"train": [], "validation": [], "test": []}
    with open(source_dir / SOURCE_FILES["train"], encoding="utf-8", newline="") as src:
        for line_no, record in enumerate(csv.DictReader(src), 2):
            row = (topic(record["label"], f"{SOURCE_FILES['train']}:{line_no}"), "", record["content"])
            rows["validation" if _bucket(record["content"]) == 0 else "train"].append(row)
    with open(source_dir / SOURCE_FILES["test"], encoding="utf-8", newline="") as src:
        for line_no, record in enumerate(csv.reader(src), 1):
            if len(record) != 3:
                raise ValueError(f"{SOURCE_FILES['test']}:{line_no}: expected 3 fields, got {len(record)}")
            rows["test"].append((topic(record[0], f"{SOURCE_FILES['test']}:{line_no}"), record[1], record[2]))
    out_dir = Path(data_root) / "news"
    for split, split_rows in rows.items():
        (out_dir / split).mkdir(parents=True, exist_ok=True)
        with open(out_dir / split / "news.csv", "w", encoding="utf-8", newline="") as dst:
            writer = csv.writer(dst, lineterminator="\n")
            writer.writerow(F.CSV_COLUMNS)
            writer.writerows(split_rows)
    return out_dir


# `mlops registry reproduce`: how far a rebuilt version's OVERALL metrics may land. PROVISIONAL.
REPRODUCE_TOLERANCE = {"sparse_categorical_accuracy": 0.01}

# Top-1 per-class and macro metrics (the class with the highest probability is the prediction).
METRICS = "models.common.multiclass_metrics"

EVAL = EvalSpec(
    # (the multi-class confusion matrix plot comes with every classifier of more than two classes)
    metrics=("SparseCategoricalAccuracy", f"{METRICS}.MacroAverages"),
    slices=((), (F.TOPIC_KEY,), (F.LENGTH_BUCKET_XF,)),
    threshold_metric="SparseCategoricalAccuracy",
    min_value=0.85,
    max_regression=0.01,
    positive_class_id=None,  # four classes: no single positive class
    class_metrics=tuple(f"{METRICS}.{name}" for name in ("TopOnePrecision", "TopOneRecall", "TopOneF1Score")),
    class_gate=ClassGate(f"{METRICS}.TopOneRecall", max_regression=0.03),
)

TASK = TaskConfig(
    name="news",
    data_dir="news",
    label_key=F.LABEL_KEY,
    class_names=F.CLASS_NAMES,
    example_gen="components.example_gen.presplit_csv_example_gen",
    example_gen_args={"splits": {"train": "train/*", "validation": "validation/*", "test": "test/*"}},
    preprocessing_fn="models.news.preprocessing.preprocessing_fn",
    run_fn="models.news.trainer.run_fn",
    tuner_fn="models.news.tuner.tuner_fn",
    schema_file="models/news/schema.pbtxt",
    train_steps=1500,  # batch 64: ~13 passes over the 7,241 training articles (early stopping: models/news/trainer.py)
    eval_steps=13,  # 13 x 64 >= the 759 validation articles: each validation pass sees all of them
    tuner_max_trials=4,
    tuner_train_steps=300,
    eval=EVAL,
    headline_metrics=("sparse_categorical_accuracy", "macro_f1_score", "example_count"),
    resources={
        "Tuner": ComponentResources(cpu="3", memory="12Gi"),
        "Trainer": ComponentResources(cpu="3", memory="12Gi"),
    },
    intended_use=(
        "Sorts an English news article into one of four topics (World, Sports, Business, Sci/Tech) from its raw "
        "title and description. A benchmark and teaching model for multi-class text classification."
    ),
    limitations=(
        "Trained on 7,241 AG News descriptions (2004-2005 English news wires; no titles) and tested on the 7,600 "
        "AG News test articles: other periods, sources, languages and topics outside the four are out of its "
        "domain, and it always answers one of the four. Only the first 64 tokens are read; words outside the "
        "learnt vocabulary are one unknown token. Not for moderation or decisions about people."
    ),
    reproduce_tolerance=REPRODUCE_TOLERANCE,
    importer=import_data,
)

MINILM_STEPS = 2 * 7241 // 32  # two passes over the training articles at batch 32 (452 steps)

PROFILES = {
    "default": TASK,
    "minilm": dataclasses.replace(
        TASK,
        run_fn="models.news.minilm.run_fn",
        tuner_fn=None,
        train_steps=MINILM_STEPS,
        eval_steps=24,  # 24 x 32 >= the 759 validation articles
        custom_config={"hparams": {"max_seq_length": 96, "batch_size": 32}, "checkpoints": 3},
        resources={"Trainer": ComponentResources(cpu="3", memory="12Gi", gpu=1)},
        custom_op_modules=("tensorflow_text",),
    ),
}
