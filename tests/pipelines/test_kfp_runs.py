"""`mlops runs/slices/report --host`: Kubeflow runs read through the same run source interface as
local ones, against a loopback KFP 2.17.0 host (tests/kfp_api.py: the v2beta1 API and the UI's
gRPC-web ML Metadata proxy over a real in-memory ML Metadata store). Artifacts lie under a
pipeline root as the launcher lays them out, `<root>/mlops-TASK/<run id>/<task>/<uuid>/<output>`,
on local disk and on S3 (moto)."""
from __future__ import annotations

import os
import uuid

import pytest

from pipelines import cli, nodes, slices
from pipelines.runs import open_source
from pipelines.runs.kubeflow import KubeflowSource, unwrap
from pipelines.runs.local import LocalSource
from pipelines.runs.mlmd_web import frame, unframe
from tests.kfp_api import FakeKfp, kfp_host

RUN_A = "6f1c3a52-0000-4000-8000-00000000000a"  # older, blessed
RUN_B = "9d2e4b63-0000-4000-8000-00000000000b"  # newer, failed at the Trainer
OTHER = "11111111-0000-4000-8000-000000000000"  # another pipeline's run


def write_evaluation(uri: str, auc_female: float = 0.81) -> None:
    """TFMA's output for Overall and gender=Female/Male with census's own EvalConfig (thresholds)."""
    import tensorflow as tf
    from tensorflow_model_analysis.proto import metrics_for_slice_pb2, validation_result_pb2
    from tensorflow_model_analysis.writers import eval_config_writer

    from pipelines import factory
    from pipelines.tasks import load_task

    os.makedirs(uri)
    with tf.io.TFRecordWriter(os.path.join(uri, "metrics")) as writer:
        for value, count, auc in ((None, 300, 0.88), ("Female", 100, auc_female), ("Male", 200, 0.9)):
            metrics = metrics_for_slice_pb2.MetricsForSlice()
            if value:
                single = metrics.slice_key.single_slice_keys.add()
                single.column, single.bytes_value = "gender", value.encode()
            for name, number in (("example_count", count), ("auc", auc)):
                entry = metrics.metric_keys_and_values.add()
                entry.key.name = name
                entry.value.double_value.value = number
            writer.write(metrics.SerializeToString())
    with tf.io.TFRecordWriter(os.path.join(uri, "validations")) as writer:
        writer.write(validation_result_pb2.ValidationResult(validation_ok=True).SerializeToString())
    config = factory.build_eval_config(load_task("census"))
    with open(os.path.join(uri, eval_config_writer.EVAL_CONFIG_FILE + ".json"), "w") as f:
        f.write(eval_config_writer._serialize_eval_run(config, "", "tfrecords", {"": "model"}))


def artifact_uri(root: str, run_id: str, task: str, output: str) -> str:
    """The launcher's layout (pipelines/kubeflow/emulation.py provision_outputs)."""
    return f"{root}/{nodes.pipeline_name('census')}/{run_id}/{task}/{uuid.uuid4()}/{output}"


def fill(fake: FakeKfp, root: str, write) -> str:
    """Two census runs and one of another pipeline; `write(uri)` lays out the Evaluator's output
    wherever `root` is. Returns run A's evaluation URI."""
    fake.pipelines = [{"pipeline_id": "p-census", "display_name": "mlops-census"},
                      {"pipeline_id": "p-heart", "display_name": "mlops-heart"}]
    fake.add_run(RUN_A, "p-census", created="2026-12-01T10:00:00Z")
    fake.add_run(OTHER, "p-heart", created="2026-12-01T11:00:00Z")
    fake.add_run(RUN_B, "p-census", state="FAILED", created="2026-12-01T12:00:00Z")
    evaluation = artifact_uri(root, RUN_A, nodes.EVALUATOR, "evaluation")
    blessing = artifact_uri(root, RUN_A, nodes.EVALUATOR, "blessing")
    write(evaluation, blessing)
    for task in (nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.SCHEMA_GEN, nodes.TRAINER):
        fake.add_step(RUN_A, task, "cached" if task == nodes.EXAMPLE_GEN else "complete")
    fake.add_step(RUN_A, nodes.EVALUATOR, outputs={
        "evaluation": ("tfx.ModelEvaluation", evaluation, {}),
        "blessing": ("tfx.ModelBlessing", blessing, {"blessed": 1, "baseline_model": ""})})
    fake.add_step(RUN_A, nodes.PUSHER, outputs={
        "pushed_model": ("tfx.PushedModel", artifact_uri(root, RUN_A, nodes.PUSHER, "pushed_model"),
                         {"pushed": 1, "pushed_destination": "s3://b/serving/census/1765"})})
    fake.add_step(RUN_A, nodes.REGISTRAR, outputs={
        "registered_model": ("RegisteredModel", artifact_uri(root, RUN_A, nodes.REGISTRAR, "registered_model"),
                             {"registered": 1, "model_name": "census", "model_version": 3})})
    # Not triggered (the driver records CANCELED): did not run.
    fake.add_step(RUN_A, nodes.INFRA_VALIDATOR, "canceled")
    fake.add_step(RUN_B, nodes.EXAMPLE_GEN)
    fake.add_step(RUN_B, nodes.TRAINER, "running")  # its pod died; the run FAILED
    fake.add_step(OTHER, nodes.EXAMPLE_GEN)
    return evaluation


