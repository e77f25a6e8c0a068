"""Columns of the STS benchmark data (data/sts/{train,dev,test}/sts-*.csv) and their roles."""
from models.common.contract import LABEL_XF, TEST_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT  # noqa: F401 (LABEL_XF: score / 5)
# The pair contract (sentence columns, the embed signature's text, serving outputs), shared with
# the other similarity task.
from models.common.text.pairs import (EMBEDDING, MODEL_FEATURES, SENTENCE1_KEY, SENTENCE1_XF,  # noqa: F401
                                      SCORE_KEY, SENTENCE2_KEY, SENTENCE2_XF, SIMILARITY, TEXT_KEY)

# The importer writes these columns (the first seven tab-separated fields of the original files).
CSV_COLUMNS = ("genre", "filename", "year", "id", "score", "sentence1", "sentence2")
LABEL_KEY = SCORE_KEY  # gold similarity 0..5
GENRE_KEY = "genre"  # slices: main-news / main-captions / main-forum(s)

# ExampleGen split name -> folder under data/sts/: the benchmark's own split. STS-B's dev set is the
# validation split the Trainer validates on; its test set is the one the Evaluator blesses and reports on.
SPLITS = {TRAIN_SPLIT: "train", VALIDATION_SPLIT: "dev", TEST_SPLIT: "test"}
SOURCE_FILES = {"train": "sts-train.csv", "dev": "sts-dev.csv", "test": "sts-test.csv"}
