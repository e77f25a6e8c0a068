"""`mlops runs`, `mlops slices` and the run report, read from the real census run (session fixture).

The fixture's home holds the first run (no baseline: nothing was blessed before it) and, when
test_e2e_census ran earlier in the session, a cached rerun whose Evaluator had the first model as
its baseline. Tests pick runs explicitly.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from pipelines import cli, evaluation, factory, inspect_runs, lineage, report, slices, summary
from pipelines.local_runner import LocalLayout
from tests.records import metadata

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A page that loads anything from the network: src/href/url()/@import pointing at http(s).
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//|@import""", re.I)


def _runs(home):
    """Run records of the fixture's pipeline, oldest first."""
    store = metadata(home)
    return [lineage.load_run(store, "mlops-census", r) for r in reversed(lineage.list_run_ids(store, "mlops-census"))]


@pytest.fixture(scope="module")
def first_run(census_run):
    _, home, status = census_run
    assert status == 0
    return home, _runs(home)[0]


def _evaluation_uri(record):
    return record.nodes[factory.EVALUATOR].output("evaluation").uri


def test_node_ids_match_the_factory():
    assert (inspect_runs.EVALUATOR, inspect_runs.PUSHER) == (factory.EVALUATOR, factory.PUSHER)
    assert inspect_runs.REGISTRAR == getattr(factory, "REGISTRAR", "Registrar")
    factory_order = [factory.EXAMPLE_GEN, factory.STATISTICS_GEN, factory.SCHEMA_GEN, factory.EXAMPLE_VALIDATOR,
                     factory.TRANSFORM, factory.TUNER, factory.TRAINER, factory.RESOLVER, factory.EVALUATOR,
                     factory.PUSHER]
    assert [n for n in inspect_runs.NODE_ORDER if n in factory_order] == factory_order
    assert [n for n in inspect_runs.NODE_ORDER if n in summary._NODE_ORDER] == list(summary._NODE_ORDER)


def test_metric_names_and_thresholds_are_matched_like_tfma_names_them():
    assert slices.normalize("AUC") == slices.normalize("auc")
    assert slices.normalize("BinaryAccuracy") == slices.normalize("binary_accuracy")
    value = evaluation.Threshold(metric="auc", kind="value", lower=0.85)
    assert value.check(0.9) is True and value.check(0.8) is False and value.check(float("nan")) is None
    assert value.text() == "auc >= 0.85 on every slice"
    change = evaluation.Threshold(metric="auc", kind="change", absolute=-0.01, direction="higher_is_better")
    assert change.check(0.895, 0.9) is True and change.check(0.88, 0.9) is False
    assert change.check(0.9) is None  # no baseline: not decided
    assert slices.fmt_diff(0.0) == "±0" and slices.fmt_diff(0.0123) == "+0.0123"


@pytest.mark.e2e
def test_slice_table_has_overall_first_and_gender_counts_add_up(first_run):
    _, record = first_run
    table = slices.load_slice_table(_evaluation_uri(record))
    assert table.rows[0].name == "Overall"
    overall = table.overall
    names = [row.name for row in table.rows]
    assert "gender=Female" in names and "gender=Male" in names
    gender = [row for row in table.rows if row.columns == ("gender",)]
    assert sum(row.example_count for row in gender) == overall.example_count > 0
    # Metrics are what TFMA wrote, lower-cased names; the threshold metric is found from the config.
    assert "auc" in table.metrics and "example_count" not in table.metrics
    assert table.resolve_metric("AUC") == "auc" == table.default_metric()
    # The blessing threshold applies to Overall only; the first run passed it.
    assert overall.status == "pass"
    assert all(row.status is None for row in table.rows[1:])
    assert not table.has_baseline
    assert any(t.kind == "value" and t.lower == pytest.approx(0.85) for t in table.value_thresholds("auc"))


