"""The fixes messages name work as written (issue 25, item 9): the dirty-data hint restores modified
data, and a clone whose `.venv` is a symlink is not dirty."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

from components import data_version
from pipelines import cli
from tests.conftest import REPO, dvc_exe, make_dvc_project, run


def test_the_dirty_data_hint_restores_modified_data(tmp_path, capsys, monkeypatch):
    root = make_dvc_project(tmp_path / "project")
    (root / "data" / "heart").mkdir(parents=True)
    (root / "data" / "heart" / "heart.csv").write_text("age,target\n40,1\n")
    run([dvc_exe(), "add", "-q", "data"], root)
    (root / "data" / "heart" / "heart.csv").write_text("age,target\n41,0\n")  # modified after `dvc add`
    monkeypatch.chdir(root)
    assert cli.main(["data", "status"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    command = re.search(r"restore with `([^`]+)`", out).group(1)
    assert command == "dvc pull --force data.dvc"
    done = subprocess.run([dvc_exe(), *command.split()[1:]], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr  # plain `dvc checkout` would ask for --force
    assert data_version.data_status(root)["dirty"] is False
    assert (root / "data" / "heart" / "heart.csv").read_text() == "age,target\n40,1\n"


def test_a_symlinked_venv_is_ignored(tmp_path):
    root = tmp_path / "clone"
    root.mkdir()
    run(["git", "init", "-q"], root)
    shutil.copy(REPO / ".gitignore", root / ".gitignore")
    os.symlink(tmp_path, root / ".venv")
    assert ".venv" not in run(["git", "status", "--porcelain"], root).stdout
