"""YAML that remembers where every value came from, for line-numbered errors.

PyYAML's composer gives nodes with marks; we build plain Python data from them and keep a map
from each value's path (a tuple of keys and indexes) to its 1-based line. Duplicate mapping keys,
which PyYAML would silently resolve to the last one, are reported: in a dialplan they are nearly
always a copy-paste mistake. Tags beyond the core schema are refused (no object construction).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gateway.dialplan.problems import Problem

PathKey = tuple[str | int, ...]


@dataclass
class Doc:
    file: str
    data: Any
    lines: dict[PathKey, int]  # value positions; (path + ("<key>",)) is the key's own line

    def line(self, path: PathKey) -> int:
        """The line of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), 1)

    def key_line(self, path: PathKey) -> int:
        return self.lines.get(tuple(path) + ("<key>",), self.line(path))


_SCALAR = yaml.SafeLoader.construct_scalar


def load_doc(path: Path, display: str | None = None) -> tuple[Doc | None, list[Problem]]:
    """Parse ``path``; on a syntax error return ``(None, [problem])`` with its line."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem(name, 1, "file not found")]
    except UnicodeDecodeError as exc:
        return None, [Problem(name, 1, f"not UTF-8 text: {exc.reason}")]
    return parse_doc(text, name)


def parse_doc(text: str, name: str) -> tuple[Doc | None, list[Problem]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        return None, [Problem(name, line, f"YAML syntax: {exc.problem or exc.context}")]
    except yaml.YAMLError as exc:
        return None, [Problem(name, 1, f"YAML syntax: {exc}")]
    problems: list[Problem] = []
    lines: dict[PathKey, int] = {}
    if node is None:
        return Doc(name, None, {(): 1}), problems
    loader = yaml.SafeLoader("")
    data = _build(node, (), lines, problems, name, loader)
    return Doc(name, data, lines), problems


def _build(node, path, lines, problems, name, loader) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                problems.append(Problem(name, knode.start_mark.line + 1, "a key must be a plain value"))
                continue
            key = loader.construct_object(knode)
            key = str(key) if not isinstance(key, str) else key
            kline = knode.start_mark.line + 1
            if key in out:
                first = lines.get(path + (key, "<key>"), kline)
                problems.append(Problem(name, kline, f"duplicate key {key!r} (first at line {first})"))
                continue
            lines[path + (key, "<key>")] = kline
            out[key] = _build(vnode, path + (key,), lines, problems, name, loader)
            if not isinstance(vnode, yaml.ScalarNode):
                lines[path + (key,)] = kline  # a block's "line" is its key's, where admins look
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(v, path + (i,), lines, problems, name, loader) for i, v in enumerate(node.value)]
    try:
        return loader.construct_object(node)
    except yaml.MarkedYAMLError as exc:
        problems.append(Problem(name, node.start_mark.line + 1, f"bad value: {exc.problem}"))
        return None
