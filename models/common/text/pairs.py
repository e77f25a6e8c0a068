"""The sentence-pair contract of the similarity tasks (sts, sts_ko), owned here so their data,
Transform, model and serving agree: the raw and transformed sentence columns, the text the `embed`
signature reads, the two serving outputs and the gold score's column and scale."""
SENTENCE1_KEY = "sentence1"
SENTENCE2_KEY = "sentence2"
TEXT_KEY = "text"  # the `embed` serving signature reads this feature
SENTENCE1_XF = "sentence1_xf"
SENTENCE2_XF = "sentence2_xf"
MODEL_FEATURES = (SENTENCE1_XF, SENTENCE2_XF)
SIMILARITY = "similarity"
EMBEDDING = "embedding"
SCORE_KEY = "score"  # the gold similarity, 0..5 in both datasets (STS-B, KLUE STS real-label)
MAX_SCORE = 5.0
