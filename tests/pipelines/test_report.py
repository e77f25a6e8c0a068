"""The run report (pipelines/report/) and the `mlops slices --html` page, both rendered from the
Jinja2 templates in pipelines/report/templates/.

Tests marked e2e read the real census run (session fixture `census_run`); the others build runs
and slice tables by hand.
"""
import copy
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from components.evaluation import Threshold
from pipelines import cli, lineage, nodes, report, slices
from pipelines.report import rendering as report_render
from pipelines.report import sections as report_sections

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A page that loads anything from the network: src/href/url()/@import pointing at http(s).
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//|@import""", re.I)
LINKS = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""", re.I)
TITLES = [spec.title for spec in report_sections.SECTIONS]


def assert_one_file(text):
    """Nothing is loaded from the network or from another file: every src/href is an anchor on
    the page or inline data, and there is no stylesheet or script to fetch."""
    assert not EXTERNAL.search(text)
    assert "http://" not in text and "https://" not in text
    for link in LINKS.findall(text):
        assert link.startswith("#") or link.startswith("data:"), link
    assert "<link" not in text and "<script" not in text
    assert "<style>" in text


def section_html(text, section_id):
    """The part of the page from section_id's heading to the next section (or the footer)."""
    start = text.index(f'<h2 id="{section_id}"')
    ends = [i for i in (text.find("<h2 ", start + 1), text.find("<footer>", start)) if i != -1]
    return text[start:min(ends)]


def stopped_run():
    """A run that stopped at StatisticsGen: no artifact to read, so no TensorFlow is needed."""
    return lineage.RunRecord(nodes.pipeline_name("census"), "2026-01-02T03:04:05.000001", {
        nodes.EXAMPLE_GEN: lineage.NodeExecution(nodes.EXAMPLE_GEN, 1, "complete", 1_000, 5_000),
        nodes.STATISTICS_GEN: lineage.NodeExecution(nodes.STATISTICS_GEN, 2, "failed", 5_000, 6_000),
    })


# --- Rendering, without a pipeline run ------------------------------------------------------------


def test_report_of_a_stopped_run_has_every_section_and_is_one_file():
    context = report.build_context(stopped_run(), "census")
    assert context["order"] == [spec.id for spec in report_sections.SECTIONS]
    assert all(section.error is None for section in context["sections"].values())
    text = report.render(context)
    for spec in report_sections.SECTIONS:
        assert f'<h2 id="{spec.id}">{spec.title}</h2>' in text
        assert f'<a href="#{spec.id}">' in text
    assert "failed at StatisticsGen" in text
    assert "Trainer did not run: the run stopped at StatisticsGen" in section_html(text, "training")
    assert "not evaluated" in section_html(text, "blessing")
    assert "--ink:" in text  # report.css is inlined
    assert_one_file(text)


def test_a_section_builder_that_raises_shows_its_error_in_that_section(monkeypatch):
    def broken(section, run):
        section.data["best"] = [{"name": "half", "value": "read", "space": ""}]
        raise RuntimeError("tuner artifact unreadable")

    specs = [replace(spec, build=broken) if spec.id == "tuner" else spec for spec in report_sections.SECTIONS]
    monkeypatch.setattr(report_sections, "SECTIONS", specs)
    context = report.build_context(stopped_run(), "census")
    assert context["sections"]["tuner"].error == "RuntimeError: tuner artifact unreadable"
    text = report.render(context)
    tuner = section_html(text, "tuner")
    assert "Could not read this part of the run: RuntimeError: tuner artifact unreadable" in tuner
    assert "traceback" in tuner and "half" in tuner  # what it read before failing is still shown
    # Every other section is there as usual, without an error.
    for section_id in ("statistics", "anomalies", "training", "slices", "blessing"):
        assert "Could not read" not in section_html(text, section_id)
    assert "Trainer did not run" in section_html(text, "training")
    assert "</footer>" in text


