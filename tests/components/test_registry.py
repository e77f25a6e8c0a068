"""The registry client on the embedded store: promote and rollback are serialised across processes."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.registry_helpers import (
    assert_consistent_after_race, concurrent_promotes, copy_blessed_version, env_without_server,
    register_like_the_registrar,
)

pytestmark = pytest.mark.e2e


def test_two_concurrent_promotes_leave_one_consistent_alias(registry_copy, tmp_path, capsys):
    home, reg, v1 = registry_copy
    v2 = copy_blessed_version(reg, v1, tmp_path / "serving" / "2")
    v3 = copy_blessed_version(reg, v1, tmp_path / "serving" / "3")
    assert reg.promote("census", v1.version).action == "promote"

    concurrent_promotes(reg, home, [v2.version, v3.version], env_without_server())

    assert_consistent_after_race(reg, v1.version, [v2.version, v3.version])
    # The lock file sits next to the database and is free again.
    assert (Path(home) / "mlflow.db.lock").exists()
    first = reg.history("census")[-2]["version"]
    assert reg.rollback("census").version == first


# ---- registry: a promote killed while it holds the lock

_PROMOTE_THEN_HANG = """
import json, sys, time
from components import registry
home, version = sys.argv[1], sys.argv[2]
original = registry.Registry._write

def write_history_then_hang(self, name, alias, version, history):
    # The history tag is written first (as in Registry._write); the process dies before the alias moves.
    self.client.set_registered_model_tag(name, registry.HISTORY_TAG_PREFIX + alias, json.dumps(history))
    print("HISTORY WRITTEN", flush=True)
    time.sleep(600)

registry.Registry._write = write_history_then_hang
registry.Registry.open(home).promote("census", version)
"""


def test_promote_killed_while_holding_the_lock_leaves_alias_and_history_consistent(tmp_path, monkeypatch, capsys):
    from components import registry
    from pipelines import cli

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path / "home"
    reg = registry.Registry.open(home)
    versions = []
    for n in (1, 2):
        pushed = tmp_path / "serving" / str(n)
        pushed.mkdir(parents=True)
        (pushed / "saved_model.pb").write_bytes(b"model %d" % n)
        versions.append(register_like_the_registrar(reg, pushed))
    v1, v2 = versions
    reg.promote("census", v1.version)

    proc = subprocess.Popen([sys.executable, "-c", _PROMOTE_THEN_HANG, str(home), str(v2.version)],
                            cwd=REPO, env=env_without_server(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "HISTORY WRITTEN", proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()

    # The lock died with the process: the next registry command gets it at once.
    started = time.monotonic()
    with reg.exclusive("census"):
        pass
    assert time.monotonic() - started < 5
    # The alias still serves the old, complete version; the history's extra entry is detected.
    assert reg.alias_version("census", "production") == v1.version
    status = cli.main(["registry", "path", "census@production", "--home", str(home)])
    assert status == 0 and capsys.readouterr().out.strip() == v1.pushed_path
    assert cli.main(["registry", "rollback", "census", "--home", str(home)]) == 1
    assert "moved outside" in capsys.readouterr().err
    # Promoting again completes the interrupted move; history and alias agree.
    assert cli.main(["registry", "promote", "census", str(v2.version), "--home", str(home)]) == 0
    assert reg.alias_version("census", "production") == v2.version
    assert registry.replay(reg.history("census"))[-2:] == [v1.version, v2.version]
    assert reg.rollback("census").version == v1.version


def test_promotion_wants_the_registrars_evidence_not_a_hand_written_tag(tmp_path, monkeypatch, capsys):
    """A version registered by hand and tagged blessed=true by hand is refused, naming what is
    missing; so is a version whose pushed files changed after registration."""
    from components import registry
    from pipelines import cli

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path / "home"
    reg = registry.Registry.open(home)
    pushed = tmp_path / "serving" / "1"
    pushed.mkdir(parents=True)
    (pushed / "saved_model.pb").write_bytes(b"model")
    by_hand = reg.register("census", str(pushed), {"blessed": "true", "task": "census",
                                                   "pushed_model_path": str(pushed)}, experiment="by-hand")
    status = cli.main(["registry", "promote", "census", str(by_hand.version), "--home", str(home)])
    err = " ".join(capsys.readouterr().err.split())
    assert status == 1 and f"census v{by_hand.version} cannot be promoted" in err
    assert "no registration.json from the Registrar" in err
    assert reg.alias_version("census", "production") is None

    other = tmp_path / "serving" / "2"
    other.mkdir()
    (other / "saved_model.pb").write_bytes(b"model 2")
    sound = register_like_the_registrar(reg, other)
    (other / "saved_model.pb").write_bytes(b"tampered")
    status = cli.main(["registry", "promote", "census", str(sound.version), "--home", str(home)])
    assert status == 1 and "changed since it was registered" in " ".join(capsys.readouterr().err.split())
    (other / "saved_model.pb").write_bytes(b"model 2")
    assert cli.main(["registry", "promote", "census", str(sound.version), "--home", str(home)]) == 0
    assert reg.alias_version("census", "production") == sound.version
