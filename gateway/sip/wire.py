"""The phone host's wire format: one JSON object per line on its stdin and stdout.

Why JSON lines over pipes: pjsua2 must own a process and a single thread, so the asyncio side
talks to it through stdin/stdout; a line protocol is easy to log, replay and fuzz, and a broken
line can be reported with its number and never desynchronises the stream.

Three kinds of message::

    client -> host   {"id": 7, "cmd": "call", "args": {"account": "caller1", "number": "6001"}}
    host -> client   {"id": 7, "ok": true, "result": {"call": "c3"}}
                     {"id": 7, "ok": false, "error": "no account 'caller9'", "kind": "not_found"}
    host -> client   {"event": "call_state", "data": {"call": "c3", "state": "confirmed", ...}}

``id`` is a non-negative integer chosen by the client; every command gets exactly one reply with
its id. Events are unsolicited and carry no id. This module knows only the framing, never the
meaning of a command or an event (that is :mod:`gateway.sip.model` and the host).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAX_LINE = 1 << 20  # a longer line is a bug or garbage, not a message


class WireError(ValueError):
    """A line that is not a valid message; says which line and why."""

    def __init__(self, reason: str, *, line: int | None = None, text: str | bytes = "",
                 id: int | None = None) -> None:
        self.reason = reason
        self.line = line
        self.id = id  # the command id when it could be read, so the sender can still be answered
        snippet = text if isinstance(text, str) else text.decode("utf-8", "replace")
        snippet = snippet.strip()
        if len(snippet) > 80:
            snippet = snippet[:77] + "..."
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}{reason}" + (f" in {snippet!r}" if snippet else ""))


@dataclass(frozen=True, slots=True)
class Command:
    id: int
    cmd: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reply:
    id: int
    ok: bool
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    kind: str = ""  # a short machine-readable error class, e.g. "not_found", "pjsua", "bad_args"


@dataclass(frozen=True, slots=True)
class EventMessage:
    event: str
    data: dict[str, Any] = field(default_factory=dict)


Message = Command | Reply | EventMessage


def encode(msg: Message) -> bytes:
    """One line, UTF-8, newline-terminated (JSON escapes any newline inside strings)."""
    if isinstance(msg, Command):
        obj: dict[str, Any] = {"id": msg.id, "cmd": msg.cmd, "args": msg.args}
    elif isinstance(msg, Reply):
        obj = {"id": msg.id, "ok": msg.ok}
        if msg.ok:
            obj["result"] = msg.result
        else:
            obj["error"] = msg.error
            obj["kind"] = msg.kind
    elif isinstance(msg, EventMessage):
        obj = {"event": msg.event, "data": msg.data}
    else:
        raise TypeError(f"not a wire message: {msg!r}")
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def _object(line: str | bytes, lineno: int | None) -> dict[str, Any]:
    if len(line) > MAX_LINE:
        raise WireError(f"line longer than {MAX_LINE} bytes", line=lineno, text=line[:80])
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WireError(f"not JSON ({exc})", line=lineno, text=line) from None
    if not isinstance(obj, dict):
        raise WireError(f"expected a JSON object, got {type(obj).__name__}", line=lineno, text=line)
    return obj


def _id(obj: dict[str, Any], line: str | bytes, lineno: int | None) -> int:
    if "id" not in obj:
        raise WireError("missing 'id'", line=lineno, text=line)
    mid = obj["id"]
    if isinstance(mid, bool) or not isinstance(mid, int) or mid < 0:
        raise WireError(f"'id' must be a non-negative integer, got {mid!r}", line=lineno, text=line)
    return mid


def _dict(obj: dict[str, Any], key: str, line: str | bytes, lineno: int | None,
          mid: int | None = None) -> dict[str, Any]:
    value = obj.get(key, {})
    if not isinstance(value, dict):
        raise WireError(f"'{key}' must be an object, got {type(value).__name__}",
                        line=lineno, text=line, id=mid)
    return value


def _name(obj: dict[str, Any], key: str, line: str | bytes, lineno: int | None,
          mid: int | None = None) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise WireError(f"'{key}' must be a non-empty string, got {value!r}",
                        line=lineno, text=line, id=mid)
    return value


def decode_command(line: str | bytes, lineno: int | None = None) -> Command:
    """What the host reads. A bad line raises :class:`WireError` (with ``id`` when readable)."""
    obj = _object(line, lineno)
    mid = _id(obj, line, lineno)
    return Command(mid, _name(obj, "cmd", line, lineno, mid), _dict(obj, "args", line, lineno, mid))


def decode_host_message(line: str | bytes, lineno: int | None = None) -> Reply | EventMessage:
    """What the client reads: a reply (has ``id``) or an event (has ``event``)."""
    obj = _object(line, lineno)
    if "event" in obj:
        return EventMessage(_name(obj, "event", line, lineno), _dict(obj, "data", line, lineno))
    if "id" not in obj:
        raise WireError("neither a reply (no 'id') nor an event (no 'event')", line=lineno, text=line)
    mid = _id(obj, line, lineno)
    ok = obj.get("ok")
    if not isinstance(ok, bool):
        raise WireError(f"'ok' must be true or false, got {ok!r}", line=lineno, text=line, id=mid)
    if ok:
        return Reply(mid, True, result=_dict(obj, "result", line, lineno, mid))
    error = obj.get("error")
    if not isinstance(error, str):
        raise WireError("a failed reply needs an 'error' string", line=lineno, text=line, id=mid)
    kind = obj.get("kind", "")
    return Reply(mid, False, error=error, kind=kind if isinstance(kind, str) else "")


class LineSplitter:
    """Bytes in, complete lines out, counting lines so errors can name them.

    Why: the host reads its stdin with non-blocking ``os.read`` (it must keep polling pjsua), so
    a message may arrive in pieces; an over-long partial line is dropped and reported instead of
    growing without bound.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buf = bytearray()
        self._max = max_line
        self.lineno = 0
        self._skipping = False

    def feed(self, data: bytes) -> list[tuple[int, bytes] | WireError]:
        out: list[tuple[int, bytes] | WireError] = []
        self._buf += data
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > self._max and not self._skipping:
                    self.lineno += 1
                    out.append(WireError(f"line longer than {self._max} bytes, dropped",
                                         line=self.lineno, text=bytes(self._buf[:80])))
                    self._skipping = True
                if self._skipping:
                    self._buf.clear()
                return out
            raw = bytes(self._buf[:nl])
            del self._buf[:nl + 1]
            if self._skipping:  # the tail of an over-long line already reported
                self._skipping = False
                continue
            self.lineno += 1
            if raw.strip():
                out.append((self.lineno, raw))

    @property
    def pending(self) -> int:
        return len(self._buf)
