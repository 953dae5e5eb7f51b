"""Sans-IO Asterisk Manager Interface framing: bytes in, typed messages out.

Why sans-IO: the parser is the hot path of the gateway (every channel, queue and RTCP event goes
through it) and must be testable with any byte split, garbage and oversized input without a
socket. The asyncio connector owns the transport; this module owns only the framing.

Frames are ``Key: Value`` lines ended by a blank line. ``\\r\\n`` is the standard, a bare ``\\n``
is tolerated. Keys keep the case Asterisk sent; :meth:`Message.get` looks up case-insensitively.
A key that repeats (``ChanVariable``, ``Output``) keeps every value: ``headers[key]`` is then a
list, otherwise a plain string (the common case stays cheap).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

HeaderValue = Union[str, list[str]]


class ProtocolError(Exception):
    """A frame that could not be understood; the parser has already skipped past it."""


@dataclass(slots=True)
class Message:
    headers: dict[str, HeaderValue]

    def get(self, key: str, default: str | None = None) -> str | None:
        v = self.headers.get(key)
        if v is None:
            lk = key.lower()
            for k, val in self.headers.items():
                if k.lower() == lk:
                    v = val
                    break
            else:
                return default
        return v[-1] if isinstance(v, list) else v

    def get_all(self, key: str) -> list[str]:
        v = self.headers.get(key)
        if v is None:
            return []
        return list(v) if isinstance(v, list) else [v]


@dataclass(slots=True)
class Event(Message):
    name: str = ""


@dataclass(slots=True)
class Response(Message):
    action_id: str | None = None
    success: bool = False
    message: str | None = None
    output: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Banner:
    version: str


Parsed = Union[Event, Response, Banner, ProtocolError]


def _build(headers: dict[str, HeaderValue]) -> Event | Response | ProtocolError:
    ev = headers.get("Event")
    if ev is not None:
        return Event(headers=headers, name=ev if isinstance(ev, str) else ev[0])
    resp = headers.get("Response")
    if resp is not None:
        resp = resp if isinstance(resp, str) else resp[0]
        aid = headers.get("ActionID")
        msg = headers.get("Message")
        out = headers.get("Output")
        return Response(
            headers=headers,
            action_id=aid if isinstance(aid, str) or aid is None else aid[-1],
            success=resp in ("Success", "Follows", "Goodbye"),
            message=msg if isinstance(msg, str) or msg is None else msg[-1],
            output=[] if out is None else ([out] if isinstance(out, str) else out),
        )
    return ProtocolError(f"frame has neither Event nor Response: {sorted(headers)[:5]}")


class Parser:
    """Feed raw bytes with :meth:`feed`; it returns every complete message (and errors) so far."""

    def __init__(self, max_frame_bytes: int = 1 << 20) -> None:
        self._buf = b""
        self._max = max_frame_bytes
        self._banner_seen = False
        self._skipping = False  # inside an oversized frame: drop until its blank line

    def feed(self, data: bytes) -> list[Parsed]:
        out: list[Parsed] = []
        buf = self._buf + data
        if not self._banner_seen:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) > 256 and not buf.startswith(b"Asterisk Call Manager"):
                    self._banner_seen = True
                else:
                    self._buf = buf
                    return out
            else:
                first = buf[:nl].rstrip(b"\r")
                if first.startswith(b"Asterisk Call Manager/"):
                    out.append(Banner(first.split(b"/", 1)[1].decode("ascii", "replace")))
                    buf = buf[nl + 1:]
                self._banner_seen = True
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
            if buf.endswith(b"\r"):  # a split "\r|\n": keep the \r for the next read
                keep, buf = b"\r", buf[:-1]
            else:
                keep = b""
        else:
            keep = b""
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            frame = buf[start:end]
            start = end + 2
            if self._skipping:
                self._skipping = False
                continue
            if not frame.strip(b"\n"):
                continue
            if len(frame) > self._max:
                out.append(ProtocolError(f"frame of {len(frame)} bytes exceeds {self._max}; dropped"))
                continue
            out.append(self._parse_frame(frame.lstrip(b"\n")))
        rest = buf[start:]
        if len(rest) > self._max:
            out.append(ProtocolError(f"frame exceeds {self._max} bytes before its end; dropped"))
            self._skipping = True
            nl = rest.rfind(b"\n")
            rest = rest[nl:] if nl >= 0 and len(rest) - nl <= self._max else b""
        self._buf = rest + keep
        return out

    @staticmethod
    def _parse_frame(frame: bytes) -> Event | Response | ProtocolError:
        try:
            text = frame.decode("utf-8")
        except UnicodeDecodeError:
            text = frame.decode("utf-8", "replace")
        lines = text.split("\n")
        try:  # fast path: every line is "Key: Value" and no key repeats
            fast = dict([line.split(": ", 1) for line in lines])
        except ValueError:
            fast = None
        if fast is not None and len(fast) == len(lines):
            return _build(fast)
        headers: dict[str, HeaderValue] = {}
        bad = 0
        for line in lines:
            k, sep, v = line.partition(":")
            if not sep or not k:
                bad += 1
                if line.strip():
                    headers.setdefault("Output", [])
                    out = headers["Output"]
                    if isinstance(out, str):
                        headers["Output"] = out = [out]
                    out.append(line)  # Response: Follows command output lines
                continue
            v = v.removeprefix(" ")
            old = headers.get(k)
            if old is None:
                headers[k] = v
            elif isinstance(old, list):
                old.append(v)
            else:
                headers[k] = [old, v]
        return _build(headers)


def encode_action(action: str, action_id: str, **fields: object) -> bytes:
    """Serialise one action. Values that are lists repeat their key (e.g. ``Variable``)."""
    lines = [f"Action: {action}", f"ActionID: {action_id}"]
    for k, v in fields.items():
        for item in v if isinstance(v, (list, tuple)) else (v,):
            s = str(item)
            if "\r" in s or "\n" in s:
                raise ValueError(f"AMI header {k!r} must not contain a line break")
            lines.append(f"{k}: {s}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
