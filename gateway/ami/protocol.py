"""Sans-IO Asterisk Manager Interface framing: bytes in, typed messages out.

Why sans-IO: the parser is the hot path of the gateway (every channel, queue and RTCP event goes
through it) and must be testable with any byte split, garbage and oversized input without a
socket. The asyncio connector owns the transport; this module owns only the framing.

Wire format. A connection starts with one banner line (``Asterisk Call Manager/x.y.z``); then
frames of ``Key: Value`` lines ended by a blank line. ``\\r\\n`` is the standard, a bare ``\\n`` is
tolerated (and the two may be mixed). Values may contain colons. Bytes that are not UTF-8 are
decoded with U+FFFD replacement, never an exception.

Header keys are kept as Asterisk sent them; ``get()`` looks them up case-insensitively, because
Asterisk itself is inconsistent across events (``Uniqueid`` vs ``UniqueID``). A key that repeats
(``ChanVariable``, ``Output``) keeps every value: in ``headers`` it is then a list, otherwise a
plain string, so the common single value stays cheap; ``get()`` returns the first value and
``get_all()`` every value.

Why events parse their headers lazily: most AMI traffic (VarSet, Newexten, RTCP for calls nobody
watches) is dispatched by name and then ignored, and building a dict of ~25 strings per event is
most of the cost of parsing. The parser still checks every line of every frame up front (a few
C-level scans per read, see ``Parser.feed``), so malformed input is reported here, at once, not
when a consumer happens to look. ``Event.get()`` finds a value in the raw frame without building
the dict; ``Event.headers`` builds it once. Frames are kept with ``\r\n`` line ends, as
Asterisk sends them, so the common read needs no copy; bare ``\n`` input is converted.

Errors. Bad input yields a :class:`ProtocolError` *in the message stream* (never raised) and
parsing continues with the next frame:

- a frame with neither ``Event`` nor ``Response``: error, frame dropped;
- a frame with lines that are not ``Key: Value``: the message is still delivered with its good
  headers (a Hangup with one garbled line must still end its call) and an error follows it;
- a frame over ``max_frame_bytes``: error, bytes discarded up to the next blank line.

Legacy ``Response: Follows`` (``Command`` output before Asterisk 14, ended by
``--END COMMAND--``) puts its raw output lines in ``Response.output``, like the modern
``Output:`` headers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from operator import methodcaller

HeaderValue = str | list[str]

_split_kv = methodcaller("split", ": ", 1)
# A line with ": " twice (a colon in a value); valid only on text without stray \r or \n.
_two_seps = re.compile(r": [^\r]*: ").search
_END_COMMAND = "--END COMMAND--"
_SNIPPET = 200


class ProtocolError(Exception):
    """A frame (or part of one) that could not be understood; the parser has skipped past it."""

    def __init__(self, reason: str, raw: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw[:_SNIPPET]

    def __eq__(self, other: object) -> bool:
        return type(other) is ProtocolError and other.reason == self.reason

    def __hash__(self) -> int:
        return hash(self.reason)


def parse_headers(text: str) -> tuple[dict[str, HeaderValue], list[str]]:
    """``Key: Value`` lines (joined by ``\r\n``) -> headers, plus the lines that were not headers."""
    lines = text.split("\r\n")
    try:
        headers = dict(map(_split_kv, lines))
        if len(headers) == len(lines):
            return headers, []
    except ValueError:
        pass
    headers = {}
    bad: list[str] = []
    for line in lines:
        kv = line.split(": ", 1)
        if len(kv) == 2:
            k, v = kv
        else:  # tolerate "Key:value" and "Key:"; a line without a colon is not a header
            k, sep, v = line.partition(":")
            if not sep:
                bad.append(line)
                continue
        old = headers.get(k)
        if old is None:
            headers[k] = v
        elif type(old) is list:
            old.append(v)
        else:
            headers[k] = [old, v]
    return headers, bad


def _lookup(headers: dict[str, HeaderValue], key: str) -> HeaderValue | None:
    v = headers.get(key)
    if v is None:
        lk = key.lower()
        for k, val in headers.items():
            if k.lower() == lk:
                return val
    return v


class _Headers:
    """``get``/``get_all`` over a ``headers`` mapping (case-insensitive, first value wins)."""

    __slots__ = ()

    def get(self, key: str, default: str | None = None) -> str | None:
        v = _lookup(self.headers, key)  # type: ignore[attr-defined]
        if v is None:
            return default
        return v[0] if type(v) is list else v

    def get_all(self, key: str) -> list[str]:
        v = _lookup(self.headers, key)  # type: ignore[attr-defined]
        if v is None:
            return []
        return list(v) if type(v) is list else [v]


@dataclass(slots=True)
class Event(_Headers):
    """An AMI event: ``name`` and its headers (parsed from ``raw`` on first use).

    ``raw`` is the frame text, lines joined by ``\r\n``. Build events with :class:`Parser` or
    :meth:`from_headers`: a bare ``Event(name, raw)`` trusts ``raw`` to be checked already.
    """

    name: str
    raw: str = field(repr=False)
    _headers: dict[str, HeaderValue] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_headers(cls, headers: dict[str, str]) -> Event:
        """Build an event from a dict (tests, recordings); ``Event`` must be one of the keys."""
        name = headers.get("Event", "")
        lines = [f"Event: {name}"] + [f"{k}: {v}" for k, v in headers.items() if k != "Event"]
        raw = "\r\n".join(lines)
        return cls(name, raw, parse_headers(raw)[0])

    @property
    def headers(self) -> dict[str, HeaderValue]:
        h = self._headers
        if h is None:
            # The parser checked every line holds ": " exactly once, so the frame splits into
            # key, value, key, value... in two C calls. A repeated key needs lists: slow path.
            t = self.raw.replace("\r\n", ": ").split(": ")
            it = iter(t)
            h = dict(zip(it, it))
            if 2 * len(h) != len(t):
                h = parse_headers(self.raw)[0]
            self._headers = h
        return h

    def get(self, key: str, default: str | None = None) -> str | None:
        if self._headers is None:
            raw = self.raw
            probe = key + ": "
            if raw.startswith(probe):
                i = len(probe)
            else:
                i = raw.find("\r\n" + probe)
                if i < 0:
                    # Not there as sent: only build the dict if some spelling of it might be.
                    lowered = raw.lower()
                    lk = key.lower() + ":"
                    if not lowered.startswith(lk) and lowered.find("\r\n" + lk) < 0:
                        return default
                    return _Headers.get(self, key, default)
                i += len(probe) + 2
            j = raw.find("\r\n", i)
            return raw[i:] if j < 0 else raw[i:j]
        return _Headers.get(self, key, default)


@dataclass(slots=True)
class Response(_Headers):
    """The answer to one action; ``output`` holds ``Command`` output lines, ``events`` the list
    events of an action answered with ``EventList: start`` (filled in by the connector)."""

    action_id: str | None
    success: bool
    message: str | None
    headers: dict[str, HeaderValue] = field(repr=False)
    output: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list, repr=False)


@dataclass(slots=True)
class Banner:
    version: str


Parsed = Event | Response | Banner | ProtocolError


def _first(v: HeaderValue | None) -> str | None:
    return v[0] if type(v) is list else v


def _bad_lines_error(what: str, bad: list[str], frame: str) -> ProtocolError:
    return ProtocolError(f"{what}: {len(bad)} line(s) not 'Key: Value', first {bad[0][:80]!r}", frame)


def _parse_response(frame: str) -> list[Parsed]:
    if frame.startswith("Response: Follows\r\n") or frame.lower().startswith("response: follows\r\n"):
        return [_parse_follows(frame)]
    headers, bad = parse_headers(frame)
    status = _first(_lookup(headers, "Response")) or ""
    out = _lookup(headers, "Output")
    resp = Response(
        action_id=_first(_lookup(headers, "ActionID")),
        success=status.lower() in ("success", "follows", "goodbye"),
        message=_first(_lookup(headers, "Message")),
        headers=headers,
        output=[] if out is None else ([out] if type(out) is str else list(out)),
    )
    if bad:
        return [resp, _bad_lines_error(f"Response {status}", bad, frame)]
    return [resp]


def _parse_follows(frame: str) -> Response:
    """Legacy command output: headers first, then free text up to ``--END COMMAND--``."""
    lines = frame.split("\r\n")
    headers: dict[str, HeaderValue] = {}
    i = 0
    for i, line in enumerate(lines):
        k, sep, v = line.partition(": ")
        if not sep or k not in ("Response", "Privilege", "ActionID", "Message"):
            break
        headers[k] = v
    else:
        i = len(lines)
    output = [line for line in lines[i:] if line != _END_COMMAND]
    if output and output[-1].endswith(_END_COMMAND):
        output[-1] = output[-1][: -len(_END_COMMAND)]
    return Response(action_id=_first(headers.get("ActionID")), success=True,
                    message=_first(headers.get("Message")), headers=headers, output=output)


def _parse_frame(frame: str) -> list[Parsed]:
    """Any one frame (``\r\n`` line ends), exactly checked: the path off the fast one."""
    if frame.startswith("Response: "):
        return _parse_response(frame)
    headers, bad = parse_headers(frame)
    name = _first(_lookup(headers, "Event"))
    if name is not None:
        ev = Event(name, frame, headers)
        return [ev, _bad_lines_error(f"Event {name}", bad, frame)] if bad else [ev]
    if _lookup(headers, "Response") is not None:
        return _parse_response(frame)
    return [ProtocolError("frame has neither Event nor Response", frame)]


class Parser:
    """Feed raw bytes with :meth:`feed`; it returns every complete message (and error) so far.

    One parser per connection: the banner is expected (not required) on its first line.
    """

    def __init__(self, max_frame_bytes: int = 1 << 20) -> None:
        self._buf = b""
        self._max = max_frame_bytes
        self._banner_pending = True
        self._skipping = False  # inside an oversized frame: drop up to its blank line
        self._follows: str | None = None  # legacy command output waiting for --END COMMAND--

    def feed(self, data: bytes) -> list[Parsed]:
        buf = self._buf + data if self._buf else data
        out: list[Parsed] = []
        if self._banner_pending:
            buf = self._banner(buf, out)
            if self._banner_pending:
                self._buf = buf
                return out
        cut = buf.rfind(b"\r\n\r\n")
        if cut >= 0 and not self._skipping and self._follows is None and cut <= self._max:
            # Fast path, the usual read from Asterisk. A few C-level scans prove every frame
            # well-formed: no stray \r or \n; the lines holding ": " are exactly the lines that
            # are not blank separators; no line holds it twice (so each holds it once).
            done = buf[:cut]
            crlf = done.count(b"\r\n")
            if crlf == done.count(b"\n") == done.count(b"\r"):
                text = done.decode("utf-8", "replace")
                frames = text.split("\r\n\r\n")
                if text.count(": ") == crlf - len(frames) + 2 and _two_seps(text) is None:
                    self._buf = self._hold(buf[cut + 4:], out)
                    for frame in frames:
                        if frame.startswith("Event: ") and self._follows is None:
                            nl = frame.find("\r\n")
                            out.append(Event(frame[7:] if nl < 0 else frame[7:nl], frame))
                        else:
                            self._frame(frame, out)
                    return out
        return self._feed_general(buf, out)

    def _feed_general(self, buf: bytes, out: list[Parsed]) -> list[Parsed]:
        """Bare ``\n`` line ends, garbage, oversized or legacy frames: normalise, check each."""
        keep = b""
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
            if buf[-1:] == b"\r":  # "\r" | "\n" split across reads
                buf, keep = buf[:-1], b"\r"
        cut = buf.rfind(b"\n\n")
        if cut < 0:
            self._buf = self._hold(buf.replace(b"\n", b"\r\n"), out) + keep
            return out
        done, rest = buf[:cut], buf[cut + 2:]
        self._buf = self._hold(rest.replace(b"\n", b"\r\n"), out) + keep
        if self._skipping or len(done) > self._max:
            frames = self._drop_oversized(done, out)
        else:
            frames = done.decode("utf-8", "replace").split("\n\n")
        for frame in frames:
            if frame:
                self._frame(frame.strip("\n").replace("\n", "\r\n"), out)
        return out

    def _frame(self, frame: str, out: list[Parsed]) -> None:
        if not frame:
            return
        if self._follows is not None or frame.startswith("Response: Follows\r\n"):
            frame = self._join_follows(frame, out)
            if frame is None:
                return
        out.extend(_parse_frame(frame))

    def _banner(self, buf: bytes, out: list[Parsed]) -> bytes:
        nl = buf.find(b"\n")
        if nl < 0:
            if len(buf) > 256 or not b"Asterisk Call Manager/".startswith(buf[:22]):
                self._banner_pending = False  # no banner on this stream
            return buf
        self._banner_pending = False
        first = buf[:nl].rstrip(b"\r")
        if first.startswith(b"Asterisk Call Manager/"):
            out.append(Banner(first[22:].decode("utf-8", "replace")))
            return buf[nl + 1:]
        return buf

    def _hold(self, rest: bytes, out: list[Parsed]) -> bytes:
        """Keep an unfinished frame, unless it is already too big: then drop it and skip on."""
        if len(rest) <= self._max:
            return rest
        if not self._skipping:
            out.append(ProtocolError(f"frame exceeds {self._max} bytes before its end; dropped",
                                     rest[:_SNIPPET].decode("utf-8", "replace")))
            self._skipping = True
        return rest[-3:]  # may be the start of the blank line that ends it

    def _drop_oversized(self, done: bytes, out: list[Parsed]) -> list[str]:
        frames = done.split(b"\n\n")
        if self._skipping:  # the first piece is the tail of a frame already reported
            frames = frames[1:]
            self._skipping = False
        kept = []
        for f in frames:
            if len(f) > self._max:
                out.append(ProtocolError(f"frame of {len(f)} bytes exceeds {self._max}; dropped",
                                         f[:_SNIPPET].decode("utf-8", "replace")))
            else:
                kept.append(f.decode("utf-8", "replace"))
        return kept

    def _join_follows(self, frame: str, out: list[Parsed]) -> str | None:
        """Legacy output may hold blank lines: glue frames until ``--END COMMAND--``.

        A frame that starts like a new message ends the output even without the marker, so a
        missing marker cannot swallow the events after it.
        """
        pending, self._follows = self._follows, None
        if pending is not None:
            if not frame.startswith(("Event: ", "Response: ")):
                frame = pending + "\r\n\r\n" + frame
            else:
                out.append(_parse_follows(pending))
                if not frame.startswith("Response: Follows\r\n"):
                    return frame
        if _END_COMMAND in frame:
            return frame
        if len(frame) > self._max:
            out.append(ProtocolError(f"command output exceeds {self._max} bytes; dropped", frame))
            return None
        self._follows = frame
        return None


def encode_action(action: str, action_id: str, **fields: object) -> bytes:
    """Serialise one action. Values that are lists repeat their key (e.g. ``Variable``).

    A line break in a key or value would let a caller inject a second action: refused.
    """
    lines = [f"Action: {action}", f"ActionID: {action_id}"]
    for k, v in fields.items():
        for item in v if isinstance(v, (list, tuple)) else (v,):
            lines.append(f"{k}: {item}")
    text = "\r\n".join(lines)
    if text.count("\n") != len(lines) - 1 or text.count("\r") != len(lines) - 1:
        raise ValueError(f"AMI action {action!r}: a key or value contains a line break")
    return (text + "\r\n\r\n").encode("utf-8")
