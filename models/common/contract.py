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

# The splits ExampleGen writes, in this order. Selection (the Tuner's objective, the Trainer's
# validation passes, early stopping, checkpoint choice) reads VALIDATION only; TEST is read by the
# Evaluator alone (gates, slices, baseline comparison), so its numbers are untouched by selection.
TRAIN_SPLIT = "train"
VALIDATION_SPLIT = "validation"
TEST_SPLIT = "test"
SPLITS = (TRAIN_SPLIT, VALIDATION_SPLIT, TEST_SPLIT)
