"""Voice quality of each call leg from what Asterisk reports over AMI: pure, no I/O.

Why two sources. ``RTCPSent`` / ``RTCPReceived`` events arrive every RTCP interval during the
call: they give the time series (jitter per report, loss per interval, RTT) from which min, avg
and max and the burstiness of loss are computed. The hangup handler of the dialplan's
``; --- quality ---`` block reads ``CHANNEL(rtcp,all_jitter|all_loss|all_rtt|all)`` just before
a PJSIP channel goes and reports it as ``UserEvent: CentralinoRTCP``: Asterisk's own totals for
the whole call (packets, lost), which survive a missed RTCP report. A Local channel has no RTP,
so only PJSIP legs are measured.

Directions, as seen from Asterisk on one leg (the phone at the far end of that leg):

* ``in``: the phone's RTP as Asterisk receives it. Asterisk's receiver reports about it go out
  in ``RTCPSent`` (``Report0*``), its totals are ``lp`` (lost) and ``rxcount`` in ``all``.
* ``out``: Asterisk's RTP as the phone receives it. The phone's receiver reports come in as
  ``RTCPReceived`` (with Asterisk's ``RTT``), its totals are ``rlp`` and ``txcount``.

When Asterisk bridges two legs without transcoding it relays the RTP sequence numbers, so the
gaps of the far leg's ``in`` hop reach this phone too: ``out`` loss is what this listener heard
end to end, ``in`` loss is this one network hop (which is how a bad hop is found). For ``out``
the phone's own interval figures (lost / expected in its sequence space) are used: the handler's
``rlp / txcount`` mixes the two bases (``rlp`` counts relayed gaps, ``txcount`` does not).

Units: ``Report0IAJitter`` is in RTP timestamp units (converted with the codec's RTP clock rate,
8000 for G.711, G.722 (RFC 3551's historical quirk), GSM, iLBC, G.729; 48000 for Opus);
``Report0FractionLost`` is the 8-bit fraction of RFC 3550; ``RTT`` and the ``CHANNEL(rtcp,...)``
figures are seconds.

Each leg gets an E-model rating per direction (:mod:`gateway.quality.emodel`); the leg's figures
are those of its worse direction, because that is what one of the two people heard.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.quality import emodel

CLOCK_RATES = {"opus": 48000}  # everything else we rate has an 8000 Hz RTP clock
EXT_SEQ = 1 << 16
_KV = re.compile(r"\s*([A-Za-z_]+)\s*=\s*([-+0-9.eE]+)\s*")


def clock_rate(codec: str | None) -> int:
    if not codec:
        return 8000
    return CLOCK_RATES.get(codec.strip("() ").lower(), 8000)


def parse_kv(text: str | None) -> dict[str, float]:
    """``"minrxjitter=000.000000;  maxrxjitter=..."`` -> ``{"minrxjitter": 0.0, ...}``.

    Unparseable pieces are skipped: one odd field must not lose the others.
    """
    out: dict[str, float] = {}
    for part in (text or "").split(";"):
        m = _KV.fullmatch(part)
        if m:
            try:
                out[m.group(1).lower()] = float(m.group(2))
            except ValueError:
                continue
    return out


def _int(v: str | None, default: int | None = None) -> int | None:
    if v is None:
        return default
    try:
        return int(v.strip(), 0) if v.strip().lower().startswith("0x") else int(float(v))
    except ValueError:
        return default


def _float(v: str | None) -> float | None:
    try:
        return float(v) if v is not None else None
    except ValueError:
        return None


@dataclass
class Direction:
    """Receiver reports about one RTP stream of one leg."""

    jitter_ts: list[int] = field(default_factory=list)  # timestamp units, one per report
    fractions: list[float] = field(default_factory=list)  # 0..1, per report
    intervals: list[tuple[int, int]] = field(default_factory=list)  # (expected, lost)
    cumulative_lost: int = 0
    _ssrc: str | None = None
    _last: tuple[int, int] | None = None  # (extended highest seq, cumulative lost)

    def add(self, get) -> None:
        ssrc = get("Report0SourceSSRC")
        seq = _int(get("Report0HighestSequence"), 0) or 0
        cycles = _int(get("Report0SequenceNumberCycles"), 0) or 0
        if not _int(ssrc, 0) or (seq == 0 and cycles == 0):
            return  # an empty report from before any media arrived
        ext = cycles * EXT_SEQ + seq
        lost = _int(get("Report0CumulativeLost"), 0) or 0
        if ssrc != self._ssrc:  # a new stream (re-INVITE, new SSRC): deltas restart
            self._ssrc, self._last = ssrc, None
        if self._last is not None:
            expected = ext - self._last[0]
            if expected > 0:
                self.intervals.append((expected, min(expected, max(0, lost - self._last[1]))))
        self._last = (ext, lost)
        self.cumulative_lost = max(self.cumulative_lost, lost)
        jit = _int(get("Report0IAJitter"))
        if jit is not None and jit >= 0:
            self.jitter_ts.append(jit)
        frac = _int(get("Report0FractionLost"))
        if frac is not None and 0 <= frac <= 255:
            self.fractions.append(frac / 256)

    @property
    def reports(self) -> int:
        return len(self.jitter_ts)


@dataclass
class LegStats:
    uniqueid: str
    linkedid: str | None
    channel: str
    inbound: Direction = field(default_factory=Direction)
    outbound: Direction = field(default_factory=Direction)
    rtt_s: list[float] = field(default_factory=list)
    mes: list[float] = field(default_factory=list)
    sent_packets: int | None = None  # by Asterisk (its sender reports)
    peer_sent_packets: int | None = None  # by the phone (its sender reports)
    codec: str | None = None
    summary: dict[str, dict[str, float]] | None = None  # from the hangup handler
    touched: float = field(default_factory=time.monotonic)


class RtcpCollector:
    """Feed it AMI events; take a leg's figures out with :meth:`pop` once the call is saved."""

    def __init__(self) -> None:
        self.legs: dict[str, LegStats] = {}

    def handle(self, event: Any) -> bool:
        """One AMI event (``.name`` + ``.get``, or a dict with ``Event``); True if it was ours."""
        if isinstance(event, Mapping):
            name, get = event.get("Event", ""), event.get
        else:
            name, get = event.name, event.get
        if name == "RTCPSent":
            leg = self._leg(get)
            if leg is None:
                return False
            leg.inbound.add(get)
            leg.sent_packets = _int(get("SentPackets"), leg.sent_packets)
            self._mes(leg, get)
            return True
        if name == "RTCPReceived":
            leg = self._leg(get)
            if leg is None:
                return False
            leg.outbound.add(get)
            leg.peer_sent_packets = _int(get("SentPackets"), leg.peer_sent_packets)
            rtt = _float(get("RTT"))
            # Asterisk prints RTT 0 when the report had no LSR to compute it from.
            if rtt is not None and rtt > 0 and get("Report0LSR") not in (None, "0"):
                leg.rtt_s.append(rtt)
            self._mes(leg, get)
            return True
        if name == "UserEvent" and get("UserEvent") == "CentralinoRTCP":
            leg = self._leg(get)
            if leg is None:
                return False
            leg.codec = (get("Codec") or "").strip("() ") or leg.codec
            leg.summary = {k: parse_kv(get(h)) for k, h in
                           (("jitter", "Jitter"), ("loss", "Loss"), ("rtt", "RTT"), ("all", "All"))}
            return True
        return False

    def _leg(self, get) -> LegStats | None:
        uid, chan = get("Uniqueid"), get("Channel") or ""
        if not uid or not chan.upper().startswith("PJSIP/"):
            return None
        leg = self.legs.get(uid)
        if leg is None:
            leg = self.legs[uid] = LegStats(uid, get("Linkedid"), chan)
        leg.touched = time.monotonic()
        return leg

    @staticmethod
    def _mes(leg: LegStats, get) -> None:
        mes = _float(get("MES"))
        if mes is not None and 0 < mes <= 100:
            leg.mes.append(mes)

    def pop(self, uniqueid: str) -> LegStats | None:
        return self.legs.pop(uniqueid, None)

    def purge(self, idle_s: float, now: float | None = None) -> int:
        """Forget legs with no news for ``idle_s`` (their call was never saved: AMI lost)."""
        now = time.monotonic() if now is None else now
        stale = [u for u, leg in self.legs.items() if now - leg.touched > idle_s]
        for u in stale:
            del self.legs[u]
        return len(stale)


