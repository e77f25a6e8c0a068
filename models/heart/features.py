"""Columns of the Cleveland heart-disease data (data/heart/heart.csv, 303 rows) and their roles.

Roles follow the Keras "structured data classification from scratch" example: integer-coded and
string categoricals are one-hot encoded, the other columns are normalised numbers.
"""

LABEL_KEY = "target"  # 1 = heart disease
CLASS_NAMES = ("no_disease", "disease")

CSV_COLUMNS = (
    "age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak",
    "slope", "ca", "thal", LABEL_KEY,
)

NUMERIC_FEATURES = ("age", "trestbps", "chol", "thalach", "oldpeak", "slope")
INT_CATEGORICAL_FEATURES = ("sex", "cp", "fbs", "restecg", "exang", "ca")
STRING_CATEGORICAL_FEATURES = ("thal",)
CATEGORICAL_FEATURES = INT_CATEGORICAL_FEATURES + STRING_CATEGORICAL_FEATURES
# Raw columns holding a float (the others are int64 or, for thal, bytes).
FLOAT_FEATURES = ("oldpeak",)

from models.common.contract import LABEL_XF  # noqa: E402,F401  (the transformed label)
NUM_OOV_BUCKETS = 1


def xf(feature: str) -> str:
    """Transformed feature name (raw names stay free for TFMA slicing on raw values)."""
    return f"{feature}_xf"


def vocab_name(feature: str) -> str:
    return f"{feature}_vocab"


MODEL_NUMERIC = tuple(xf(n) for n in NUMERIC_FEATURES)
MODEL_CATEGORICAL = tuple(xf(n) for n in CATEGORICAL_FEATURES)
MODEL_FEATURES = MODEL_CATEGORICAL + MODEL_NUMERIC
