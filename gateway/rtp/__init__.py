"""RTP for the media the gateway terminates itself (the IVR's ARI external media).

:mod:`~gateway.rtp.packet` parses and builds packets (sans-IO), :mod:`~gateway.rtp.stats`
keeps RFC 3550 receiver statistics, :mod:`~gateway.rtp.endpoint` is the asyncio UDP socket.
G.711 itself lives in :mod:`speech.audio`.
"""

from gateway.rtp.endpoint import RtpEndpoint
from gateway.rtp.packet import REASONS, RtpError, RtpPacket, parse
from gateway.rtp.stats import ReceiverStats, Snapshot

__all__ = ["REASONS", "ReceiverStats", "RtpEndpoint", "RtpError", "RtpPacket", "Snapshot",
           "parse"]
