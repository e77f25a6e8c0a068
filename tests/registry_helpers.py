"""Helpers of the registry tests (embedded and server): the census run's Registrar inputs, extra
blessed versions, the CLI, and two real promote processes racing for the lock."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from components import metadata, registrar
from components.digest import saved_model_digest
from components.registry import (
    TAG_BLESSED, TAG_INFRA_BLESSED, TAG_MODEL_DIGEST, TAG_PUSHED_PATH, Registry, replay,
)
from pipelines import cli, lineage, nodes
from tests.conftest import REPO

PIPELINE = nodes.pipeline_name("census")


def store_of(home):
    return metadata.open_store(os.path.join(home, "metadata.sqlite"))


def first_run(home) -> lineage.RunRecord:
    """The census_run fixture's own run (other tests may add later runs to the same home)."""
    store = store_of(home)
    return lineage.load_run(store, PIPELINE, lineage.list_run_ids(store, PIPELINE)[-1])


def real_inputs(home, record: lineage.RunRecord) -> dict:
    """The Registrar's input artifacts of a real run, read back from ML Metadata."""
    store = store_of(home)

    def load(node, key):
        found = record.nodes[node].output(key)
        artifact = store.get_artifacts_by_id([found.id])[0]
        return artifact_utils.deserialize_artifact(store.get_artifact_types_by_id([artifact.type_id])[0], artifact)

    return {
        "model": [load(nodes.TRAINER, "model")],
        "model_blessing": [load(nodes.EVALUATOR, "blessing")],
        "evaluation": [load(nodes.EVALUATOR, "evaluation")],
        "pushed_model": [load(nodes.PUSHER, "pushed_model")],
        "examples": [load(nodes.EXAMPLE_GEN, "examples")],
        "hyperparameters": [load(nodes.TUNER, "best_hyperparameters")],
        "infra_blessing": [load(nodes.INFRA_VALIDATOR, "blessing")],
    }


def run_registrar(inputs, out_dir: Path, run_id: str, **exec_properties) -> registrar.RegisteredModel:
    output = registrar.RegisteredModel()
    output.uri = str(out_dir)
    executor = registrar.Executor(base_executor.BaseExecutor.Context(pipeline_run_id=run_id))
    executor.Do(inputs, {"registered_model": [output]}, {"task": "census", **exec_properties})
    return output


def register_like_the_registrar(reg: Registry, pushed_dir: Path, tags=None, name: str = "census"):
    """A version with the evidence the Registrar leaves (tags, digest and registration.json), for
    tests of promotion that need more versions than one pipeline run makes."""
    tags = {TAG_BLESSED: "true", TAG_INFRA_BLESSED: "true", "task": name, **(tags or {}),
            TAG_PUSHED_PATH: str(pushed_dir), TAG_MODEL_DIGEST: saved_model_digest(str(pushed_dir))}
    return reg.register(name, str(pushed_dir), tags, experiment=nodes.pipeline_name(name), record={"tags": tags})


def copy_blessed_version(reg: Registry, base, pushed_dir: Path):
    """Another blessed version (same lineage tags as base) served from a copy of its SavedModel."""
    if base.pushed_path and os.path.isdir(base.pushed_path):
        shutil.copytree(base.pushed_path, pushed_dir)
    else:
        pushed_dir.mkdir(parents=True)
        (pushed_dir / "saved_model.pb").write_bytes(b"model")
    return register_like_the_registrar(reg, pushed_dir, base.tags)


def mlops(args, capsys):
    status = cli.main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def concurrent_promotes(reg: Registry, home: str, versions, env) -> None:
    """Two real `mlops registry promote` processes that contend for the lock.

    The test holds the promote lock while both start, waits until both report that they are
    waiting for it, then lets go: both must then pass through the lock one after the other.
    """
    logs = []
    procs = []
    with reg.exclusive("census"):
        for version in versions:
            out = open(Path(home) / f"promote-v{version}.out", "w+")
            err = open(Path(home) / f"promote-v{version}.err", "w+")
            logs.append((out, err))
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "pipelines.cli", "registry", "promote", "census", str(version), "--home", home],
                cwd=REPO, env=env, stdout=out, stderr=err,
            ))
        deadline = time.monotonic() + 240
        try:
            while True:
                texts = [Path(err.name).read_text() for _, err in logs]
                if all("waiting:" in text for text in texts):
                    break
                for proc, text in zip(procs, texts):
                    assert proc.poll() is None, f"promote exited before taking the lock:\n{text}"
                assert time.monotonic() < deadline, f"promotes never waited for the lock: {texts}"
                time.sleep(0.2)
        except BaseException:
            for proc in procs:
                proc.kill()
            raise
    try:
        for proc, (out, err) in zip(procs, logs):
            assert proc.wait(timeout=240) == 0, Path(out.name).read_text() + Path(err.name).read_text()
            assert "promoted census" in Path(out.name).read_text()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for out, err in logs:
            out.close()
            err.close()


def assert_consistent_after_race(reg: Registry, before: int, contenders) -> None:
    history = reg.history("census", "production")
    first, second = history[-2:]
    assert {first["version"], second["version"]} == set(contenders)
    # Serialised: the second promote saw the first one's move.
    assert first["previous"] == before
    assert second["previous"] == first["version"]
    alias = reg.alias_version("census", "production")
    assert alias == second["version"] == replay(history)[-1]


def env_without_server():
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(REPO)
    return env
