"""Columns of the KLUE STS data (data/sts_ko/{train,validation,test}/*.csv) and their roles."""
from models.common.contract import LABEL_XF, TEST_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT  # noqa: F401
# The pair contract (sentence columns, the embed signature's text, serving outputs), shared with
# the other similarity task.
from models.common.text.pairs import (EMBEDDING, MODEL_FEATURES, SENTENCE1_KEY, SENTENCE1_XF,  # noqa: F401
                                      SCORE_KEY, SENTENCE2_KEY, SENTENCE2_XF, SIMILARITY, TEXT_KEY)

# The importer writes these columns. source: the KLUE source of the pair (airbnb-rtt, policy-sampled,
# paraKQC-para, ...) on the official dev set; "train" on the training rows (the CSV export has none).
CSV_COLUMNS = ("source", "guid", "score", "sentence1", "sentence2")
LABEL_KEY = SCORE_KEY  # KLUE's real-label, 0..5
SOURCE_KEY = "source"  # slices
TRAIN_SOURCE = "train"

# ExampleGen split -> folder under data/sts_ko/. KLUE STS has no public test labels: its official dev
# set (519 pairs) is the test split only the Evaluator reads; validation is 1 in 20 training pairs.
SPLITS = {TRAIN_SPLIT: "train", VALIDATION_SPLIT: "validation", TEST_SPLIT: "test"}
FILES = {"train": "klue-sts-train.csv", "validation": "klue-sts-validation.csv", "test": "klue-sts-dev.csv"}
VALIDATION_EVERY = 20