@pytest.mark.e2e
def test_slices_command_prints_one_row_per_slice_with_threshold_result(first_run, capsys):
    home, record = first_run
    assert cli.main(["slices", "census", "--home", home, "--run", record.run_id]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    overall = next(line for line in lines if line.startswith("Overall"))
    assert "pass" in overall
    female = next(line for line in lines if line.startswith("gender=Female"))
    assert "—" in female
    for header in ("examples", "auc", "threshold"):
        assert header in out
    assert "auc >= 0.85 on Overall" in out
    assert "validation: passed" in out


@pytest.mark.e2e
def test_baseline_on_a_run_without_one_says_so(first_run, capsys):
    home, record = first_run
    assert cli.main(["slices", "census", "--home", home, "--run", record.run_id, "--baseline"]) == 0
    out = capsys.readouterr().out
    assert "no baseline" in out
    assert "Overall" in out  # the candidate is still shown


@pytest.mark.e2e
def test_baseline_comparison_when_the_evaluator_had_one(census_run, capsys):
    _, home, _ = census_run
    evaluated = [r for r in _runs(home) if factory.EVALUATOR in r.nodes and r.nodes[factory.EVALUATOR].output("evaluation")]
    with_baseline = [r for r in evaluated if evaluation.has_baseline(_evaluation_uri(r))]
    if not with_baseline:
        pytest.skip("no run with a baseline yet (test_e2e_census's cached rerun makes one)")
    record = with_baseline[-1]
    table = slices.load_slice_table(_evaluation_uri(record))
    assert "auc" in table.overall.baseline and table.overall.diff("auc") is not None
    assert any(t.kind == "change" for t in table.thresholds)
    assert cli.main(["slices", "census", "--home", home, "--run", record.run_id, "--baseline", "--metric", "AUC"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("slice"))
    assert "auc" in header and "baseline" in header and "Δ" in header
    assert "no baseline" not in out


@pytest.mark.e2e
def test_png_and_html_charts_mark_the_threshold(first_run, tmp_path, capsys):
    home, record = first_run
    png, page = tmp_path / "auc.png", tmp_path / "auc.html"
    status = cli.main(["slices", "census", "--home", home, "--run", record.run_id, "--metric", "AUC",
                       "--png", str(png), "--html", str(page)])
    assert status == 0
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    text = page.read_text()
    assert "data:image/png;base64," in text
    assert "auc &gt;= 0.85 on Overall" in text or "auc >= 0.85 on Overall" in text
    assert "gender=Female" in text
    assert not EXTERNAL.search(text)
    # Default metric: the threshold metric (auc), also without --metric.
    assert cli.main(["slices", "census", "--home", home, "--run", record.run_id, "--png", str(tmp_path / "d.png")]) == 0
    assert (tmp_path / "d.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.e2e
def test_unknown_metric_lists_the_known_ones(first_run, capsys):
    home, record = first_run
    assert cli.main(["slices", "census", "--home", home, "--run", record.run_id, "--metric", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no metric 'nope'" in err and "auc" in err


@pytest.mark.e2e
def test_runs_lists_the_run_with_blessed_and_pushed(first_run, capsys):
    home, record = first_run
    runs, totals = inspect_runs.list_runs(LocalLayout.resolve(home), "census", limit=0)
    row = next(r for r in runs["census"] if r.run_id == record.run_id)
    assert row.blessed is True and row.pushed is True
    assert row.symbols(inspect_runs.columns_for([row])) == "✓" * len(row.states)
    assert totals["census"] == len(runs["census"]) >= 1
    registrar = record.nodes.get(inspect_runs.REGISTRAR)
    assert (row.registered is None) == (registrar is None or registrar.output("registered_model") is None)

    assert cli.main(["runs", "--home", home]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if record.run_id in line)
    assert "✓" in line and line.count("yes") >= 2
    for header in ("run id", "start", "duration", "components", "blessed", "pushed", "registered"):
        assert header in out


def test_runs_and_slices_without_a_store_are_clear_errors(tmp_path, capsys):
    assert cli.main(["runs", "--home", str(tmp_path)]) == 1
    assert "no metadata store" in capsys.readouterr().err
    assert cli.main(["slices", "census", "--home", str(tmp_path)]) == 1
    assert "no metadata store" in capsys.readouterr().err
    assert not (tmp_path / "metadata.sqlite").exists()


def _report_text(home, run_id):
    path = report.report_path(home, "census", run_id)
    assert path.parent.name == run_id.replace(":", "-")
    assert path.is_file(), f"`mlops run` did not write {path}"
    return path, path.read_text()


@pytest.mark.e2e
def test_run_writes_a_self_contained_report(first_run):
    home, record = first_run
    _, text = _report_text(home, record.run_id)
    for title in ("Dataset statistics", "Data validation", "Hyperparameter tuning", "Training curves",
                  "Evaluation per slice", "Blessing decision"):
        assert title in text
    # Statistics of real features, no anomalies, the Tuner's best hyperparameters and trials.
    assert "age" in text and "No anomalies" in text
    best = record.nodes[factory.TUNER].output("best_hyperparameters")
    with open(os.path.join(best.uri, "best_hyperparameters.txt")) as f:
        for name in json.load(f)["values"]:
            assert name in text
    assert "Trials (" in text
    # Training curves and the slice chart are inline PNGs; slice metrics and the threshold are there.
    assert text.count("data:image/png;base64,") >= 2
    assert "train" in text and "validation" in text
    assert "gender=Female" in text and "auc &gt;= 0.85 on Overall" in text
    assert "blessed" in text and "none — the first blessed model" in text
    assert not EXTERNAL.search(text)
    assert "http://" not in text and "https://" not in text


@pytest.mark.e2e
def test_report_command_regenerates_it(first_run, capsys):
    home, record = first_run
    path = report.report_path(home, "census", record.run_id)
    path.unlink(missing_ok=True)
    assert cli.main(["report", "census", "--home", home, "--run", record.run_id]) == 0
    assert str(path) in capsys.readouterr().out.replace("\n", "")
    assert path.is_file() and path.stat().st_size > 20_000


@pytest.mark.e2e
def test_report_of_a_run_that_stopped_at_the_validator(first_run):
    """A failed ExampleValidator keeps no output: the report recomputes the anomalies from the
    statistics and schema, and every later section says it did not run."""
    import copy

    _, record = first_run
    stopped = copy.deepcopy(record)
    keep = (factory.EXAMPLE_GEN, factory.STATISTICS_GEN, factory.SCHEMA_GEN, factory.EXAMPLE_VALIDATOR)
    stopped.nodes = {k: v for k, v in stopped.nodes.items() if k in keep}
    stopped.nodes[factory.EXAMPLE_VALIDATOR].state = "failed"
    stopped.nodes[factory.EXAMPLE_VALIDATOR].outputs = {}
    context = report.build_context(stopped, "census")
    assert all(section.error is None for section in context["sections"].values())
    text = report.render(context)
    assert "failed at ExampleValidator" in text
    assert "recomputed from the run&#39;s statistics and schema" in text
    assert "Trainer did not run: the run stopped at ExampleValidator" in text
    assert "Tuner did not run" in text and "No tuner" not in text
    assert "not evaluated" in text


def test_training_curves_read_any_tensorboard_scalars(tmp_path):
    import tensorflow as tf

    for series, losses in (("train", [0.9, 0.5, 0.3]), ("validation", [0.8, 0.6, 0.65])):
        writer = tf.summary.create_file_writer(str(tmp_path / series))
        with writer.as_default():
            for step, loss in enumerate(losses):
                tf.summary.scalar("epoch_loss", loss, step=step)
                if series == "train":
                    tf.summary.scalar("epoch_learning_rate", 0.001, step=step)
        writer.close()
    scalars = report.read_scalars(str(tmp_path))
    assert [v for _, v in scalars["epoch_loss"]["validation"]] == pytest.approx([0.8, 0.6, 0.65])
    fig, tags = report.training_figure(scalars)
    assert tags == ["epoch_loss"]  # a constant, train-only learning rate is not worth a panel
    assert slices.figure_png(fig).startswith(PNG_MAGIC)


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.e2e
@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (CI does not install it)")
@pytest.mark.e2e
def test_report_renders_in_headless_chromium(first_run, tmp_path):
    from PIL import Image

    home, record = first_run
    path, _ = _report_text(home, record.run_id)
    shot = tmp_path / "report.png"
    profile = tempfile.mkdtemp(dir=tmp_path)
    result = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1280,3000", path.as_uri()],
        capture_output=True, text=True, timeout=180,
    )
    assert shot.is_file(), result.stderr[-2000:]
    image = Image.open(shot).convert("L")
    assert image.size == (1280, 3000)
    # Not a blank page: a fair share of the pixels are text, tables and charts.
    dark = sum(1 for p in image.getdata() if p < 200)
    assert dark > 0.01 * image.size[0] * image.size[1]
