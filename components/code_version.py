"""The version of the code a pipeline was built from: git commit and whether the tree was dirty."""
from __future__ import annotations

import os
import subprocess
from typing import Any, Dict


def code_version(root: os.PathLike | str) -> Dict[str, Any]:
    """{'commit': HEAD or 'unknown', 'dirty': bool or None} of the git checkout holding root."""
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": "unknown", "dirty": None}
        status = git("status", "--porcelain")
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return {"commit": head.stdout.strip(), "dirty": dirty}
