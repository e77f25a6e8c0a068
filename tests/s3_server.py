"""A real S3 API on 127.0.0.1 for the tests: moto's server mode, started in its own process and
stopped after. Everything that speaks S3 in the product (tensorflow-io, Beam, boto3, DVC's s3fs)
reaches it through the environment `s3_environment` returns, as a pod would."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Dict, Iterator

ACCESS_KEY, SECRET_KEY, REGION = "testing-access-key", "testing-secret-key", "us-east-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def s3_environment(endpoint: str) -> Dict[str, str]:
    """What every S3 client here needs: credentials, region, and the endpoint for each library."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint, "S3_ENDPOINT": endpoint, "S3_USE_HTTPS": "0",
    }


@contextlib.contextmanager
def s3_server(log_dir: Path) -> Iterator[str]:
    """moto_server on a free loopback port; yields its endpoint URL."""
    port = _free_port()
    executable = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    log = open(Path(log_dir) / "moto.log", "wb")
    process = subprocess.Popen([executable, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start (see {log.name})") from None
                time.sleep(0.3)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@contextlib.contextmanager
def environment(values: Dict[str, str]) -> Iterator[None]:
    """os.environ with `values` set, restored after (for module-scoped fixtures)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY)


def upload_tree(s3, local: Path, bucket: str, prefix: str) -> int:
    count = 0
    for path in sorted(p for p in Path(local).rglob("*") if p.is_file()):
        s3.upload_file(str(path), bucket, f"{prefix.strip('/')}/{path.relative_to(local).as_posix()}")
        count += 1
    return count
