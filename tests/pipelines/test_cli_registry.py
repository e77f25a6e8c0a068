"""`mlops registry`: list, show, promote, path, rollback and history, and what they refuse."""
from __future__ import annotations

import json

import pytest

from components.registry import HISTORY_TAG_PREFIX
from tests.registry_helpers import copy_blessed_version, mlops

pytestmark = pytest.mark.e2e


def test_promote_path_rollback_through_the_cli(registry_copy, tmp_path, capsys):
    home, reg, v1 = registry_copy
    v2 = copy_blessed_version(reg, v1, tmp_path / "serving" / "2")
    v3 = copy_blessed_version(reg, v1, tmp_path / "serving" / "3")
    h = ["--home", home]

    status, out, _ = mlops(["registry", "list"] + h, capsys)
    assert status == 0 and "census" in out
    status, out, _ = mlops(["registry", "list", "census"] + h, capsys)
    assert status == 0 and f"v{v3.version}" in out
    status, out, _ = mlops(["registry", "show", "census", str(v1.version)] + h, capsys)
    assert status == 0 and "pipeline_run_id" in out and "metrics per slice" in out

    for version in (v1, v2, v3):
        status, out, err = mlops(["registry", "promote", "census", str(version.version)] + h, capsys)
        assert status == 0, err
        assert f"promoted census v{version.version} to production" in out
        status, out, _ = mlops(["registry", "path", "census@production"] + h, capsys)
        assert status == 0 and out.strip() == version.pushed_path
    status, out, _ = mlops(["registry", "promote", "census", str(v3.version)] + h, capsys)
    assert status == 0 and "already" in out

    status, out, _ = mlops(["registry", "rollback", "census"] + h, capsys)
    assert status == 0 and f"v{v3.version} -> v{v2.version}" in out
    assert mlops(["registry", "path", "census@production"] + h, capsys)[1].strip() == v2.pushed_path
    status, out, _ = mlops(["registry", "rollback", "census"] + h, capsys)
    assert status == 0 and f"v{v2.version} -> v{v1.version}" in out
    status, _, err = mlops(["registry", "rollback", "census"] + h, capsys)
    assert status == 1 and "no earlier promotion" in err

    # Another alias has its own history; the production history lives on the registered model.
    assert mlops(["registry", "promote", "census", f"v{v3.version}", "--alias", "staging"] + h, capsys)[0] == 0
    model = reg.client.get_registered_model("census")
    assert model.aliases == {"production": v1.version, "staging": v3.version}
    history = json.loads(model.tags[HISTORY_TAG_PREFIX + "production"])
    assert [(e["action"], e["version"]) for e in history] == [
        ("promote", v1.version), ("promote", v2.version), ("promote", v3.version),
        ("rollback", v2.version), ("rollback", v1.version),
    ]
    assert all(e["at"] and e["by"] for e in history)
    status, out, _ = mlops(["registry", "history", "census"] + h, capsys)
    assert status == 0 and out.count("rollback") == 2
    status, _, err = mlops(["registry", "path", "census@canary"] + h, capsys)
    assert status == 1 and "no alias 'canary'" in err


def test_promote_refuses_unknown_and_unblessed_versions(registry_copy, tmp_path, capsys):
    home, reg, v1 = registry_copy
    h = ["--home", home]
    # Versions made without the Registrar: no blessed tag, or blessed=false.
    untagged = reg.client.create_model_version("census", str(tmp_path / "elsewhere"), tags={"task": "census"})
    falsely = reg.client.create_model_version("census", str(tmp_path / "elsewhere2"), tags={"blessed": "false"})
    before = reg.client.get_registered_model("census").aliases

    for version in (untagged.version, falsely.version):
        status, _, err = mlops(["registry", "promote", "census", str(version)] + h, capsys)
        assert status == 1 and f"census v{version} cannot be promoted" in " ".join(err.split())
    status, _, err = mlops(["registry", "promote", "census", "999"] + h, capsys)
    assert status == 1 and "census has no version 999" in err
    status, _, err = mlops(["registry", "promote", "nosuchtask", "1"] + h, capsys)
    assert status == 1 and "no registered model 'nosuchtask'" in err and "known tasks: census" in err
    status, _, err = mlops(["registry", "promote", "census", "latest"] + h, capsys)
    assert status == 1 and "not a version number" in err
    status, _, err = mlops(["registry", "list"] + ["--home", str(tmp_path / "empty")], capsys)
    assert status == 1 and "no model registry at" in err
    assert reg.client.get_registered_model("census").aliases == before
    assert reg.history("census") == []
