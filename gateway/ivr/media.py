"""The caller's audio, live, into the gateway: ARI external media (RTP over UDP on loopback).

Why external media with RTP, not chan_websocket or AudioSocket (all three are in Asterisk 22):
RTP carries a sequence number and a timestamp in every packet, so the gateway measures loss and
interarrival jitter per RFC 3550 for the quality reports (:class:`gateway.events.MediaStats`) and
conceals a lost packet with silence of the right length instead of shortening the caller's
speech; UDP has no head-of-line blocking, so one late packet never holds back the rest; G.711
mu-law is what the caller's phone already sends, so nothing is transcoded on the way. AudioSocket
is a TCP stream of bare frames (no sequence, no timing), and chan_websocket is younger than this
Asterisk series' long-term support and needs a websocket server per call in the gateway.

Why the caller is not itself in the bridge (the usual external-media recipe): a prompt played on
a bridged channel suspends that channel in the bridge, so no caller audio reaches the external
media channel while a prompt plays and speech barge-in is impossible. Measured on the sandbox:
0 RTP packets during a 3 s channel playback, 50/s before and after. Instead the bridge holds a
*snoop* on the caller (``spy=in``: only what the caller says, never the prompt, so the prompt
cannot barge in on itself; measured digital silence on a silent caller during the prompt) and
the external media channel. Prompts are plain ARI playbacks on the caller's channel, so
``PlaybackFinished`` and ``DELETE /playbacks/{id}`` work as on any IVR.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from gateway.ari.client import ARIError
from gateway.rtp.endpoint import RtpEndpoint
from gateway.rtp.packet import RtpPacket
from gateway.rtp.stats import Snapshot

log = logging.getLogger(__name__)

FRAME = 160  # 20 ms of 8 kHz G.711
MAX_CONCEAL = 25
STASIS_WAIT_S = 5.0  # a gap longer than 0.5 s is not padded: the stream restarted, not dropped

PcmHandler = Callable[[np.ndarray], None]


class CallMedia:
    """Snoop + external media + mixing bridge + UDP socket for one IVR call."""

    def __init__(self, ari, app: str, caller_id: str, host: str,
                 ports: tuple[int, int] | None, on_pcm: PcmHandler) -> None:
        self.ari = ari
        self.app = app
        self.caller_id = caller_id
        self.host = host
        self.ports = ports
        self.on_pcm = on_pcm
        self.endpoint: RtpEndpoint | None = None
        self.snoop_id = f"ivr-snoop-{uuid.uuid4().hex[:12]}"
        self.external_id = f"ivr-media-{uuid.uuid4().hex[:12]}"
        self.bridge_id = f"ivr-bridge-{uuid.uuid4().hex[:12]}"
        self._made: list[tuple[str, str]] = []  # what to delete, in creation order
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None
        self._decode: Callable[[bytes], np.ndarray] | None = None
        self._in_stasis = {self.snoop_id: asyncio.Event(), self.external_id: asyncio.Event()}

    def entered_stasis(self, channel_id: str) -> None:
        """StasisStart of one of our channels: only then may it join the bridge."""
        ev = self._in_stasis.get(channel_id)
        if ev is not None:
            ev.set()

    @property
    def channel_ids(self) -> set[str]:
        return {self.snoop_id, self.external_id}

    async def start(self) -> None:
        """Everything or an exception (the caller of ``start`` must still call ``stop``)."""
        from speech.audio import ulaw_decode

        self._decode = ulaw_decode
        self.endpoint = await RtpEndpoint.open(self.host, self.ports, on_packet=self._packet)
        host, port = self.endpoint.local_address
        self.started_at = datetime.now(UTC)
        ch = await self.ari.request(
            "POST", "/channels/externalMedia", app=self.app, channelId=self.external_id,
            external_host=f"{host}:{port}", format="ulaw", encapsulation="rtp", transport="udp")
        self._made.append(("channel", self.external_id))
        vars_ = (ch or {}).get("channelvars") or {}
        src_host, src_port = vars_.get("UNICASTRTP_LOCAL_ADDRESS"), vars_.get("UNICASTRTP_LOCAL_PORT")
        if src_host and src_port and str(src_port).isdigit():
            self.endpoint.remote = (src_host, int(src_port))  # take Asterisk's packets only
        await self.ari.request("POST", f"/channels/{self.caller_id}/snoop", spy="in",
                               whisper="none", app=self.app, appArgs="ivr-snoop",
                               snoopId=self.snoop_id)
        self._made.append(("channel", self.snoop_id))
        await self.ari.request("POST", "/bridges", type="mixing", bridgeId=self.bridge_id,
                               name="centralino-ivr")
        self._made.append(("bridge", self.bridge_id))
        try:
            async with asyncio.timeout(STASIS_WAIT_S):
                for ev in self._in_stasis.values():
                    await ev.wait()
        except TimeoutError:
            raise RuntimeError(f"the snoop/external media channels did not enter Stasis within "
                               f"{STASIS_WAIT_S:g} s") from None
        await self.ari.request("POST", f"/bridges/{self.bridge_id}/addChannel",
                               channel=f"{self.snoop_id},{self.external_id}")

    def _packet(self, pkt: RtpPacket, gap: int, arrival: float) -> None:
        if gap:
            silence = np.zeros(FRAME, np.int16)
            for _ in range(min(gap, MAX_CONCEAL)):
                self.on_pcm(silence)
        self.on_pcm(self._decode(pkt.payload))

    async def stop(self) -> Snapshot | None:
        """Delete what was made (each step on its own: one failure must not leak the rest) and
        close the socket; returns the receiver statistics, None if no packet ever came."""
        for kind, ident in reversed(self._made):
            path = f"/bridges/{ident}" if kind == "bridge" else f"/channels/{ident}"
            try:
                await self.ari.request("DELETE", path)
            except ARIError as exc:  # includes "not found": already gone with the caller
                log.debug("IVR media cleanup %s: %s", path, exc)
        self._made.clear()
        if self.endpoint is None:
            return None
        self.endpoint.close()
        self.ended_at = datetime.now(UTC)
        snap = self.endpoint.stats.snapshot()
        rejected = sum(self.endpoint.rejected.values())
        if rejected:
            log.info("IVR media %s: %d datagrams rejected %s", self.caller_id, rejected,
                     dict(self.endpoint.rejected))
        ep, self.endpoint = self.endpoint, None
        return snap if ep.first_at is not None else None
