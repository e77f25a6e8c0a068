"""Register the custom TensorFlow ops a task's SavedModel needs before loading it in a fresh process
(a task declares the modules, e.g. tensorflow_text for in-graph WordPiece). One place for the
Evaluator, the InfraValidator and batch inference."""
from __future__ import annotations

import importlib
from typing import Sequence


def import_custom_ops(modules: Sequence[str]) -> None:
    """Import each module (registering its ops); a missing one is an error naming it and the fix."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ImportError(f"the model needs the custom ops of {name!r}, which cannot be imported: {exc} "
                              f"(pip install it)") from exc
