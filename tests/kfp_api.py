"""A Kubeflow Pipelines 2.17.0 host on 127.0.0.1 for the read-back tests: the v2beta1 REST API
(pipelines by display name, runs newest first in pages, as apiserver answers them) and the UI's
gRPC-web ML Metadata proxy (`/ml_metadata.MetadataStoreService/*`) backed by a real in-memory ML
Metadata store, filled as the driver and launcher fill it (metadata/client.go): a
`system.PipelineRun` context named by the run id, `system.ContainerExecution`s with `task_name`,
OUTPUT events keyed by output name, artifact metadata with numbers as doubles."""
from __future__ import annotations

import contextlib
import http.server
import json
import threading
import urllib.parse
from typing import Any, Dict, List, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd
from ml_metadata.proto import metadata_store_service_pb2 as svc

from pipelines.runs.mlmd_web import frame, unframe

STATES = {"complete": mlmd.Execution.COMPLETE, "cached": mlmd.Execution.CACHED, "failed": mlmd.Execution.FAILED,
          "running": mlmd.Execution.RUNNING, "canceled": mlmd.Execution.CANCELED}


class FakeKfp:
    """What the fake host knows: API pipelines and runs, and an ML Metadata store."""

    def __init__(self, page_size_cap: int = 2):
        config = mlmd.ConnectionConfig()
        config.fake_database.SetInParent()
        self.store = metadata_store.MetadataStore(config)
        self.run_type = self.store.put_context_type(mlmd.ContextType(name="system.PipelineRun"))
        self.exec_type = self.store.put_execution_type(mlmd.ExecutionType(name="system.ContainerExecution"))
        self.artifact_types: Dict[str, int] = {}
        self.pipelines: List[Dict[str, Any]] = []
        self.runs: List[Dict[str, Any]] = []  # newest first
        self.page_size_cap = page_size_cap  # small pages, so that paging is exercised
        self.seen: List[tuple] = []  # (method, path, headers)

    def add_run(self, run_id: str, pipeline_id: str, state: str = "SUCCEEDED", created: str = "2026-12-01T10:00:00Z",
                **extra) -> None:
        self.runs.insert(0, {"run_id": run_id, "display_name": run_id, "state": state, "created_at": created,
                             "pipeline_version_reference": {"pipeline_id": pipeline_id, "pipeline_version_id": "v"},
                             **extra})

    def add_step(self, run_id: str, task: str, state: str = "complete", outputs: Optional[Dict[str, Any]] = None,
                 start_ms: int = 1_000, end_ms: int = 5_000) -> None:
        """One container step of a run; outputs: {name: (type, uri, {property: value})}."""
        context = self.store.get_context_by_type_and_name("system.PipelineRun", run_id)
        if context is None:
            [context_id] = self.store.put_contexts([mlmd.Context(type_id=self.run_type, name=run_id)])
            [context] = self.store.get_contexts_by_id([context_id])
        execution = mlmd.Execution(type_id=self.exec_type, last_known_state=STATES[state],
                                   create_time_since_epoch=start_ms, last_update_time_since_epoch=end_ms)
        execution.custom_properties["task_name"].string_value = task
        execution.custom_properties["display_name"].string_value = task
        artifacts_and_events = []
        for name, (type_name, uri, props) in (outputs or {}).items():
            if type_name not in self.artifact_types:
                self.artifact_types[type_name] = self.store.put_artifact_type(mlmd.ArtifactType(name=type_name))
            artifact = mlmd.Artifact(type_id=self.artifact_types[type_name], uri=uri)
            for key, value in props.items():  # the launcher's conversion (metadata/converter.go)
                if isinstance(value, (bool, int, float)) and not isinstance(value, str):
                    artifact.custom_properties[key].double_value = float(value)
                else:
                    artifact.custom_properties[key].string_value = str(value)
            event = mlmd.Event(type=mlmd.Event.OUTPUT)
            event.path.steps.add().key = name
            artifacts_and_events.append((artifact, event))
        self.store.put_execution(execution, artifacts_and_events, [context])

    # --- answering ------------------------------------------------------------------------------------
    def answer_get(self, path: str, query: Dict[str, str]) -> Dict[str, Any]:
        if path == "/apis/v2beta1/pipelines":
            found = self.pipelines
            if query.get("filter"):
                wanted = json.loads(query["filter"])["predicates"][0]["string_value"]
                found = [p for p in found if p["display_name"] == wanted]
            return {"pipelines": found, "total_size": len(found)}
        if path == "/apis/v2beta1/runs":
            assert query.get("sort_by") == "created_at desc"
            start = int(query.get("page_token") or 0)
            size = min(int(query.get("page_size") or 10), self.page_size_cap)
            page = self.runs[start:start + size]
            more = start + size < len(self.runs)
            return {"runs": page, "total_size": len(self.runs), **({"next_page_token": str(start + size)} if more else {})}
        raise KeyError(path)

    def answer_metadata(self, method: str, body: bytes) -> bytes:
        message, _ = unframe(body)
        if method == "GetContextByTypeAndName":
            request = svc.GetContextByTypeAndNameRequest.FromString(message)
            response = svc.GetContextByTypeAndNameResponse()
            found = self.store.get_context_by_type_and_name(request.type_name, request.context_name)
            if found is not None:
                response.context.CopyFrom(found)
        elif method == "GetExecutionsByContext":
            request = svc.GetExecutionsByContextRequest.FromString(message)
            response = svc.GetExecutionsByContextResponse(executions=self.store.get_executions_by_context(request.context_id))
        elif method == "GetEventsByExecutionIDs":
            request = svc.GetEventsByExecutionIDsRequest.FromString(message)
            response = svc.GetEventsByExecutionIDsResponse(
                events=self.store.get_events_by_execution_ids(list(request.execution_ids)))
        elif method == "GetArtifactsByID":
            request = svc.GetArtifactsByIDRequest.FromString(message)
            response = svc.GetArtifactsByIDResponse(artifacts=self.store.get_artifacts_by_id(list(request.artifact_ids)))
        else:
            return frame(b"grpc-status:12\r\ngrpc-message:unimplemented\r\n", 0x80)
        return frame(response.SerializeToString()) + frame(b"grpc-status:0\r\ngrpc-message:\r\n", 0x80)


@contextlib.contextmanager
def kfp_host(fake: FakeKfp):
    """Serve `fake` on a loopback port (one request at a time); yields its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, status: int, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            fake.seen.append(("GET", self.path, dict(self.headers)))
            try:
                payload = fake.answer_get(url.path, dict(urllib.parse.parse_qsl(url.query)))
            except KeyError:
                return self._send(404, b'{"error":"not found","code":5,"message":"not found"}', "application/json")
            self._send(200, json.dumps(payload).encode(), "application/json")

        def do_POST(self):
            fake.seen.append(("POST", self.path, dict(self.headers)))
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            prefix = "/ml_metadata.MetadataStoreService/"
            if not self.path.startswith(prefix):
                return self._send(404, b"{}", "application/json")
            self._send(200, fake.answer_metadata(self.path[len(prefix):], body), "application/grpc-web+proto")

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
