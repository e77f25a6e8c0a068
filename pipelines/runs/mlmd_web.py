"""ML Metadata of a Kubeflow Pipelines install, read the way its own UI reads it: gRPC-web POSTs to
`<host>/ml_metadata.MetadataStoreService/<Method>`, which the UI server proxies to the metadata
Envoy (kubeflow/pipelines 2.17.0 frontend/server/app.ts `/ml_metadata.*`). The v2beta1 REST API has
no artifact endpoint in 2.17.0, and its run task_details come from Argo nodes without artifacts
(apiserver/server/api_converter.go toModelTask, "TODO: parse input and output artifacts"), so
artifact URIs and properties can only come from here. Same host, token and cookie as the API."""
from __future__ import annotations

import struct
import urllib.parse
from typing import Dict, Optional, Tuple

from pipelines.kubeflow import KubeflowError
from pipelines.kubeflow.client import api_request

PATH = "/ml_metadata.MetadataStoreService/"
HEADERS = {"Content-Type": "application/grpc-web+proto", "Accept": "application/grpc-web+proto", "X-Grpc-Web": "1"}
TRAILER_FLAG = 0x80


def frame(message: bytes, flag: int = 0) -> bytes:
    """One gRPC-web frame: flag byte, big-endian length, payload."""
    return struct.pack(">BI", flag, len(message)) + message


def unframe(data: bytes) -> Tuple[bytes, Dict[str, str]]:
    """(the message payload, the trailers) of a gRPC-web response body."""
    message, trailers, at = b"", {}, 0
    while at + 5 <= len(data):
        flag, length = struct.unpack(">BI", data[at:at + 5])
        payload = data[at + 5:at + 5 + length]
        at += 5 + length
        if flag & TRAILER_FLAG:
            for line in payload.decode("utf-8", "replace").split("\r\n"):
                name, _, value = line.partition(":")
                if name.strip():
                    trailers[name.strip().lower()] = value.strip()
        else:
            message += payload
    return message, trailers


class MetadataWeb:
    """The few ML Metadata calls reading a run needs, over gRPC-web; each returns the response proto."""

    def __init__(self, host: str, token: Optional[str] = None, cookie: Optional[str] = None):
        self.host, self.token, self.cookie = host, token, cookie

    def call(self, method: str, request, response_cls):
        headers, body = api_request(self.host, "POST", PATH + method, token=self.token, cookie=self.cookie,
                                    body=frame(request.SerializeToString()), headers=HEADERS,
                                    doing=f"reading ML Metadata ({method})")
        message, trailers = unframe(body)
        lowered = {k.lower(): v for k, v in headers.items()}
        status = trailers.get("grpc-status", lowered.get("grpc-status", "0"))
        if status != "0":
            detail = urllib.parse.unquote(trailers.get("grpc-message", lowered.get("grpc-message", "")))
            raise KubeflowError(f"ML Metadata at {self.host} refused {method} (grpc-status {status}): {detail}; "
                                "is the metadata service (metadata-envoy, metadata-grpc) running?")
        response = response_cls()
        response.ParseFromString(message)
        return response

    def run_context(self, run_id: str):
        """The run's `system.PipelineRun` context (named by the run id, metadata/client.go), or None."""
        from ml_metadata.proto import metadata_store_service_pb2 as svc

        found = self.call("GetContextByTypeAndName",
                          svc.GetContextByTypeAndNameRequest(type_name="system.PipelineRun", context_name=run_id),
                          svc.GetContextByTypeAndNameResponse)
        return found.context if found.HasField("context") else None

    def executions(self, context_id: int):
        from ml_metadata.proto import metadata_store_service_pb2 as svc

        return list(self.call("GetExecutionsByContext", svc.GetExecutionsByContextRequest(context_id=context_id),
                              svc.GetExecutionsByContextResponse).executions)

    def events(self, execution_ids):
        from ml_metadata.proto import metadata_store_service_pb2 as svc

        return list(self.call("GetEventsByExecutionIDs", svc.GetEventsByExecutionIDsRequest(execution_ids=execution_ids),
                              svc.GetEventsByExecutionIDsResponse).events)

    def artifacts(self, artifact_ids):
        from ml_metadata.proto import metadata_store_service_pb2 as svc

        return list(self.call("GetArtifactsByID", svc.GetArtifactsByIDRequest(artifact_ids=artifact_ids),
                              svc.GetArtifactsByIDResponse).artifacts)
