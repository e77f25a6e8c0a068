"""What the registry holds: versions, model summaries, alias moves, and how a promotion history
replays into the versions an alias went through."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from components.registry.stores import now_iso
from components.registry.tags import TAG_BLESSED, TAG_PUSHED_PATH



@dataclass
class VersionInfo:
    name: str
    version: int
    source: str
    status: str
    created_ms: int
    run_id: Optional[str]
    description: Optional[str]
    tags: Dict[str, str] = field(default_factory=dict)
    aliases: List[str] = field(default_factory=list)

    @property
    def blessed(self) -> bool:
        return self.tags.get(TAG_BLESSED) == "true"

    @property
    def pushed_path(self) -> Optional[str]:
        return self.tags.get(TAG_PUSHED_PATH)

    @property
    def created(self) -> str:
        return now_iso(self.created_ms / 1000.0)

    @classmethod
    def from_mlflow(cls, mv) -> "VersionInfo":
        return cls(
            name=mv.name,
            version=int(mv.version),
            source=mv.source,
            status=str(mv.status),
            created_ms=int(mv.creation_timestamp or 0),
            run_id=mv.run_id or None,
            description=mv.description or None,
            tags=dict(mv.tags or {}),
            aliases=list(mv.aliases or []),
        )


@dataclass
class ModelSummary:
    name: str
    versions: int
    latest: Optional[int]
    aliases: Dict[str, int]


@dataclass
class Promotion:
    name: str
    alias: str
    version: int
    previous: Optional[int]
    action: str  # promote | rollback | unchanged


def replay(history: List[Mapping[str, Any]]) -> List[int]:
    """The stack of versions an alias went through: promote pushes a version, rollback pops one.

    The top is where the alias should point; the one below is where a rollback takes it.
    """
    stack: List[int] = []
    for entry in history:
        version = int(entry["version"])
        if entry.get("action") == "rollback":
            while stack and stack[-1] != version:
                stack.pop()
            if not stack:
                stack.append(version)
        elif not stack or stack[-1] != version:
            stack.append(version)
    return stack