# -- summaries ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DirectionQuality:
    packets: int | None  # packets that arrived (in) / were sent (out)
    lost: int | None
    loss_pct: float | None
    loss_pct_min: float | None  # per RTCP interval
    loss_pct_avg: float | None
    loss_pct_max: float | None
    jitter_ms_min: float | None
    jitter_ms_avg: float | None
    jitter_ms_max: float | None
    burst_ratio: float
    delay_ms: float | None
    r_factor: float | None


@dataclass(frozen=True, slots=True)
class LegQuality:
    """What is stored for one leg (see :mod:`gateway.quality.orm`)."""

    uniqueid: str
    linkedid: str
    channel: str
    endpoint: str | None
    source: str  # "asterisk" (RTCP) or "gateway:<part>" (RTP the gateway terminates)
    codec: str | None
    reports: int
    packets_in: int | None
    lost_in: int | None
    loss_pct_in: float | None
    packets_out: int | None
    lost_out: int | None
    loss_pct_out: float | None
    jitter_ms_min: float | None
    jitter_ms_avg: float | None
    jitter_ms_max: float | None
    loss_pct_min: float | None
    loss_pct_avg: float | None
    loss_pct_max: float | None
    rtt_ms_min: float | None
    rtt_ms_avg: float | None
    rtt_ms_max: float | None
    burst_ratio: float | None
    delay_ms: float | None
    r_in: float | None
    r_out: float | None
    r_factor: float | None
    mos: float | None
    worst_direction: str | None  # "in" | "out"
    asterisk_mes: float | None  # Asterisk 22's own media experience score, for comparison


