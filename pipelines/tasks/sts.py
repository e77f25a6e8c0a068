"""The sts task: SBERT-style sentence-embedding fine-tuning on the STS benchmark, starting from the
packaged all-MiniLM-L6-v2 weights (the shared BERT checkpoint, tokenizer and mean pooling).

Data: STS-B's own split (components.example_gen.presplit_csv_example_gen): train (5,749 pairs) to
train, dev (1,500) as the validation split the Trainer validates on, test (1,379) as the test split
the Evaluator alone reads (blessing, slices, the registry's metrics).
Model (models/sts/model.py): siamese BERT -> mean pooling -> cosine similarity; loss: squared error
between the cosine and score / 5; AdamW (weight decay 0.01) with 10 % linear warmup then linear decay.
Default budget: 4 epochs at batch 16 (1,440 steps; sentence-transformers' STS-B recipe), lr 2e-5.
No Tuner.
Evaluation (TFMA, custom metrics models/sts/metrics.py): Pearson and Spearman of the predicted
cosine against the gold score, overall and per genre. Blessed when test Spearman ≥ 0.83 (the untuned
checkpoint scores 0.820 on test: a blessed model must beat it) and at most 0.005 below the latest
blessed model.
"""
from pathlib import Path

from models.sts import features as F
from pipelines.config import ComponentResources, EvalSpec, TaskConfig

BATCH_SIZE = 16
EPOCHS = 4
TRAIN_PAIRS = 5749
STEPS_PER_EPOCH = -(-TRAIN_PAIRS // BATCH_SIZE)  # 360

METRICS_MODULE = "models.sts.metrics"

# Rows per STS benchmark file (readme.txt); None skips the check (tests use tiny files).
STS_EXPECTED_ROWS = {"train": 5749, "dev": 1500, "test": 1379}


def import_data(source_dir: Path, data_root: Path) -> Path:
    """STS benchmark sts-{train,dev,test}.csv -> data/sts/{train,dev,test}/sts-*.csv.

    The originals are tab-separated without a header or quoting, and some rows carry two extra
    licence/source fields. The output keeps the first seven fields (genre, filename, year, id,
    score, sentence1, sentence2) unchanged, as a comma-separated file with a header row and
    standard CSV quoting (what CsvExampleGen reads). Row counts are checked against the originals.
    """
    import csv


    source_dir = Path(source_dir)
    missing = [name for name in F.SOURCE_FILES.values() if not (source_dir / name).exists()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} not found in {source_dir} (expected the STS benchmark files)")
    out_dir = Path(data_root) / "sts"
    for folder, name in F.SOURCE_FILES.items():
        rows = []
        with open(source_dir / name, encoding="utf-8", newline="") as src:
            for line_no, line in enumerate(src, 1):
                line = line.rstrip("\n").rstrip("\r")
                if not line:
                    continue
                fields = line.split("\t")
                if len(fields) not in (7, 9):
                    raise ValueError(f"{source_dir / name}:{line_no}: expected 7 or 9 tab-separated fields, got {len(fields)}")
                rows.append(fields[:7])
        if STS_EXPECTED_ROWS and len(rows) != STS_EXPECTED_ROWS[folder]:
            raise ValueError(f"{source_dir / name}: {len(rows)} rows, expected {STS_EXPECTED_ROWS[folder]}")
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
        with open(out_dir / folder / name, "w", encoding="utf-8", newline="") as dst:
            writer = csv.writer(dst, lineterminator="\n")
            writer.writerow(F.CSV_COLUMNS)
            writer.writerows(rows)
    return out_dir


# `mlops registry reproduce`: how far a rebuilt version's OVERALL metrics may land from the
# registered ones. PROVISIONAL.
REPRODUCE_TOLERANCE = {"spearman": 0.005, "pearson": 0.005}

TASK = TaskConfig(
    name="sts",
    data_dir="sts",
    label_key=F.LABEL_KEY,
    class_names=(),  # a similarity score, not classes
    # The benchmark's own split: train/* -> train, dev/* -> validation, test/* -> test (no re-splitting).
    example_gen="components.example_gen.presplit_csv_example_gen",
    example_gen_args={"splits": {split: f"{folder}/*" for split, folder in F.SPLITS.items()}},
    preprocessing_fn="models.sts.preprocessing.preprocessing_fn",
    run_fn="models.sts.trainer.run_fn",
    tuner_fn=None,
    schema_file="models/sts/schema.pbtxt",
    train_steps=EPOCHS * STEPS_PER_EPOCH,
    eval_steps=-(-1500 // BATCH_SIZE),  # the whole dev split per validation
    custom_config={"hparams": {"batch_size": BATCH_SIZE, "max_seq_length": 64}, "checkpoints": EPOCHS},
    eval=EvalSpec(
        metrics=(f"{METRICS_MODULE}.SpearmanCorrelation", f"{METRICS_MODULE}.PearsonCorrelation"),
        slices=((), (F.GENRE_KEY,)),
        threshold_metric=f"{METRICS_MODULE}.SpearmanCorrelation",
        min_value=0.83,
        max_regression=0.005,
        positive_class_id=None,
        prediction_key=F.SIMILARITY,
    ),
    # 3 CPU / 12Gi: fits a dev g5.xlarge node (3.7 CPU, 13.6Gi allocatable, pipelines/kubeflow/cluster.py).
    resources={"Trainer": ComponentResources(cpu="3", memory="12Gi", gpu=1)},
    # The model tokenises in the graph with tensorflow-text ops.
    custom_op_modules=("tensorflow_text",),
    headline_metrics=("spearman", "pearson", "example_count"),
    # Model card (Registrar): what the model is for and where it must not be trusted.
    intended_use=(
        "Scores the semantic similarity of two English sentences (serving_default: the cosine of their "
        "all-MiniLM-L6-v2 embeddings, fine-tuned towards the STS-B gold score / 5); the embed signature gives "
        "the L2-normalised sentence embeddings, for semantic search or clustering of short English sentences."
    ),
    limitations=(
        "Fine-tuned on the 5,749 STS benchmark training pairs (news headlines, image captions, forum posts); test "
        "Spearman about 0.86 (dev about 0.89), lower on news and forums than on captions. The score is a cosine in [-1, 1], not a calibrated probability nor the 0-5 STS scale. "
        "Sentences are cut at 64 WordPiece tokens; English only; other domains (legal, medical, code) are "
        "untested. It inherits the pretrained checkpoint's biases. Not a paraphrase or plagiarism detector for "
        "decisions about people."
    ),
    reproduce_tolerance=REPRODUCE_TOLERANCE,
    importer=import_data,
)
