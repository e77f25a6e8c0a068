"""`mlops submit` against loopback only: a closed port, tiny http.servers answering 401/403, and a
small fake of the KFP v2beta1 API that records what the kfp client sends."""
from __future__ import annotations

import contextlib
import http.server
import json
import threading
import urllib.parse
from pathlib import Path

import pytest
import yaml

import socket

from pipelines import cli
from pipelines.kubeflow import client
from tests.pipelines.test_kubeflow_compiler import IMAGE, compile_task



@contextlib.contextmanager
def loopback_server(handler_cls, lifetime: float = 30.0):
    """An http.server on 127.0.0.1 in a daemon thread; shut down on exit or after `lifetime` s."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
    server.requests = []
    server.seen = []  # (method, path with query, headers) of every request
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    watchdog = threading.Timer(lifetime, server.shutdown)
    watchdog.daemon = True
    thread.start()
    watchdog.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _body(self) -> bytes:
        self.server.seen.append((self.command, self.path, dict(self.headers)))
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _denying_handler(status: int):
    class Deny(_QuietHandler):
        def _deny(self):
            self.server.requests.append((self.command, self.path))
            self._body()
            self._reply(status, {"error": "denied", "code": 16, "message": "denied"})

        do_GET = do_POST = _deny

    return Deny


def _fake_package(tmp_path: Path) -> Path:
    path = tmp_path / "census.yaml"
    path.write_text(yaml.safe_dump({"pipelineInfo": {"name": "mlops-census"}, "root": {"dag": {"tasks": {}}}}))
    return path


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_submit_to_a_closed_port_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Without --package: the endpoint is checked before compiling, so this fails fast.
    status = cli.main(
        ["submit", "census", "--host", f"http://127.0.0.1:{port}", "--image", IMAGE, "--pipeline-root", str(tmp_path / "r")]
    )
    line = _one_line(capsys.readouterr().err)
    assert status == 1
    assert f"cannot reach Kubeflow Pipelines at http://127.0.0.1:{port}" in line
    assert "refused" in line
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize("status_code", [401, 403])
def test_submit_with_rejected_credentials_is_a_one_line_error(status_code, tmp_path, capsys):
    package = _fake_package(tmp_path)
    with loopback_server(_denying_handler(status_code)) as (server, host):
        status = cli.main(["submit", "census", "--host", host, "--package", str(package), "--token", "bad"])
    line = _one_line(capsys.readouterr().err)
    assert status == 1
    assert f"rejected the request (HTTP {status_code}" in line
    assert server.requests == [("GET", client.HEALTHZ_PATH)]  # one request, no retry loop


def _fake_kfp_handler(existing_pipeline: bool, multi_user: bool = False):
    """Just enough of the KFP v2beta1 REST API for kfp.Client's upload / experiment / run calls."""

    class FakeKfp(_QuietHandler):
        def do_GET(self):
            path = self.path.split("?")[0]
            self._body()
            self.server.requests.append(("GET", path, b""))
            if path == "/apis/v2beta1/healthz":
                self._reply(200, {"multi_user": multi_user})
            elif path == "/apis/v2beta1/pipelines":
                self._reply(200, {"pipelines": [{"pipeline_id": "p-1"}]} if existing_pipeline else {})
            elif path == "/apis/v2beta1/pipelines/p-1/versions":
                self._reply(200, {"pipeline_versions": [{"pipeline_id": "p-1", "pipeline_version_id": "v-1"}]})
            elif path == "/apis/v2beta1/experiments":
                self._reply(200, {})
            else:
                self._reply(404, {"message": f"no {path}"})

        def do_POST(self):
            path = self.path.split("?")[0]
            body = self._body()
            self.server.requests.append(("POST", path, body))
            if path == "/apis/v2beta1/pipelines/upload":
                self._reply(200, {"pipeline_id": "p-1", "display_name": "mlops-census"})
            elif path == "/apis/v2beta1/pipelines/upload_version":
                self._reply(200, {"pipeline_id": "p-1", "pipeline_version_id": "v-2"})
            elif path == "/apis/v2beta1/experiments":
                self._reply(200, {"experiment_id": "e-1", "display_name": json.loads(body)["display_name"]})
            elif path == "/apis/v2beta1/runs":
                self._reply(200, {"run_id": "r-1"})
            elif path == "/apis/v2beta1/recurringruns":
                self._reply(200, {"recurring_run_id": "rr-1", "display_name": json.loads(body)["display_name"]})
            else:
                self._reply(404, {"message": f"no {path}"})

    return FakeKfp