def _stats(xs: list[float]) -> tuple[float | None, float | None, float | None]:
    if not xs:
        return None, None, None
    return min(xs), sum(xs) / len(xs), max(xs)


def _rate(codec: str | None, loss_pct: float | None, burst: float, rtt_ms: float | None,
          jitter_ms: float | None) -> tuple[float | None, float | None]:
    """(Ta, R) for one direction; R is None for a codec the E-model has no values for."""
    name = codec or "pcmu"
    try:
        c = emodel.codec(name)
    except emodel.UnknownCodec:
        return None, None
    delay = emodel.mouth_to_ear_delay_ms(c.name, rtt_ms or 0.0, jitter_ms or 0.0)
    loss = min(100.0, max(0.0, loss_pct or 0.0))
    return delay, emodel.r_factor(c.name, loss, delay, burst)


def _direction(d: Direction, rate: int, packets: int | None, lost: int | None,
               summary_jitter: tuple[float | None, float | None, float | None],
               codec: str | None, rtt_ms: float | None, incoming: bool) -> DirectionQuality:
    if not incoming and lost is not None and packets is not None and lost > packets:
        # More lost than Asterisk ever sent: the phone counted a jump in Asterisk's sequence
        # numbers (the source switched, e.g. to music on hold and back) as loss, in its total
        # and in its interval reports alike. Its loss figures are void; jitter still holds.
        return _direction(Direction(jitter_ts=d.jitter_ts), rate, packets, None,
                          summary_jitter, codec, rtt_ms, incoming)
    jit = [j * 1000.0 / rate for j in d.jitter_ts]
    jmin, javg, jmax = _stats(jit) if jit else summary_jitter
    per = [100.0 * lo / e for e, lo in d.intervals if e > 0]
    if not per and d.fractions:
        per = [100.0 * f for f in d.fractions]
    lmin, lavg, lmax = _stats(per)
    if d.intervals and (lost is None or (not incoming and len(d.intervals) >= 2)):
        lost = sum(lo for _, lo in d.intervals)
        packets = sum(e for e, _ in d.intervals) - (lost if incoming else 0)
    loss_pct = None
    if lost is not None and packets is not None:
        base = packets + lost if incoming else packets
        loss_pct = 100.0 * lost / base if base > 0 else 0.0
    elif lavg is not None:
        loss_pct = lavg
    burst = emodel.burst_ratio_from_intervals(d.intervals)
    delay, r = _rate(codec, loss_pct, burst, rtt_ms, javg)
    return DirectionQuality(packets, lost, loss_pct, lmin, lavg, lmax, jmin, javg, jmax, burst,
                            delay, r)


def _ms(v: float | None) -> float | None:
    return None if v is None else v * 1000.0


