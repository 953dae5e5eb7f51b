"""RTP framing (RFC 3550 5.1): what is parsed, what is rejected and why, and that nothing crashes."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.rtp.packet import REASONS, RtpError, RtpPacket, parse


def test_a_plain_g711_packet_round_trips():
    pkt = RtpPacket(0, 0xFFFF, 0xFFFFFFFF, 0x12345678, bytes(range(160)), marker=True)
    wire = pkt.build()
    assert len(wire) == 172
    assert wire[:2] == b"\x80\x80"
    assert parse(wire) == pkt


def test_csrc_extension_and_padding_are_parsed_and_stripped():
    pkt = RtpPacket(8, 7, 1000, 42, b"\xd5" * 160, csrc=(1, 2, 3),
                    extension=(0xBEDE, b"\x10\xff\x00\x00"), padding=4)
    wire = pkt.build()
    assert wire[0] == 0x80 | 0x20 | 0x10 | 3
    got = parse(wire)
    assert got.payload == b"\xd5" * 160
    assert got.csrc == (1, 2, 3) and got.extension == (0xBEDE, b"\x10\xff\x00\x00")
    assert got.padding == 4


def test_a_packet_asterisk_sent_parses():
    # First header seen from the sandbox's ARI external media channel (ulaw, 20 ms).
    wire = bytes.fromhex("800088b8000000a014d6de0e") + b"\xff" * 160
    p = parse(wire)
    assert (p.payload_type, p.sequence, p.timestamp, p.ssrc) == (0, 0x88B8, 160, 0x14D6DE0E)
    assert len(p.payload) == 160


@pytest.mark.parametrize("wire, reason", [
    (b"", "short"),
    (b"\x80\x00\x00", "short"),
    (b"\x40" + b"\x00" * 20, "version"),
    (b"\xc0" + b"\x00" * 20, "version"),
    (b"\x80\xc8" + b"\x00" * 20, "rtcp"),  # an RTCP sender report sent to the RTP port
    (b"\x83\x00" + b"\x00" * 10 + b"\x00" * 8, "csrc"),  # 3 CSRCs announced, room for 2
    (b"\x90\x00" + b"\x00" * 10 + b"\xbe\xde", "extension"),  # extension header cut short
    (b"\x90\x00" + b"\x00" * 10 + b"\xbe\xde\x00\x02" + b"\x00" * 4, "extension"),
    (b"\xa0\x00" + b"\x00" * 10 + b"\x01\x02\x00", "padding"),  # padding count 0
    (b"\xa0\x00" + b"\x00" * 10 + b"\x01\x02\x09", "padding"),  # more padding than payload
    (b"\xa0\x00" + b"\x00" * 10, "padding"),  # padding bit, no byte to hold the count
])
def test_garbage_and_truncated_packets_are_rejected_with_a_reason(wire, reason):
    with pytest.raises(RtpError) as exc:
        parse(wire)
    assert exc.value.reason == reason


def test_build_refuses_fields_that_do_not_fit():
    with pytest.raises(ValueError):
        RtpPacket(128, 0, 0, 0, b"").build()
    with pytest.raises(ValueError):
        RtpPacket(0, 1 << 16, 0, 0, b"").build()
    with pytest.raises(ValueError):
        RtpPacket(0, 0, 0, 0, b"", csrc=tuple(range(16))).build()
    with pytest.raises(ValueError):
        RtpPacket(0, 0, 0, 0, b"", extension=(1, b"abc")).build()


@given(st.binary(max_size=400))
def test_any_bytes_either_parse_or_are_rejected_with_a_known_reason(data):
    try:
        p = parse(data)
    except RtpError as exc:
        assert exc.reason in REASONS
    else:
        assert len(p.payload) <= len(data) - 12
        assert data[0] >> 6 == 2


@given(pt=st.integers(0, 127), seq=st.integers(0, 0xFFFF), ts=st.integers(0, 0xFFFFFFFF),
       ssrc=st.integers(0, 0xFFFFFFFF), payload=st.binary(max_size=320),
       csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
       ext=st.none() | st.tuples(st.integers(0, 0xFFFF),
                                 st.binary(max_size=40).map(lambda b: b[: len(b) // 4 * 4])),
       padding=st.integers(0, 255), marker=st.booleans())
def test_every_buildable_packet_parses_back_to_itself(pt, seq, ts, ssrc, payload, csrc, ext,
                                                      padding, marker):
    if marker and 72 <= pt <= 76:
        pt = 0  # that bit pattern is RTCP by definition (RFC 5761)
    pkt = RtpPacket(pt, seq, ts, ssrc, payload, marker, tuple(csrc), ext, padding)
    assert parse(pkt.build()) == pkt


@given(st.binary(min_size=12, max_size=200), st.integers(0, 199))
def test_a_valid_packet_cut_anywhere_never_crashes(tail, cut):
    wire = RtpPacket(0, 1, 2, 3, tail, csrc=(9, 9), extension=(1, b"\0" * 8), padding=3).build()
    try:
        parse(wire[:cut])
    except RtpError as exc:
        assert exc.reason in REASONS


def test_header_struct_is_network_order():
    _, _, seq, ts, ssrc = struct.unpack("!BBHII", RtpPacket(0, 0x0102, 3, 4, b"").build())
    assert (seq, ts, ssrc) == (0x0102, 3, 4)
