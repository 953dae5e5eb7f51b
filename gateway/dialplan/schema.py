"""Turn pydantic validation errors into line-numbered problems.

Why pydantic: one typed description of each admin file gives defaults, types and ranges for free;
its error locations are paths into the document, which :class:`~gateway.dialplan.yamlsrc.Doc`
maps back to lines.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.dialplan.problems import Problems
from gateway.dialplan.yamlsrc import Doc

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Admin-file models refuse unknown keys: a misspelt option must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def validate_model(model: type[M], doc: Doc, problems: Problems) -> M | None:
    try:
        return model.model_validate(doc.data if doc.data is not None else {})
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            problems.add(_line_of(doc, loc, err["type"]), _message(loc, err))
        return None


def _line_of(doc: Doc, loc: tuple[Any, ...], kind: str) -> int:
    if kind == "extra_forbidden":
        return doc.key_line(loc)
    return doc.line(loc)


def _message(loc: tuple[Any, ...], err: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in loc) or "(file)"
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"unknown option {where!r}"
    if kind == "missing":
        return f"{where}: required, missing"
    msg = err["msg"]
    msg = msg.removeprefix("Value error, ")
    return f"{where}: {msg}"