def summarise(leg: LegStats, linkedid: str, endpoint: str | None, codec: str | None
              ) -> LegQuality | None:
    """The stored figures of one leg; None when there is nothing measured (no media)."""
    codec = leg.codec or codec
    if codec:
        codec = codec.strip("() ").lower()
    s = leg.summary or {}
    alls, jit, rtts = s.get("all", {}), s.get("jitter", {}), s.get("rtt", {})
    if not leg.inbound.reports and not leg.outbound.reports and not alls:
        return None
    rate = clock_rate(codec)
    rtt = [x * 1000.0 for x in leg.rtt_s]
    rmin, ravg, rmax = _stats(rtt)
    if ravg is None and rtts.get("avgrtt"):
        rmin, ravg, rmax = (_ms(rtts.get("minrtt")), _ms(rtts.get("avgrtt")),
                            _ms(rtts.get("maxrtt")))

    def summary_jitter(prefix: str) -> tuple[float | None, float | None, float | None]:
        if f"avg{prefix}jitter" not in jit:
            return None, None, None
        return (_ms(jit.get(f"min{prefix}jitter")), _ms(jit.get(f"avg{prefix}jitter")),
                _ms(jit.get(f"max{prefix}jitter")))

    def total(key: str) -> int | None:
        return int(alls[key]) if key in alls and not math.isnan(alls[key]) else None

    din = _direction(leg.inbound, rate, total("rxcount"), total("lp"), summary_jitter("rx"),
                     codec, ravg, incoming=True)
    dout = _direction(leg.outbound, rate, total("txcount") or leg.sent_packets, total("rlp"),
                      summary_jitter("tx"), codec, ravg, incoming=False)
    rated = [(d.r_factor, name, d) for name, d in (("in", din), ("out", dout))
             if d.r_factor is not None and (d.packets or d.jitter_ms_avg is not None)]
    worst = min(rated, key=lambda x: x[0]) if rated else None
    w = worst[2] if worst else din
    r = worst[0] if worst else None
    mes = min(leg.mes) if leg.mes else None
    for key in ("rxmes", "txmes"):
        if key in alls and alls[key] > 0:
            mes = alls[key] if mes is None else min(mes, alls[key])
    return LegQuality(
        uniqueid=leg.uniqueid, linkedid=linkedid, channel=leg.channel, endpoint=endpoint,
        source="asterisk", codec=codec, reports=leg.inbound.reports + leg.outbound.reports,
        packets_in=din.packets, lost_in=din.lost, loss_pct_in=din.loss_pct,
        packets_out=dout.packets, lost_out=dout.lost, loss_pct_out=dout.loss_pct,
        jitter_ms_min=w.jitter_ms_min, jitter_ms_avg=w.jitter_ms_avg, jitter_ms_max=w.jitter_ms_max,
        loss_pct_min=w.loss_pct_min, loss_pct_avg=w.loss_pct_avg, loss_pct_max=w.loss_pct_max,
        rtt_ms_min=rmin, rtt_ms_avg=ravg, rtt_ms_max=rmax, burst_ratio=w.burst_ratio,
        delay_ms=w.delay_ms, r_in=din.r_factor if din.packets or din.jitter_ms_avg is not None
        else None, r_out=dout.r_factor if dout.packets or dout.jitter_ms_avg is not None else None,
        r_factor=r, mos=emodel.mos_from_r(r) if r is not None else None,
        worst_direction=worst[1] if worst else None, asterisk_mes=mes)


def from_media_stats(ev: Any) -> LegQuality:
    """A leg whose RTP the gateway itself received (:class:`gateway.events.MediaStats`)."""
    codec = (ev.codec or "").strip("() ").lower() or None
    base = ev.packets + ev.lost
    loss = 100.0 * ev.lost / base if base > 0 else 0.0
    delay, r = _rate(codec, loss, 1.0, ev.rtt_ms, ev.jitter_ms_avg)
    rtt = ev.rtt_ms
    return LegQuality(
        uniqueid=ev.uniqueid, linkedid=ev.linkedid, channel=f"gateway:{ev.source}", endpoint=None,
        source=f"gateway:{ev.source}"[:32], codec=codec, reports=0, packets_in=ev.packets,
        lost_in=ev.lost, loss_pct_in=loss, packets_out=None, lost_out=None, loss_pct_out=None,
        jitter_ms_min=None, jitter_ms_avg=ev.jitter_ms_avg, jitter_ms_max=ev.jitter_ms_max,
        loss_pct_min=None, loss_pct_avg=loss, loss_pct_max=None, rtt_ms_min=rtt, rtt_ms_avg=rtt,
        rtt_ms_max=rtt, burst_ratio=1.0, delay_ms=delay, r_in=r, r_out=None, r_factor=r,
        mos=emodel.mos_from_r(r) if r is not None else None, worst_direction="in" if r else None,
        asterisk_mes=None)
