"""Columns of the AG News data (data/news/{train,validation,test}/*.csv: topic, title, description)."""

TOPIC_KEY = "topic"  # the label: one of CLASS_NAMES, as text (slices read "topic=Sports")
LABEL_KEY = TOPIC_KEY
CLASS_NAMES = ("World", "Sports", "Business", "Sci/Tech")  # AG News class index 1..4, in order
TITLE_KEY = "title"
DESCRIPTION_KEY = "description"
TEXT_FEATURES = (TITLE_KEY, DESCRIPTION_KEY)  # what a client sends
CSV_COLUMNS = (TOPIC_KEY, TITLE_KEY, DESCRIPTION_KEY)

# Transformed features.
from models.common.contract import LABEL_XF  # noqa: E402,F401  (the transformed label: class id)
TOKENS_XF = "token_ids"  # int64 [batch, MAX_TOKENS]: vocabulary ids + 1 (0 = padding), OOV = vocabulary size + 1
TEXT_XF = "text_xf"  # the normalised title + description (the MiniLM profile tokenises it in the graph)
LENGTH_BUCKET_XF = "length_bucket"  # words of title + description, for TFMA slicing

VOCAB_NAME = "tokens"
# The vocabulary Transform learns on the train split: the most frequent tokens seen at least
# VOCAB_MIN_COUNT times, at most VOCAB_SIZE of them; everything else is the one OOV id.
VOCAB_SIZE = 20000
VOCAB_MIN_COUNT = 2
NUM_OOV_BUCKETS = 1
# Tokens a text keeps (title first, then description); AG News title + description is ~38 words on average.
MAX_TOKENS = 64

# Length buckets (words of title + description) for slicing.
LENGTH_BOUNDARIES = (25, 40)