def _write_local(evaluation, blessing):
    write_evaluation(evaluation)
    os.makedirs(blessing)
    open(os.path.join(blessing, "BLESSED"), "w").close()


@pytest.fixture
def kfp(tmp_path):
    fake = FakeKfp()
    evaluation = fill(fake, str(tmp_path / "root"), _write_local)
    with kfp_host(fake) as host:
        yield fake, host, evaluation


def test_grpc_web_frames_and_kfp_number_conversion():
    body = frame(b"abc") + frame(b"grpc-status: 0\r\ngrpc-message: ok\r\n", 0x80)
    assert unframe(body) == (b"abc", {"grpc-status": "0", "grpc-message": "ok"})
    assert unwrap(3.0) == 3 and isinstance(unwrap(3.0), int) and unwrap(0.5) == 0.5
    assert unwrap({"list": [1, 2]}) == [1, 2] and unwrap({"struct": {"a": 1}}) == {"a": 1}
    assert unwrap({"a": 1, "b": 2}) == {"a": 1, "b": 2}


def test_the_source_is_chosen_once_by_where_the_runs_are(tmp_path):
    assert isinstance(open_source(str(tmp_path)), LocalSource)
    source = open_source("http://127.0.0.1:1", home=str(tmp_path), token="t")
    assert isinstance(source, KubeflowSource) and source.cache == tmp_path.resolve() / "cache" / "kfp"


def test_kubeflow_runs_read_like_local_ones(kfp, tmp_path):
    fake, host, evaluation = kfp
    source = KubeflowSource(host, namespace="team-a", token="secret")
    assert source.run_ids("census") == [RUN_B, RUN_A]  # newest first, other pipelines left out, all pages
    assert source.tasks() == ["census", "heart"]
    rows, totals = source.list_runs("census")
    assert totals == {"census": 2}
    newer, older = rows["census"]
    assert newer.states == {nodes.EXAMPLE_GEN: "complete", nodes.TRAINER: "failed"}
    assert newer.blessed is None and newer.reasons == ["the run stopped at Trainer"]
    assert older.blessed is True and older.pushed is True and older.registration == "census v3"
    assert nodes.INFRA_VALIDATOR not in older.states and older.states[nodes.EXAMPLE_GEN] == "cached"
    record = source.resolve_run("census", "6f1c", need=nodes.EVALUATOR)
    assert record.run_id == RUN_A and record.nodes[nodes.EVALUATOR].output("evaluation").uri == evaluation
    # The namespace and the credentials go with every API and ML Metadata request.
    assert {m for m, _, _ in fake.seen} == {"GET", "POST"}
    assert all(h.get("Authorization") == "Bearer secret" for _, _, h in fake.seen)
    assert all("namespace=team-a" in p for m, p, _ in fake.seen if m == "GET")


def test_runs_command_lists_kubeflow_runs_with_the_local_columns(kfp, tmp_path, capsys):
    _, host, _ = kfp
    assert cli.main(["runs", "census", "--host", host, "--home", str(tmp_path / "home")]) == 0
    out = capsys.readouterr().out
    for header in ("run id", "start", "duration", "components", "blessed", "infra", "pushed", "registered"):
        assert header in out
    line_a = next(line for line in out.splitlines() if RUN_A[:8] in line)
    line_b = next(line for line in out.splitlines() if RUN_B[:8] in line)
    assert "census v3" in line_a and line_a.count("yes") == 2
    assert "✗" in line_b and "census v3" not in line_b
    assert "census — 2 runs" in out


