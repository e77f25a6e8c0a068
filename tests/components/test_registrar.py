"""The Registrar component: a blessed, pushed model becomes a registry version with its lineage; an
unblessed or unpushed one does not, and says why."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from tfx.types import standard_artifacts

from components import evaluation
from components.registry import Registry
from pipelines import cli_run, nodes
from pipelines.outcome import RunOutcome, outcome_of
from pipelines.tasks import load_task
from tests.conftest import REPO
from tests.registry_helpers import PIPELINE, first_run, real_inputs, run_registrar

pytestmark = pytest.mark.e2e


def test_blessed_run_is_registered_with_its_lineage(census_run, capsys, no_server):
    root, home, status = census_run
    assert status == 0
    record = first_run(home)
    assert record.nodes[nodes.REGISTRAR].state == "complete"
    output = record.nodes[nodes.REGISTRAR].output("registered_model")
    assert output.type == "components.RegisteredModel"
    assert output.get("registered") == 1 and output.get("model_name") == "census" and output.get("reason") == ""
    assert os.path.exists(os.path.join(home, "mlflow.db"))

    info = Registry.open(home, must_exist=True).version("census", output.get("model_version"))
    tags = info.tags
    pushed = record.nodes[nodes.PUSHER].output("pushed_model").get("pushed_destination")
    assert info.source == pushed == info.pushed_path and os.path.isdir(pushed)
    assert tags["blessed"] == "true" and tags["task"] == "census" and tags["pipeline"] == PIPELINE
    assert tags["pipeline_run_id"] == record.run_id
    for role, node in (("trainer", nodes.TRAINER), ("evaluator", nodes.EVALUATOR), ("pusher", nodes.PUSHER)):
        assert tags[f"mlmd.{role}_execution_id"] == str(record.nodes[node].execution_id), role
    assert tags["mlmd.model_artifact_id"] == str(record.nodes[nodes.TRAINER].output("model").id)
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert tags["git_commit"] == head and tags["git_dirty"] in ("true", "false")
    assert tags["dvc_data_md5"] == yaml.safe_load((root / "data.dvc").read_text())["outs"][0]["md5"]
    assert tags["dvc_data_dirty"] == "false"
    assert {"learning_rate", "embedding_dim"} <= set(json.loads(tags["hyperparameters"]))
    overall = evaluation.overall_metrics(record.nodes[nodes.EVALUATOR].output("evaluation").uri)
    assert float(tags["metric.auc"]) == pytest.approx(overall["auc"], rel=1e-5)
    slices = json.loads(tags["slice_metrics"])
    assert "Overall" in slices and any(name.startswith("gender=") for name in slices)
    assert "auc" in slices["Overall"]
    # The MLflow run behind the version holds the same story (and the record in <home>/mlartifacts).
    assert info.run_id and list(Path(home, "mlartifacts").rglob("registration.json"))

    result = outcome_of(record)
    assert result.registered and result.registered_as == f"census v{info.version}"
    cli_run.print_outcome(load_task("census"), result)
    assert f"registered as census v{info.version}" in capsys.readouterr().out


def test_unblessed_model_is_not_registered(census_run, tmp_path, capsys, no_server):
    _, home, _ = census_run
    record = first_run(home)
    inputs = real_inputs(home, record)
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    os.makedirs(blessing.uri)
    Path(blessing.uri, "NOT_BLESSED").write_text("")
    blessing.set_int_custom_property("blessed", 0)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    pushed.set_int_custom_property("pushed", 0)
    registry_home = tmp_path / "registry"
    uri = f"sqlite:///{registry_home}/mlflow.db"

    output = run_registrar(
        {**inputs, "model_blessing": [blessing], "pushed_model": [pushed]}, tmp_path / "out", record.run_id,
        registry_uri=uri,
    )
    assert output.get_int_custom_property("registered") == 0
    assert output.get_string_custom_property("model_version") == ""
    assert "did not bless" in output.get_string_custom_property("reason")
    assert not registry_home.exists(), "an unblessed model must not even open the registry"

    # Blessed but not pushed: not registered either.
    output = run_registrar({**inputs, "pushed_model": [pushed]}, tmp_path / "out2", record.run_id, registry_uri=uri)
    assert output.get_int_custom_property("registered") == 0
    assert "did not push" in output.get_string_custom_property("reason")
    assert not registry_home.exists()

    cli_run.print_outcome(load_task("census"), RunOutcome(
        "census", "r", blessed=False, registered=False, registry_reason="the Evaluator did not bless the model",
    ))
    assert "not registered: the Evaluator did not bless the model" in capsys.readouterr().out


def test_registrar_tags_a_dirty_data_version():
    from tfx.types import standard_artifacts

    from components import registrar

    examples = standard_artifacts.Examples()
    examples.set_string_custom_property("dvc_data_md5", "abc.dir")
    examples.set_int_custom_property("dvc_data_dirty", 1)
    model = standard_artifacts.Model()
    model.uri = "/m"
    tags = registrar.registration_tags(
        task="census", pipeline="mlops-census", pipeline_run_id="r", executions={}, model=model, code={},
        examples=examples, hyperparameters={}, overall={}, slices_json="{}", pushed_path="/p", metadata_path=None,
    )
    assert tags["dvc_data_md5"] == "abc.dir" and tags["dvc_data_dirty"] == "true"


def test_an_infra_unblessed_model_is_not_registered(census_run, tmp_path, no_server):
    _, home, _ = census_run
    record = first_run(home)
    infra = standard_artifacts.InfraBlessing()
    infra.uri = str(tmp_path / "infra")
    infra.set_int_custom_property("blessed", 0)
    infra.set_string_custom_property("reason", "shape: 'probabilities' has shape [64, 3] for 64 example(s)")
    registry_home = tmp_path / "registry"
    output = run_registrar({**real_inputs(home, record), "infra_blessing": [infra]}, tmp_path / "out", record.run_id,
                           registry_uri=f"sqlite:///{registry_home}/mlflow.db")
    assert output.get_int_custom_property("registered") == 0
    assert output.get_string_custom_property("reason") == (
        "the InfraValidator did not bless the model (shape: 'probabilities' has shape [64, 3] for 64 example(s))")
    assert not registry_home.exists(), "an infra-unblessed model must not even open the registry"


def test_registrar_tags_the_infra_verdict_and_latencies():
    from components import registrar

    assert registrar.infra_tags(None) == {}  # a pipeline without an InfraValidator
    infra = standard_artifacts.InfraBlessing()
    infra.set_int_custom_property("blessed", 1)
    infra.set_float_custom_property("latency_batch_1_p50_ms", 1.25)
    infra.set_float_custom_property("latency_batch_64_p99_ms", 30.5)
    tags = registrar.infra_tags(infra)
    assert tags["infra_blessed"] == "true"
    assert json.loads(tags["infra_validation"]) == {"batch_1_p50_ms": 1.25, "batch_64_p99_ms": 30.5}
