"""A SavedModel's identity: SHA-256 over its files, so a push, a registration and a promotion can
tell the same model from another one wherever its copy lives."""
from __future__ import annotations

import hashlib
import os
import posixpath
from typing import List

# The digest of an empty (or missing) directory: no SavedModel at all.
EMPTY = "sha256:" + hashlib.sha256().hexdigest()


def saved_model_digest(path: str) -> str:
    """SHA-256 over a SavedModel directory: every file's relative path and bytes, in sorted order
    (local paths and any store tf.io.gfile reads)."""
    from tensorflow.io import gfile

    digest = hashlib.sha256()
    files: List[str] = []
    for root, _, names in gfile.walk(path):
        for name in names:
            full = posixpath.join(root, name) if "://" in root else os.path.join(root, name)
            files.append(full)
    for full in sorted(files):
        relative = full[len(path):].lstrip("/")
        digest.update(relative.encode("utf-8") + b"\0")
        with gfile.GFile(full, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()
