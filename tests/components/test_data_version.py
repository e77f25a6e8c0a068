"""Data under DVC: the real remote restores data/ byte for byte, and `mlops data status` tells drift."""
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from components import data_version
from pipelines import cli
from pipelines.tasks import load_task
from tests.conftest import REPO, dvc_exe, run


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_status_clean_then_dirty_then_restored_by_pull(census_project, capsys):
    root = census_project
    run([dvc_exe(), "push", "-q"], root)
    assert data_version.data_status(root)["dirty"] is False
    assert cli.main(["data", "status", "--repo", str(root)]) == 0

    csv = root / "data" / "census" / "adult.csv"
    original = _md5(csv)
    with open(csv, "a") as f:
        f.write("39,Private,1,Bachelors,13,Never-married,Sales,Own-child,White,Male,0,0,40,United-States,<=50K\n")
    assert data_version.data_status(root)["dirty"] is True
    assert cli.main(["data", "status", "--repo", str(root)]) == 1
    assert "does not match data.dvc" in capsys.readouterr().out

    shutil.rmtree(root / "data")
    run([dvc_exe(), "pull", "-q"], root)
    assert _md5(csv) == original
    assert data_version.data_status(root)["dirty"] is False


def test_tracked_md5_is_the_directory_hash_in_data_dvc(census_project):
    md5 = data_version.tracked_md5(census_project)
    assert md5.endswith(".dir") and len(md5) == 36


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs the project's git checkout")
def test_fresh_clone_restores_the_project_data_from_the_default_remote(tmp_path):
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(REPO), str(clone)], tmp_path)
    assert not (clone / "data").exists()
    run([dvc_exe(), "pull", "-q"], clone)
    restored = clone / "data" / "census" / "adult.csv"
    assert restored.exists()
    assert data_version.data_status(clone)["dirty"] is False
    header = restored.read_text().splitlines()[0]
    assert header.startswith("age,workclass,fnlwgt,education,education_num,")


SHARED_ADULT = REPO.parent / "shared" / "datasets" / "adult"


@pytest.mark.skipif(not (SHARED_ADULT / "adult.data").exists(), reason="shared datasets not present")
def test_census_import_reproduces_the_tracked_file(tmp_path):
    """Re-importing the UCI file gives exactly the bytes DVC tracks (32,561 rows + header)."""
    target = load_task("census").importer(SHARED_ADULT, tmp_path)
    lines = target.read_text().splitlines()
    assert len(lines) == 32561 + 1
    assert lines[1] == "39,State-gov,77516,Bachelors,13,Never-married,Adm-clerical,Not-in-family,White,Male,2174,0,40,United-States,<=50K"
    manifest = (REPO / ".dvc" / "storage" / "files" / "md5").rglob("*.dir")

    entries = [e for m in manifest for e in json.loads(m.read_text())]
    assert {"relpath": "census/adult.csv", "md5": _md5(target)} in [
        {"relpath": e["relpath"], "md5": e["md5"]} for e in entries
    ]


def test_import_rejects_a_missing_source(tmp_path):
    with pytest.raises(FileNotFoundError, match="adult.data"):
        load_task("census").importer(tmp_path / "nowhere", tmp_path / "data")
