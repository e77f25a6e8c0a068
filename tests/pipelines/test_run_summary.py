"""The run summary step (pipelines.run_summary): what it writes for the Kubeflow UI, run on the
artifacts of the shared local heart run, and how it is wired into a compiled pipeline. Its run on
an object store, as the backend runs it, is in test_kubeflow_s3.py."""
from __future__ import annotations

import json

import pytest

from pipelines import nodes
from pipelines.run_summary import content
from pipelines.run_summary.spec import INPUTS, OUTPUTS, REQUIRED

UI_TITLES = {"report": "system.HTML", "summary": "system.Markdown", "metrics": "system.Metrics",
             "classification": "system.ClassificationMetrics"}


def _tfx_inputs(home, record):
    """The summary's input dict from a local run: TFX artifacts read back from its metadata store."""
    from tfx.types import artifact_utils

    from tests.records import metadata

    store = metadata(home)
    inputs = {}
    for key, (node_id, output) in INPUTS.items():
        found = record.nodes.get(node_id)
        found = found.output(output) if found else None
        if found is None:
            continue
        [mlmd_artifact] = store.get_artifacts_by_id([found.id])
        [artifact_type] = store.get_artifact_types_by_id([mlmd_artifact.type_id])
        inputs[key] = [artifact_utils.deserialize_artifact(artifact_type, mlmd_artifact)]
    return inputs


@pytest.fixture(scope="module")
def summary_of_heart(heart_run, tmp_path_factory):
    """The summary step's executor run on the local heart run's artifacts."""
    from tfx import types

    from pipelines.run_summary.executor import Executor

    home, status, record, _ = heart_run
    assert status == 0
    out = tmp_path_factory.mktemp("summary")
    outputs = {}
    for key, cls in OUTPUTS.items():
        artifact = cls()
        artifact.uri = str(out / key)
        outputs[key] = [artifact]
    inputs = _tfx_inputs(home, record)
    Executor().Do(inputs, outputs, {"task": "heart", "run_id": record.run_id})
    return record, inputs, outputs


def test_the_ui_types_are_the_titles_the_kfp_frontend_renders():
    assert {key: cls.TYPE_NAME for key, cls in OUTPUTS.items()} == UI_TITLES


@pytest.mark.e2e
def test_summary_reads_every_report_artifact_a_heart_run_has(summary_of_heart):
    _, inputs, _ = summary_of_heart
    # heart has no Tuner; everything else the report reads before the Evaluator is there.
    assert set(inputs) == set(INPUTS) - {"best_hyperparameters", "tuner_results"}


@pytest.mark.e2e
def test_report_and_markdown_are_files_at_the_artifact_uris(summary_of_heart):
    record, _, outputs = summary_of_heart
    with open(outputs["report"][0].uri, encoding="utf-8") as f:
        html = f.read()
    assert html.startswith("<!DOCTYPE html>") and record.run_id in html and "Evaluation per slice" in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "src=\"http" not in html  # self-contained
    with open(outputs["summary"][0].uri, encoding="utf-8") as f:
        markdown = f.read()
    assert markdown.startswith("# heart: blessed")
    assert "**Blessed**" in markdown and "**Baseline**: none" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| Slice | Examples | auc |")
    overall = next(r for r in rows if r.startswith("| Overall |"))
    assert overall.endswith("| pass |") and "auc >= 0.8" in overall
    assert any(r.startswith("| sex=") for r in rows) and any(r.startswith("| cp=") for r in rows)


@pytest.mark.e2e
def test_metrics_are_the_overall_slice_as_floats(summary_of_heart):
    from components import evaluation

    record, _, outputs = summary_of_heart
    props = outputs["metrics"][0].mlmd_artifact.custom_properties
    overall = evaluation.overall_metrics(record.nodes[nodes.EVALUATOR].output("evaluation").uri)
    assert props["auc"].double_value == pytest.approx(overall["auc"])
    assert props["example_count"].double_value == overall["example_count"]


