"""Atomic pushes: a model server never sees half a version; unblessed models are not pushed."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def _push_inputs(tmp_path: Path, blessed: bool = True):
    from tfx.types import standard_artifacts

    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    serving = Path(model.uri) / "Format-Serving"
    (serving / "variables").mkdir(parents=True)
    (serving / "assets").mkdir()
    (serving / "saved_model.pb").write_bytes(b"graph" * 1000)
    (serving / "variables" / "variables.index").write_bytes(b"index")
    (serving / "variables" / "variables.data-00000-of-00001").write_bytes(os.urandom(200_000))
    (serving / "assets" / "vocab.txt").write_text("a\nb\n")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", int(blessed))
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed_model")
    return {"model": [model], "model_blessing": [blessing]}, {"pushed_model": [pushed]}, pushed


def _push(inputs, outputs, base: Path):
    from tfx.proto import pusher_pb2
    from tfx.utils import proto_utils

    from components.atomic_pusher import AtomicPusherExecutor

    destination = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(base)))
    AtomicPusherExecutor().Do(inputs, outputs, {"push_destination": proto_utils.proto_to_json(destination)})


def test_push_lands_complete_in_a_numbered_version_directory(tmp_path):
    inputs, outputs, pushed = _push_inputs(tmp_path)
    base = tmp_path / "serving" / "census"
    _push(inputs, outputs, base)
    assert pushed.get_int_custom_property("pushed") == 1
    [version] = _versions(base)
    assert pushed.get_string_custom_property("pushed_destination") == str(base / version)
    assert sorted(os.listdir(base)) == [f".{version}.sha256", version]  # the digest sits beside it, hidden
    source = Path(inputs["model"][0].uri) / "Format-Serving"
    for path in source.rglob("*"):
        if path.is_file():
            assert (base / version / path.relative_to(source)).read_bytes() == path.read_bytes()
    # A second push in the same second gets the next number instead of writing into this one.
    inputs2, outputs2, pushed2 = _push_inputs(tmp_path / "again")
    _push(inputs2, outputs2, base)
    assert len(_versions(base)) == 2 and pushed2.get_string_custom_property("pushed_destination") != str(base / version)


def _versions(base: Path):
    return sorted(name for name in os.listdir(base) if name.isdigit())


def test_pushing_the_same_model_again_reuses_its_version(tmp_path):
    """A rerun with the Trainer from cache pushes the identical model: no second copy, and the
    PushedModel says unchanged (so the Registrar registers no second version of it)."""
    inputs, outputs, pushed = _push_inputs(tmp_path)
    base = tmp_path / "serving" / "census"
    _push(inputs, outputs, base)
    first = pushed.get_string_custom_property("pushed_destination")
    _, outputs2, pushed2 = _push_inputs(tmp_path / "rerun")
    _push(inputs, outputs2, base)  # the same model artifact, a new PushedModel output
    assert pushed2.get_int_custom_property("pushed") == 1 and pushed2.get_int_custom_property("unchanged") == 1
    assert pushed2.get_string_custom_property("pushed_destination") == first
    assert _versions(base) == [os.path.basename(first)]


def test_crash_mid_push_leaves_no_visible_version(tmp_path, monkeypatch):
    import shutil

    from components import atomic_pusher

    copied = []

    def copy_then_crash(source, target):
        def copy_one(src, dst):
            if len(copied) == 2:
                raise OSError("disk full (simulated crash mid-copy)")
            copied.append(dst)
            return shutil.copy2(src, dst)
        shutil.copytree(source, target, copy_function=copy_one)

    monkeypatch.setattr(atomic_pusher, "copy_model", copy_then_crash)
    inputs, outputs, pushed = _push_inputs(tmp_path)
    base = tmp_path / "serving" / "census"
    with pytest.raises(OSError, match="simulated crash"):
        _push(inputs, outputs, base)
    assert len(copied) == 2  # the copy was under way when it failed
    assert os.listdir(base) == []  # no version directory, and the staging directory is gone
    assert pushed.get_int_custom_property("pushed") == 0
    assert not pushed.has_custom_property("pushed_destination")


def test_unblessed_model_is_not_pushed(tmp_path):
    inputs, outputs, pushed = _push_inputs(tmp_path, blessed=False)
    base = tmp_path / "serving" / "census"
    _push(inputs, outputs, base)
    assert pushed.get_int_custom_property("pushed") == 0 and not base.exists()


def test_staging_left_by_a_killed_push_is_removed_by_the_next_push(tmp_path):
    import socket
    import subprocess
    import sys

    from components.atomic_pusher import STAGING_PREFIX

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    base = tmp_path / "serving" / "census"
    leftover = base / f"{STAGING_PREFIX}1700000000-{socket.gethostname()}-{int(dead.stdout)}"
    (leftover / "variables").mkdir(parents=True)
    other_host = base / f"{STAGING_PREFIX}1700000000-elsewhere-1"
    other_host.mkdir()
    inputs, outputs, _ = _push_inputs(tmp_path)
    _push(inputs, outputs, base)
    names = sorted(os.listdir(base))
    assert leftover.name not in names and other_host.name in names  # only this host's dead pushes
    assert [n for n in names if not n.startswith(".")][0].isdigit()