@pytest.mark.parametrize("existing_pipeline", [False, True])
def test_submit_uploads_a_version_and_starts_a_run(existing_pipeline, tmp_path_factory, capsys):
    root, package, _ = compile_task("census", tmp_path_factory)
    with loopback_server(_fake_kfp_handler(existing_pipeline)) as (server, host):
        status = cli.main(
            ["submit", "census", "--host", host, "--package", str(package), "--experiment", "exp", "--run-name", "run-a"]
        )
    out = capsys.readouterr().out
    assert status == 0
    assert f"{host}/#/runs/details/r-1" in out
    posts = {path: body for method, path, body in server.requests if method == "POST"}
    upload = "/apis/v2beta1/pipelines/upload_version" if existing_pipeline else "/apis/v2beta1/pipelines/upload"
    assert package.read_bytes() in posts[upload]  # the compiled package itself is what gets uploaded
    run = json.loads(posts["/apis/v2beta1/runs"])
    assert run["display_name"] == "run-a"
    assert run["experiment_id"] == "e-1"
    assert run["pipeline_version_reference"] == {
        "pipeline_id": "p-1",
        "pipeline_version_id": "v-2" if existing_pipeline else "v-1",
    }
    assert run["runtime_config"]["pipeline_root"] == str(root)


def test_submit_rejects_a_package_of_another_pipeline(tmp_path, capsys):
    package = tmp_path / "other.yaml"
    package.write_text(yaml.safe_dump({"pipelineInfo": {"name": "mlops-other"}, "root": {"dag": {}}}))
    with loopback_server(_fake_kfp_handler(False)) as (_, host):
        status = cli.main(["submit", "census", "--host", host, "--package", str(package)])
    assert status == 2
    assert "mlops-other" in capsys.readouterr().err




def test_submit_with_a_schedule_creates_a_recurring_run_instead_of_a_run(tmp_path_factory, capsys):
    root, package, _ = compile_task("census", tmp_path_factory)
    with loopback_server(_fake_kfp_handler(True)) as (server, host):
        status = cli.main(["submit", "census", "--host", host, "--package", str(package), "--experiment", "exp",
                           "--run-name", "nightly", "--schedule", "0 3 * * *"])
    out = capsys.readouterr().out
    assert status == 0
    assert "KFP gets '0 0 3 * * *' (seconds first)" in out  # standard cron, made KFP's 6 fields
    assert f"{host}/#/recurringrun/details/rr-1" in out
    posts = {path: body for method, path, body in server.requests if method == "POST"}
    assert "/apis/v2beta1/runs" not in posts  # no one-off run
    job = json.loads(posts["/apis/v2beta1/recurringruns"])
    assert job["display_name"] == "nightly" and job["experiment_id"] == "e-1"
    assert job["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * *"}}
    assert job["mode"] == "ENABLE" and job["no_catchup"] is True and int(job["max_concurrency"]) == 1
    assert job["pipeline_version_reference"] == {"pipeline_id": "p-1", "pipeline_version_id": "v-2"}
    assert job["runtime_config"]["pipeline_root"] == str(root)


@pytest.mark.parametrize("schedule, reason", [
    ("61 * * * *", "61 is outside 0-59 in the minute field"),
    ("0 3 * * 7", "7 is outside 0-6 in the day of week field '7' (0 or SUN is Sunday)"),
    ("1 2 3", "expected 5 fields"),
    ("@every soon", "descriptors are @yearly"),
    ("*/0 * * * *", "step '0' in the minute field"),
])
def test_an_invalid_schedule_is_a_usage_error_before_any_request(schedule, reason, tmp_path, capsys):
    package = _fake_package(tmp_path)
    with loopback_server(_fake_kfp_handler(True)) as (server, host):
        status = cli.main(["submit", "census", "--host", host, "--package", str(package), "--schedule", schedule])
    line = _one_line(capsys.readouterr().err)
    assert status == 2
    assert "invalid cron schedule" in line and reason in line
    assert server.requests == []  # validated before the API is even checked


