"""What a version must show before it is promoted or read (served, described, rebuilt): not a tag
anyone can write, but the record the Registrar wrote and the files it describes.

- `registration.json` in the version's MLflow run, written by the Registrar, naming the version's
  pushed path, the Evaluator's blessing, the infra blessing and the SavedModel's digest;
- the SavedModel at the pushed path, whose digest (SHA-256 over its files) still matches.
A version registered by hand, tagged `blessed=true` by hand, or whose files changed or vanished
after registration is refused, with what is missing. Every command that reads a version (promote,
predict, path, manifest, card, reproduce, list, show) applies this one check, so none of them vouches
for files the pipeline did not register.
"""
from __future__ import annotations

import json
import os
import tempfile
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
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one small file, no bar
    try:
        import mlflow

        with tempfile.TemporaryDirectory(prefix="mlops-evidence-") as folder:
            local = mlflow.artifacts.download_artifacts(run_id=info.run_id, artifact_path=RECORD_FILE,
                                                        dst_path=folder, tracking_uri=registry.uri)
            with open(local, encoding="utf-8") as f:
                record = json.load(f)
    except Exception:  # no such artifact, or no such run
        return None
    return record if isinstance(record, dict) else None


def missing_evidence(registry, info, model_dir: Optional[str] = None) -> List[str]:
    """What the version lacks to be promoted or used ([] when it is sound). model_dir: the copy
    about to be used (e.g. downloaded from the run's artifacts), digested instead of the pushed path."""
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
    where = model_dir or pushed
    try:
        actual = saved_model_digest(where)
    except Exception as exc:  # unreadable store, vanished directory
        first = (str(exc).strip().splitlines() or [""])[0]
        problems.append(f"the pushed SavedModel at {where} cannot be read ({type(exc).__name__}: {first})")
        return problems
    if actual == EMPTY:
        problems.append(f"no SavedModel at {where}")
    elif actual != recorded:
        problems.append(f"the SavedModel at {where} changed since it was registered (digest {actual[:19]}… "
                        f"!= {recorded[:19]}…)")
    return problems


def verify(registry, info, action: str = "promoted", model_dir: Optional[str] = None) -> None:
    """RegistryError naming everything the version lacks; nothing when it may be `action` (promoted,
    served, reproduced, ...)."""
    problems = missing_evidence(registry, info, model_dir)
    if problems:
        raise RegistryError(
            f"{info.name} v{info.version} cannot be {action}: " + "; ".join(problems)
            + f". Only versions a pipeline run blessed, infra-validated, pushed and registered can be {action}"
            + (f"; restore its files or use another version (`mlops registry list {info.name}` shows which pass)"
               if action != "promoted" else "")
        )
