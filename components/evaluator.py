"""TFX's Evaluator, with the custom TensorFlow ops our SavedModels may use registered first.

The reviews model tokenises in the graph with tensorflow-text ops; a fresh process (e.g. an
Evaluator container on Kubeflow) cannot load that SavedModel until tensorflow_text is imported.
"""
from tfx.components import Evaluator as TfxEvaluator
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec


class CustomOpsExecutor(evaluator_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties):
        import tensorflow_text  # noqa: F401  (registers the WordPiece/normalisation ops)

        return super().Do(input_dict, output_dict, exec_properties)


class Evaluator(TfxEvaluator):
    """Same inputs, outputs and id as TFX's Evaluator."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(CustomOpsExecutor)
