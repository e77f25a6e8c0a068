"""Column names and roles of the census (UCI Adult) data."""

LABEL_KEY = "income_bracket"
CLASS_NAMES = ("<=50K", ">50K")
WEIGHT_KEY = "fnlwgt"

NUMERIC_FEATURES = ("age", "education_num", "capital_gain", "capital_loss", "hours_per_week")
# Heavy-tailed counts are log1p-transformed before the z-score.
LOG_FEATURES = ("capital_gain", "capital_loss")
CATEGORICAL_FEATURES = (
    "workclass",
    "education",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "gender",
    "native_country",
)
# Column order of the CSV in data/census/ (the UCI order).
CSV_COLUMNS = (
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "gender", "capital_gain", "capital_loss", "hours_per_week",
    "native_country", LABEL_KEY,
)

# Age buckets used for TFMA slicing ("age_bucket" is a transformed feature).
AGE_BOUNDARIES = (25, 35, 45, 55, 65)

# Names of transformed features.
from models.common.contract import LABEL_XF  # noqa: E402,F401  (the transformed label)
WEIGHT_XF = "weight"
AGE_BUCKET_XF = "age_bucket"


def xf(feature: str) -> str:
    """Name of a transformed feature (kept apart from raw names so TFMA slices on raw values)."""
    return f"{feature}_xf"


# Numeric columns are also quantile-bucketized into NUM_BINS tokens, so the transformer attends over
# them too (the z-scored values still feed the MLP head).
NUM_BINS = 16


def bin_name(feature: str) -> str:
    return xf(f"{feature}_bin")


MODEL_CATEGORICAL = tuple(xf(n) for n in CATEGORICAL_FEATURES) + tuple(bin_name(n) for n in NUMERIC_FEATURES)
MODEL_NUMERIC = tuple(xf(n) for n in NUMERIC_FEATURES)
MODEL_FEATURES = MODEL_CATEGORICAL + MODEL_NUMERIC


def vocab_name(feature: str) -> str:
    """Name of the TFT vocabulary file of a categorical feature."""
    return f"{feature}_vocab"
