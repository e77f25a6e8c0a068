"""Columns of the IMDB reviews data (data/reviews/imdb_train.csv: id, rating, label, text)."""

TEXT_KEY = "text"
LABEL_KEY = "label"  # 0 = neg, 1 = pos
CLASS_NAMES = ("neg", "pos")

TEXT_XF = "text_xf"
from models.common.contract import LABEL_XF  # noqa: E402,F401  (the transformed label)
LENGTH_BUCKET_XF = "length_bucket"

# Review length buckets (in words) for TFMA slicing.
LENGTH_BOUNDARIES = (100, 200, 400)
MODEL_FEATURES = (TEXT_XF,)
