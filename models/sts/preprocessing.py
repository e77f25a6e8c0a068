"""TF Transform for sts: the similarity tasks' shared one (models/common/text/pair_preprocessing.py:
sentences cleaned to valid UTF-8, the gold score scaled to [0, 1]), named from the task's folder."""
from models.common.text.pair_preprocessing import preprocessing_fn  # noqa: F401
