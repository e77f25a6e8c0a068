"""How the steps of a compiled pipeline reach its object store: roots, endpoint, credentials.

TensorFlow's file I/O (tensorflow-io), Beam's S3 file system and boto3 (the Registrar, DVC's s3fs)
each read their endpoint from their own setting, so an S3 API other than AWS (MinIO in a stock
Kubeflow install, or any S3-compatible server) needs all of them in every step container:
- tensorflow-io 0.37.1 (tensorflow_io/core/filesystems/s3/s3_filesystem.cc): `S3_ENDPOINT` with its
  scheme (it reads no `S3_USE_HTTPS`; path-style addressing is always on), `S3_VERIFY_SSL`;
- Beam: `--s3_endpoint_url` and `--s3_region_name` (S3Options), passed with the beam args;
- boto3 >= 1.28 and s3fs: `AWS_ENDPOINT_URL`; the region from `AWS_REGION`/`AWS_DEFAULT_REGION`.
Credentials never go into the package: either a Kubernetes secret is mapped onto
`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` by the platform spec's secretAsEnv (kfp-kubernetes
format; `mlpipeline-minio-artifact`, keys `accesskey`/`secretkey`, in a stock install), or the pod's
service account has an IAM role (IRSA on EKS), which every AWS client above picks up by itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional

from pipelines.kubeflow import KubeflowError
from pipelines.kubeflow.resources import KUBERNETES_PLATFORM

ENDPOINT_ENV = "MLOPS_S3_ENDPOINT"
REGION_ENV = "MLOPS_S3_REGION"
SECRET_ENV = "MLOPS_S3_SECRET"
# A stock Kubeflow Pipelines install: its MinIO service and the secret the launcher itself uses
# (backend/src/v2/config/env.go minioArtifactSecretName, minio.go).
STOCK_MINIO_ENDPOINT = "http://minio-service.kubeflow:9000"
STOCK_MINIO_SECRET = "mlpipeline-minio-artifact"
SECRET_KEYS = {"accesskey": "AWS_ACCESS_KEY_ID", "secretkey": "AWS_SECRET_ACCESS_KEY"}
# Schemes the step containers can read and write (TensorFlow via tensorflow-io, Beam, boto3).
SUPPORTED_SCHEMES = ("s3://", "gs://")


@dataclass(frozen=True)
class S3Access:
    """The object store as the steps see it. Empty endpoint: AWS S3 itself; empty secret: the pod's
    own role (IRSA)."""

    endpoint: str = ""
    region: str = ""
    secret: str = ""

    @classmethod
    def from_options(cls, endpoint: Optional[str], region: Optional[str], secret: Optional[str],
                     environ: Mapping[str, str]) -> "S3Access":
        access = cls(endpoint=(endpoint or environ.get(ENDPOINT_ENV) or "").rstrip("/"),
                     region=region or environ.get(REGION_ENV) or "",
                     secret=secret or environ.get(SECRET_ENV) or "")
        if access.endpoint and not access.endpoint.startswith(("http://", "https://")):
            raise KubeflowError(f"--s3-endpoint {access.endpoint!r} needs its scheme, e.g. {STOCK_MINIO_ENDPOINT}")
        return access

    def container_env(self) -> List[Dict[str, str]]:
        env: List[Dict[str, str]] = []
        if self.endpoint:
            env += [{"name": "S3_ENDPOINT", "value": self.endpoint},
                    {"name": "S3_USE_HTTPS", "value": "1" if self.endpoint.startswith("https://") else "0"},
                    {"name": "AWS_ENDPOINT_URL", "value": self.endpoint}]
        if self.region:
            env += [{"name": "AWS_REGION", "value": self.region}, {"name": "AWS_DEFAULT_REGION", "value": self.region}]
        return env

    def beam_args(self) -> List[str]:
        args = []
        if self.endpoint:
            args.append(f"--s3_endpoint_url={self.endpoint}")
        if self.region:
            args.append(f"--s3_region_name={self.region}")
        return args

    def secret_as_env(self) -> List[Dict[str, Any]]:
        if not self.secret:
            return []
        return [{"secretName": self.secret,
                 "secretNameParameter": {"runtimeValue": {"constant": self.secret}},
                 "keyToEnv": [{"secretKey": key, "envVar": var} for key, var in SECRET_KEYS.items()]}]


def check_root(uri: str, option: str) -> None:
    """Refuse a root no step can open, with the fix in one line."""
    if uri.startswith("minio://"):
        bucket_path = uri[len("minio://"):]
        raise KubeflowError(
            f"{option} {uri}: minio:// is the KFP launcher's own name for its MinIO, which TensorFlow, Beam and "
            f"boto3 cannot open; use {option} s3://{bucket_path} --s3-endpoint {STOCK_MINIO_ENDPOINT} "
            f"--s3-secret {STOCK_MINIO_SECRET} (and the kfp-launcher ConfigMap's s3 provider, infra/k8s/README.md)"
        )
    if "://" in uri and not uri.startswith(SUPPORTED_SCHEMES):
        raise KubeflowError(f"{option} {uri}: the steps read and write s3:// and gs:// roots only")


def add_container_env(executors: Dict[str, Any], labels: Iterable[str], env: List[Dict[str, str]]) -> None:
    """Append env entries (name/value) to the containers of the given executors, replacing same names."""
    for label in labels:
        container = executors.get(label, {}).get("container")
        if container is None or not env:
            continue
        names = {e["name"] for e in env}
        container["env"] = [e for e in container.get("env", []) if e.get("name") not in names] + [dict(e) for e in env]


def add_secret_env(platform: Dict[str, Any], labels: Iterable[str], access: S3Access) -> Dict[str, Any]:
    """The platform spec with `access`'s secretAsEnv on every given executor (kfp-kubernetes format)."""
    entries = access.secret_as_env()
    if not entries:
        return platform
    executors = platform.setdefault("platforms", {}).setdefault(KUBERNETES_PLATFORM, {}).setdefault(
        "deploymentSpec", {}).setdefault("executors", {})
    for label in labels:
        executors.setdefault(label, {})["secretAsEnv"] = [dict(e) for e in entries]
    return platform
