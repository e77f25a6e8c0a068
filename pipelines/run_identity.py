"""What a run was made of: the data version, the code commit and the effective task config (a stable
hash of the TaskConfig after overrides). The local runner records it on the run's context in ML
Metadata (custom properties `mlops.*`), next to everything else the run recorded; `mlops run
--if-changed` compares the current identity with the newest successful run's, and `mlops registry
reproduce` reads a registered version's run back (profile, budget) and checks the rebuilt run's
config against it."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from components import data_version as dv
from pipelines import lineage, nodes
from pipelines.config import TaskConfig

PREFIX = "mlops."
# The code root: the checkout holding this package (as the runner's code_version).
CODE_ROOT = Path(__file__).resolve().parent.parent
# Node states of a run that finished (ran or came from cache); anything else did not succeed.
DONE_STATES = ("complete", "cached")


# ---- the effective task config

def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.compare}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
    return repr(value)


def config_dict(task: TaskConfig) -> Dict[str, Any]:
    """The TaskConfig as plain JSON values; fields declared compare=False (the importer, the
    reproduce tolerance) are not part of what a run does and are left out."""
    return _plain(task)


def config_json(task: TaskConfig) -> str:
    return json.dumps(config_dict(task), sort_keys=True, separators=(",", ":"))


def config_hash(task: TaskConfig) -> str:
    """sha256 of the config's JSON with sorted keys: equal for equal effective configs."""
    return hashlib.sha256(config_json(task).encode()).hexdigest()


def flatten(value: Any, prefix: str = "") -> Dict[str, Any]:
    """{'custom_config.hparams.batch_size': 32, ...}; lists stay whole values."""
    if isinstance(value, Mapping) and value:
        out: Dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> List[Tuple[str, Any, Any]]:
    """(key, old value, new value) for every flattened key whose value differs."""
    a, b = flatten(old), flatten(new)
    missing = object()
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if a.get(k, missing) != b.get(k, missing)]


# ---- the code and the data

# The data's own files in git (data.dvc, and .dvc/: config and, here, the committed local remote):
# their changes are the data version's, not the code's.
NOT_CODE = (":(exclude)data.dvc", ":(exclude).dvc")


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=60)


def uncommitted_digest(root: Path) -> Optional[str]:
    """sha256 of the working tree's code changes against HEAD (tracked diffs and the untracked
    files' names and contents, DVC's files excluded), so two different dirty trees on one commit
    do not look the same; "" when only DVC's files changed."""
    try:
        diff = _git(root, "diff", "HEAD", "--binary", "--", ".", *NOT_CODE)
        others = _git(root, "ls-files", "--others", "--exclude-standard", "-z", "--", ".", *NOT_CODE)
    except (OSError, subprocess.SubprocessError):
        return None
    if diff.returncode != 0 or others.returncode != 0:
        return None
    if not diff.stdout and not others.stdout.strip(b"\0"):
        return ""
    digest = hashlib.sha256(diff.stdout)
    for name in sorted(n for n in others.stdout.split(b"\0") if n):
        digest.update(b"\0" + name + b"\0")
        path = Path(root) / name.decode("utf-8", "surrogateescape")
        if path.is_file():
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def code_differs(root: Path, old: str, new: str) -> bool:
    """Whether two commits differ in anything but DVC's files (True when git cannot tell)."""
    try:
        diff = _git(root, "diff", "--quiet", old, new, "--", ".", *NOT_CODE)
    except (OSError, subprocess.SubprocessError):
        return True
    return diff.returncode != 0


def content_digest(directory: Path) -> str:
    """sha256 over the relative paths and contents of every file under directory."""
    digest = hashlib.sha256()
    directory = Path(directory)
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def data_label(data_root: str, task: TaskConfig, version: Optional[Mapping[str, Any]]) -> str:
    """'dvc:<md5>' for data/ matching data.dvc; otherwise (dirty or untracked data) the content
    digest of the task's input folder, 'files:<sha256>', since no DVC version names it."""
    version = dict(version or {})
    md5 = version.get("md5")
    if md5 and md5 not in (dv.UNTRACKED, "unknown") and not version.get("dirty"):
        return f"dvc:{md5}"
    return "files:" + content_digest(Path(data_root) / task.data_dir)


# ---- a run's identity

