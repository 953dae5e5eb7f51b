"""ITU-T G.107 E-model: transmission rating R and estimated MOS for one call leg.

Why the E-model: a contact centre needs a per-call voice-quality figure it can compute from what
RTCP already reports (loss, jitter, RTT) and the negotiated codec, without listening to audio.

R = Ro - Is - Id - Ie,eff + A   (G.107 (06/2015) eq. 7-1)

* ``Ro`` (basic signal-to-noise) and ``Is`` (simultaneous impairments) depend on the
  loudness/noise parameters, left at the G.107 defaults (Table 3), with which an undisturbed
  G.711 connection rates R = 93.2 (``Is`` also sees the echo delay T through STMRo).
* ``Id`` (delay impairment) comes from the one-way mouth-to-ear delay ``Ta``. With echo
  cancellation in place (TELR 65 dB default) we use the usual planning simplification
  ``T = Ta`` (talker echo path) and ``Tr = 2 * Ta`` (listener echo round trip).
* ``Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)`` (eq. 7-29): codec equipment impairment
  ``Ie`` and packet-loss robustness ``Bpl`` from ITU-T G.113 Appendix I, loss ``Ppl`` in percent,
  ``BurstR`` = 1 for random loss and > 1 for bursty loss.

Mouth-to-ear delay from network figures (see :func:`mouth_to_ear_delay_ms`): half the RTCP
round-trip time (the network one-way part) + the receive jitter buffer (nominally twice the
measured interarrival jitter, at least one packet) + packetisation (the RTP packet time) + the
codec's look-ahead.

Deliberate deviations, each worth less than 0.25 R: ``Idte`` is kept >= 0 (the G.107 fit dips
slightly below zero for T of a few ms, which would make R rise with delay), and MOS is clamped
to >= 1 where the Annex B cubic dips under it (0 < R < 6.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Codec:
    """Planning values of one codec: ``ie``/``bpl`` for the E-model, and the timing that goes
    into the mouth-to-ear delay: ``packet_ms`` is the usual RTP packet (ptime) Asterisk and
    common phones send, ``lookahead_ms`` the encoder's look-ahead."""

    name: str
    ie: float
    bpl: float
    packet_ms: float
    lookahead_ms: float = 0.0
    source: str = ""


# Ie: ITU-T G.113 Appendix I, Table I.1. Bpl: G.113 Appendix I, Table I.3 where it has one.
# Where G.113 has no value the figure is a labelled planning choice, never presented as ITU's.
CODECS: dict[str, Codec] = {
    c.name: c
    for c in (
        # G.711 + PLC per G.711 Appendix I: Ie 0, Bpl 25.1 (Table I.3, measured with 10 ms
        # packets; used for 20 ms too, which if anything under-rates PLC at 20 ms).
        Codec("pcmu", ie=0.0, bpl=25.1, packet_ms=20.0, source="G.113 I.1/I.3"),
        Codec("pcma", ie=0.0, bpl=25.1, packet_ms=20.0, source="G.113 I.1/I.3"),
        # G.711 without concealment (silence for a lost packet): Bpl 4.3 (Table I.3).
        Codec("pcmu-noplc", ie=0.0, bpl=4.3, packet_ms=20.0, source="G.113 I.1/I.3"),
        Codec("pcma-noplc", ie=0.0, bpl=4.3, packet_ms=20.0, source="G.113 I.1/I.3"),
        # G.722 is wideband: G.113 gives it only on the wideband scale (G.107.1). On this
        # narrowband scale we rate it no worse than G.711 with PLC (Ie 0, Bpl 25.1): a floor.
        Codec("g722", ie=0.0, bpl=25.1, packet_ms=20.0, source="planning choice: as G.711+PLC"),
        # GSM 06.10 full rate: Ie 20 (Table I.1). G.113 publishes no Bpl for it; 10.0 is the
        # GSM-EFR figure of Table I.3 (same frame structure and concealment of GSM 06.11).
        Codec("gsm", ie=20.0, bpl=10.0, packet_ms=20.0, source="Ie G.113 I.1; Bpl of GSM-EFR"),
        # iLBC (RFC 3951) is not in G.113. 30 ms mode (13.33 kbit/s, the default of Asterisk
        # and pjsua): 10 ms look-ahead; 20 ms mode (15.2 kbit/s): 5 ms. Ie 10 / Bpl 32 are the
        # planning figures common in the literature for its frame-independent coding.
        Codec("ilbc", ie=10.0, bpl=32.0, packet_ms=30.0, lookahead_ms=10.0,
              source="not in G.113: literature planning figures"),
        Codec("ilbc20", ie=10.0, bpl=32.0, packet_ms=20.0, lookahead_ms=5.0,
              source="not in G.113: literature planning figures"),
        # G.729A (+VAD): Ie 11, Bpl 19.0 (Tables I.1/I.3, 20 ms packets = two 10 ms frames);
        # 5 ms look-ahead.
        Codec("g729a", ie=11.0, bpl=19.0, packet_ms=20.0, lookahead_ms=5.0,
              source="G.113 I.1/I.3"),
    )
}
ALIASES = {"ulaw": "pcmu", "g711u": "pcmu", "alaw": "pcma", "g711a": "pcma", "g729": "g729a",
           "gsm-fr": "gsm", "gsmfr": "gsm", "g711": "pcmu", "ilbc30": "ilbc"}


