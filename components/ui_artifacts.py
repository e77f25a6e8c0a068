"""Artifact types the Kubeflow Pipelines UI draws, as TFX artifact classes.

The KFP v2 frontend picks what it renders by the ML Metadata type name of a step's output
(frontend/src/components/viewers/MetricsVisualizations.tsx): `system.HTML` and `system.Markdown`
are read from the artifact's URI (one file) and shown inline; `system.Metrics` shows every custom
property as a scalar (and the run comparison lines them up); `system.ClassificationMetrics` draws
`confusionMatrix` ({annotationSpecs, rows}) and `confidenceMetrics` (ROC points). Each also needs
the launcher's `display_name` property, which every output gets. The launcher names the type
after the `title` of the output's instance schema (metadata/client.go SchemaToArtifactType), and
TFX's compiler writes a custom class's TYPE_NAME as that title, so these classes carry the
`system.*` names.

On the pod, TFX's entrypoint imports an artifact class by its schema title, which for these names
is not a module path: `CLASS_PATHS` maps them, and components.kfp_entrypoint registers it.
"""
from __future__ import annotations

from tfx import types


class HTML(types.Artifact):
    """A self-contained HTML page, the file at the artifact's URI."""

    TYPE_NAME = "system.HTML"


class Markdown(types.Artifact):
    """A Markdown document, the file at the artifact's URI."""

    TYPE_NAME = "system.Markdown"


class Metrics(types.Artifact):
    """Scalar metrics, one float custom property each."""

    TYPE_NAME = "system.Metrics"


class ClassificationMetrics(types.Artifact):
    """A confusion matrix and ROC points as the `confusionMatrix` / `confidenceMetrics` properties."""

    TYPE_NAME = "system.ClassificationMetrics"


UI_TYPES = (HTML, Markdown, Metrics, ClassificationMetrics)
# schema title -> importable class path, for TFX's entrypoint on the pod.
CLASS_PATHS = {cls.TYPE_NAME: f"{__name__}.{cls.__name__}" for cls in UI_TYPES}
