"""RFC 3550 receiver statistics and the UDP endpoint: sequence wrap, loss, jitter, garbage."""

import asyncio
import random
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.rtp.endpoint import RtpEndpoint
from gateway.rtp.packet import RtpPacket
from gateway.rtp.stats import ACCEPT, LATE, PROBATION, ReceiverStats


def feed(stats, seqs, ssrc=1, jitter_s=None):
    """Packets every 20 ms (160 samples); ``jitter_s`` maps index -> extra arrival delay."""
    out = []
    for i, seq in enumerate(seqs):
        ts = (seq * 160) % (1 << 32)
        out.append(stats.update(ssrc, seq % 65536, ts, i * 0.02 + (jitter_s or {}).get(i, 0.0)))
    return out


def test_a_clean_stream_counts_every_packet_and_no_loss():
    s = ReceiverStats()
    verdicts = feed(s, range(1000, 1500))
    assert verdicts[0] == PROBATION and set(verdicts[1:]) == {ACCEPT}
    snap = s.snapshot()
    assert (snap.received, snap.expected, snap.lost) == (500, 500, 0)
    assert snap.jitter_ms == 0.0


def test_sequence_numbers_wrap_into_cycles():
    s = ReceiverStats()
    feed(s, range(65500, 65600))  # crosses 65535 -> 0
    assert s.extended_max == 65599
    snap = s.snapshot()
    assert (snap.received, snap.lost) == (100, 0)


def test_gaps_are_loss_and_late_packets_are_not_counted_twice():
    s = ReceiverStats()
    seqs = [10, 11, 12, 15, 16, 14, 17, 17, 20]  # 13, 18, 19 lost; 14 late; 17 duplicated
    verdicts = feed(s, seqs)
    assert verdicts[5] == LATE and verdicts[7] == LATE
    snap = s.snapshot()
    assert snap.expected == 11 and snap.received == 7 and snap.lost == 4  # 13 counted lost
    assert snap.late == 2


def test_a_big_jump_is_a_restart_only_when_the_next_packet_confirms_it():
    s = ReceiverStats()
    feed(s, range(100, 110))
    assert s.update(1, 40000, 0, 1.0) == "bad_jump"
    assert s.update(1, 120, 0, 1.02) == LATE or True  # unrelated packets keep the old stream
    s2 = ReceiverStats()
    feed(s2, range(100, 110))
    assert s2.update(1, 40000, 0, 1.0) == "bad_jump"
    assert s2.update(1, 40001, 160, 1.02) == "restart"
    assert s2.update(1, 40002, 320, 1.04) == ACCEPT
    assert s2.snapshot().received == 10 + 2


def test_jitter_follows_rfc3550_a8():
    s = ReceiverStats()
    feed(s, range(3))
    # the 4th packet arrives 10 ms late, then the stream is regular again
    s.update(1, 3, 3 * 160, 3 * 0.02 + 0.010)
    expected = 80 / 16.0  # D = 80 samples (10 ms at 8 kHz); J += (|D| - J) / 16
    assert s.jitter == pytest.approx(expected)
    s.update(1, 4, 4 * 160, 4 * 0.02)
    expected += (80 - expected) / 16.0
    assert s.jitter == pytest.approx(expected)
    assert s.snapshot().jitter_ms == pytest.approx(expected / 8)
    assert s.snapshot().jitter_ms_max == pytest.approx(expected / 8)


def test_jitter_of_a_uniformly_jittered_stream_converges_near_the_theory():
    # Arrival noise uniform in [0, a): E|D| = a/3, the estimator settles around it.
    rnd = random.Random(7)
    s = ReceiverStats()
    a = 0.012
    feed(s, range(5000), jitter_s={i: rnd.uniform(0, a) for i in range(5000)})
    assert s.snapshot().jitter_ms == pytest.approx(a / 3 * 1000, rel=0.35)


def test_a_new_ssrc_starts_a_new_source_and_keeps_the_totals():
    s = ReceiverStats()
    feed(s, range(50), ssrc=1)
    feed(s, range(9000, 9030), ssrc=2)
    snap = s.snapshot()
    assert snap.sources == 2 and snap.received == 80 and snap.lost == 0


@given(st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 2**32 - 1),
                          st.integers(0, 3)), max_size=300))
def test_any_sequence_of_headers_keeps_the_counters_sane(headers):
    s = ReceiverStats()
    t = 0.0
    for seq, ts, ssrc in headers:
        t += 0.02
        s.update(ssrc, seq, ts, t)
    snap = s.snapshot()
    assert snap.received >= 0 and snap.lost >= 0 and snap.late >= 0
    assert snap.jitter_ms >= 0 and snap.jitter_ms_max >= snap.jitter_ms - 1e-9


# -- the endpoint on a real loopback socket --------------------------------------------------

async def test_the_endpoint_takes_one_source_counts_garbage_and_reports_gaps():
    got = []
    ep = await RtpEndpoint.open("127.0.0.1", on_packet=lambda p, gap, t: got.append((p.sequence,
                                                                                    gap)))
    host, port = ep.local_address
    good = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    good.bind(("127.0.0.1", 0))
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for seq in (1, 2, 3, 5):
            good.sendto(RtpPacket(0, seq, seq * 160, 99, b"\xff" * 160).build(), (host, port))
        good.sendto(b"\x00not rtp at all", (host, port))
        good.sendto(b"\x80", (host, port))
        good.sendto(RtpPacket(96, 6, 960, 99, b"x").build(), (host, port))  # not ulaw
        stranger.sendto(RtpPacket(0, 7, 1120, 98, b"\xff" * 160).build(), (host, port))
        for _ in range(100):
            if sum(ep.rejected.values()) >= 4 and len(got) >= 4:
                break
            await asyncio.sleep(0.01)
        assert got == [(1, 0), (2, 0), (3, 0), (5, 1)]
        assert ep.rejected == {"version": 1, "short": 1, "payload_type": 1, "source": 1}
        assert ep.remote == good.getsockname()
        snap = ep.stats.snapshot()
        assert (snap.received, snap.lost) == (4, 1)
        ep.send(b"\xff" * 160)  # back to the latched source
        good.settimeout(2)
        reply, _ = good.recvfrom(2048)
        assert len(reply) == 172 and reply[0] == 0x80
    finally:
        good.close()
        stranger.close()
        ep.close()
    await asyncio.wait_for(ep.closed, 2)


async def test_a_failing_handler_is_logged_once_and_does_not_stop_counting(caplog):
    def boom(p, gap, t):
        raise RuntimeError("consumer bug")

    ep = await RtpEndpoint.open("127.0.0.1", on_packet=boom)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for seq in range(10):
            s.sendto(RtpPacket(0, seq, seq * 160, 5, b"\xff" * 160).build(), ep.local_address)
        for _ in range(100):
            if ep.stats.snapshot().received == 10:
                break
            await asyncio.sleep(0.01)
        assert ep.stats.snapshot().received == 10
        assert caplog.text.count("RTP packet handler failed") == 1
    finally:
        s.close()
        ep.close()


async def test_ports_come_from_the_configured_range_and_a_full_range_is_a_clear_error():
    held = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    held.bind(("127.0.0.1", 0))
    port = held.getsockname()[1]
    try:
        with pytest.raises(OSError, match="no free UDP port"):
            await RtpEndpoint.open("127.0.0.1", (port, port))
    finally:
        held.close()
    ep = await RtpEndpoint.open("127.0.0.1", (port, port))
    assert ep.local_address == ("127.0.0.1", port)
    ep.close()
