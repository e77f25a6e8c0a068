"""Columns of the KLUE STS data (data/sts_ko/{train,validation,test}/*.csv) and their roles."""
from models.common.contract import LABEL_XF, TEST_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT  # noqa: F401

# The importer writes these columns. source: the KLUE source of the pair (airbnb-rtt, policy-sampled,
# paraKQC-para, ...) on the official dev set; "train" on the training rows (the CSV export has none).
CSV_COLUMNS = ("source", "guid", "score", "sentence1", "sentence2")
LABEL_KEY = "score"  # KLUE's real-label, 0..5
MAX_SCORE = 5.0
SENTENCE1_KEY = "sentence1"
SENTENCE2_KEY = "sentence2"
SOURCE_KEY = "source"  # slices
TRAIN_SOURCE = "train"
# The `embed` serving signature reads this feature.
TEXT_KEY = "text"

# ExampleGen split -> folder under data/sts_ko/. KLUE STS has no public test labels: its official dev
# set (519 pairs) is the test split only the Evaluator reads; validation is 1 in 20 training pairs.
SPLITS = {TRAIN_SPLIT: "train", VALIDATION_SPLIT: "validation", TEST_SPLIT: "test"}
FILES = {"train": "klue-sts-train.csv", "validation": "klue-sts-validation.csv", "test": "klue-sts-dev.csv"}
VALIDATION_EVERY = 20

SENTENCE1_XF = "sentence1_xf"
SENTENCE2_XF = "sentence2_xf"
MODEL_FEATURES = (SENTENCE1_XF, SENTENCE2_XF)
# Serving outputs.
SIMILARITY = "similarity"
EMBEDDING = "embedding"
