"""Columns of the NSMC data (data/nsmc/{train,validation,test}/*.csv: id, text, label) and their roles."""
from models.common.contract import LABEL_XF, TEST_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT  # noqa: F401

CSV_COLUMNS = ("id", "text", "label")
TEXT_KEY = "text"
LABEL_KEY = "label"  # 0 = negative (rated 1-4 of 10), 1 = positive (9-10)
CLASS_NAMES = ("neg", "pos")

# ExampleGen split -> folder under data/nsmc/: the 150,000-review train file (1 in 30 rows to
# validation) and the 50,000-review test file, which only the Evaluator reads.
SPLITS = {TRAIN_SPLIT: "train", VALIDATION_SPLIT: "validation", TEST_SPLIT: "test"}
FILES = {"train": "nsmc-train.csv", "validation": "nsmc-validation.csv", "test": "nsmc-test.csv"}
VALIDATION_EVERY = 30

TEXT_XF = "text_xf"
LENGTH_BUCKET_XF = "length_bucket"
# Review length buckets (in characters: Korean words carry their particles) for TFMA slicing.
LENGTH_BOUNDARIES = (20, 40, 80)
MODEL_FEATURES = (TEXT_XF,)
