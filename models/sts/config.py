"""The sts task: SBERT-style sentence-embedding fine-tuning on the STS benchmark, starting from the
packaged all-MiniLM-L6-v2 weights (the reviews task's checkpoint, tokenizer and mean pooling).

Data: STS-B's own split (models/sts/ingest.py): train (5,749 pairs) to train, dev (1,500) as the
"eval" split the Trainer validates on and the Evaluator blesses on, test (1,379) left for the final
report (bench/sts.py), as the benchmark's readme asks.
Model (models/sts/model.py): siamese BERT -> mean pooling -> cosine similarity; loss: squared error
between the cosine and score / 5; AdamW (weight decay 0.01) with 10 % linear warmup then linear decay.
Default budget: 4 epochs at batch 16 (1,440 steps; sentence-transformers' STS-B recipe), lr 2e-5.
No Tuner.
Evaluation (TFMA, custom metrics models/sts/metrics.py): Pearson and Spearman of the predicted
cosine against the gold score, overall and per genre. Blessed when dev Spearman ≥ 0.87 (the untuned
checkpoint scores 0.867 on dev: a blessed model must beat it) and at most 0.005 below the latest
blessed model.
"""
from pipelines.config import ComponentResources, EvalSpec, TaskConfig
from models.sts import features as F

BATCH_SIZE = 16
EPOCHS = 4
TRAIN_PAIRS = 5749
STEPS_PER_EPOCH = -(-TRAIN_PAIRS // BATCH_SIZE)  # 360

METRICS_MODULE = "models.sts.metrics"

TASK = TaskConfig(
    name="sts",
    data_dir="sts",
    label_key=F.LABEL_KEY,
    class_names=(),  # a similarity score, not classes
    example_gen="models.sts.ingest.example_gen",
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
        min_value=0.87,
        max_regression=0.005,
        positive_class_id=None,
        prediction_key=F.SIMILARITY,
    ),
    resources={"Trainer": ComponentResources(cpu="4", memory="16Gi", gpu=1)},
)
