"""Columns of the STS benchmark data (data/sts/{train,dev,test}/sts-*.csv) and their roles."""

# The importer writes these columns (the first seven tab-separated fields of the original files).
CSV_COLUMNS = ("genre", "filename", "year", "id", "score", "sentence1", "sentence2")
LABEL_KEY = "score"  # gold similarity 0..5
MAX_SCORE = 5.0
SENTENCE1_KEY = "sentence1"
SENTENCE2_KEY = "sentence2"
GENRE_KEY = "genre"  # slices: main-news / main-captions / main-forum(s)
# The `embed` serving signature reads this feature.
TEXT_KEY = "text"

# ExampleGen split name -> folder under data/sts/. "eval" is STS-B's dev set: the Trainer validates
# on it and the Evaluator blesses on it; "test" is kept for the final report (bench/sts.py).
SPLITS = {"train": "train", "eval": "dev", "test": "test"}
SOURCE_FILES = {"train": "sts-train.csv", "dev": "sts-dev.csv", "test": "sts-test.csv"}

SENTENCE1_XF = "sentence1_xf"
SENTENCE2_XF = "sentence2_xf"
# score / 5, in [0, 1]
from models.common.contract import LABEL_XF  # noqa: E402,F401  (the transformed label)
MODEL_FEATURES = (SENTENCE1_XF, SENTENCE2_XF)
# Serving outputs.
SIMILARITY = "similarity"
EMBEDDING = "embedding"
