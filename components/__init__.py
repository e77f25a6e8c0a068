"""Custom TFX components and the libraries they need.

Custom artifact types are reachable from here: on Kubeflow, TFX's step entrypoint imports a type by
its schema title, and TFX's Kubeflow compiler allows titles of the form `<namespace>.<Title>` only,
so `components.RegisteredModel` is both. Resolved lazily, so importing a light module of this
package (e.g. components.registry.tags) does not import TFX.
"""

_ARTIFACT_TYPES = {"RegisteredModel": "components.registrar", "DataSnapshot": "components.data_snapshot"}


def __getattr__(name):
    if name in _ARTIFACT_TYPES:
        import importlib

        return getattr(importlib.import_module(_ARTIFACT_TYPES[name]), name)
    raise AttributeError(f"module 'components' has no attribute {name!r}")
