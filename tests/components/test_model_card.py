"""Infra validation and the model card end to end, read from the shared census run (`census_run`):
the InfraValidator blessed the model before the Pusher pushed it, the Registrar tagged the version
`infra_blessed=true` with its latencies and stored a model card (Markdown and HTML) with it, and
`mlops registry card` prints that card."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from components import evaluation, infra_validator, model_card
from components.registry import Registry
from pipelines import cli_run, nodes, report
from pipelines.cli_model_card import read_card
from pipelines.outcome import outcome_of
from pipelines.tasks import load_task
from tests.conftest import REPO
from tests.registry_helpers import copy_blessed_version, first_run, mlops

pytestmark = pytest.mark.e2e

LATENCY_KEYS = {"batch_1_p50", "batch_1_p99", "batch_64_p50", "batch_64_p99"}


@pytest.fixture(scope="module")
def registered(census_run):
    """(project root, home, RunRecord, registered version number) of the fixture's first run."""
    root, home, status = census_run
    assert status == 0
    record = first_run(home)
    return root, home, record, record.nodes[nodes.REGISTRAR].output("registered_model").get("model_version")


def _version(home, number):
    reg = Registry.open(home, must_exist=True)
    return reg, reg.version("census", number)


def test_the_model_is_infra_validated_before_it_is_pushed(registered, capsys, no_server):
    _, home, record, _ = registered
    node = record.nodes[nodes.INFRA_VALIDATOR]
    assert node.state == "complete"
    assert record.nodes[nodes.EVALUATOR].end_ms <= node.start_ms and node.end_ms <= record.nodes[nodes.PUSHER].start_ms
    blessing = node.output("blessing")
    assert blessing.type == "InfraBlessing" and blessing.get("blessed") == 1
    assert blessing.get("failed_check") == "" and blessing.get("reason") == ""
    assert (Path(blessing.uri) / "INFRA_BLESSED").exists()
    report_json = json.loads((Path(blessing.uri) / infra_validator.REPORT_FILE).read_text())
    assert report_json["blessed"] and all(check["passed"] for check in report_json["checks"])
    assert report_json["contract"]["output"] == "probabilities" and report_json["contract"]["shape"] == ["batch", 2]
    assert report_json["serving_process"]["outputs"]["probabilities"]["dtype"] == "float32"
    assert "tfx" not in report_json["serving_process"]["modules"]
    assert record.nodes[nodes.PUSHER].output("pushed_model").get("pushed") == 1

    outcome = outcome_of(record)
    assert outcome.infra_blessed is True and set(outcome.infra_latency_ms) == LATENCY_KEYS
    assert all(value > 0 for value in outcome.infra_latency_ms.values())
    cli_run.print_outcome(load_task("census"), outcome)
    out = capsys.readouterr().out
    p50 = outcome.infra_latency_ms["batch_1_p50"]
    assert "infra-validated: p50 " in out and " at batch 1, p50 " in out and out.count(" at batch 64") == 1
    assert f"p50 {p50:.1f} ms" in out or f"p50 {p50:.2f} ms" in out

    status, out, _ = mlops(["runs", "census", "--home", home], capsys)
    assert status == 0 and "infra" in out and "yes" in out

    text = report.render(report.build_context(record, "census"))
    section = text[text.index('<h2 id="infra"'):]
    assert "infra-validated" in section and "p99 (ms)" in section and "consistency" in section


def test_the_registered_version_is_infra_blessed_and_has_a_model_card(registered, no_server):
    root, home, record, number = registered
    reg, version = _version(home, number)
    tags = version.tags
    assert tags["infra_blessed"] == "true"
    latencies = json.loads(tags["infra_validation"])
    assert set(latencies) == {f"{key}_ms" for key in LATENCY_KEYS} and all(v > 0 for v in latencies.values())
    assert tags["seed"] == "42" and tags["deterministic"] in ("true", "false")
    output = record.nodes[nodes.REGISTRAR].output("registered_model")
    assert output.get("model_card") == f"runs:/{version.run_id}/model_card.md"

    markdown = read_card(reg, version)
    assert markdown == (Path(output.uri) / model_card.MARKDOWN_FILE).read_text()
    md5 = yaml.safe_load((root / "data.dvc").read_text())["outs"][0]["md5"]
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert markdown.startswith(f"# Model card: census v{version.version}\n")
    assert f"| data (DVC md5) | `{md5}` |" in markdown
    assert f"`{head}" in markdown and "| seed | 42 |" in markdown
    assert "No baseline to beat (none: " in markdown  # the task's first model
    census = load_task("census")
    assert census.intended_use.split(".")[0] in markdown and census.limitations.split(".")[0] in markdown
    # Per-slice AUC as the Evaluator computed it, and the blessing threshold.
    slices = evaluation.load_slice_metrics(record.nodes[nodes.EVALUATOR].output("evaluation").uri)
    header = next(line for line in markdown.splitlines() if line.startswith("| slice |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns[:2] == ["slice", "auc"]
    rows = {line.split("|")[1].strip(): line for line in markdown.splitlines() if line.startswith("| gender=")}
    female = next(s for s in slices if s.slice == "gender=Female")
    assert f"| gender=Female | {female.candidate['auc']:.4f} |" in rows["gender=Female"]
    assert "| auc >= 0.85 on Overall | Overall |" in markdown
    assert "| 64 |" in markdown and "## Infra validation" in markdown

    html = read_card(reg, version, html=True)
    assert html.lstrip().startswith("<!DOCTYPE html>") and md5 in html and "gender=Female" in html
    assert "<script" not in html and "http" not in html.replace("http-equiv", "")


def test_mlops_registry_card_prints_the_card(registered, registry_copy, tmp_path, capsys):
    _, home, _, number = registered
    _, version = _version(home, number)
    status, out, err = mlops(["registry", "card", f"census:{version.version}", "--home", home], capsys)
    assert status == 0, err
    assert out.startswith(f"# Model card: census v{version.version}") and "| seed | 42 |" in out

    target = tmp_path / "cards" / "census.html"
    status, out, err = mlops(["registry", "card", f"census:{version.version}", "--html", "--output", str(target),
                              "--home", home], capsys)
    assert status == 0, err
    assert target.read_text().lstrip().startswith("<!DOCTYPE html>") and str(target) in out

    status, _, err = mlops(["registry", "card", "census:99", "--home", home], capsys)
    assert status == 1 and "has no version 99" in err
    status, _, err = mlops(["registry", "card", "census", "--home", home], capsys)
    assert status == 2 and "TASK@ALIAS or TASK:VERSION" in err

    # A version registered without the Registrar (so without a card) says so.
    private, reg, base = registry_copy
    bare = copy_blessed_version(reg, base, tmp_path / "serving" / "2")
    status, _, err = mlops(["registry", "card", f"census:{bare.version}", "--home", private], capsys)
    assert status == 1 and f"census v{bare.version} has no model card" in err
