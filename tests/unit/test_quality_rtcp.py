"""Per-leg voice quality from Asterisk's RTCP events and the hangup handler's summary."""

from datetime import UTC, datetime

import pytest

from gateway.events import MediaStats
from gateway.quality import emodel
from gateway.quality.rtcp import RtcpCollector, clock_rate, from_media_stats, parse_kv, summarise

CHAN, UID, LID = "PJSIP/caller1-00000000", "1795426661.0", "1795426661.0"


def base(name, **kw):
    ev = {"Event": name, "Channel": CHAN, "Uniqueid": UID, "Linkedid": LID,
          "Report0SourceSSRC": "0x168e0fd8", "Report0SequenceNumberCycles": "0",
          "ReportCount": "1", "MES": "88.1"}
    ev.update({k: str(v) for k, v in kw.items()})
    return ev


def feed(col, lost_per_interval, *, jitter=40, rtt="0.0400", start_seq=14244, name="RTCPSent",
         ssrc="0x168e0fd8"):
    """One report per 25 packets (500 ms of 20 ms packets), like rtcpinterval=500."""
    seq, cum = start_seq, 0
    for lost in lost_per_interval:
        seq += 25
        cum += lost
        extra = {"RTT": rtt, "Report0LSR": "2280222971"} if name == "RTCPReceived" else {}
        col.handle(base(name, Report0HighestSequence=seq, Report0CumulativeLost=cum,
                        Report0FractionLost=int(lost / 25 * 256), Report0IAJitter=jitter,
                        Report0SourceSSRC=ssrc, **extra))


def hangup_summary(**all_fields):
    a = ";".join(f"{k}={v}" for k, v in all_fields.items())
    return {"Event": "UserEvent", "UserEvent": "CentralinoRTCP", "Channel": CHAN, "Uniqueid": UID,
            "Linkedid": LID, "Codec": "(ulaw)",
            "Jitter": "minrxjitter=000.000000;maxrxjitter=000.001125;avgrxjitter=000.000516;"
                      "stdevrxjitter=000.000194;mintxjitter=000.000000;maxtxjitter=000.000000;"
                      "avgtxjitter=000.000000;stdevtxjitter=000.000000;",
            "Loss": "minrxlost=000.000000;  maxrxlost=000.000000;  avgrxlost=000.000000;",
            "RTT": "minrtt=000.000137;     maxrtt=000.000411;     avgrtt=000.000274;",
            "All": a}


def test_asterisks_padded_key_value_lists_parse():
    assert parse_kv("minrtt=000.000137;     maxrtt=000.000411;  bogus;x=;") == {
        "minrtt": 0.000137, "maxrtt": 0.000411}
    assert parse_kv(None) == {}


def test_rtp_clock_rates():
    assert clock_rate("(ulaw)") == clock_rate("g722") == 8000
    assert clock_rate("opus") == 48000


def test_jitter_loss_and_rtt_per_direction_and_the_e_model_rating():
    col = RtcpCollector()
    loss = [1, 2, 1, 1, 2, 1, 1, 1, 2, 1] * 3  # 39 lost in 750 expected
    feed(col, loss, jitter=40, name="RTCPSent")  # 40 units at 8 kHz = 5 ms
    feed(col, [0] * 30, jitter=8, name="RTCPReceived", rtt="0.0400")
    q = summarise(col.pop(UID), LID, "caller1", "ulaw")
    assert q.codec == "ulaw" and q.reports == 60
    # Without the hangup handler's totals, the intervals between reports count: the first
    # report only opens the series (its 25 packets and 1 loss are before any interval).
    assert q.lost_in == 38 and q.packets_in == 725 - 38
    assert q.loss_pct_in == pytest.approx(38 / 725 * 100)
    assert q.loss_pct_out == 0
    assert q.worst_direction == "in"
    assert (q.jitter_ms_min, q.jitter_ms_avg, q.jitter_ms_max) == (5.0, 5.0, 5.0)
    assert q.loss_pct_min == 4.0 and q.loss_pct_max == 8.0  # 1 and 2 of 25
    assert q.rtt_ms_avg == pytest.approx(40.0)
    ta = emodel.mouth_to_ear_delay_ms("pcmu", rtt_ms=40, jitter_ms=5)
    assert q.delay_ms == pytest.approx(ta) == 20 + 20 + 20
    assert q.burst_ratio == 1.0
    assert q.r_factor == pytest.approx(emodel.r_factor("pcmu", q.loss_pct_in, ta))
    assert q.mos == pytest.approx(emodel.mos_from_r(q.r_factor))
    assert q.r_out > q.r_in == q.r_factor
    assert q.asterisk_mes == 88.1


def test_the_hangup_handlers_totals_win_over_the_sampled_intervals():
    col = RtcpCollector()
    feed(col, [1] * 20)
    col.handle(hangup_summary(ssrc=1, themssrc=2, lp=50, rxjitter=0.000375, rxcount=950,
                              txjitter=0.0, txcount=1000, rlp=10, rtt=0.0004, rxmes=80.5,
                              txmes=88.0))
    q = summarise(col.pop(UID), LID, "caller1", None)
    assert q.codec == "ulaw"
    assert (q.packets_in, q.lost_in, q.loss_pct_in) == (950, 50, 5.0)
    assert (q.packets_out, q.lost_out, q.loss_pct_out) == (1000, 10, 1.0)
    assert q.asterisk_mes == 80.5
    # no RTCPReceived with an RTT: the handler's all_rtt is used (seconds -> ms)
    assert q.rtt_ms_avg == pytest.approx(0.274)


