"""Scriptable SIP phones (pjsua2) for test callers, load callers and agents' headsets.

``PhoneHost`` (asyncio) starts one phone-host process (``python -m gateway.sip.host``) holding
several SIP accounts; the wire format between them is :mod:`gateway.sip.wire`, the typed events
and statistics :mod:`gateway.sip.model`. Importing this package does not import pjsua2: only the
host process needs it.
"""

from gateway.sip.client import (
    Call,
    CallEnded,
    CommandError,
    PhoneError,
    PhoneHost,
    PhoneHostDied,
    PhoneTimeout,
    Playback,
    RegistrationError,
)
from gateway.sip.model import (
    CallState,
    CallStateChanged,
    DtmfReceived,
    IncomingCall,
    MediaStateChanged,
    MediaStatus,
    PhoneEvent,
    PlaybackFinished,
    Recording,
    RegState,
    StreamStats,
    TransferStatus,
)

__all__ = [
    "Call", "CallEnded", "CallState", "CallStateChanged", "CommandError", "DtmfReceived",
    "IncomingCall", "MediaStateChanged", "MediaStatus", "PhoneError", "PhoneEvent", "PhoneHost",
    "PhoneHostDied", "PhoneTimeout", "Playback", "PlaybackFinished", "Recording", "RegState",
    "RegistrationError", "StreamStats", "TransferStatus",
]
