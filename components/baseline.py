"""Baseline: the registered model a candidate must beat, resolved from the model registry.

The model to beat is the version behind a registry alias (`production` by default), else the newest
blessed registered version, else none (the task's first model). The component hands the Evaluator
that version's SavedModel as a Model artifact and the ExampleValidator the statistics of the data
it was trained on (the drift baseline), both copied into its own outputs so every orchestrator
(local, Kubeflow) sees ordinary artifacts (hard-linked on one local filesystem, so the copies of
every run cost no disk space beyond the pushed version's own files). It is a plain container step on Kubeflow, unlike TFX's
Resolver, which the open-source KFP backend refuses.

Both outputs carry `baseline_version` (0: no baseline) and `baseline` ("census v3 (census@production)"
or "none: ..."); the Evaluator then compares against nothing and only value thresholds gate. A
registry that cannot be read, or a baseline whose files are gone, fails the step: no candidate is
pushed or registered on a comparison that could not be made.
"""
from __future__ import annotations

import os
import shutil
from typing import Optional

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils, path_utils

from components import registry as reg

MODEL_KEY = "model"
STATISTICS_KEY = "statistics"
# Custom properties of both outputs.
PROP_VERSION = "baseline_version"
PROP_DESCRIPTION = "baseline"
PROP_STATISTICS_SOURCE = "baseline_statistics_uri"


class BaselineError(RuntimeError):
    """The baseline could not be resolved; nothing downstream may bless on a missing comparison."""


class BaselineSpec(types.ComponentSpec):
    PARAMETERS = {
        # Registered model name (the task).
        "model_name": ExecutionParameter(type=str),
        "alias": ExecutionParameter(type=str, optional=True),
        # MLflow registry URI; MLFLOW_TRACKING_URI at run time takes precedence.
        "registry_uri": ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {}
    OUTPUTS = {
        MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics),
    }


def has_baseline(artifact) -> bool:
    """Whether a Baseline output stands for a real version (False: compare against nothing)."""
    return bool(artifact is not None and artifact.has_custom_property(PROP_VERSION)
                and artifact.get_int_custom_property(PROP_VERSION) > 0)


def describe(artifact) -> Optional[str]:
    """'census v3 (census@production)' / 'none: ...' of a Baseline output, None when it is not one."""
    if artifact is None or not artifact.has_custom_property(PROP_DESCRIPTION):
        return None
    return artifact.get_string_custom_property(PROP_DESCRIPTION)


def _copy_tree(source: str, target: str) -> None:
    """Copy a directory; on one local filesystem, as hard links. The Baseline runs on every run (it is
    never cached), so copying the baseline SavedModel each time grew the pipeline root by one model per
    run without bound; linked, a run adds directory entries only, and the files' blocks are the pushed
    version's own. Other stores (gs://, s3://) and other filesystems get a copy."""
    if "://" in source or "://" in target:
        io_utils.copy_dir(source, target)
        return
    try:
        _link_tree(source, target)
    except OSError:  # another filesystem (EXDEV), links not allowed (EPERM): copy instead
        shutil.rmtree(target, ignore_errors=True)
        io_utils.copy_dir(source, target)


def _link_tree(source: str, target: str) -> None:
    for root, _, files in os.walk(source):
        folder = os.path.join(target, os.path.relpath(root, source))
        os.makedirs(folder, exist_ok=True)
        for name in files:
            os.link(os.path.join(root, name), os.path.join(folder, name))


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        model_out = artifact_utils.get_single_instance(output_dict[MODEL_KEY])
        stats_out = artifact_utils.get_single_instance(output_dict[STATISTICS_KEY])
        name = exec_properties["model_name"]
        alias = exec_properties.get("alias") or reg.DEFAULT_ALIAS
        uri = reg.resolve_uri(configured=exec_properties.get("registry_uri") or None)
        registry = reg.Registry(uri)
        try:
            # An embedded store nobody created yet holds no baseline; reading it must not create it.
            version, how = (None, "no registry yet") if registry.store.missing() else registry.baseline(name, alias)
        except Exception as exc:  # unreachable server, a baseline that is not blessed, ...
            raise BaselineError(
                f"cannot resolve the baseline of {name} in the registry {reg.redact(uri)}: {exc}"
            ) from exc
        stats_out.split_names = artifact_utils.encode_split_names([])
        if version is None:
            text = f"none: {how}"
            logging.info("Baseline: %s; the candidate is gated by value thresholds only", text)
            for artifact in (model_out, stats_out):
                artifact.set_int_custom_property(PROP_VERSION, 0)
                artifact.set_string_custom_property(PROP_DESCRIPTION, text)
            return
        text = f"{name} v{version.version} ({how})"
        source = version.pushed_path or version.source
        if not source or not _exists(os.path.join(source, "saved_model.pb")):
            raise BaselineError(f"the baseline {text} has no SavedModel at {source!r}; promote another version "
                                f"or restore its files")
        _copy_tree(source, path_utils.serving_model_dir(model_out.uri))
        for artifact in (model_out, stats_out):
            artifact.set_int_custom_property(PROP_VERSION, int(version.version))
            artifact.set_string_custom_property(PROP_DESCRIPTION, text)
        statistics = version.tags.get(reg.TAG_STATISTICS_URI)
        if statistics and _exists(statistics):
            _copy_tree(statistics, stats_out.uri)
            stats_out.split_names = artifact_utils.encode_split_names(_splits(statistics))
            stats_out.set_string_custom_property(PROP_STATISTICS_SOURCE, statistics)
        else:
            logging.warning("Baseline %s records no training-data statistics (tag %s): drift is not checked",
                            text, reg.TAG_STATISTICS_URI)
        logging.info("Baseline: %s, from %s", text, source)


def _exists(path: str) -> bool:
    from tfx.dsl.io import fileio

    return fileio.exists(path)


def _splits(statistics_uri: str):
    from tfx.dsl.io import fileio

    return sorted(name[len("Split-"):].rstrip("/") for name in fileio.listdir(statistics_uri)
                  if name.startswith("Split-"))


class Baseline(base_component.BaseComponent):
    """The registered model to beat and its training-data statistics (see module docstring)."""

    SPEC_CLASS = BaselineSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, *, model_name: str, alias: Optional[str] = None, registry_uri: Optional[str] = None):
        super().__init__(spec=BaselineSpec(
            model_name=model_name,
            alias=alias,
            registry_uri=registry_uri,
            model=types.Channel(type=standard_artifacts.Model),
            statistics=types.Channel(type=standard_artifacts.ExampleStatistics),
        ))