def test_loss_heard_by_the_phone_comes_from_its_own_reports_not_rlp_over_txcount():
    # Asterisk relays the far leg's gaps: the phone counts 20 % in its sequence space, while
    # Asterisk sent only what it received (txcount): rlp / txcount would read 50 / 450.
    col = RtcpCollector()
    feed(col, [5] * 10, name="RTCPReceived")  # 5 of 25 per interval, as the phone reports
    col.handle(hangup_summary(lp=0, rxcount=500, txcount=450, rlp=50))
    q = summarise(col.pop(UID), LID, None, "ulaw")
    assert q.loss_pct_out == pytest.approx(20.0)  # 5 of every 25 expected, by the phone
    assert q.loss_pct_in == 0.0  # Asterisk's own count of the phone's stream


def test_a_sequence_jump_the_phone_counted_as_loss_does_not_rate_a_clean_call_as_broken():
    # Seen on a real call put on hold: Asterisk's stream to the phone jumped by ~1800 sequence
    # numbers (music on hold and back); pjsua counted the jump as lost: rlp 1786 of 351 sent.
    col = RtcpCollector()
    col.handle(base("RTCPReceived", Report0HighestSequence=1000, Report0CumulativeLost=0,
                    Report0IAJitter=2, RTT="0.0004", Report0LSR="1"))
    col.handle(base("RTCPReceived", Report0HighestSequence=3137, Report0CumulativeLost=1786,
                    Report0IAJitter=2, RTT="0.0004", Report0LSR="2"))
    col.handle(hangup_summary(lp=0, rxcount=352, txcount=351, rlp=1786))
    q = summarise(col.pop(UID), LID, "caller1", "ulaw")
    assert q.loss_pct_out is None and q.lost_out is None  # unknown, not 508 %
    assert q.loss_pct_in == 0 and q.mos > 4.3


def test_a_leg_measured_only_by_the_hangup_handler_still_gets_figures():
    col = RtcpCollector()
    col.handle(hangup_summary(lp=0, rxcount=200, txcount=200, rlp=0, rtt=0))
    q = summarise(col.pop(UID), LID, "caller1", None)
    assert q.reports == 0 and q.loss_pct_in == 0 and q.jitter_ms_max == pytest.approx(1.125)
    assert q.mos == pytest.approx(emodel.mos_from_r(q.r_factor)) and q.mos > 4.3


def test_bursty_loss_is_recognised_and_rated_lower_than_the_same_loss_spread_evenly():
    bursty, even = RtcpCollector(), RtcpCollector()
    feed(bursty, ([0] * 9 + [10]) * 6)  # 60 lost in 1500, in runs
    feed(even, [1] * 60)  # 60 lost in 1500, one per interval
    qb = summarise(bursty.pop(UID), LID, None, "ulaw")
    qe = summarise(even.pop(UID), LID, None, "ulaw")
    assert qb.loss_pct_in == pytest.approx(qe.loss_pct_in, rel=0.05)
    assert qb.burst_ratio > 1.5 and qe.burst_ratio == 1.0
    assert qb.r_factor < qe.r_factor


def test_empty_reports_before_media_and_local_channels_are_ignored():
    col = RtcpCollector()
    assert not col.handle(base("RTCPSent", Channel="Local/6001@from-callers-0001;1",
                               Report0HighestSequence=100))
    col.handle(base("RTCPReceived", Report0SourceSSRC="0x00000000", Report0HighestSequence=0,
                    RTT="0.0000", Report0LSR="0"))
    leg = col.legs[UID]
    assert leg.outbound.reports == 0 and leg.rtt_s == []
    assert summarise(col.pop(UID), LID, None, "ulaw") is None


def test_a_new_ssrc_restarts_the_interval_arithmetic():
    col = RtcpCollector()
    feed(col, [0] * 5, start_seq=60000)
    feed(col, [0] * 5, start_seq=100, ssrc="0x0000beef")
    d = col.legs[UID].inbound
    assert all(e == 25 for e, _ in d.intervals) and len(d.intervals) == 8


def test_sequence_wrap_counts_through_the_cycles_field():
    col = RtcpCollector()
    col.handle(base("RTCPSent", Report0HighestSequence=65530, Report0CumulativeLost=0,
                    Report0IAJitter=1))
    col.handle(base("RTCPSent", Report0HighestSequence=19, Report0SequenceNumberCycles=1,
                    Report0CumulativeLost=1, Report0IAJitter=1))
    assert col.legs[UID].inbound.intervals == [(25, 1)]


def test_garbage_fields_do_not_lose_the_rest_of_the_report():
    col = RtcpCollector()
    feed(col, [0] * 3)
    col.handle(base("RTCPSent", Report0HighestSequence="x", Report0IAJitter="y",
                    Report0CumulativeLost="z", Report0FractionLost="999"))
    assert col.legs[UID].inbound.reports == 3


def test_an_unknown_codec_is_stored_without_a_rating():
    col = RtcpCollector()
    feed(col, [0] * 3)
    q = summarise(col.pop(UID), LID, None, "speex")
    assert q.codec == "speex" and q.r_factor is None and q.mos is None


def test_stale_legs_are_purged():
    col = RtcpCollector()
    feed(col, [0] * 2)
    col.legs[UID].touched -= 100
    assert col.purge(idle_s=50) == 1 and not col.legs


def test_media_the_gateway_received_is_rated_too():
    now = datetime.now(UTC)
    q = from_media_stats(MediaStats(LID, "gw-1", "ivr", "ulaw", packets=950, lost=50,
                                    jitter_ms_avg=4.0, jitter_ms_max=9.0, rtt_ms=None,
                                    started_at=now, ended_at=now))
    assert q.source == "gateway:ivr" and q.loss_pct_in == 5.0
    ta = emodel.mouth_to_ear_delay_ms("pcmu", 0, 4.0)
    assert q.r_factor == pytest.approx(emodel.r_factor("pcmu", 5.0, ta))
