"""What a version must show before an alias may point at it: not a tag anyone can write, but the
record the Registrar wrote and the files it describes.

- `registration.json` in the version's MLflow run, written by the Registrar, naming the version's
  pushed path, the Evaluator's blessing, the infra blessing and the SavedModel's digest;
- the SavedModel at the pushed path, whose digest (SHA-256 over its files) still matches.
A version registered by hand, tagged `blessed=true` by hand, or whose files changed or vanished
after registration is refused, with what is missing.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from components.digest import EMPTY, saved_model_digest
from components.registry.stores import RegistryError
from components.registry.tags import (
    TAG_BLESSED, TAG_INFRA_BLESSED, TAG_MODEL_DIGEST, TAG_PUSHED_PATH,
)

RECORD_FILE = "registration.json"


def _record(registry, info) -> Optional[Dict[str, Any]]:
    """The Registrar's record in the version's run, None when there is none."""
    if not info.run_id:
        return None
    try:
        import mlflow

        local = mlflow.artifacts.download_artifacts(run_id=info.run_id, artifact_path=RECORD_FILE,
                                                    tracking_uri=registry.uri)
        with open(local, encoding="utf-8") as f:
            record = json.load(f)
    except Exception:  # no such artifact, or no such run
        return None
    return record if isinstance(record, dict) else None


def missing_evidence(registry, info) -> List[str]:
    """What the version lacks to be promoted ([] when it is sound)."""
    problems = []
    if info.tags.get(TAG_BLESSED) != "true":
        problems.append(f"no tag {TAG_BLESSED}=true")
    record = _record(registry, info)
    if record is None:
        return problems + [f"no {RECORD_FILE} from the Registrar in its MLflow run (it was not registered by a "
                           f"pipeline)"]
    tags = record.get("tags") or {}
    if tags.get(TAG_BLESSED) != "true":
        problems.append("the Registrar's record does not say the Evaluator blessed it")
    if tags.get(TAG_INFRA_BLESSED) != "true":
        problems.append("the Registrar's record names no infra blessing (the model never passed infra validation)")
    pushed = info.tags.get(TAG_PUSHED_PATH)
    if not pushed or tags.get(TAG_PUSHED_PATH) != pushed:
        problems.append(f"its pushed path {pushed!r} is not the one the Registrar recorded")
        return problems
    recorded = tags.get(TAG_MODEL_DIGEST)
    if not recorded:
        problems.append("the Registrar's record holds no digest of the SavedModel")
        return problems
    try:
        actual = saved_model_digest(pushed)
    except Exception as exc:  # unreadable store, vanished directory
        problems.append(f"the pushed SavedModel at {pushed} cannot be read ({type(exc).__name__}: {exc})")
        return problems
    if actual == EMPTY:
        problems.append(f"no SavedModel at {pushed}")
    elif actual != recorded:
        problems.append(f"the SavedModel at {pushed} changed since it was registered (digest {actual[:19]}… "
                        f"!= {recorded[:19]}…)")
    return problems


def verify(registry, info) -> None:
    """RegistryError naming everything the version lacks; nothing when it may be promoted."""
    problems = missing_evidence(registry, info)
    if problems:
        raise RegistryError(
            f"{info.name} v{info.version} cannot be promoted: " + "; ".join(problems)
            + ". Only versions a pipeline run blessed, infra-validated, pushed and registered can be promoted"
        )
