"""Every read of a registered version checks what promote checks (issue 25): a version whose files
changed after registration, or that was registered by hand with `blessed=true` copied, is refused by
predict, path, manifest and card, and shown as unusable by list and show; list shows aliases; a
damaged `mlflow.db` is refused in one line and left as it was. Real embedded MLflow store, real
(tiny) SavedModels, the real CLI."""
from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from components.registry import TAG_BLESSED, TAG_PUSHED_PATH, Registry, default_uri
from tests.components.test_batch_inference import read_csv, save_census_model
from tests.conftest import synthetic_census_rows, write_census_csv
from tests.pipelines.test_cli_predict import mlops, register


@pytest.fixture(scope="module")
def saved_census(tmp_path_factory):
    return save_census_model(tmp_path_factory.mktemp("census") / "model")


@pytest.fixture
def home(tmp_path, no_server):
    path = tmp_path / "home"
    path.mkdir()
    return path


def _one_line(err: str) -> str:
    """The error line of stderr, which must be its only line besides predict's `census v1 from …`."""
    lines = [line for line in err.splitlines() if line.strip() and not re.match(r"\w+ v\d+ from ", line)]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    return lines[0]


def _predict(home, ref, tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    if not rows.exists():
        write_census_csv(rows, synthetic_census_rows(5, seed=4))
    return mlops(["predict", ref, "--input", str(rows), "--output", str(tmp_path / "out.csv"), "--home", str(home)],
                 capsys)


def _edited_copy(saved_census, tmp_path) -> Path:
    pushed = tmp_path / "serving" / "1"
    shutil.copytree(saved_census, pushed)
    return pushed


def test_a_version_whose_files_changed_is_refused_by_every_read(home, saved_census, tmp_path, capsys):
    pushed = _edited_copy(saved_census, tmp_path)
    register(home, "census", pushed)  # v1, promoted to production
    status, out, err = _predict(home, "census@production", tmp_path, capsys)
    assert status == 0, err
    served = read_csv(tmp_path / "out.csv")
    assert [r["input_row"] for r in served] == [f"rows.csv:{n}" for n in range(2, 7)]

    # Change the SavedModel after registration (as swapping two vocabulary lines does).
    (pushed / "assets").mkdir(exist_ok=True)
    (pushed / "assets" / "vocab").write_text("b\na\n")
    (tmp_path / "out.csv").unlink()
    for ref in ("census@production", "census:1", "census"):
        status, out, err = _predict(home, ref, tmp_path, capsys)
        line = _one_line(err)
        assert status == 1 and "census v1 cannot be served" in line and "changed since it was registered" in line
        assert not (tmp_path / "out.csv").exists()
    for args in (["registry", "path", "census@production"], ["registry", "path", "census:1"],
                 ["registry", "manifest", "census:1", "--output", str(tmp_path / "m"), "--storage-uri", "s3://b/c"],
                 ["registry", "card", "census:1"]):
        status, out, err = mlops(args + ["--home", str(home)], capsys)
        assert status == 1 and "changed since it was registered" in _one_line(err), args
        assert out == ""
    status, out, _ = mlops(["registry", "list", "census", "--home", str(home)], capsys)
    assert status == 0 and "production" in out  # the alias, though MLflow's version search has none
    assert "changed since it was" in " ".join(out.split()) and " yes " not in out
    status, out, _ = mlops(["registry", "show", "census", "1", "--home", str(home)], capsys)
    assert status == 0 and "not usable" in out and "(blessed)" not in out


def test_a_hand_registered_copy_with_blessed_true_is_not_served(home, saved_census, tmp_path, capsys):
    register(home, "census", saved_census)  # v1: the Registrar's evidence
    reg = Registry(default_uri(home))
    v1 = reg.version("census", 1)
    reg.client.create_model_version("census", str(saved_census), tags=dict(v1.tags))  # v2: tags copied by hand
    status, out, _ = mlops(["registry", "list", "census", "--home", str(home)], capsys)
    assert status == 0
    v2_row = next(line for line in out.splitlines() if "v2" in line)
    v1_row = next(line for line in out.splitlines() if "v1" in line)
    assert "yes" in v1_row and "production" in v1_row
    assert "no" in v2_row and "yes" not in v2_row
    status, _, err = _predict(home, "census:2", tmp_path, capsys)
    assert status == 1 and "census v2 cannot be served" in _one_line(err) and "registration.json" in err
    status, _, err = mlops(["registry", "promote", "census", "2", "--home", str(home)], capsys)
    assert status == 1 and "census v2 cannot be promoted" in _one_line(err)


def test_a_corrupted_saved_model_is_one_line(home, tmp_path, capsys):
    """A SavedModel registered with its evidence that does not load: one line, never Beam's traceback."""
    pushed = tmp_path / "serving" / "broken"
    (pushed / "variables").mkdir(parents=True)
    (pushed / "saved_model.pb").write_bytes(b"\x08\x01garbage" * 50)
    (pushed / "variables" / "variables.index").write_bytes(b"nonsense")
    register(home, "census", pushed)
    status, _, err = _predict(home, "census", tmp_path, capsys)
    assert status == 1 and "cannot load the SavedModel" in _one_line(err)


def test_aliases_are_ascii_as_the_message_says(home, saved_census, tmp_path, capsys):
    register(home, "census", saved_census, alias="")
    status, _, err = mlops(["registry", "promote", "census", "1", "--alias", "prodüction", "--home", str(home)], capsys)
    assert status == 1 and "invalid alias 'prodüction'" in err
    assert Registry(default_uri(home)).client.get_registered_model("census").aliases == {}


@pytest.mark.parametrize("damage", ["empty", "garbage", "truncated"])
def test_a_damaged_registry_database_is_refused_and_left_alone(home, saved_census, tmp_path, capsys, damage):
    register(home, "census", saved_census)
    db = home / "mlflow.db"
    data = db.read_bytes()
    db.write_bytes({"empty": b"", "garbage": b"not a database\n" * 100, "truncated": data[: len(data) // 2]}[damage])
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for args in (["registry", "list"], ["registry", "list", "census"], ["registry", "promote", "census", "1"],
                 ["registry", "path", "census@production"]):
        status, out, err = mlops(args + ["--home", str(home)], capsys)
        line = _one_line(err)
        assert status == 1 and f"the model registry {db}" in line and "restore it from a backup" in line, (args, err)
        assert "Creating initial MLflow database" not in out + err and "no registered models" not in out
    status, _, err = _predict(home, "census", tmp_path, capsys)
    assert status == 1 and "restore it from a backup" in _one_line(err)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_tags_only_blessed_version_is_not_a_baseline(home, saved_census, tmp_path):
    """The Baseline step's fallback (no alias) takes the newest version with the evidence, not a tag."""
    info = register(home, "census", saved_census, alias="")
    reg = Registry(default_uri(home))
    reg.client.create_model_version("census", str(saved_census), tags={TAG_BLESSED: "true",
                                                                        TAG_PUSHED_PATH: str(saved_census)})
    version, how = reg.baseline("census")
    assert version.version == info.version and how == "the newest blessed version; census has no alias 'production'"