@dataclass(frozen=True)
class RunIdentity:
    data: str  # dvc:<md5> or files:<sha256>
    commit: str  # git commit of the code, or "unknown"
    code_changes: str  # "" for a clean tree, else the digest of its uncommitted changes
    config_hash: str
    config: str  # the effective TaskConfig as JSON
    profile: str = ""  # the task profile the run used (`mlops run --profile`), when known

    def properties(self) -> Dict[str, str]:
        return {PREFIX + k: str(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_properties(cls, props: Mapping[str, str]) -> Optional["RunIdentity"]:
        names = [f.name for f in dataclasses.fields(cls)]
        if PREFIX + "config_hash" not in props:
            return None
        return cls(**{n: props.get(PREFIX + n, "") for n in names})

    def changes_since(self, previous: "RunIdentity") -> List[str]:
        """One line per part that differs from `previous` (empty: nothing changed)."""
        lines = []
        if self.data != previous.data:
            lines.append(f"data changed: {describe_data(previous.data)} -> {describe_data(self.data)}")
        if self.code_changes != previous.code_changes or (
                self.commit != previous.commit and code_differs(CODE_ROOT, previous.commit, self.commit)):
            lines.append(f"code changed: {describe_code(previous)} -> {describe_code(self)}")
        if self.config_hash != previous.config_hash:
            changes = config_changes(json.loads(previous.config or "{}"), json.loads(self.config or "{}"))
            shown = ", ".join(f"{k}: {_short(a)} -> {_short(b)}" for k, a, b in changes[:4])
            more = f" (+{len(changes) - 4} more)" if len(changes) > 4 else ""
            lines.append(f"config changed: hash {previous.config_hash[:12]} -> {self.config_hash[:12]}"
                         + (f" ({shown}{more})" if shown else ""))
        return lines


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def describe_data(label: str) -> str:
    kind, _, value = label.partition(":")
    return f"dvc md5 {value}" if kind == "dvc" else f"files sha256 {value[:12]} (no clean DVC version)"


def describe_code(identity: RunIdentity) -> str:
    text = f"commit {identity.commit[:12]}"
    return text + (f" + uncommitted changes {identity.code_changes[:12]}" if identity.code_changes else "")


def current(task: TaskConfig, *, data_root: str, data_version: Optional[Mapping[str, Any]],
            code: Optional[Mapping[str, Any]] = None, profile: str = "") -> RunIdentity:
    """The identity a run of `task` on `data_root` would have now (code: the runner's
    code_version, {'commit', 'dirty'}; computed here when not given)."""
    if code is None:
        from components.code_version import code_version

        code = code_version(CODE_ROOT)
    commit = str(code.get("commit") or "unknown")
    changes = ""
    if code.get("dirty") or code.get("dirty") is None and commit != "unknown":
        changes = uncommitted_digest(CODE_ROOT)
        changes = "unknown" if changes is None else changes
    return RunIdentity(
        data=data_label(data_root, task, data_version),
        commit=commit,
        code_changes=changes,
        config_hash=config_hash(task),
        config=config_json(task),
        profile=profile,
    )


# ---- recorded on, and read back from, the run's context in ML Metadata

def record(metadata_path: Path, run_id: str, identity: RunIdentity) -> bool:
    """Write the identity onto the run's context; False when the run recorded no context."""
    from components import metadata

    store = metadata.open_store(str(metadata_path))
    context = store.get_context_by_type_and_name(metadata.RUN_CONTEXT_TYPE, run_id)
    if context is None:
        return False
    for key, value in identity.properties().items():
        context.custom_properties[key].string_value = value
    store.put_contexts([context])
    return True


def read(store, run_id: str) -> Optional[RunIdentity]:
    """The identity recorded on a run (None for a run recorded before identities existed)."""
    from components import metadata

    context = store.get_context_by_type_and_name(metadata.RUN_CONTEXT_TYPE, run_id)
    if context is None:
        return None
    props = {k: v.string_value for k, v in context.custom_properties.items() if k.startswith(PREFIX)}
    return RunIdentity.from_properties(props)


def succeeded(run: lineage.RunRecord) -> bool:
    """The run went through to its Registrar with every step run or cached (blessed or not);
    failed, interrupted and unfinished runs did not."""
    return nodes.REGISTRAR in run.nodes and all(n.state in DONE_STATES for n in run.nodes.values())


def newest_successful(metadata_path: Path, task: str) -> Optional[Tuple[str, Optional[RunIdentity]]]:
    """(run id, its identity) of the task's newest successful run in this store, else None."""
    from components import metadata

    if not Path(metadata_path).is_file():
        return None
    store = metadata.open_store(str(metadata_path))
    pipeline = nodes.pipeline_name(task)
    for run_id in lineage.list_run_ids(store, pipeline):
        run = lineage.load_run(store, pipeline, run_id)
        if run is not None and succeeded(run):
            return run_id, read(store, run_id)
    return None
