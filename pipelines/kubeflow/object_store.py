"""The launcher's object-store half, for the dry run: what a step's pod reads and writes locally.

After kubeflow/pipelines 2.17.0, backend/src/v2:
- component/launcher_v2.go `LocalPathForURI`: `s3://b/k` is `/s3/b/k` in the pod (`gs://` -> `/gcs/`,
  `minio://` -> `/minio/`). Here each pod's `/` is a directory of its own (`mount`), so that no step
  can see another's local files, as on the cluster.
- `downloadArtifacts`: every input artifact's prefix is downloaded to its local path before the
  command runs (objectstore/object_store.go `DownloadBlob`: list the prefix, one file per key, the
  key's path relative to the prefix; a `dir/` marker key becomes a file, so a later key under it
  cannot be written: kubeflow/pipelines#13476).
- `prepareOutputFolders`: the parent directory of every output's local path is created.
- `uploadOutputArtifacts`: after the command, each output's local path is uploaded under its URI
  (`UploadBlob`, a file or a directory tree); a missing local path is skipped (os.ErrNotExist is
  allowed: TFX writes its outputs to the URI itself). A failed step uploads only its executor logs.

Credentials and endpoint are the launcher's own (`fromEnv`, what an `s3://` root gets without a
`providers` entry in the kfp-launcher ConfigMap): boto3's environment of this process.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Tuple

# LocalPathForURI's table (component/launcher_v2.go).
LOCAL_TOPS = (("gs://", "gcs"), ("minio://", "minio"), ("s3://", "s3"))
EMULATED_SCHEMES = ("s3://",)


class ObjectStoreError(RuntimeError):
    """A download or upload the launcher would fail the step on."""


def is_remote(uri: str) -> bool:
    return "://" in str(uri)


def local_path_for_uri(uri: str, mount: Path) -> Optional[Path]:
    """The path a pod sees for `uri` (None for a scheme the launcher does not map)."""
    for prefix, top in LOCAL_TOPS:
        if uri.startswith(prefix):
            return Path(mount) / top / uri[len(prefix):]
    return None


def split_uri(uri: str) -> Tuple[str, str]:
    """s3://bucket/key -> (bucket, key)."""
    if not uri.startswith("s3://"):
        raise ObjectStoreError(f"{uri}: the dry run's object store is S3 only")
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key.strip("/")


def _under(key: str, prefix: str) -> bool:
    """objectstore.isBlobKeyUnderPrefix."""
    prefix = prefix.rstrip("/")
    return key == prefix or key.startswith(prefix + "/")


class S3Store:
    """The bucket side of the launcher on an S3 API (AWS, MinIO, moto), credentials from the env."""

    def __init__(self, client=None):
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.client = client

    def keys(self, bucket: str, prefix: str) -> List[str]:
        found: List[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(found)

    def download(self, uri: str, local_dir: Path) -> int:
        """DownloadBlob: every key under the URI's prefix to local_dir; returns the files written."""
        bucket, prefix = split_uri(uri)
        written = 0
        for key in self.keys(bucket, prefix):
            if not _under(key, prefix):
                continue
            if ".." in key.split("/"):
                raise ObjectStoreError(f"path traversal detected: blob key {key!r} contains '..' component")
            relative = os.path.relpath(key, prefix) if key.rstrip("/") != prefix else "."
            target = Path(local_dir) / relative if relative != "." else Path(local_dir)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                self.client.download_file(bucket, key, str(target))
            except (OSError, Exception) as exc:  # noqa: BLE001 - reported as the launcher reports it
                raise ObjectStoreError(
                    f"downloadFile(): unable to complete copying {key!r} to local storage {str(target)!r}: "
                    f"{exc}") from None
            written += 1
        return written

    def upload(self, local_path: Path, uri: str) -> int:
        """UploadBlob: a file, or every file of a directory tree, under the URI; FileNotFoundError
        when the local path does not exist."""
        bucket, key = split_uri(uri)
        local_path = Path(local_path)
        if not local_path.exists():
            raise FileNotFoundError(str(local_path))
        if local_path.is_file():
            self.client.upload_file(str(local_path), bucket, key)
            return 1
        sent = 0
        for path in sorted(p for p in local_path.rglob("*") if p.is_file()):
            self.client.upload_file(str(path), bucket, f"{key}/{path.relative_to(local_path).as_posix()}")
            sent += 1
        return sent