@pytest.mark.e2e
def test_classification_metrics_have_the_shapes_the_ui_validates(summary_of_heart):
    """MetricsVisualizations.tsx: confusionMatrix {annotationSpecs[{displayName}], rows[{row[]}]};
    ROCCurveHelper.tsx: confidenceMetrics [{confidenceThreshold, falsePositiveRate, recall}]."""
    from components import evaluation
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as entrypoint_utils

    record, _, outputs = summary_of_heart
    # What TFX's entrypoint hands the launcher as the artifact's metadata.
    metadata = entrypoint_utils._get_json_metadata_mapping(outputs["classification"][0])
    matrix = metadata["confusionMatrix"]
    from models.heart import features as F

    assert [a["displayName"] for a in matrix["annotationSpecs"]] == [str(c) for c in F.CLASS_NAMES]
    cells = [row["row"] for row in matrix["rows"]]
    assert len(cells) == 2 and all(len(r) == 2 for r in cells)
    overall = evaluation.overall_metrics(record.nodes[nodes.EVALUATOR].output("evaluation").uri)
    assert sum(map(sum, cells)) == overall["example_count"]
    accuracy = (cells[0][0] + cells[1][1]) / overall["example_count"]
    assert accuracy == pytest.approx(overall["binary_accuracy"], abs=0.02)
    points = metadata["confidenceMetrics"]
    assert isinstance(points, list) and len(points) > 10
    for point in points:
        assert set(point) == {"confidenceThreshold", "falsePositiveRate", "recall"}
        assert 0 <= point["falsePositiveRate"] <= 1 and 0 <= point["recall"] <= 1
    json.dumps(metadata)  # what the launcher records must be plain JSON


def test_no_evaluation_no_metrics():
    assert content.scalar_metrics(None) == {}


def test_wiring_needs_the_evaluator():
    from pipelines.run_summary import wire

    with pytest.raises(ValueError, match="needs the Evaluator's outputs"):
        wire({}, task="heart", run_id="r")
    assert set(REQUIRED) == {"evaluation", "blessing"}


@pytest.mark.e2e
def test_the_summary_report_renders_in_headless_chromium(summary_of_heart, tmp_path):
    """The KFP UI shows the system.HTML file in an iframe; where Chromium is installed, the page is
    rendered and checked not to be blank (skipped elsewhere: CI does not install Chromium)."""
    import shutil
    import subprocess
    import tempfile

    from tests.pipelines.test_report import _chromium

    if _chromium() is None:
        pytest.skip("chromium is not installed (CI does not install it)")
    from PIL import Image

    _, _, outputs = summary_of_heart
    page = tmp_path / "report.html"
    shutil.copyfile(outputs["report"][0].uri, page)
    shot = tmp_path / "report.png"
    profile = tempfile.mkdtemp(dir=tmp_path)
    result = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri()],
        capture_output=True, text=True, timeout=180,
    )
    assert shot.is_file(), result.stderr[-2000:]
    image = Image.open(shot).convert("L")
    dark = sum(1 for p in image.getdata() if p < 200)
    assert dark > 0.01 * image.size[0] * image.size[1]


def test_input_properties_are_unwrapped_as_tfx_rebuilds_them_on_the_pod():
    """On the pod a blessing's `blessed` arrives as {"__value__": 1.0} (TFX's JSON value): read as 1,
    and a not-blessed 0.0 must not read as a truthy dict."""
    from tfx.types import standard_artifacts

    from pipelines.run_summary.executor import _properties

    blessing = standard_artifacts.ModelBlessing()
    blessing.set_json_value_custom_property("blessed", 0.0)
    blessing.set_json_value_custom_property("baseline", "none: no registered model 'heart' yet")
    assert _properties(blessing) == {"blessed": 0, "baseline": "none: no registered model 'heart' yet"}


def test_a_refused_blessing_is_summarised_with_its_reasons():
    context = {"task": "heart", "status": {"kind": "not-blessed", "text": "not blessed"},
               "verdict": {"kind": "not-blessed", "reasons": ["auc value on Overall = 0.7000 fails threshold auc >= 0.8"]},
               "sections": {}}
    text = content.markdown(context, None, None)
    assert text.startswith("# heart: not blessed")
    assert "**Not blessed**, because:\n- auc value on Overall = 0.7000 fails threshold auc >= 0.8" in text
    assert "**Baseline**: none (no blessed model yet)" in text and "_No evaluation to tabulate._" in text