class UnknownCodec(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown codec {name!r}; known: {', '.join(sorted(CODECS))}")


def codec(name: str) -> Codec:
    """Look a codec up by our name, a common alias or Asterisk's format name (``(ulaw)``)."""
    key = name.strip().strip("()").strip().lower()
    key = ALIASES.get(key, key)
    try:
        return CODECS[key]
    except KeyError:
        raise UnknownCodec(name) from None


@dataclass(frozen=True, slots=True)
class Params:
    """G.107 Table 3 default values; only the transmission-planning knobs callers change are here."""

    slr: float = 8.0
    rlr: float = 2.0
    stmr: float = 15.0
    lstr: float = 18.0
    ds: float = 3.0
    dr: float = 3.0
    telr: float = 65.0
    wepl: float = 110.0
    qdu: float = 1.0
    nc: float = -70.0
    nfor: float = -64.0
    ps: float = 35.0
    pr: float = 35.0
    a: float = 0.0


DEFAULTS = Params()


def _lg(x: float) -> float:
    return math.log10(x)


def _ro_is(p: Params, t: float = 0.0) -> tuple[float, float, float]:
    """Ro, Is and No (G.107 clauses 7.2 and 7.3); ``t`` is the talker echo delay T, which
    enters the sidetone masking rating STMRo (eq. 7-14)."""
    olr = p.slr + p.rlr
    nfo = p.nfor + p.rlr
    pre = p.pr + 10 * _lg(1 + 10 ** ((10 - p.lstr) / 10))
    nor = p.rlr - 121 + pre + 0.008 * (pre - 35) ** 2
    nos = p.ps - p.slr - p.ds - 100 + 0.004 * (p.ps - olr - p.ds - 14) ** 2
    no = 10 * _lg(10 ** (p.nc / 10) + 10 ** (nos / 10) + 10 ** (nor / 10) + 10 ** (nfo / 10))
    ro = 15 - 1.5 * (p.slr + no)

    xolr = olr + 0.2 * (64 + no - p.rlr)
    iolr = 20 * ((1 + (xolr / 8) ** 8) ** (1 / 8) - xolr / 8)
    stmro = -10 * _lg(10 ** (-p.stmr / 10) + math.exp(-t / 4) * 10 ** (-p.telr / 10))
    ist = (12 * (1 + ((stmro - 13) / 6) ** 8) ** (1 / 8)
           - 28 * (1 + ((stmro + 1) / 19.4) ** 35) ** (1 / 35)
           - 13 * (1 + ((stmro - 3) / 33) ** 13) ** (1 / 13) + 29)
    q = 37 - 15 * _lg(p.qdu)
    g = 1.07 + 0.258 * q + 0.0602 * q ** 2
    z = 46 / 30 - g / 40
    y = (ro - 100) / 15 + 46 / 8.4 - g / 9
    iq = 15 * _lg(1 + 10 ** y + 10 ** z)
    return ro, iolr + ist + iq, no


def _id(p: Params, ro: float, no: float, ta: float) -> float:
    """Delay impairment Id = Idte + Idle + Idd (G.107 clause 7.4), with T = Ta, Tr = 2 Ta."""
    t, tr = ta, 2 * ta
    terv = p.telr - 40 * _lg((1 + t / 10) / (1 + t / 150)) + 6 * math.exp(-0.3 * t ** 2)
    roe = -1.5 * (no - p.rlr)
    re = 80 + 2.5 * (terv - 14)
    idte = ((roe - re) / 2 + math.sqrt((roe - re) ** 2 / 4 + 100) - 1) * (1 - math.exp(-t))
    idte = max(idte, 0.0)  # the fit dips a hair below 0 near T = 0: an impairment never helps
    rle = 10.5 * (p.wepl + 7) * (tr + 1) ** -0.25
    idle = (ro - rle) / 2 + math.sqrt((ro - rle) ** 2 / 4 + 169)
    if ta <= 100:
        idd = 0.0
    else:
        x = _lg(ta / 100) / _lg(2)
        idd = 25 * ((1 + x ** 6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)
    return idte + idle + idd


def ie_eff(c: Codec, loss_pct: float, burst_ratio: float = 1.0) -> float:
    if not 0 <= loss_pct <= 100:
        raise ValueError(f"loss must be 0..100 %, got {loss_pct}")
    if burst_ratio < 1:
        raise ValueError(f"burst ratio must be >= 1 (1 = random loss), got {burst_ratio}")
    return c.ie + (95 - c.ie) * loss_pct / (loss_pct / burst_ratio + c.bpl)


def r_factor(codec_name: str = "pcmu", loss_pct: float = 0.0, delay_ms: float = 0.0,
             burst_ratio: float = 1.0, params: Params = DEFAULTS) -> float:
    """Transmission rating R for a codec, packet loss (%), one-way absolute delay Ta (ms)."""
    if delay_ms < 0:
        raise ValueError(f"delay must be >= 0 ms, got {delay_ms}")
    c = codec(codec_name)
    ro, is_, no = _ro_is(params, delay_ms)
    return ro - is_ - _id(params, ro, no, delay_ms) - ie_eff(c, loss_pct, burst_ratio) + params.a


def mos_from_r(r: float) -> float:
    """G.107 Annex B: estimated conversational MOS (CQE) from R.

    The cubic dips a little under 1 for 0 < R < 6.5; a MOS is never below 1, so it is clamped.
    """
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return max(1.0, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6)


def burst_ratio(loss_fraction: float, mean_burst_packets: float) -> float:
    """BurstR from a 2-state Markov (Gilbert) loss model (G.113 Appendix I).

    With q = 1 / mean burst length and p = loss * q / (1 - loss), BurstR = 1 / (p + q).
    Random loss (mean burst 1 / (1 - loss)) gives 1.
    """
    if not 0 <= loss_fraction < 1:
        raise ValueError("loss fraction must be in [0, 1)")
    if loss_fraction == 0:
        return 1.0
    if mean_burst_packets < 1:
        raise ValueError("mean burst length is at least one packet")
    q = 1 / mean_burst_packets
    p = loss_fraction * q / (1 - loss_fraction)
    return max(1.0, 1 / (p + q))


def mouth_to_ear_delay_ms(codec_name: str, rtt_ms: float, jitter_ms: float,
                          packet_ms: float | None = None) -> float:
    """One-way Ta from RTCP figures: RTT/2 + jitter buffer + packetisation + look-ahead.

    ``packet_ms`` is the RTP packet time (ptime); None means the codec's usual one. The jitter
    buffer is estimated as twice the interarrival jitter, and never less than one packet.
    """
    c = codec(codec_name)
    if packet_ms is None:
        packet_ms = c.packet_ms
    if rtt_ms < 0 or jitter_ms < 0 or packet_ms <= 0:
        raise ValueError("rtt and jitter must be >= 0 ms and the packet time > 0 ms")
    jitter_buffer = max(2 * jitter_ms, packet_ms)
    return rtt_ms / 2 + jitter_buffer + packet_ms + c.lookahead_ms


def burst_ratio_from_intervals(intervals: list[tuple[int, int]], confidence_z: float = 2.326
                               ) -> float:
    """Estimate BurstR from loss counted per interval: ``[(packets expected, packets lost)]``.

    Why this works with plain RTCP: under random loss the count lost in an interval of n
    packets is binomial; bursty (Gilbert) loss spreads the counts more. For a 2-state Markov
    chain with eigenvalue lam = 1 - p - q the variance is n P (1 - P) f(lam, n) with
    f = (1 + lam) / (1 - lam) - 2 lam (1 - lam**n) / (n (1 - lam)**2), and BurstR = 1 / (1 - lam).
    We measure the dispersion D (Pearson chi-square / degrees of freedom), and only when it is
    above what chance gives at the ``confidence_z`` one-sided level (99 % by default; chi-square
    quantile by Wilson-Hilferty) solve f(lam, mean n) = D. Otherwise, or with fewer than four
    usable intervals or no loss, the answer is 1: random loss is the safe default.
    """
    usable = [(n, min(max(lost, 0), n)) for n, lost in intervals if n > 0]
    k = len(usable)
    total = sum(n for n, _ in usable)
    lost = sum(x for _, x in usable)
    if k < 4 or lost == 0 or lost == total:
        return 1.0
    ppl = lost / total
    chi2 = sum((x - n * ppl) ** 2 / (n * ppl * (1 - ppl)) for n, x in usable)
    df = k - 1
    a = 2 / (9 * df)
    critical = df * (1 - a + confidence_z * math.sqrt(a)) ** 3
    if chi2 <= critical:
        return 1.0
    dispersion = chi2 / df
    n_mean = total / k

    def f(lam: float) -> float:
        return (1 + lam) / (1 - lam) - 2 * lam * (1 - lam ** n_mean) / (n_mean * (1 - lam) ** 2)

    lo, hi = 0.0, 1 - 1e-9
    if f(hi) <= dispersion:
        lam = hi
    else:
        for _ in range(100):
            mid = (lo + hi) / 2
            if f(mid) < dispersion:
                lo = mid
            else:
                hi = mid
        lam = (lo + hi) / 2
    # BurstR = 1 / (p + q) cannot exceed 1 / q = the mean burst, itself at most the loss run
    # that fits in an interval; cap it there so one broken interval cannot run away with it.
    return max(1.0, min(1 / (1 - lam), n_mean))