def test_a_section_template_that_fails_shows_its_error_in_that_section():
    context = report.build_context(stopped_run(), "census")
    context["sections"]["anomalies"].data["rows"] = [{"split": "train"}]  # no feature/severity/...
    text = report.render(context)
    anomalies = section_html(text, "anomalies")
    assert "could not show this section: UndefinedError" in anomalies
    assert "Could not read" not in section_html(text, "statistics")
    assert "not evaluated" in section_html(text, "blessing") and "</html>" in text


def test_a_new_section_is_one_builder_one_template_and_one_spec(monkeypatch, tmp_path):
    import jinja2

    (tmp_path / "sections").mkdir()
    (tmp_path / "sections" / "canary.html.j2").write_text(
        '<p class="canary">{{ s.data.verdict }} via {{ s.data.node }}</p>\n', encoding="utf-8")
    env = report_render.environment()
    extended = env.overlay(loader=jinja2.ChoiceLoader([env.loader, jinja2.FileSystemLoader(str(tmp_path))]))
    monkeypatch.setattr(report_render, "environment", lambda: extended)

    def build_canary(section, run):
        section.data.update(verdict="model serves", node=run.state(nodes.EXAMPLE_GEN))

    specs = list(report_sections.SECTIONS)
    specs.insert(5, report_sections.SectionSpec("canary", "Canary check", build_canary))
    monkeypatch.setattr(report_sections, "SECTIONS", specs)
    text = report.render(report.build_context(stopped_run(), "census"))
    assert '<p class="canary">model serves via complete</p>' in section_html(text, "canary")
    assert '<a href="#canary">Canary check</a>' in text
    assert text.index('id="canary"') < text.index('id="blessing"')


