"""Problems found in an admin's files, each with the file and line it is about.

Why a list and not the first exception: an admin fixing a dialplan wants every problem at once,
each pointing at its line, before anything reaches Asterisk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    file: str
    line: int
    message: str
    severity: str = "error"  # error | warning

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: {self.message}"


@dataclass
class Problems:
    """Collects problems for one file; positions come from a :class:`~gateway.dialplan.yamlsrc.Doc`."""

    file: str
    items: list[Problem] = field(default_factory=list)

    def add(self, line: int, message: str, severity: str = "error") -> None:
        self.items.append(Problem(self.file, line, message, severity))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "error"]


class ConfigError(Exception):
    """One or more errors in admin files; ``str()`` lists them as ``file:line: error: ...``."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def display_path(path: Path) -> str:
    """Paths relative to the working directory when they are under it (shorter messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
