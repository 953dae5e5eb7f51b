"""An asyncio UDP endpoint that receives one RTP stream (and can send one back).

Why one socket per stream: the kernel then demultiplexes calls by port, one call's flood or
garbage cannot delay another's packets, a socket closed with its call cannot leak audio into the
next one, and there is no table of SSRCs to keep in step with Asterisk. The cost, one port per
live IVR call, is what every RTP stack pays; ports come from a configured range (or the kernel).

Only packets from one source are taken: the address Asterisk said it sends from, when known,
else the first valid packet's address (latching, as Asterisk's own ``strictrtp`` does). Anything
else is rejected and counted per reason (:data:`gateway.rtp.packet.REASONS` plus ``source`` and
``payload_type``), never raised: this code runs inside the event loop's datagram callback.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable

from gateway.rtp.packet import RtpError, RtpPacket, parse
from gateway.rtp.stats import ACCEPT, RESTART, ReceiverStats

log = logging.getLogger(__name__)

# packet, number of packets missing right before it (0 when in sequence), arrival (monotonic s)
PacketHandler = Callable[[RtpPacket, int, float], None]


class RtpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, on_packet: PacketHandler | None = None, *, clock_rate: int = 8000,
                 payload_types: frozenset[int] | None = frozenset({0}),
                 remote: tuple[str, int] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.on_packet = on_packet
        self.payload_types = payload_types
        self.remote = remote
        self.stats = ReceiverStats(clock_rate)
        self.rejected: Counter[str] = Counter()
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self._clock = clock
        self._handler_failed = False
        self._out_seq = random.randrange(1 << 16)
        self._out_ts = random.randrange(1 << 32)
        self._out_ssrc = random.randrange(1, 1 << 32)

    @classmethod
    async def open(cls, host: str, ports: tuple[int, int] | None = None,
                   **kwargs) -> RtpEndpoint:
        """Bind on ``host``: a free port of ``ports`` (inclusive, tried from a random point) or
        any port the kernel picks. ``OSError`` when the whole range is taken."""
        loop = asyncio.get_running_loop()
        if ports is None:
            candidates = [0]
        else:
            lo, hi = ports
            span = list(range(lo, hi + 1))
            start = random.randrange(len(span))
            candidates = span[start:] + span[:start]
        last: OSError | None = None
        for port in candidates:
            try:
                _, proto = await loop.create_datagram_endpoint(
                    lambda: cls(**kwargs), local_addr=(host, port))
                return proto
            except OSError as exc:
                last = exc
        raise OSError(f"no free UDP port for RTP on {host} in {ports[0]}..{ports[1]}: {last}"
                      if ports else f"cannot bind RTP on {host}: {last}")

    # -- asyncio protocol ---------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def error_received(self, exc) -> None:
        self.rejected["socket_error"] += 1  # e.g. ICMP port unreachable after our send

    def datagram_received(self, data: bytes, addr) -> None:
        now = self._clock()
        if self.remote is not None and (addr[0], addr[1]) != self.remote:
            self.rejected["source"] += 1
            return
        try:
            pkt = parse(data)
        except RtpError as exc:
            self.rejected[exc.reason] += 1
            return
        if self.payload_types is not None and pkt.payload_type not in self.payload_types:
            self.rejected["payload_type"] += 1
            return
        if self.remote is None:
            self.remote = (addr[0], addr[1])
        before = self.stats.extended_max
        fresh = self.stats.ssrc != pkt.ssrc
        verdict = self.stats.update(pkt.ssrc, pkt.sequence, pkt.timestamp, now)
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        if verdict not in (ACCEPT, RESTART) and not (fresh and verdict == "probation"):
            return
        gap = 0
        if verdict == ACCEPT and not fresh:
            gap = max(0, self.stats.extended_max - before - 1)
        if self.on_packet is not None and not self._handler_failed:
            try:
                self.on_packet(pkt, gap, now)
            except Exception:
                # One bad handler must not kill the loop's datagram callback; said once.
                self._handler_failed = True
                log.exception("RTP packet handler failed; later packets are only counted")

    # -- sending --------------------------------------------------------------------------------
    @property
    def local_address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def send(self, payload: bytes, payload_type: int = 0, samples: int | None = None,
             marker: bool = False) -> None:
        """Send one packet to the latched remote; timestamps advance by ``samples``
        (default: one sample per payload byte, right for G.711)."""
        if self.transport is None or self.remote is None or self.transport.is_closing():
            return
        pkt = RtpPacket(payload_type, self._out_seq, self._out_ts, self._out_ssrc, payload, marker)
        self.transport.sendto(pkt.build(), self.remote)
        self._out_seq = (self._out_seq + 1) % (1 << 16)
        self._out_ts = (self._out_ts + (len(payload) if samples is None else samples)) % (1 << 32)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        elif self.transport is None and not self.closed.done():
            self.closed.set_result(None)
