"""Runs made on Kubeflow Pipelines (2.17.0), read as local runs are read.

- Which runs: the v2beta1 API, `GET /apis/v2beta1/runs` (newest first, paged) kept to the runs of
  the task's pipeline `mlops-TASK` (its pipeline id, from `GET /apis/v2beta1/pipelines` by display
  name, or the pipeline spec a run carries), in `--namespace`.
- What each step did: the ML Metadata the driver and launcher record (mlmd_web: the run's
  `system.PipelineRun` context, its `system.ContainerExecution`s with `task_name` and state, their
  OUTPUT events keyed by output name, the artifacts' URIs and custom properties). 2.17.0's run
  `task_details` carry no artifacts (built from Argo nodes), so they are not used.
- Artifact contents: what slices and the report open (READ_BACK) is copied from the object store
  (s3:// with boto3, the launcher's own client and environment) into `<home>/cache/kfp/<run id>/`
  and read from there; TensorFlow never touches s3:// in this process, so it exits normally
  (tensorflow-io's teardown abort needs a process that used its S3 file system). Local roots are
  read in place.
"""
from __future__ import annotations

import json
import shutil
import urllib.parse
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

from pipelines import lineage, nodes
from pipelines.kubeflow import KubeflowError
from pipelines.kubeflow.client import api_request
from pipelines.layout import LocalLayout
from pipelines.runs.base import READ_BACK, UNFINISHED, InspectError, RunSource
from pipelines.runs.mlmd_web import MetadataWeb

PAGE_SIZE = 100
MAX_PAGES = 20  # the newest 2,000 runs of the namespace
CONTAINER_EXECUTION = "system.ContainerExecution"
# A run that has ended: executions still RUNNING/NEW in ML Metadata lost their pod.
ENDED = {"FAILED": "failed", "CANCELED": "interrupted", "CANCELING": "interrupted"}


