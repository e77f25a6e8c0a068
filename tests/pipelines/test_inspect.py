"""`mlops runs` and `mlops slices`, read from the real census run (session fixture).

The fixture's home holds the first run (no baseline: nothing was blessed before it) and, when
test_e2e_census ran earlier in the session, a cached rerun whose Evaluator had the first model as
its baseline. Tests pick runs explicitly. The run report's tests are in tests/pipelines/test_report.py.
"""
import pytest

from components import evaluation
from pipelines import cli, factory, nodes, runs, slices
from pipelines.layout import LocalLayout
from pipelines.runs.local import LocalSource
from pipelines.tasks import load_task
from tests.pipelines.conftest import census_runs as _runs


def _evaluation_uri(record):
    return record.nodes[nodes.EVALUATOR].output("evaluation").uri


def test_every_node_the_factory_builds_has_its_place_in_the_run_tables(tmp_path):
    """Tables order columns by nodes.NODE_ORDER: every node id the factory uses must be in it."""
    pipeline = factory.create_pipeline(load_task("census"), pipeline_root=str(tmp_path / "p"),
                                       data_root=str(tmp_path / "d"), serving_root=str(tmp_path / "s"))
    ids = [component.id for component in pipeline.components]
    assert set(ids) <= set(nodes.NODE_ORDER), set(ids) - set(nodes.NODE_ORDER)


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
    evaluated = [r for r in _runs(home) if nodes.EVALUATOR in r.nodes and r.nodes[nodes.EVALUATOR].output("evaluation")]
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
def test_unknown_metric_lists_the_known_ones(first_run, capsys):
    home, record = first_run
    assert cli.main(["slices", "census", "--home", home, "--run", record.run_id, "--metric", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no metric 'nope'" in err and "auc" in err


@pytest.mark.e2e
def test_runs_lists_the_run_with_blessed_and_pushed(first_run, capsys):
    home, record = first_run
    listed, totals = LocalSource(LocalLayout.resolve(home)).list_runs("census", limit=0)
    row = next(r for r in listed["census"] if r.run_id == record.run_id)
    assert row.blessed is True and row.pushed is True
    assert runs.symbols(row, runs.columns_for([row])) == "✓" * len(row.states)
    assert totals["census"] == len(listed["census"]) >= 1
    registrar = record.nodes.get(nodes.REGISTRAR)
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
