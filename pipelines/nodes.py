"""The one owner of pipeline naming and node ids: the factory builds nodes with these ids and
everything that reads runs back (summary, `mlops runs`, report, benchmarks, tests) looks them up
here. Importing it is cheap (no TFX)."""
from __future__ import annotations

from typing import Optional

PIPELINE_PREFIX = "mlops-"

EXAMPLE_GEN = "ExampleGen"
STATISTICS_GEN = "StatisticsGen"
SCHEMA_GEN = "SchemaGen"
EXAMPLE_VALIDATOR = "ExampleValidator"
TRANSFORM = "Transform"
TUNER = "Tuner"
TRAINER = "Trainer"
BASELINE = "Baseline"
EVALUATOR = "Evaluator"
INFRA_VALIDATOR = "InfraValidator"
PUSHER = "Pusher"
REGISTRAR = "Registrar"
# Kubeflow only: materialises the package's DVC data version before ExampleGen reads it.
DATA_SNAPSHOT = "DataSnapshot"
# Kubeflow only: the run's report, summary and metrics for the Kubeflow UI, after the Evaluator.
RUN_SUMMARY = "RunSummary"

# Pipeline order, for tables; a run may lack some (no Tuner, no baseline).
NODE_ORDER = (
    BASELINE, EXAMPLE_GEN, STATISTICS_GEN, SCHEMA_GEN, EXAMPLE_VALIDATOR, TRANSFORM, TUNER, TRAINER,
    EVALUATOR, INFRA_VALIDATOR, PUSHER, REGISTRAR,
)


def pipeline_name(task: str) -> str:
    """The pipeline (and MLflow experiment) name of a task: mlops-<task>, with `_` as `-`: Kubeflow
    pipeline names allow [a-z0-9-] only, and a task's name is a Python module name, which never has
    a `-`, so the mapping is one to one (sts_ko -> mlops-sts-ko)."""
    return PIPELINE_PREFIX + task.replace("_", "-")


def task_of(pipeline: str) -> Optional[str]:
    """The task a pipeline name belongs to, None for a pipeline this project did not name."""
    return pipeline[len(PIPELINE_PREFIX):].replace("-", "_") if pipeline.startswith(PIPELINE_PREFIX) else None