def test_slices_of_a_kubeflow_run_print_what_a_local_run_prints(kfp, tmp_path, capsys):
    _, host, evaluation = kfp
    assert cli.main(["slices", "census", "--kfp-run", RUN_A, "--host", host, "--home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"census run {RUN_A}" in out and "validation: passed" in out
    table = slices.load_slice_table(evaluation)
    for row in table.rows:  # every slice with its count and AUC, as the local command formats them
        line = next(line for line in out.splitlines() if line.startswith(row.name))
        assert slices.fmt(row.example_count, 0) in line and slices.fmt(row.candidate["auc"]) in line
    assert "gender=Female" in out and "0.8100" in out


def test_report_of_a_kubeflow_run_is_written_under_the_local_home(kfp, tmp_path, capsys):
    _, host, _ = kfp
    home = tmp_path / "home"
    assert cli.main(["report", "census", "--kfp-run", RUN_A[:8], "--host", host, "--home", str(home)]) == 0
    path = home / "reports" / "census" / RUN_A / "report.html"
    assert str(path) in capsys.readouterr().out.replace("\n", "")
    text = path.read_text()
    assert "gender=Female" in text and '<span class="badge blessed">blessed</span>' in text
    assert "census v3" in text


def test_kfp_run_without_a_host_and_unknown_runs_are_one_line_errors(kfp, tmp_path, capsys):
    _, host, _ = kfp
    assert cli.main(["slices", "census", "--kfp-run", RUN_A, "--home", str(tmp_path)]) == 2
    assert "--kfp-run needs the Kubeflow Pipelines host: add --host URL" in capsys.readouterr().err
    assert cli.main(["slices", "census", "--kfp-run", "nope", "--host", host, "--home", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no run 'nope' of 'census'" in err and len(err.strip().splitlines()) == 1
    assert cli.main(["runs", "sts", "--host", host, "--home", str(tmp_path)]) == 1
    assert "no runs of 'sts' in Kubeflow Pipelines at" in capsys.readouterr().err


def test_metadata_errors_and_unreadable_roots_say_what_to_fix(kfp, tmp_path):
    from ml_metadata.proto import metadata_store_service_pb2 as svc

    from pipelines.kubeflow import KubeflowError
    from pipelines.runs import InspectError

    _, host, _ = kfp
    source = KubeflowSource(host, layout=None)
    with pytest.raises(KubeflowError, match=r"refused Nope \(grpc-status 12\): unimplemented; is the metadata service"):
        source.metadata.call("Nope", svc.GetArtifactsByIDRequest(), svc.GetArtifactsByIDResponse)
    with pytest.raises(InspectError, match="only s3:// pipeline roots"):
        source.readable("gs://bucket/root/x", RUN_A, nodes.EVALUATOR, "evaluation")


def test_an_unreachable_host_is_one_line(tmp_path, capsys):
    assert cli.main(["runs", "census", "--host", "http://127.0.0.1:1", "--home", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot reach Kubeflow Pipelines at http://127.0.0.1:1" in err


def test_a_run_on_s3_is_read_through_a_local_copy_and_the_command_exits_0(tmp_path):
    """The artifacts slices and the report open are downloaded with boto3 into the home's cache (so
    TensorFlow never touches s3:// here and the process ends normally, see kubeflow.py), once."""
    import subprocess
    import sys
    from pathlib import Path

    from tests.s3_server import client, environment, s3_environment, s3_server, upload_tree

    with s3_server(tmp_path) as endpoint, environment(s3_environment(endpoint)):
        s3 = client(endpoint)
        s3.create_bucket(Bucket="pipelines")

        def write(evaluation, blessing):
            staging = tmp_path / "staging"
            _write_local(str(staging / "evaluation"), str(staging / "blessing"))
            for local, uri in ((staging / "evaluation", evaluation), (staging / "blessing", blessing)):
                upload_tree(s3, local, "pipelines", uri[len("s3://pipelines/"):])

        fake = FakeKfp()
        evaluation = fill(fake, "s3://pipelines/root", write)
        home = tmp_path / "home"
        with kfp_host(fake) as host:
            done = subprocess.run([sys.executable, "-m", "pipelines.cli", "slices", "census", "--kfp-run", RUN_A,
                                   "--host", host, "--home", str(home)], capture_output=True, text=True,
                                  cwd=Path(__file__).resolve().parents[2], timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
            assert "gender=Female" in done.stdout and "validation: passed" in done.stdout
            cached = home / "cache" / "kfp" / RUN_A / nodes.EVALUATOR
            assert (cached / "evaluation" / "metrics").is_file() and (cached / "blessing" / "BLESSED").is_file()
            assert (cached / "evaluation.complete").read_text() == evaluation
            # Read again from the cache: the bucket is no longer needed.
            for key in [o["Key"] for o in s3.list_objects_v2(Bucket="pipelines")["Contents"]]:
                s3.delete_object(Bucket="pipelines", Key=key)
            assert cli.main(["report", "census", "--kfp-run", RUN_A, "--host", host, "--home", str(home)]) == 0
            assert "gender=Female" in (home / "reports" / "census" / RUN_A / "report.html").read_text()


@pytest.mark.e2e
def test_a_kubeflow_copy_of_the_census_run_reads_back_as_the_local_run_does(first_run, tmp_path, capsys):
    """The census fixture's first run laid out under a KFP pipeline root (what slices and the report
    open copied there, every output's properties in ML Metadata as the launcher records them):
    `runs` gives the same outcome, `slices` prints the same table, the report has every section."""
    import re
    import shutil

    from pipelines.layout import LocalLayout
    from pipelines.report import report_path
    from pipelines.report import sections as report_sections
    from pipelines.runs.kubeflow import READ_BACK
    from tests.pipelines.test_report import section_html

    home, record = first_run
    run_id, root = "0c0ffee0-0000-4000-8000-000000000001", str(tmp_path / "root")
    fake = FakeKfp()
    fake.pipelines = [{"pipeline_id": "p-census", "display_name": "mlops-census"}]
    fake.add_run(run_id, "p-census")
    for node in record.nodes.values():
        outputs = {}
        for key, found in node.outputs.items():
            uri = artifact_uri(root, run_id, node.node_id, key)
            if (node.node_id, key) in READ_BACK and os.path.isdir(found[0].uri):
                shutil.copytree(found[0].uri, uri)
            outputs[key] = (found[0].type, uri, {k: v for k, v in found[0].properties.items()
                                                 if isinstance(v, (int, float, str))})
        fake.add_step(run_id, node.node_id, node.state, outputs)
    kfp_home = str(tmp_path / "kfp-home")
    with kfp_host(fake) as host:
        [kfp_row] = KubeflowSource(host).list_runs("census")[0]["census"]
        local_rows = LocalSource(LocalLayout.resolve(home)).list_runs("census")[0]["census"]
        local_row = next(r for r in local_rows if r.run_id == record.run_id)
        for field in ("components", "blessed", "infra_blessed", "infra_latency_ms", "pushed", "pushed_path",
                      "registration", "baseline", "data_md5"):
            local_value, kfp_value = getattr(local_row, field), getattr(kfp_row, field)
            if field == "components":  # ML Metadata's times are the fake server's
                local_value, kfp_value = [c[:2] for c in local_value], [c[:2] for c in kfp_value]
            assert kfp_value == local_value, field

        assert cli.main(["slices", "census", "--home", home, "--run", record.run_id]) == 0
        local_out = capsys.readouterr().out.splitlines()
        assert cli.main(["slices", "census", "--kfp-run", run_id, "--host", host, "--home", kfp_home]) == 0
        kfp_out = capsys.readouterr().out.splitlines()
        assert kfp_out[0].startswith(f"census run {run_id}") and kfp_out[1:] == local_out[1:]

        assert cli.main(["report", "census", "--kfp-run", run_id, "--host", host, "--home", kfp_home]) == 0
    text = (tmp_path / "kfp-home" / "reports" / "census" / run_id / "report.html").read_text()
    for spec in report_sections.SECTIONS:
        assert "Could not read this part" not in section_html(text, spec.id), spec.id
    local_text = report_path(home, "census", record.run_id).read_text()
    rows = re.compile(r"<td>gender=\w+</td>.*?</tr>", re.S)
    assert rows.findall(section_html(text, "slices")) == rows.findall(section_html(local_text, "slices")) != []
