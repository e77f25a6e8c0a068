"""A Beam RunInference model handler for the serving contract every task's SavedModel honours:

    serving_default(examples: serialized tf.Examples [batch]) -> {output_key: [batch, ...]}

The handler takes pre-batched input (RunInference with `.with_no_batching()`): each element is a
chunk of (key, serialized example) pairs, made by the reader (CSV) or by BatchElements (images),
and yields one PredictionResult per chunk: the keys, and the per-example outputs in their order.
Keeping a chunk as one Beam element makes Beam's per-element cost per batch instead of per row.
Each chunk goes through the signature in calls of at most `batch_size` examples. When the model
refuses a call (one example it cannot parse, e.g. an empty value of a feature it needs), that call
is run again one example at a time, so only the offending examples fail: their output is a
ModelError with the model's message, and the rest of the batch goes on.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from components.custom_ops import import_custom_ops
from models.common.contract import SERVING_SIGNATURE



LOAD_ERROR = "cannot load the SavedModel"


class ModelLoadError(RuntimeError):
    """The SavedModel does not load (damaged files, an op this process lacks); the message is one line
    starting with LOAD_ERROR, which survives the runner re-raising it."""


class ModelError:
    """The result of an example the model could not score: the model's message."""

    def __init__(self, message: str):
        self.message = message

    def __eq__(self, other) -> bool:
        return isinstance(other, ModelError) and other.message == self.message

    def __repr__(self) -> str:
        return f"ModelError({self.message!r})"


def short_tf_error(exc: BaseException) -> str:
    """The gist of a TensorFlow error, without graph node names and op suffixes."""
    message = (getattr(exc, "message", None) or str(exc) or type(exc).__name__).strip().splitlines()[0]
    message = re.sub(r"\{\{.*?\}\}\s*", "", message)
    message = re.sub(r"\s*\[Op:\w+\]( name: .*)?$", "", message)
    return message.strip()[:300]


class SavedModelHandler(ModelHandler[Tuple[Any, bytes], PredictionResult, Any]):
    """Chunks of (key, serialized tf.Example) -> PredictionResult(keys, [the SavedModel's
    `output_key` per example (a numpy array or scalar) or a ModelError]), calling the model on at
    most `batch_size` examples at a time. Use it pre-batched: `.with_no_batching()`."""

    def __init__(
        self,
        model_dir: str,
        output_key: str,
        batch_size: int = 256,
        custom_op_modules: Sequence[str] = (),
        signature: str = SERVING_SIGNATURE,
    ):
        super().__init__()
        self._model_dir = model_dir
        self._output_key = output_key
        self._batch_size = int(batch_size)
        self._custom_op_modules = tuple(custom_op_modules)
        self._signature = signature

    def load_model(self):
        import tensorflow as tf

        import_custom_ops(self._custom_op_modules)
        try:
            loaded = tf.saved_model.load(self._model_dir)
        except (OSError, ValueError, tf.errors.OpError) as exc:  # damaged files, a missing op
            raise ModelLoadError(f"{LOAD_ERROR} at {self._model_dir}: {short_tf_error(exc)}") from None
        if self._signature not in loaded.signatures:
            raise ValueError(
                f"{self._model_dir} has no {self._signature!r} signature (has: {', '.join(loaded.signatures)})"
            )
        function = loaded.signatures[self._signature]
        outputs = function.structured_outputs
        if self._output_key not in outputs:
            raise ValueError(
                f"the {self._signature!r} signature of {self._model_dir} has no output {self._output_key!r} "
                f"(has: {', '.join(outputs)})"
            )
        input_name = next(iter(function.structured_input_signature[1]))
        return _Model(loaded, function, input_name, self._output_key)

    def run_inference(self, batch: Sequence[Tuple[Any, bytes]], model: "_Model", inference_args: Optional[Dict[str, Any]] = None) -> Iterable[PredictionResult]:
        keys = tuple(key for key, _ in batch)
        examples = [example for _, example in batch]
        outputs: List[Any] = []
        for start in range(0, len(examples), self._batch_size):
            outputs.extend(predict_batch(model, examples[start:start + self._batch_size]))
        return [PredictionResult(keys, outputs)]

    def get_num_bytes(self, batch: Sequence[Tuple[Any, bytes]]) -> int:
        return sum(len(example) for _, example in batch)

    def get_metrics_namespace(self) -> str:
        return "mlops_batch_inference"


def predict_batch(model: "_Model", examples: Sequence[bytes]) -> List[Any]:
    """The model's output per example; one model call, or one per example when it refuses the batch."""
    import tensorflow as tf

    refused = (tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError, tf.errors.UnknownError)
    try:
        return list(model(examples))
    except refused as exc:
        if len(examples) == 1:
            return [ModelError(short_tf_error(exc))]
    outputs: List[Any] = []
    for example in examples:
        try:
            outputs.append(model([example])[0])
        except refused as exc:
            outputs.append(ModelError(short_tf_error(exc)))
    return outputs


class _Model:
    """The loaded SavedModel (kept alive) and its signature, called on a list of serialized examples."""

    def __init__(self, loaded, function, input_name: str, output_key: str):
        self.loaded = loaded
        self.function = function
        self.input_name = input_name
        self.output_key = output_key

    def __call__(self, examples: Sequence[bytes]) -> np.ndarray:
        import tensorflow as tf

        result = self.function(**{self.input_name: tf.constant(list(examples), dtype=tf.string)})
        values = result[self.output_key].numpy()
        if len(values) != len(examples):
            raise ValueError(f"the model returned {len(values)} {self.output_key!r} rows for {len(examples)} examples")
        return values
