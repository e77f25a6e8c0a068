"""Columns of the STS benchmark data (data/sts/{train,dev,test}/sts-*.csv) and their roles."""
from models.common.contract import TEST_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT

# The importer writes these columns (the first seven tab-separated fields of the original files).
CSV_COLUMNS = ("genre", "filename", "year", "id", "score", "sentence1", "sentence2")
LABEL_KEY = "score"  # gold similarity 0..5
MAX_SCORE = 5.0
SENTENCE1_KEY = "sentence1"
SENTENCE2_KEY = "sentence2"
GENRE_KEY = "genre"  # slices: main-news / main-captions / main-forum(s)
# The `embed` serving signature reads this feature.
TEXT_KEY = "text"

# ExampleGen split name -> folder under data/sts/: the benchmark's own split. STS-B's dev set is the
# validation split the Trainer validates on; its test set is the one the Evaluator blesses and reports on.
SPLITS = {TRAIN_SPLIT: "train", VALIDATION_SPLIT: "dev", TEST_SPLIT: "test"}
SOURCE_FILES = {"train": "sts-train.csv", "dev": "sts-dev.csv", "test": "sts-test.csv"}

SENTENCE1_XF = "sentence1_xf"
SENTENCE2_XF = "sentence2_xf"
# score / 5, in [0, 1]
from models.common.contract import LABEL_XF  # noqa: E402,F401  (the transformed label)
MODEL_FEATURES = (SENTENCE1_XF, SENTENCE2_XF)
# Serving outputs.
SIMILARITY = "similarity"
EMBEDDING = "embedding"