def unwrap(value: Any) -> Any:
    """A custom property as the step wrote it: the launcher stores lists and structs wrapped
    ({"list": [...]}, {"struct": {...}}) and every number as a double (metadata/converter.go), so
    a version 3 comes back 3.0."""
    if isinstance(value, dict) and len(value) == 1 and ("list" in value or "struct" in value):
        return next(iter(value.values()))
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class KubeflowSource(RunSource):
    """The runs of a KFP host (in a namespace), with the credentials `mlops submit` takes; what is
    downloaded stays in `layout`'s cache, so reading a run again needs no object store."""

    def __init__(self, host: str, *, namespace: Optional[str] = None, token: Optional[str] = None,
                 cookie: Optional[str] = None, layout: Optional[LocalLayout] = None, s3_client=None):
        self.host = host.rstrip("/")
        self.namespace, self.token, self.cookie = namespace, token, cookie
        self.where = f"Kubeflow Pipelines at {self.host}" + (f" (namespace {namespace})" if namespace else "")
        self.cache = (layout or LocalLayout.resolve()).home / "cache" / "kfp"
        self.metadata = MetadataWeb(self.host, token, cookie)
        self._s3_client = s3_client
        self._runs: Dict[str, List[Dict[str, Any]]] = {}

    # --- the API ------------------------------------------------------------------------------------
    def _get(self, path: str, doing: str, **params) -> Dict[str, Any]:
        if self.namespace:
            params.setdefault("namespace", self.namespace)
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "")})
        _, body = api_request(self.host, "GET", path + (f"?{query}" if query else ""), token=self.token,
                              cookie=self.cookie, doing=doing, headers={"Accept": "application/json"})
        try:
            return json.loads(body or b"{}")
        except ValueError:
            raise KubeflowError(f"{self.host}{path} did not answer JSON; is {self.host} the Kubeflow Pipelines API "
                                "(e.g. `kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80`)?") from None

    def _pages(self, path: str, key: str, doing: str, **params) -> List[Dict[str, Any]]:
        found: List[Dict[str, Any]] = []
        token = ""
        for _ in range(MAX_PAGES):
            page = self._get(path, doing, page_size=PAGE_SIZE, page_token=token, **params)
            found += page.get(key) or []
            token = page.get("next_page_token") or ""
            if not token:
                break
        return found

    def tasks(self) -> List[str]:
        names = {p.get("display_name", "") for p in self._pages("/apis/v2beta1/pipelines", "pipelines",
                                                                "listing pipelines")}
        return sorted(nodes.task_of(n) for n in names if nodes.task_of(n))

    def _pipeline_ids(self, pipeline: str) -> Set[str]:
        flt = json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "string_value": pipeline}]})
        found = self._pages("/apis/v2beta1/pipelines", "pipelines", f"looking up the pipeline {pipeline}",
                            filter=flt)
        return {p["pipeline_id"] for p in found if p.get("display_name") == pipeline and p.get("pipeline_id")}

    def task_runs(self, task: str) -> List[Dict[str, Any]]:
        """The API's runs of the task's pipeline, newest first."""
        if task not in self._runs:
            pipeline = nodes.pipeline_name(task)
            ids = self._pipeline_ids(pipeline)
            runs = self._pages("/apis/v2beta1/runs", "runs", f"listing the runs of {pipeline}",
                               sort_by="created_at desc")
            self._runs[task] = [r for r in runs if _of_pipeline(r, pipeline, ids)]
        return self._runs[task]

    def run_ids(self, task: str) -> List[str]:
        run_ids = [r["run_id"] for r in self.task_runs(task)]
        if not run_ids:
            raise InspectError(f"no runs of {task!r} in {self.where}; `mlops submit {task} --host {self.host}` "
                               f"starts one")
        return run_ids

    # --- ML Metadata --------------------------------------------------------------------------------
    def load_run(self, task: str, run_id: str) -> Optional[lineage.RunRecord]:
        run = next((r for r in self.task_runs(task) if r.get("run_id") == run_id), None)
        record = lineage.RunRecord(pipeline=nodes.pipeline_name(task), run_id=run_id, nodes={})
        context = self.metadata.run_context(run_id)
        if context is None:  # pending: the root driver has not recorded the run yet
            return record
        executions = [e for e in self.metadata.executions(context.id)
                      if (e.type or CONTAINER_EXECUTION) == CONTAINER_EXECUTION
                      and e.custom_properties["task_name"].string_value]
        events = self.metadata.events([e.id for e in executions]) if executions else []
        artifact_ids = sorted({ev.artifact_id for ev in events})
        artifacts = {a.id: a for a in self.metadata.artifacts(artifact_ids)} if artifact_ids else {}
        ended = ENDED.get((run or {}).get("state", ""))
        for execution in executions:
            state = lineage.STATE_NAMES.get(execution.last_known_state, "unknown")
            if state == "canceled":  # the driver's word for a step whose condition was false: not run
                continue
            if state in UNFINISHED and ended:
                state = ended
            node = lineage.NodeExecution(
                node_id=execution.custom_properties["task_name"].string_value, execution_id=execution.id,
                state=state, start_ms=execution.create_time_since_epoch,
                end_ms=execution.last_update_time_since_epoch)
            for ev in events:
                if ev.execution_id != execution.id or ev.type != ev.OUTPUT or ev.artifact_id not in artifacts:
                    continue
                key = ev.path.steps[0].key if ev.path.steps else ""
                node.outputs.setdefault(key, []).append(_artifact_record(artifacts[ev.artifact_id], key))
            record.nodes[node.node_id] = node
        return record

    def resolve_run(self, task: str, run: Optional[str] = "latest", need: Optional[str] = None) -> lineage.RunRecord:
        """The run, with what slices and the report open copied where this process reads it."""
        record = super().resolve_run(task, run, need)
        for node in record.nodes.values():
            for key, found in node.outputs.items():
                if (node.node_id, key) in READ_BACK:
                    for artifact in found:
                        artifact.uri = self.readable(artifact.uri, record.run_id, node.node_id, key)
        return record

    # --- the object store ---------------------------------------------------------------------------
    def readable(self, uri: str, run_id: str, node_id: str, key: str) -> str:
        """A local path holding the artifact at `uri` (downloaded once into the cache)."""
        if "://" not in uri:
            return uri
        if not uri.startswith("s3://"):
            raise InspectError(f"cannot read {uri}: only s3:// pipeline roots (and local ones) are read back here")
        from pipelines.kubeflow.object_store import S3Store

        target = self.cache / run_id / node_id / key
        done = target.with_name(key + ".complete")
        if done.is_file() and done.read_text() == uri:
            return str(target)
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        try:
            written = S3Store(self._s3_client).download(uri, target)
        except Exception as exc:  # noqa: BLE001 - credentials, endpoint, a missing bucket: one line
            raise InspectError(f"cannot download {uri}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__} "
                               "(set AWS_ENDPOINT_URL and the AWS credentials of the pipeline root's bucket)") from None
        if written:  # an empty prefix may still be being uploaded: look again next time
            done.write_text(uri)
        return str(target)


def _of_pipeline(run: Dict[str, Any], pipeline: str, pipeline_ids: Set[str]) -> bool:
    """Is this API run one of `pipeline`'s: by its pipeline version reference, or by the spec it
    carries (a run created from a package; the spec may be wrapped with its platform spec)."""
    if (run.get("pipeline_version_reference") or {}).get("pipeline_id") in pipeline_ids:
        return True
    spec = run.get("pipeline_spec") or {}
    spec = spec.get("pipeline_spec", spec)
    return (spec.get("pipelineInfo") or {}).get("name") == pipeline


def _artifact_record(artifact, key: str) -> lineage.ArtifactRecord:
    props = {}
    for mapping in (artifact.properties, artifact.custom_properties):
        for name in mapping:
            props[name] = unwrap(lineage.property_value(artifact, name))
    return lineage.ArtifactRecord(artifact.id, artifact.type, artifact.uri, key, props)
