"""Reliability: bad input data never produces a pushed or registered model by mistake, pushes are
atomic, and data that does not match data.dvc needs --allow-dirty (README "Reliability").

Each census row of the policy table is one real `mlops run census` on tiny synthetic data that must
stop at the component the policy names (ExampleGen or ExampleValidator) with a message naming
the file/line or the column and the anomaly; nothing after it runs, nothing is pushed or
registered. Process-level faults (kill, lock, drift, promote crash) are in test_reliability_process.py.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest
import tensorflow as tf
from ml_metadata import metadata_store

from models.census import features as F
from pipelines import cli, factory, lineage, summary
from tests.conftest import CENSUS_BUDGET, dvc_exe, run, synthetic_census_rows

COLUMNS = list(F.CSV_COLUMNS)


def _latest(home: Path) -> lineage.RunRecord:
    store = metadata_store.MetadataStore(lineage.sqlite_config(str(home / "metadata.sqlite")))
    return lineage.load_run(store, "mlops-census", lineage.list_run_ids(store, "mlops-census")[0])


def _write_lines(path: Path, lines) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(lines) + b"\n")


def _csv_lines(rows, columns=COLUMNS):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode().splitlines()


# ---- the census rows of the policy table: (how to break 200 good rows, stopping node, message parts)


def _unseen_flood(rows, path):
    for row in rows[:20]:  # 10 % of the rows: far over the schema's 1 % allowance
        row["workclass"] = "Space-Force"
    _write_lines(path, _csv_lines(rows))


def _missing_column(rows, path):
    _write_lines(path, _csv_lines(rows, [c for c in COLUMNS if c != "occupation"]))


def _string_in_numeric(rows, path):
    rows[6]["age"] = "forty"  # data line 7 = file line 8
    _write_lines(path, _csv_lines(rows))


def _empty_file(rows, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def _header_only(rows, path):
    _write_lines(path, _csv_lines([]))


def _label_missing(rows, path):
    _write_lines(path, _csv_lines(rows, [c for c in COLUMNS if c != F.LABEL_KEY]))


def _label_unknown(rows, path):
    rows[3][F.LABEL_KEY] = "maybe"  # one row is enough: the label domain allows no other value
    _write_lines(path, _csv_lines(rows))


def _truncated_row(rows, path):
    lines = _csv_lines(rows)
    lines[-1] = lines[-1][:12]  # the last row cut off mid-way (an interrupted copy)
    _write_lines(path, lines)


def _extra_field(rows, path):
    lines = _csv_lines(rows)
    lines[50] += b",surplus"
    _write_lines(path, lines)


def _unbalanced_quote(rows, path):
    lines = _csv_lines(rows)
    lines[100] = lines[100].replace(b",", b',"', 1)
    _write_lines(path, lines)


STOP_CASES = {
    # name: (break the data, node that stops the run, parts of the message)
    "unseen_categorical_flood": (_unseen_flood, factory.EXAMPLE_VALIDATOR,
                                 ["column 'workclass'", "Unexpected string values", "Space-Force"]),
    "missing_required_column": (_missing_column, factory.EXAMPLE_VALIDATOR, ["column 'occupation'", "Column dropped"]),
    "string_in_numeric_column": (_string_in_numeric, factory.EXAMPLE_VALIDATOR,
                                 ["column 'age'", "Expected data of type: INT but got STRING", "forty",
                                  "adult.csv:8 ('forty')"]),
    "empty_file": (_empty_file, factory.EXAMPLE_GEN, ["CsvInputError", "adult.csv is empty (no header row)"]),
    "header_only_file": (_header_only, factory.EXAMPLE_GEN, ["CsvInputError", "adult.csv has a header but no data rows"]),
    "label_column_missing": (_label_missing, factory.EXAMPLE_VALIDATOR, ["column 'income_bracket'", "Column dropped"]),
    "label_unknown_class": (_label_unknown, factory.EXAMPLE_VALIDATOR,
                            ["column 'income_bracket'", "Unexpected string values", "maybe"]),
    "truncated_row": (_truncated_row, factory.EXAMPLE_GEN,
                      ["CsvInputError", "adult.csv:201: expected 15 fields", "truncated or malformed row"]),
    "extra_field": (_extra_field, factory.EXAMPLE_GEN, ["CsvInputError", "adult.csv:51: expected 15 fields", "found 16"]),
    "unbalanced_quote": (_unbalanced_quote, factory.EXAMPLE_GEN,
                         ["CsvInputError", "adult.csv:101-201: expected 15 fields", "unbalanced quote"]),
}
AFTER_EXAMPLE_GEN = [factory.STATISTICS_GEN, factory.EXAMPLE_VALIDATOR, factory.TRANSFORM, factory.TUNER,
                     factory.TRAINER, factory.EVALUATOR, factory.PUSHER, factory.REGISTRAR]


@pytest.mark.e2e
@pytest.mark.parametrize("case", sorted(STOP_CASES))
def test_bad_census_data_stops_the_run_before_training(case, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    breaker, stop_node, parts = STOP_CASES[case]
    data_root = tmp_path / "data"
    breaker(synthetic_census_rows(200, seed=5), data_root / "census" / "adult.csv")
    home = tmp_path / "home"

    status = cli.main(["run", "census", "--home", str(home), "--data-root", str(data_root)] + CENSUS_BUDGET)
    out = capsys.readouterr().out

    assert status == 1
    flat = " ".join(out.split())
    for part in parts:
        assert part in flat, f"{part!r} not in:\n{out}"
    assert f"the run stopped at {stop_node}" in out
    record = _latest(home)
    assert record.nodes[stop_node].state == "failed"
    downstream = AFTER_EXAMPLE_GEN[AFTER_EXAMPLE_GEN.index(stop_node) + 1:] if stop_node in AFTER_EXAMPLE_GEN \
        else AFTER_EXAMPLE_GEN
    for node in downstream:
        assert node not in record.nodes, node
    # Nothing pushed, nothing registered (the Registrar never ran, so the registry was not even created).
    assert not (home / "serving").exists()
    assert not (home / "mlflow.db").exists()
    if stop_node == factory.EXAMPLE_VALIDATOR:  # ExampleGen recorded the (untracked) data it read
        assert record.nodes[factory.EXAMPLE_GEN].output("examples").get("dvc_data_md5") == "untracked"


# ---- SIGTERM during a run (SIGKILL with real processes: test_reliability_process.py)


@pytest.mark.e2e
def test_sigterm_cancels_the_running_component_and_exits_143(tmp_path, capsys, monkeypatch):
    """SIGTERM arrives while an executor runs, inside code that swallows Exception (as AutoGraph
    does): the run still stops, the execution is recorded as canceled, the lock is released."""
    import signal
    import time

    from components import example_gen
    from pipelines import inspect_runs, local_runner

    def interrupted_do(self, input_dict, output_dict, exec_properties):
        os.kill(os.getpid(), signal.SIGTERM)
        try:
            time.sleep(60)  # the handler raises here
        except Exception:
            pass
        raise AssertionError("SIGTERM did not interrupt the executor")

    monkeypatch.setattr(example_gen.VersionedCsvExecutor, "Do", interrupted_do)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    data_root = tmp_path / "data"
    _write_lines(data_root / "census" / "adult.csv", _csv_lines(synthetic_census_rows(50, seed=2)))
    home = tmp_path / "home"

    handler_before = signal.getsignal(signal.SIGTERM)
    started = time.monotonic()
    status = cli.main(["run", "census", "--home", str(home), "--data-root", str(data_root)] + CENSUS_BUDGET)
    out = capsys.readouterr().out

    assert status == 128 + signal.SIGTERM and time.monotonic() - started < 50
    assert "RunInterrupted: stopped by SIGTERM" in out and "the run was interrupted at ExampleGen" in out
    record = _latest(home)
    assert record.nodes[factory.EXAMPLE_GEN].state == "canceled"
    assert set(record.nodes) == {factory.EXAMPLE_GEN}
    layout = local_runner.LocalLayout(home)
    rows, _ = inspect_runs.list_runs(layout, "census")
    assert rows["census"][0].interrupted == [factory.EXAMPLE_GEN]
    assert local_runner.lock_holder(layout, "census") is None
    assert signal.getsignal(signal.SIGTERM) == handler_before  # the run's handler is gone


# ---- (9) non-UTF-8 bytes in review text: repaired, counted, kept (ExampleGen → Transform, real TFX)


def _run_until(task, home: Path, data_root: Path, last_node: str) -> lineage.RunRecord:
    """The task's real pipeline, run with TFX's LocalDagRunner up to last_node only."""
    from tfx.dsl.compiler import compiler
    from tfx.orchestration import metadata as tfx_metadata
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner
    from tfx.proto.orchestration import pipeline_pb2

    pipeline = factory.create_pipeline(
        task, pipeline_root=str(home / "pipelines"), data_root=str(data_root), serving_root=str(home / "serving"),
        data_version={"md5": "untracked", "dirty": True},
        metadata_connection_config=tfx_metadata.sqlite_metadata_connection_config(str(home / "metadata.sqlite")),
        registry_uri="sqlite:///" + str(home / "mlflow.db"),
    )
    options = pipeline_pb2.RunOptions()
    options.partial_run.to_nodes.append(last_node)
    options.partial_run.snapshot_settings.latest_pipeline_run_strategy.SetInParent()
    LocalDagRunner().run_with_ir(compiler.Compiler().compile(pipeline), run_options=options)
    store = metadata_store.MetadataStore(lineage.sqlite_config(str(home / "metadata.sqlite")))
    name = factory.pipeline_name(task)
    return lineage.load_run(store, name, lineage.list_run_ids(store, name)[0])


def _records(uri: str, split: str):
    files = tf.io.gfile.glob(os.path.join(uri, f"Split-{split}", "*"))
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


@pytest.mark.e2e
def test_invalid_utf8_in_review_text_is_replaced_counted_and_kept(tmp_path):
    from models.reviews import features as RF
    from pipelines.config import load_task

    lines = [b"id,rating,label,text"]
    for i in range(60):
        text = b"a great film" if i % 2 else b"a dull film"
        if i in (7, 30):
            text = b"caf\xe9 \xff\xfe " + text  # Latin-1 / stray bytes: not UTF-8
        lines.append(b"%d,%d,%d,%s" % (i, 8 if i % 2 else 2, i % 2, text))
    data_root = tmp_path / "data"
    _write_lines(data_root / "reviews" / "reviews.csv", lines)

    record = _run_until(load_task("reviews"), tmp_path / "home", data_root, factory.TRANSFORM)

    assert record.nodes[factory.EXAMPLE_VALIDATOR].state == "complete"
    assert record.nodes[factory.TRANSFORM].state == "complete"
    examples = record.nodes[factory.EXAMPLE_GEN].output("examples")
    assert examples.get("invalid_utf8_rows") == 2
    assert examples.get("invalid_utf8_where") == "reviews.csv:9, reviews.csv:32"
    assert summary.data_notes(examples) == [
        "2 row(s) had invalid UTF-8, replaced by U+FFFD (reviews.csv:9, reviews.csv:32)"
    ]
    # Every review reaches Transform (none dropped); the repaired ones carry U+FFFD, valid UTF-8.
    transformed = record.nodes[factory.TRANSFORM].output("transformed_examples").uri
    texts = [t for split in ("train", "eval") for e in _records(transformed, split)
             for t in e.features.feature[RF.TEXT_XF].bytes_list.value]
    assert len(texts) == 60
    repaired = [t.decode("utf-8") for t in texts if "\ufffd".encode() in t]
    assert sorted(repaired) == ["caf\ufffd \ufffd\ufffd a dull film", "caf\ufffd \ufffd\ufffd a great film"]


# ---- (8) a corrupt image (pets): skipped, counted, never an example


def test_corrupt_image_is_skipped_counted_and_never_reaches_training(tmp_path):
    """The ImageExampleGen executor on a folder with one truncated JPEG. (The full pets run with a
    corrupt file, blessed and pushed on the good images, is tests/test_e2e_pets.py.)"""
    from tfx.proto import example_gen_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    from components import data_version as dv
    from components import image_example_gen as ieg
    from tests.pets_images import write_pets, write_truncated_jpeg

    write_pets(tmp_path / "pets", per_class=6, seed=3)
    write_truncated_jpeg(tmp_path / "pets" / "cat" / "cat.broken.jpg")
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    ieg.ImageExampleGenExecutor().Do({}, {"examples": [examples]}, {
        "input_base": str(tmp_path / "pets"),
        "input_config": proto_utils.proto_to_json(example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="images", pattern=ieg.INPUT_PATTERN)])),
        "output_config": proto_utils.proto_to_json(ieg.split_output_config((4, 1))),
        "custom_config": proto_utils.proto_to_json(dv.to_custom_config({"md5": "untracked", "dirty": True})),
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
        "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    })
    assert examples.get_int_custom_property("skipped_count") == 1
    assert examples.get_string_custom_property("skipped_files") == "cat/cat.broken.jpg"
    names = [e.features.feature["filename"].bytes_list.value[0].decode()
             for split in ("train", "eval") for e in _records(examples.uri, split)]
    assert len(names) == 12 and "cat/cat.broken.jpg" not in names
    record = lineage.ArtifactRecord(0, "Examples", examples.uri, "examples", {
        "skipped_count": 1, "skipped_files": "cat/cat.broken.jpg"})
    assert summary.data_notes(record) == ["1 input record(s) skipped (not used for training): cat/cat.broken.jpg"]


# ---- data/ that does not match data.dvc


@pytest.mark.e2e
def test_dirty_data_is_refused_unless_allowed_and_then_recorded_as_dirty(census_project, tmp_path, capsys, monkeypatch):
    from pipelines import datasets

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = census_project
    tracked = datasets.tracked_md5(root)
    # Change data/ after `dvc add`: 70 rows of a new workclass (so the allowed run stops cheaply at
    # the ExampleValidator, after ExampleGen has recorded the data version).
    rows = synthetic_census_rows(70, seed=9)
    for row in rows:
        row["workclass"] = "Space-Force"
    with open(root / "data" / "census" / "adult.csv", "a") as f:
        f.write(b"\n".join(_csv_lines(rows)[1:]).decode() + "\n")
    home = tmp_path / "home"
    args = ["run", "census", "--home", str(home), "--data-root", str(root / "data")] + CENSUS_BUDGET

    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "does not match data.dvc" in err and "--allow-dirty" in err
    assert not (home / "metadata.sqlite").exists()  # refused before anything ran

    assert cli.main(args + ["--allow-dirty"]) == 1  # runs, then stops at the validator
    out = capsys.readouterr().out
    assert f"(dvc md5 {tracked}, dirty)" in out and f"data: dvc md5 {tracked} (dirty)" in out
    examples = _latest(home).nodes[factory.EXAMPLE_GEN].output("examples")
    assert examples.get("dvc_data_md5") == tracked and examples.get("dvc_data_dirty") == 1

    # `dvc checkout` restores the tracked data: clean again, no flag needed.
    run([dvc_exe(), "checkout", "-q", "--force"], root)
    assert datasets.data_status(root)["dirty"] is False


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


# ---- atomic pushes


def _push_inputs(tmp_path: Path, blessed: bool = True):
    from tfx.types import standard_artifacts

    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    serving = Path(model.uri) / "Format-Serving"
    (serving / "variables").mkdir(parents=True)
    (serving / "assets").mkdir()
    (serving / "saved_model.pb").write_bytes(b"graph" * 1000)
    (serving / "variables" / "variables.index").write_bytes(b"index")
    (serving / "variables" / "variables.data-00000-of-00001").write_bytes(os.urandom(200_000))
    (serving / "assets" / "vocab.txt").write_text("a\nb\n")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", int(blessed))
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed_model")
    return {"model": [model], "model_blessing": [blessing]}, {"pushed_model": [pushed]}, pushed


def _push(inputs, outputs, base: Path):
    from tfx.proto import pusher_pb2
    from tfx.utils import proto_utils

    from components.atomic_pusher import AtomicPusherExecutor

    destination = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(base)))
    AtomicPusherExecutor().Do(inputs, outputs, {"push_destination": proto_utils.proto_to_json(destination)})


def test_push_lands_complete_in_a_numbered_version_directory(tmp_path):
    inputs, outputs, pushed = _push_inputs(tmp_path)
    base = tmp_path / "serving" / "census"
    _push(inputs, outputs, base)
    assert pushed.get_int_custom_property("pushed") == 1
    [version] = os.listdir(base)
    assert version.isdigit() and pushed.get_string_custom_property("pushed_destination") == str(base / version)
    source = Path(inputs["model"][0].uri) / "Format-Serving"
    for path in source.rglob("*"):
        if path.is_file():
            assert (base / version / path.relative_to(source)).read_bytes() == path.read_bytes()
    # A second push in the same second gets the next number instead of writing into this one.
    inputs2, outputs2, pushed2 = _push_inputs(tmp_path / "again")
    _push(inputs2, outputs2, base)
    assert len(os.listdir(base)) == 2 and pushed2.get_string_custom_property("pushed_destination") != str(base / version)


def test_crash_mid_push_leaves_no_visible_version(tmp_path, monkeypatch):
    import shutil

    from components import atomic_pusher

    copied = []

    def copy_then_crash(source, target):
        def copy_one(src, dst):
            if len(copied) == 2:
                raise OSError("disk full (simulated crash mid-copy)")
            copied.append(dst)
            return shutil.copy2(src, dst)
        shutil.copytree(source, target, copy_function=copy_one)

    monkeypatch.setattr(atomic_pusher, "copy_model", copy_then_crash)
    inputs, outputs, pushed = _push_inputs(tmp_path)
    base = tmp_path / "serving" / "census"
    with pytest.raises(OSError, match="simulated crash"):
        _push(inputs, outputs, base)
    assert len(copied) == 2  # the copy was under way when it failed
    assert os.listdir(base) == []  # no version directory, and the staging directory is gone
    assert pushed.get_int_custom_property("pushed") == 0
    assert not pushed.has_custom_property("pushed_destination")


def test_unblessed_model_is_not_pushed(tmp_path):
    inputs, outputs, pushed = _push_inputs(tmp_path, blessed=False)
    base = tmp_path / "serving" / "census"
    _push(inputs, outputs, base)
    assert pushed.get_int_custom_property("pushed") == 0 and not base.exists()


def test_staging_left_by_a_killed_push_is_removed_by_the_next_push(tmp_path):
    import socket
    import subprocess
    import sys

    from components.atomic_pusher import STAGING_PREFIX

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    base = tmp_path / "serving" / "census"
    leftover = base / f"{STAGING_PREFIX}1700000000-{socket.gethostname()}-{int(dead.stdout)}"
    (leftover / "variables").mkdir(parents=True)
    other_host = base / f"{STAGING_PREFIX}1700000000-elsewhere-1"
    other_host.mkdir()
    inputs, outputs, _ = _push_inputs(tmp_path)
    _push(inputs, outputs, base)
    names = sorted(os.listdir(base))
    assert leftover.name not in names and other_host.name in names  # only this host's dead pushes
    assert [n for n in names if not n.startswith(".")][0].isdigit()


def test_pipeline_uses_the_atomic_pusher_and_the_drift_aware_validator(tmp_path):
    from tfx.orchestration import metadata as tfx_metadata

    from components.atomic_pusher import AtomicPusher
    from components.strict_example_validator import StrictExampleValidator
    from pipelines.config import load_task

    pipeline = factory.create_pipeline(
        load_task("census"), pipeline_root=str(tmp_path / "p"), data_root=str(tmp_path / "d"),
        serving_root=str(tmp_path / "s"),
        metadata_connection_config=tfx_metadata.sqlite_metadata_connection_config(str(tmp_path / "m.sqlite")),
    )
    by_id = {c.id: c for c in pipeline.components}
    assert isinstance(by_id[factory.PUSHER], AtomicPusher)
    validator = by_id[factory.EXAMPLE_VALIDATOR]
    assert isinstance(validator, StrictExampleValidator)
    assert validator.exec_properties["metadata_path"] == str(tmp_path / "m.sqlite")


def test_census_schema_sets_a_drift_threshold_on_every_numeric_model_feature():
    import tensorflow_data_validation as tfdv

    from tests.conftest import REPO

    schema = tfdv.load_schema_text(str(REPO / "models" / "census" / "schema.pbtxt"))
    thresholds = {f.name: f.drift_comparator.jensen_shannon_divergence.threshold
                  for f in schema.feature if f.HasField("drift_comparator")}
    assert thresholds == {name: pytest.approx(0.1) for name in F.NUMERIC_FEATURES}


def test_reviews_csv_is_read_like_before(tmp_path):
    """Parity guard for the CSV reader: quoted commas, quotes and multi-line quoted text."""
    from components.example_gen import _ReadCsvRecords, value_kind

    path = tmp_path / "r.csv"
    path.write_bytes(b'id,text\n1,"a, b"\n\n2,"he said ""hi"""\n3,"two\nlines"\n')
    records = list(_ReadCsvRecords(["id", "text"]).process(str(path)))
    assert records == [("r.csv:2", ["1", "a, b"]), ("r.csv:4", ["2", 'he said "hi"']), ("r.csv:5", ["3", "two\nlines"])]
    assert [value_kind(v) for v in ("", "12", "-3", "1.5", "1e3", "x", str(2**63))] == [0, 1, 1, 2, 2, 3, 3]


def test_only_columns_numeric_but_for_a_few_values_are_reported_as_mixed():
    from components.example_gen import STRING, mixed_type_columns

    kinds = {
        "age": [STRING, 199, 1, (("adult.csv", 8), "adult.csv:8", "forty")],
        # A real string column with many numeric-looking values (STS's `year`: "2012test", "2015").
        "year": [STRING, 3749, 2000, (("sts-train.csv", 2), "sts-train.csv:2", "2012test")],
    }
    assert mixed_type_columns(kinds) == ["age: 1 non-numeric value(s) among 200, first at adult.csv:8 ('forty')"]
