"""The registry of tasks: one declaration module per task in this package, found by name.

A task is its code folder `models/<task>/` plus one declaration here, `pipelines/tasks/<task>.py`,
which defines `TASK` (a TaskConfig named after the module) and optionally `PROFILES` (name ->
TaskConfig). Nothing else lists tasks: adding a module adds the task. Modules are imported lazily,
so `mlops --help` stays fast and one task's heavy imports never slow down another.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Dict, Mapping, Optional

from pipelines.config import TaskConfig


def _discover() -> Dict[str, str]:
    return {
        info.name: f"{__name__}.{info.name}"
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name)
        if not info.name.startswith("_")
    }


# task name -> declaration module
KNOWN_TASKS: Mapping[str, str] = _discover()


class UnknownTaskError(ValueError):
    """A task name (or profile) that no declaration defines; the message lists the known ones."""


def load_task(name: str, profile: Optional[str] = None) -> TaskConfig:
    """The TaskConfig declared under `name` (in one of its PROFILES, e.g. "gpu"), or
    UnknownTaskError listing the known tasks / profiles."""
    if name not in KNOWN_TASKS:
        raise UnknownTaskError(f"unknown task {name!r}; known tasks: {', '.join(sorted(KNOWN_TASKS))}")
    module = importlib.import_module(KNOWN_TASKS[name])
    task = getattr(module, "TASK", None)
    if not isinstance(task, TaskConfig):
        raise TypeError(f"{KNOWN_TASKS[name]}.TASK is not a TaskConfig")
    if task.name != name:
        raise TypeError(f"{KNOWN_TASKS[name]}.TASK is named {task.name!r}; a declaration is named after its task")
    if profile and profile != "default":
        profiles = getattr(module, "PROFILES", {"default": task})
        if profile not in profiles:
            raise UnknownTaskError(
                f"task {name!r} has no profile {profile!r}; profiles: {', '.join(sorted(profiles))}"
            )
        task = profiles[profile]
    return task


def profiles(name: str) -> Mapping[str, TaskConfig]:
    """Every profile of a task ("default" included)."""
    task = load_task(name)
    return dict(getattr(importlib.import_module(KNOWN_TASKS[name]), "PROFILES", {"default": task}))
