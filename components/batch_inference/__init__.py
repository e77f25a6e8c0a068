"""Batch inference with a registered SavedModel (`mlops predict`), on Beam's RunInference:

- `schema`   which raw features a serving request carries (the task's curated TFDV schema) and how
             a raw value becomes one;
- `readers`  raw input per form ("csv", "image_folder") -> serialized tf.Examples, and rejects;
- `handler`  the RunInference ModelHandler that batches examples into `serving_default`;
- `metrics`  accuracy / AUC against a label column;
- `pipeline` the Beam pipeline and the ordered output / rejects files.

Nothing here knows about tasks or the registry: the CLI (pipelines/cli_predict.py) passes the
model directory, the schema, the output key and the class names.
"""
from components.batch_inference.handler import LOAD_ERROR, ModelError, ModelLoadError, SavedModelHandler
from components.batch_inference.pipeline import ModelSpec, PredictOutcome, predict
from components.batch_inference.readers import CSV, IMAGE_FOLDER, INPUT_FORMS, InputError, Reject
from components.batch_inference.schema import EncodeError, ServingSchema, from_schema_file, infer_from_csv

__all__ = [
    "CSV", "EncodeError", "IMAGE_FOLDER", "INPUT_FORMS", "InputError", "LOAD_ERROR", "ModelError", "ModelLoadError",
    "ModelSpec",
    "PredictOutcome", "Reject", "SavedModelHandler", "ServingSchema", "from_schema_file",
    "infer_from_csv", "predict",
]
