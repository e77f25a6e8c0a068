"""The Baseline component's executor against a real embedded registry and a real SavedModel: the
baseline it hands on shares the pushed version's files (hard links, so a scheduled task's pipeline
root does not grow by one model per run), and it takes only versions with the Registrar's evidence."""
from __future__ import annotations

import os
import shutil

import pytest
from tfx.dsl.components.base import base_executor
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components import baseline
from components.registry import Registry, default_uri
from tests.components.test_batch_inference import save_census_model
from tests.pipelines.test_cli_predict import register


@pytest.fixture
def home(tmp_path, no_server):
    path = tmp_path / "home"
    path.mkdir()
    return path


def _run_baseline(home, out_dir, execution: int):
    model, stats = standard_artifacts.Model(), standard_artifacts.ExampleStatistics()
    model.uri = str(out_dir / "model" / str(execution))
    stats.uri = str(out_dir / "statistics" / str(execution))
    executor = baseline.Executor(base_executor.BaseExecutor.Context())
    executor.Do({}, {"model": [model], "statistics": [stats]},
                {"model_name": "census", "alias": "production", "registry_uri": default_uri(home)})
    return model


def _files(folder):
    return sorted(os.path.join(root, name) for root, _, names in os.walk(folder) for name in names)


def test_baseline_outputs_share_the_pushed_files_run_after_run(home, tmp_path):
    pushed = save_census_model(tmp_path / "serving" / "1")
    register(home, "census", pushed)
    root = tmp_path / "pipeline_root"
    outputs = [_run_baseline(home, root, n) for n in (1, 2, 3)]
    pushed_files = _files(pushed)
    for output in outputs:
        assert baseline.describe(output) == "census v1 (census@production)"
        copied = _files(path_utils.serving_model_dir(output.uri))
        assert len(copied) == len(pushed_files) > 0
        for original, copy in zip(pushed_files, copied):
            assert os.path.samefile(original, copy)  # one inode: no data block is duplicated
    assert os.stat(pushed_files[0]).st_nlink == 4


def test_a_baseline_on_another_filesystem_is_copied(home, tmp_path, monkeypatch):
    pushed = save_census_model(tmp_path / "serving" / "1")
    register(home, "census", pushed)

    def no_links(*_):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    output = _run_baseline(home, tmp_path / "root", 1)
    copied = _files(path_utils.serving_model_dir(output.uri))
    assert len(copied) == len(_files(pushed)) and not any(os.stat(f).st_nlink > 1 for f in copied)


def test_a_changed_baseline_fails_the_step(home, tmp_path):
    pushed = save_census_model(tmp_path / "serving" / "1")
    register(home, "census", pushed)
    shutil.copy(pushed / "saved_model.pb", pushed / "extra.pb")
    with pytest.raises(baseline.BaselineError, match="census v1 cannot be used as the baseline: .*changed since"):
        _run_baseline(home, tmp_path / "root", 1)
    assert Registry(default_uri(home)).alias_version("census", "production") == 1
