"""What every task's code promises the pipeline: the transformed label's name and the serving
signatures of the exported SavedModel. One place, read by the trainers and by the pipeline layer."""

# Transformed feature holding the label (class id, or the regression target); every task's
# preprocessing_fn emits it and TFMA reads it as the label.
LABEL_XF = "label"

# serving_default(examples: serialized raw tf.Examples without the label) -> {PREDICTIONS: ...}
SERVING_SIGNATURE = "serving_default"
# transform_features(examples with the label) -> the transformed features (TFMA labels and slices).
TRANSFORM_SIGNATURE = "transform_features"
# The serving output of a classifier: float32 [batch, num_classes], in the task's class order.
PROBABILITIES = "probabilities"
