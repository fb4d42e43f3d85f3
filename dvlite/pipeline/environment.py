"""What a stage ran with, as ``dvlite.lock`` records it beside each stage (``env``): the
interpreter, the platform, and the project's dependency lock files. ``repro --rev`` says how
today's differs from a past commit's."""

from __future__ import annotations

import fnmatch
import os
import platform
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dvlite.storage.hashing import Oid, hash_file

if TYPE_CHECKING:
    from collections.abc import Mapping

# Files that pin a project's Python dependencies, besides requirements*.txt
_DEPENDENCY_LOCKS = frozenset({"uv.lock", "poetry.lock", "Pipfile.lock", "pdm.lock", "pylock.toml",
                               "conda-lock.yml", "environment.yml"})


@dataclass(frozen=True)
class Environment:
    """What a stage ran with: the interpreter, the platform, and the project's dependency
    lock files (path -> oid)."""

    python: str
    platform: str
    files: Mapping[str, Oid] = field(default_factory=dict)

    @classmethod
    def current(cls, root: str, algorithm: str) -> Environment:
        """This interpreter and platform, and the dependency lock files at ``root``."""
        names = sorted(
            name for name in os.listdir(root)
            if name in _DEPENDENCY_LOCKS or fnmatch.fnmatchcase(name, "requirements*.txt")
        )
        files = {name: hash_file(os.path.join(root, name), algorithm) for name in names
                 if os.path.isfile(os.path.join(root, name))}
        machine = f"{platform.system()}-{platform.machine()}".lower()
        return cls(platform.python_version(), machine, files)

    def differences(self, other: Environment) -> list[str]:
        """What differs from ``other``, one phrase each (empty: the same)."""
        found = [f"{what} {mine} (was {theirs})" for what, mine, theirs in (
            ("python", self.python, other.python), ("platform", self.platform, other.platform),
        ) if mine != theirs]
        for name in sorted(set(self.files) | set(other.files)):
            mine, theirs = self.files.get(name), other.files.get(name)
            if mine != theirs:
                change = "added" if theirs is None else "removed" if mine is None else "changed"
                found.append(f"`{name}` {change}")
        return found

    def to_toml(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"python": self.python, "platform": self.platform}
        if self.files:
            doc["files"] = {p: self.files[p] for p in sorted(self.files)}
        return doc