def test_templates_are_found_from_another_working_directory(tmp_path):
    """The templates live next to the package, not relative to where the process runs."""
    code = (
        "import sys\n"
        "from pipelines import lineage, nodes, report\n"
        "run = lineage.RunRecord(nodes.pipeline_name('census'), 'r1', {nodes.EXAMPLE_GEN: "
        "lineage.NodeExecution(nodes.EXAMPLE_GEN, 1, 'complete', 1000, 2000)})\n"
        "sys.stdout.write(report.render(report.build_context(run, 'census')))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for title in TITLES:
        assert title in result.stdout
    assert "--ink:" in result.stdout
    assert report_render.TEMPLATES_DIR.is_absolute()


def test_every_template_is_package_data():
    """pyproject.toml ships the templates with the package (a wheel without them cannot render)."""
    tomli = pytest.importorskip("tomli")
    with open(REPO / "pyproject.toml", "rb") as f:
        package_data = tomli.load(f)["tool"]["setuptools"]["package-data"]
    package = REPO / "pipelines" / "report"
    shipped = {Path(p) for pattern in package_data.get("pipelines.report", []) for p in glob.glob(str(package / pattern))}
    templates = {p for p in (package / "templates").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert templates and templates <= shipped, sorted(str(p) for p in templates - shipped)


def _table(has_baseline):
    threshold = Threshold(metric="auc", kind="value", lower=0.85)
    overall = slices.SliceRow("Overall", (), {"auc": 0.9, "example_count": 120.0}, {"auc": 0.88} if has_baseline else {},
                              thresholds=[threshold])
    female = slices.SliceRow("gender=<F>", (("gender", "<F>"),), {"auc": 0.8, "example_count": 50.0},
                             {"auc": 0.82} if has_baseline else {})
    return slices.SliceTable("/tmp/evaluation", [overall, female], ["auc"], [threshold], has_baseline, True, [])


def test_slice_chart_page_renders_from_its_template(tmp_path):
    page = tmp_path / "auc.html"
    slices.write_html(_table(has_baseline=False), "auc", str(page), "census auc per slice")
    text = page.read_text(encoding="utf-8")
    assert "<title>census auc per slice</title>" in text and "data:image/png;base64," in text
    assert "<li>auc &gt;= 0.85 on every slice</li>" in text
    assert "No baseline" in text and "<th>baseline</th>" not in text
    assert "<td>Overall</td><td>120</td><td>0.9000</td><td>pass</td>" in text
    assert "gender=&lt;F&gt;" in text and "gender=<F>" not in text  # escaped
    assert_one_file(text)

    slices.write_html(_table(has_baseline=True), "auc", str(page), "with baseline")
    text = page.read_text(encoding="utf-8")
    assert "<th>baseline</th><th>Δ</th>" in text and "<td>0.8800</td><td>+0.0200</td>" in text
    assert "No baseline" not in text


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


# --- The real census run --------------------------------------------------------------------------


def _report_text(home, run_id):
    path = report.report_path(home, "census", run_id)
    assert path.parent.name == run_id.replace(":", "-")
    assert path.is_file(), f"`mlops run` did not write {path}"
    return path, path.read_text(encoding="utf-8")


@pytest.mark.e2e
def test_run_writes_a_self_contained_report(first_run):
    home, record = first_run
    _, text = _report_text(home, record.run_id)
    for spec in report_sections.SECTIONS:  # every section heading, none of them with an error
        assert f'<h2 id="{spec.id}">{spec.title}</h2>' in text
        assert "Could not read this part" not in section_html(text, spec.id), spec.id
    # Header: decision, data version, every component's status.
    assert '<span class="badge blessed">blessed</span>' in text and "data: DVC md5" in text
    for node_id in record.nodes:
        assert f"{node_id}<span class=\"t\">" in text
    # Statistics of real features, no anomalies, the Tuner's best hyperparameters and trials.
    assert "age" in section_html(text, "statistics") and "<svg class=\"spark\"" in text
    assert "No anomalies" in section_html(text, "anomalies")
    best = record.nodes[nodes.TUNER].output("best_hyperparameters")
    with open(os.path.join(best.uri, "best_hyperparameters.txt")) as f:
        for name in json.load(f)["values"]:
            assert name in section_html(text, "tuner")
    assert "Trials (" in text
    # Training curves and the slice chart are inline PNGs; slice metrics and the threshold are there.
    assert "data:image/png;base64," in section_html(text, "training")
    assert "data:image/png;base64," in section_html(text, "slices")
    assert "train" in text and "validation" in text
    assert "gender=Female" in text and "auc &gt;= 0.85 on Overall" in text
    blessing = section_html(text, "blessing")
    assert "blessed" in blessing and "Baseline: none" in blessing and "nothing to compare against" in blessing
    assert "Pushed: <code>" in blessing and "Registered:" in blessing
    assert_one_file(text)


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
    _, record = first_run
    stopped = copy.deepcopy(record)
    keep = (nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.SCHEMA_GEN, nodes.EXAMPLE_VALIDATOR)
    stopped.nodes = {k: v for k, v in stopped.nodes.items() if k in keep}
    stopped.nodes[nodes.EXAMPLE_VALIDATOR].state = "failed"
    stopped.nodes[nodes.EXAMPLE_VALIDATOR].outputs = {}
    context = report.build_context(stopped, "census")
    assert all(section.error is None for section in context["sections"].values())
    text = report.render(context)
    assert "failed at ExampleValidator" in text
    assert "recomputed from the run&#39;s statistics and schema" in text
    assert "Trainer did not run: the run stopped at ExampleValidator" in text
    assert "Tuner did not run" in text and "No tuner" not in text
    assert "not evaluated" in text


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
    assert "auc &gt;= 0.85 on Overall" in text
    assert "gender=Female" in text
    assert_one_file(text)
    # Default metric: the threshold metric (auc), also without --metric.
    assert cli.main(["slices", "census", "--home", home, "--run", record.run_id, "--png", str(tmp_path / "d.png")]) == 0
    assert (tmp_path / "d.png").read_bytes().startswith(PNG_MAGIC)


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.e2e
@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (CI does not install it)")
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
