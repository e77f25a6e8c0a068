"""The heart task: Cleveland heart disease (303 patients, disease yes/no), the Keras structured-data
example as a pipeline. Also the fastest end-to-end smoke task.

Transform: z-scores for age, trestbps, chol, thalach, oldpeak, slope; vocabularies (+1 OOV bucket)
for sex, cp, fbs, restecg, exang, ca and thal, one-hot encoded in the model.
Model: one-hot + numbers -> Dense(32, relu) -> Dropout(0.5) -> softmax (Keras 3, Adam 1e-3, batch 32).
Splits (hash of the row, 3:1:1): train 169 / validation 61 / test 73 rows.
No Tuner: with ~170 training rows a search would mostly fit the noise of the 61-row validation split.
Budget: 400 steps (≈ 50 passes over the training rows, as in the Keras example), validated 10 times
with early stopping on the validation loss (patience 3, best weights restored).
Blessing: AUC ≥ 0.80 on the test split and at most 0.03 below the latest blessed model (the test
split has 73 rows, so the AUC moves by a few hundredths between equally good models).
"""
from pathlib import Path

from models.heart import features as F
from pipelines.config import ComponentResources, EvalSpec, TaskConfig

def import_data(source_dir: Path, data_root: Path) -> Path:
    """Cleveland heart.csv (Keras example, 303 rows) -> data/heart/heart.csv, bytes unchanged.

    The header must be the 14 expected columns; each row must have 14 values.
    """
    import shutil


    source = Path(source_dir) / "heart.csv"
    if not source.exists():
        raise FileNotFoundError(f"{source} not found (expected the 303-row Cleveland heart.csv)")
    columns = list(F.CSV_COLUMNS)
    with open(source, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
        if header != columns:
            raise ValueError(f"{source}: header {header} is not {columns}")
        for line_no, line in enumerate(f, 2):
            if line.strip() and len(line.strip().split(",")) != len(columns):
                raise ValueError(f"{source}:{line_no}: expected {len(columns)} values")
    out_dir = Path(data_root) / "heart"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "heart.csv"
    shutil.copyfile(source, target)
    return target


# `mlops registry reproduce`: how far a rebuilt version's OVERALL metrics may land from the
# registered ones. PROVISIONAL.
REPRODUCE_TOLERANCE = {"auc": 0.02, "binary_accuracy": 0.03, "precision": 0.06, "recall": 0.06}

TASK = TaskConfig(
    name="heart",
    data_dir="heart",
    label_key=F.LABEL_KEY,
    class_names=F.CLASS_NAMES,
    preprocessing_fn="models.heart.preprocessing.preprocessing_fn",
    run_fn="models.heart.trainer.run_fn",
    tuner_fn=None,
    schema_file="models/heart/schema.pbtxt",
    train_steps=400,
    eval_steps=2,  # 2 × 32 ≥ the 61 validation rows
    split_ratio=(3, 1, 1),
    custom_config={"hparams": {"batch_size": 32}, "checkpoints": 10, "early_stopping_patience": 3},
    eval=EvalSpec(
        metrics=("AUC", "BinaryAccuracy", "Precision", "Recall"),
        slices=((), ("sex",), ("cp",)),
        threshold_metric="AUC",
        min_value=0.80,
        max_regression=0.03,
    ),
    # A 303-row MLP needs no GPU node: small CPU requests only when compiled for Kubeflow.
    resources={"Trainer": ComponentResources(cpu="1", memory="2Gi")},
    # Model card (Registrar): what the model is for and where it must not be trusted.
    intended_use=(
        "Estimates the probability of heart disease (target = 1) from 13 clinical measurements (age, sex, chest "
        "pain type, blood pressure, cholesterol, ECG and exercise-test results, thal) of the Cleveland "
        "heart-disease data, as in the Keras structured-data example. For teaching and as the fastest end-to-end "
        "smoke task of the pipeline."
    ),
    limitations=(
        "Only 303 patients (83 with disease) from one clinic (the Cleveland Clinic data of the UCI heart-disease "
        "collection), about two thirds of them men; the test split has 73 rows, so every metric is uncertain by "
        "several hundredths, and the per-slice metrics (sex, chest-pain type; about a third of the rows are women) "
        "even more. "
        "The copy used is the R package tfdatasets' `hearts` table, with two odd thal codes ('1', '2'). Not a "
        "medical device: must not be used for diagnosis, triage or any decision about a patient."
    ),
    reproduce_tolerance=REPRODUCE_TOLERANCE,
    importer=import_data,
)
