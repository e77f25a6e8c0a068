"""components.data_snapshot: a DVC version read from a real DVC remote (written by `dvc push`) by md5."""
from __future__ import annotations

import hashlib

import pytest
import yaml

from components import data_snapshot
from tests.conftest import dvc_exe, make_dvc_project, run


@pytest.fixture
def pushed(tmp_path):
    """A DVC project with data/heart and data/census, pushed to its local remote: (root, md5)."""
    root = make_dvc_project(tmp_path / "project")
    (root / "data" / "heart").mkdir(parents=True)
    (root / "data" / "heart" / "heart.csv").write_text("age,target\n63,1\n41,0\n")
    (root / "data" / "heart" / "notes").mkdir()
    (root / "data" / "heart" / "notes" / "source.txt").write_text("synthetic\n")
    (root / "data" / "census").mkdir()
    (root / "data" / "census" / "adult.csv").write_text("age,label\n30,<=50K\n")
    run([dvc_exe(), "add", "-q", "data"], root)
    run([dvc_exe(), "push", "-q"], root)
    md5 = yaml.safe_load((root / "data.dvc").read_text())["outs"][0]["md5"]
    return root, md5


def test_the_stamped_version_is_copied_for_the_task_only_and_verified(pushed, tmp_path):
    root, md5 = pushed
    destination = tmp_path / "run" / "data-versions" / md5
    copied = data_snapshot.materialise(str(root / "remote"), md5, str(destination), "heart")
    assert copied == 2
    assert (destination / "heart" / "heart.csv").read_text() == "age,target\n63,1\n41,0\n"
    assert (destination / "heart" / "notes" / "source.txt").read_text() == "synthetic\n"
    assert not (destination / "census").exists()
    assert data_snapshot.materialise(str(root / "remote"), md5, str(destination), "heart") == 0  # complete already


def test_a_version_the_remote_lacks_or_altered_bytes_are_refused(pushed, tmp_path):
    root, md5 = pushed
    with pytest.raises(data_snapshot.DataVersionError, match="has no data version 0123.*run `dvc push`"):
        data_snapshot.materialise(str(root / "remote"), "0123456789abcdef0123456789abcdef.dir", str(tmp_path / "a"),
                                  "heart")
    with pytest.raises(data_snapshot.DataVersionError, match="not a DVC directory"):
        data_snapshot.materialise(str(root / "remote"), "untracked", str(tmp_path / "b"), "heart")
    entry = next(e for e in data_snapshot.manifest(str(root / "remote"), md5) if e["relpath"] == "heart/heart.csv")
    obj = root / "remote" / "files" / "md5" / entry["md5"][:2] / entry["md5"][2:]
    obj.chmod(0o644)
    obj.write_text("age,target\n63,0\n")
    assert hashlib.md5(obj.read_bytes()).hexdigest() != entry["md5"]
    with pytest.raises(data_snapshot.DataVersionError, match="heart/heart.csv: the remote's bytes do not match"):
        data_snapshot.materialise(str(root / "remote"), md5, str(tmp_path / "c"), "heart")
    assert not (tmp_path / "c" / data_snapshot.COMPLETE_MARKER).exists()


def test_compiling_with_a_dvc_remote_puts_the_snapshot_before_example_gen():
    from pipelines import nodes
    from pipelines.kubeflow import KubeflowError
    from pipelines.kubeflow.compiler import compile_pipeline
    from pipelines.tasks import load_task

    version = {"md5": "95c7ca488b893d58df7746697da88b97.dir"}
    compiled = compile_pipeline(load_task("heart"), image="i", pipeline_root="s3://b/root", data_version=version,
                                registry_uri="http://mlflow:5000", dvc_remote="s3://dvc/store")
    tasks = compiled.pipeline_spec["root"]["dag"]["tasks"]
    assert tasks[nodes.EXAMPLE_GEN]["dependentTasks"] == [nodes.DATA_SNAPSHOT]
    text = str(compiled.pipeline_spec)
    assert "s3://b/root/data-versions/95c7ca488b893d58df7746697da88b97/heart" in text
    with pytest.raises(KubeflowError, match="--data-root and --dvc-remote exclude each other"):
        compile_pipeline(load_task("heart"), image="i", pipeline_root="s3://b/root", data_version=version,
                         registry_uri="http://mlflow:5000", dvc_remote="s3://dvc/store", data_root="s3://b/data")
    with pytest.raises(KubeflowError, match=r"needs the data version of data.dvc \(a .dir md5\)"):
        compile_pipeline(load_task("heart"), image="i", pipeline_root="s3://b/root", data_version={"md5": "untracked"},
                         registry_uri="http://mlflow:5000", dvc_remote="s3://dvc/store")
