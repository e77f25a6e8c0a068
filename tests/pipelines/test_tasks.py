"""The registry of tasks: one declaration per task folder, found without a hand-kept list."""
from __future__ import annotations


import pytest

from pipelines import tasks
from pipelines.config import TaskConfig, import_object
from tests.conftest import REPO


def task_folders() -> set:
    return {p.name for p in (REPO / "models").iterdir()
            if p.is_dir() and (p / "__init__.py").exists() and p.name != "common"}


def test_the_registry_lists_exactly_the_task_folders_present():
    assert set(tasks.KNOWN_TASKS) == task_folders()


@pytest.mark.parametrize("name", sorted(tasks.KNOWN_TASKS))
def test_each_declaration_names_its_task_and_points_into_its_folder(name):
    task = tasks.load_task(name)
    assert isinstance(task, TaskConfig) and task.name == name
    for dotted in (task.run_fn, task.preprocessing_fn, task.tuner_fn):
        if dotted:
            assert dotted.startswith(f"models.{name}."), dotted
            assert callable(import_object(dotted)), dotted
    if task.schema_file:
        assert (REPO / task.schema_file).is_file()
    assert callable(import_object(task.example_gen))
    assert task.importer is not None, "every task says how its raw data is imported"
    for profile in tasks.profiles(name).values():
        assert profile.name == name


def test_a_new_declaration_module_becomes_a_task(tmp_path, monkeypatch):
    """Adding a task is one module in pipelines/tasks/: nothing else lists tasks."""
    package = tmp_path / "pipelines" / "tasks"
    package.mkdir(parents=True)
    (package / "toy.py").write_text(
        "from pipelines.tasks.heart import TASK as HEART\n"
        "import dataclasses\n"
        "TASK = dataclasses.replace(HEART, name='toy')\n"
    )
    monkeypatch.setattr(tasks, "__path__", [*tasks.__path__, str(package)])
    monkeypatch.setattr(tasks, "KNOWN_TASKS", tasks._discover())
    assert "toy" in tasks.KNOWN_TASKS
    assert tasks.load_task("toy").name == "toy"


def test_unknown_task_and_profile_are_errors_listing_the_known_ones():
    with pytest.raises(tasks.UnknownTaskError, match="known tasks: census"):
        tasks.load_task("nope")
    with pytest.raises(tasks.UnknownTaskError, match="profiles: default"):
        tasks.load_task("census", "nope")


def test_task_code_never_imports_the_pipeline_layer():
    """models/ is the bottom layer: it may not import pipelines/ or components/."""
    import ast

    offenders = []
    for path in sorted((REPO / "models").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names
                          if n.split(".")[0] in ("pipelines", "components")]
    assert offenders == []
