"""RTP packets (RFC 3550 section 5.1), sans-IO: parse what arrives, build what we send.

Why our own: the IVR terminates the caller's audio itself (ARI external media), and a UDP port
takes whatever anybody sends to it. Every datagram is checked field by field and either becomes
an :class:`RtpPacket` or is rejected with a :class:`RtpError` whose ``reason`` is a short fixed
word, so an endpoint can count rejects per reason and keep going. Nothing here raises anything
else on any input (a property test feeds it random bytes).

Header checks: version 2; room for the 12 fixed bytes, the CSRC list and the header extension
it announces; padding that is at least one byte and no longer than the payload; payload types
72-76 with the marker bit are RTCP sent to the RTP port (RFC 5761 section 4) and are rejected.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER = struct.Struct("!BBHII")
EXT_HEADER = struct.Struct("!HH")
MAX_PACKET = 65_507  # largest UDP payload over IPv4

# The reasons :func:`parse` may give, in the order the checks run.
REASONS = ("short", "version", "rtcp", "csrc", "extension", "padding")


class RtpError(ValueError):
    """A datagram that is not a usable RTP packet; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None  # (profile-defined 16 bits, data: 4-byte words)
    padding: int = 0  # padding bytes to add (build) or that were stripped (parse)

    def build(self) -> bytes:
        """The packet on the wire. Field ranges are checked: a bug here must not go out."""
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"payload type {self.payload_type} is not 0..127")
        if not (0 <= self.sequence <= 0xFFFF and 0 <= self.timestamp <= 0xFFFFFFFF
                and 0 <= self.ssrc <= 0xFFFFFFFF):
            raise ValueError("sequence is 16 bits, timestamp and SSRC 32 bits")
        if len(self.csrc) > 15:
            raise ValueError(f"at most 15 CSRCs, got {len(self.csrc)}")
        if not 0 <= self.padding <= 255:
            raise ValueError(f"padding is 0..255 bytes, got {self.padding}")
        b0 = 0x80 | (0x20 if self.padding else 0) | (0x10 if self.extension else 0) | len(self.csrc)
        b1 = (0x80 if self.marker else 0) | self.payload_type
        out = [HEADER.pack(b0, b1, self.sequence, self.timestamp, self.ssrc)]
        out += [struct.pack("!I", c) for c in self.csrc]
        if self.extension is not None:
            profile, data = self.extension
            if len(data) % 4 or len(data) > 0xFFFF * 4:
                raise ValueError("extension data is a whole number of 4-byte words (< 256 KiB)")
            out.append(EXT_HEADER.pack(profile & 0xFFFF, len(data) // 4) + data)
        out.append(self.payload)
        if self.padding:
            out.append(b"\0" * (self.padding - 1) + bytes([self.padding]))
        return b"".join(out)


def parse(data: bytes | bytearray | memoryview) -> RtpPacket:
    """One datagram -> :class:`RtpPacket`, or :class:`RtpError` saying why not."""
    data = bytes(data)
    n = len(data)
    if n < HEADER.size:
        raise RtpError("short", f"{n} bytes, an RTP header is at least 12")
    b0, b1, seq, ts, ssrc = HEADER.unpack_from(data)
    if b0 >> 6 != 2:
        raise RtpError("version", f"version {b0 >> 6}, expected 2")
    pt = b1 & 0x7F
    if b1 & 0x80 and 72 <= pt <= 76:
        raise RtpError("rtcp", f"RTCP packet type {200 + pt - 72} on the RTP port")
    cc = b0 & 0x0F
    pos = HEADER.size + 4 * cc
    if n < pos:
        raise RtpError("csrc", f"{cc} CSRCs announced, {n - HEADER.size} bytes left for them")
    csrc = struct.unpack_from(f"!{cc}I", data, HEADER.size) if cc else ()
    ext = None
    if b0 & 0x10:
        if n < pos + EXT_HEADER.size:
            raise RtpError("extension", "header extension announced but truncated")
        profile, words = EXT_HEADER.unpack_from(data, pos)
        pos += EXT_HEADER.size
        if n < pos + 4 * words:
            raise RtpError("extension", f"extension of {words} words, {n - pos} bytes left")
        ext = (profile, data[pos:pos + 4 * words])
        pos += 4 * words
    end = n
    pad = 0
    if b0 & 0x20:
        pad = data[-1] if n > pos else 0
        if pad == 0 or pad > n - pos:
            raise RtpError("padding", f"padding count {pad} with {n - pos} bytes after the header")
        end = n - pad
    return RtpPacket(pt, seq, ts, ssrc, data[pos:end], bool(b1 & 0x80), tuple(csrc), ext, pad)