@pytest.mark.parametrize("schedule, sent", [
    ("0 0 9 ? * MON-FRI", "0 0 9 ? * MON-FRI"),  # KFP's own 6-field form passes unchanged
    ("*/15 * * * *", "0 */15 * * * *"),
    ("@daily", "@daily"),
    ("@every 1h30m", "@every 1h30m"),
])
def test_valid_schedules_in_the_form_kfp_parses(schedule, sent):
    assert client.kfp_cron(schedule) == sent


def _query(path: str) -> dict:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))


@pytest.mark.parametrize("existing_pipeline, schedule", [(False, None), (True, "@daily")])
def test_submit_to_a_profile_namespace_with_a_session_cookie(existing_pipeline, schedule, tmp_path_factory, capsys,
                                                             monkeypatch):
    """Multi-user KFP: pipeline and experiment are created in the namespace (runs and recurring runs
    belong to their experiment's), and the session cookie goes with every request."""
    monkeypatch.delenv("MLOPS_KFP_TOKEN", raising=False)
    _, package, _ = compile_task("census", tmp_path_factory)
    cookie = "authservice_session=MTcwMDAwMDAwMHxzZXNzaW9u"
    if schedule:  # the environment instead of the options
        monkeypatch.setenv("MLOPS_KFP_NAMESPACE", "team-a")
        monkeypatch.setenv("MLOPS_KFP_COOKIE", cookie)
        options = ["--schedule", schedule]
    else:
        options = ["--namespace", "team-a", "--cookie", cookie]
    with loopback_server(_fake_kfp_handler(existing_pipeline, multi_user=True)) as (server, host):
        status = cli.main(["submit", "census", "--host", host, "--package", str(package), "--experiment", "exp"]
                          + options)
    out = capsys.readouterr().out
    assert status == 0, out
    assert "(namespace team-a)" in out
    assert server.seen and all(headers.get("Cookie") == cookie for _, _, headers in server.seen)
    assert not any("Authorization" in headers for _, _, headers in server.seen)
    by_path = {}
    for method, path, _ in server.seen:
        by_path.setdefault((method, urllib.parse.urlsplit(path).path), []).append(_query(path))
    assert all(q.get("namespace") == "team-a" for q in by_path[("GET", "/apis/v2beta1/pipelines")])
    assert all(q.get("namespace") == "team-a" for q in by_path[("GET", "/apis/v2beta1/experiments")])
    if not existing_pipeline:
        assert by_path[("POST", "/apis/v2beta1/pipelines/upload")][0]["namespace"] == "team-a"
    posts = {path: body for method, path, body in server.requests if method == "POST"}
    experiment = json.loads(posts["/apis/v2beta1/experiments"])
    assert experiment == {"display_name": "exp", "namespace": "team-a"}
    created = json.loads(posts["/apis/v2beta1/recurringruns" if schedule else "/apis/v2beta1/runs"])
    assert created["experiment_id"] == "e-1"  # the experiment in team-a


def test_a_multi_user_backend_without_a_namespace_is_a_one_line_error_before_any_upload(tmp_path, capsys,
                                                                                        monkeypatch):
    monkeypatch.delenv("MLOPS_KFP_NAMESPACE", raising=False)
    package = _fake_package(tmp_path)
    with loopback_server(_fake_kfp_handler(False, multi_user=True)) as (server, host):
        status = cli.main(["submit", "census", "--host", host, "--package", str(package)])
    line = _one_line(capsys.readouterr().err)
    assert status == 1
    assert "multi-user mode" in line and "--namespace" in line
    assert [method for method, _, _ in server.requests] == ["GET"]  # the healthz check only


def test_rejected_credentials_name_both_ways_to_log_in(tmp_path, capsys):
    package = _fake_package(tmp_path)
    with loopback_server(_denying_handler(401)) as (server, host):
        status = cli.main(["submit", "census", "--host", host, "--package", str(package), "--cookie", "a=b"])
    line = _one_line(capsys.readouterr().err)
    assert status == 1 and "--token" in line and "--cookie" in line
    assert server.seen[0][2].get("Cookie") == "a=b"
