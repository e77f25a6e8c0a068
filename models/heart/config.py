"""The heart task: Cleveland heart disease (303 patients, disease yes/no), the Keras structured-data
example as a pipeline. Also the fastest end-to-end smoke task.

Transform: z-scores for age, trestbps, chol, thalach, oldpeak, slope; vocabularies (+1 OOV bucket)
for sex, cp, fbs, restecg, exang, ca and thal, one-hot encoded in the model.
Model: one-hot + numbers -> Dense(32, relu) -> Dropout(0.5) -> softmax (Keras 3, Adam 1e-3, batch 32).
No Tuner: with ~240 training rows a search would mostly fit the noise of the ~60-row eval split.
Budget: 400 steps (≈ 50 passes over the training rows, as in the Keras example), validated 10 times
with early stopping on the eval loss (patience 3, best weights restored).
Blessing: AUC ≥ 0.80 on the eval split and at most 0.03 below the latest blessed model (the eval
split has ~60 rows, so the AUC moves by a few hundredths between equally good models).
"""
from pipelines.config import ComponentResources, EvalSpec, TaskConfig
from models.heart import features as F

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
    eval_steps=2,
    custom_config={"hparams": {"batch_size": 32}, "checkpoints": 10, "patience": 3},
    eval=EvalSpec(
        metrics=("AUC", "BinaryAccuracy", "Precision", "Recall"),
        slices=((), ("sex",), ("cp",)),
        threshold_metric="AUC",
        min_value=0.80,
        max_regression=0.03,
    ),
    # A 303-row MLP needs no GPU node: small CPU requests only when compiled for Kubeflow.
    resources={"Trainer": ComponentResources(cpu="1", memory="2Gi")},
)
