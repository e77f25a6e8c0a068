"""The registry in server mode: a real PostgreSQL and `mlflow server`, driven by the same Registrar
and `mlops registry` CLI with MLFLOW_TRACKING_URI set."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from components.registry import LOCK_MODEL_SUFFIX, Registry
from tests.conftest import REPO
from tests.mlflow_server import free_port as _free_port
from tests.mlflow_server import mlflow_server as running_mlflow_server
from tests.registry_helpers import (
    assert_consistent_after_race, concurrent_promotes, copy_blessed_version, first_run, mlops, real_inputs,
    run_registrar,
)

pytestmark = pytest.mark.e2e


def _run(cmd, **kwargs):
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=180, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL 15 cluster on a free loopback port; yields its SQLAlchemy URI."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    base = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
    user = {}
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as nobody
        account = pwd.getpwnam("nobody")
        os.chown(base, account.pw_uid, account.pw_gid)
        user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    data, port = base / "data", _free_port()
    started = False
    try:
        _run([initdb, "-D", data, "-U", "mlflow", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"],
             cwd=base, **user)
        _run([pg_ctl, "-D", data, "-l", base / "postgres.log", "-w", "-t", "120",
              "-o", f"-h 127.0.0.1 -p {port} -k {base} -F", "start"], cwd=base, **user)
        started = True
        import pg8000.native

        connection = pg8000.native.Connection("mlflow", host="127.0.0.1", port=port, database="postgres")
        connection.run("CREATE DATABASE mlflow")
        connection.close()
        yield f"postgresql+pg8000://mlflow@127.0.0.1:{port}/mlflow"
    finally:
        if started:
            subprocess.run([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True, timeout=120,
                           cwd=base, **user)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def mlflow_server(postgres):
    """`mlflow server` on PostgreSQL with a local artifact root; yields (url, artifact_root)."""
    base = Path(tempfile.mkdtemp(prefix="mlops-mlflow-"))
    try:
        with running_mlflow_server(base, postgres) as url:
            yield url, base / "artifacts"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_register_and_promote_through_a_registry_server(census_run, mlflow_server, tmp_path, monkeypatch, capsys):
    url, artifact_root = mlflow_server
    _, home, status = census_run
    assert status == 0
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)

    # The Registrar's executor with the real run's artifacts: MLFLOW_TRACKING_URI wins over the
    # URI the runner configured.
    record = first_run(home)
    inputs = real_inputs(home, record)
    unused = tmp_path / "unused" / "mlflow.db"
    output = run_registrar(inputs, tmp_path / "out", record.run_id, registry_uri=f"sqlite:///{unused}",
                           metadata_path=os.path.join(home, "metadata.sqlite"))
    assert output.get_int_custom_property("registered") == 1
    assert not unused.parent.exists()

    reg = Registry.open(tmp_path / "nohome", must_exist=True)
    assert reg.uri == url
    v1 = reg.version("census", output.get_string_custom_property("model_version"))
    pushed = inputs["pushed_model"][0].get_string_custom_property("pushed_destination")
    assert v1.blessed and v1.pushed_path == pushed
    assert v1.tags["pipeline_run_id"] == record.run_id and v1.tags["mlmd.trainer_execution_id"].isdigit()
    # A server takes no local path as a source: the SavedModel went to its artifact store.
    assert v1.source == f"runs:/{v1.run_id}/saved_model"
    assert list(artifact_root.rglob("saved_model/saved_model.pb"))
    # The same push registered again (a retried execution) is the same version.
    again = run_registrar(inputs, tmp_path / "out2", record.run_id)
    assert again.get_string_custom_property("model_version") == str(v1.version)

    v2 = copy_blessed_version(reg, v1, tmp_path / "serving" / "2")
    v3 = copy_blessed_version(reg, v1, tmp_path / "serving" / "3")
    unblessed = reg.client.create_model_version("census", "s3://some-bucket/census/elsewhere", tags={"task": "census"})

    h = ["--home", str(tmp_path / "nohome")]
    status, out, _ = mlops(["registry", "list", "census"] + h, capsys)
    assert status == 0 and f"v{unblessed.version}" in out
    status, _, err = mlops(["registry", "promote", "census", str(unblessed.version)] + h, capsys)
    assert status == 1 and "cannot be promoted" in err and "no tag blessed=true" in err
    status, out, err = mlops(["registry", "promote", "census", str(v1.version)] + h, capsys)
    assert status == 0, err
    status, out, _ = mlops(["registry", "path", "census@production"] + h, capsys)
    assert status == 0 and out.strip() == pushed

    env = {**os.environ, "MLFLOW_TRACKING_URI": url, "PYTHONPATH": str(REPO)}
    concurrent_promotes(reg, str(tmp_path), [v2.version, v3.version], env)
    assert_consistent_after_race(reg, v1.version, [v2.version, v3.version])
    names = [m.name for m in reg.client.search_registered_models()]
    assert not [n for n in names if n.endswith(LOCK_MODEL_SUFFIX)], "the server lock was not released"

    first = reg.history("census")[-2]["version"]
    status, out, _ = mlops(["registry", "rollback", "census"] + h, capsys)
    assert status == 0 and f"-> v{first}" in out
    assert reg.alias_version("census", "production") == first


LOCK_CONTENDER = """
import os, sys, time
from components.registry import Registry
reg = Registry.open(sys.argv[1], must_exist=True)
with open(sys.argv[2], "a") as log:
    for _ in range(int(sys.argv[3])):
        with reg.exclusive("contended"):
            log.write(f"enter {os.getpid()}\\n"); log.flush()
            time.sleep(0.01)
            log.write(f"leave {os.getpid()}\\n"); log.flush()
"""


def test_server_lock_excludes_and_survives_release_races(mlflow_server, tmp_path, monkeypatch):
    """Three processes take and release the server lock in a tight loop. A create that collides with
    a lock being released gets RESOURCE_DOES_NOT_EXIST from MLflow's server (it looks the existing
    row up after the failed insert); that is a free lock, not an error. Inside the lock, no two
    processes may interleave."""
    url, _ = mlflow_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    trace = tmp_path / "trace.txt"
    procs = [
        subprocess.Popen([sys.executable, "-c", LOCK_CONTENDER, str(tmp_path / "nohome"), str(trace), "25"],
                         cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_, err) in zip(procs, results):
        assert proc.returncode == 0, err[-3000:]
    lines = trace.read_text().split()
    events = list(zip(lines[0::2], lines[1::2]))
    assert len(events) == 2 * 3 * 25
    for entered, left in zip(events[0::2], events[1::2]):
        assert entered[0] == "enter" and left == ("leave", entered[1]), "two processes held the lock at once"
    names = [m.name for m in Registry.open(tmp_path / "nohome", must_exist=True).client.search_registered_models()]
    assert "contended" + LOCK_MODEL_SUFFIX not in names
