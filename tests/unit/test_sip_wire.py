"""Phone-host wire format: lines round-trip, any byte split reads the same, bad lines are named."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.sip.model import (
    CallState,
    CallStateChanged,
    StreamStats,
    event_from_wire,
    event_name,
    stats_from_wire,
    to_data,
)
from gateway.sip.wire import (
    Command,
    EventMessage,
    LineSplitter,
    Reply,
    WireError,
    decode_command,
    decode_host_message,
    encode,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8)
args_st = st.dictionaries(st.text(max_size=10), json_values, max_size=4)


@given(st.integers(0, 2**31), st.text(min_size=1, max_size=20), args_st)
def test_a_command_round_trips_as_one_line(mid, cmd, args):
    line = encode(Command(mid, cmd, args))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_command(line) == Command(mid, cmd, args)


@given(st.integers(0, 2**31), args_st, st.text(max_size=30), st.text(max_size=10))
def test_replies_and_events_round_trip(mid, result, error, kind):
    ok = Reply(mid, True, result=result)
    bad = Reply(mid, False, error=error, kind=kind)
    ev = EventMessage("call_state", result)
    for msg in (ok, bad, ev):
        assert decode_host_message(encode(msg)) == msg


@given(st.lists(st.tuples(st.integers(0, 999), st.text(min_size=1, max_size=8), args_st),
                min_size=1, max_size=6),
       st.lists(st.integers(1, 40), max_size=30))
def test_any_split_of_the_byte_stream_gives_the_same_lines(cmds, cuts):
    stream = b"".join(encode(Command(*c)) for c in cmds)
    sp = LineSplitter()
    got, pos = [], 0
    for cut in cuts + [len(stream)]:
        got += sp.feed(stream[pos:pos + cut])
        pos += cut
    got += sp.feed(stream[pos:])
    assert [decode_command(raw, n) for n, raw in got] == [Command(*c) for c in cmds]
    assert [n for n, _ in got] == list(range(1, len(cmds) + 1))


@pytest.mark.parametrize("line, reason", [
    (b"not json", "line 7: not JSON"),
    (b"[1, 2]", "line 7: expected a JSON object, got list"),
    (b'{"cmd": "call"}', "line 7: missing 'id'"),
    (b'{"id": -1, "cmd": "call"}', "'id' must be a non-negative integer, got -1"),
    (b'{"id": true, "cmd": "call"}', "'id' must be a non-negative integer, got True"),
    (b'{"id": "3", "cmd": "call"}', "'id' must be a non-negative integer, got '3'"),
    (b'{"id": 3}', "'cmd' must be a non-empty string, got None"),
    (b'{"id": 3, "cmd": ""}', "'cmd' must be a non-empty string"),
    (b'{"id": 3, "cmd": "call", "args": [1]}', "'args' must be an object, got list"),
    (b'\xff\xfe{"id": 1}', "line 7: not JSON"),
])
def test_a_malformed_command_line_says_which_line_and_what_is_wrong(line, reason):
    with pytest.raises(WireError) as err:
        decode_command(line, 7)
    assert reason in str(err.value)
    assert err.value.line == 7


def test_a_bad_command_with_a_readable_id_can_still_be_answered():
    with pytest.raises(WireError) as err:
        decode_command(b'{"id": 12, "cmd": 5}', 1)
    assert err.value.id == 12
    with pytest.raises(WireError) as err:
        decode_command(b'{"cmd": "x"}', 1)
    assert err.value.id is None


@pytest.mark.parametrize("line, reason", [
    (b'{"ok": true}', "neither a reply (no 'id') nor an event (no 'event')"),
    (b'{"id": 1, "ok": "yes"}', "'ok' must be true or false"),
    (b'{"id": 1, "ok": false}', "a failed reply needs an 'error' string"),
    (b'{"id": 1, "ok": true, "result": 3}', "'result' must be an object"),
    (b'{"event": 4}', "'event' must be a non-empty string"),
    (b'{"event": "dtmf", "data": "1"}', "'data' must be an object"),
])
def test_a_malformed_host_line_is_refused_clearly(line, reason):
    with pytest.raises(WireError, match="line 3: ") as err:
        decode_host_message(line, 3)
    assert reason in str(err.value)


def test_an_error_message_shows_a_short_snippet_of_the_bad_line():
    with pytest.raises(WireError) as err:
        decode_command(b"x" * 500, 2)
    text = str(err.value)
    assert len(text) < 200 and text.endswith("...'")


def test_an_over_long_line_is_dropped_and_reported_and_the_stream_goes_on():
    sp = LineSplitter(max_line=100)
    out = sp.feed(b"a" * 150)
    out += sp.feed(b"b" * 100 + b"\n" + encode(Command(1, "ping")))
    assert isinstance(out[0], WireError) and "longer than 100 bytes" in str(out[0])
    assert out[1:] == [(2, encode(Command(1, "ping")).rstrip(b"\n"))]
    assert sp.pending == 0


def test_blank_lines_are_skipped_but_counted():
    sp = LineSplitter()
    assert sp.feed(b"\n  \n" + encode(Command(4, "ping"))) == [(3, b'{"id":4,"cmd":"ping","args":{}}')]


def test_encoding_refuses_what_is_not_a_message_or_not_json():
    with pytest.raises(TypeError):
        encode({"id": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        encode(Reply(1, True, result={"x": float("nan")}))


def test_events_become_typed_dataclasses_and_back():
    data = {"account": "agent1", "call": "c3", "state": "confirmed", "code": 200, "reason": "OK"}
    ev = event_from_wire("call_state", data)
    assert ev == CallStateChanged("agent1", "c3", CallState.CONFIRMED, 200, "OK")
    assert event_name(ev) == "call_state" and to_data(ev) == data
    assert json.dumps(to_data(ev))  # plain JSON again


def test_an_unknown_event_is_ignored_but_a_broken_known_one_is_an_error():
    assert event_from_wire("future_thing", {"x": 1}) is None
    with pytest.raises(WireError, match="event 'call_state': missing field 'reason'"):
        event_from_wire("call_state", {"account": "a", "call": "c1", "state": "early",
                                       "code": 180})
    with pytest.raises(WireError, match="bad field 'state'"):
        event_from_wire("call_state", {"account": "a", "call": "c1", "state": "ringing",
                                       "code": 180, "reason": ""})
    with pytest.raises(WireError, match="bad field 'code'"):
        event_from_wire("call_state", {"account": "a", "call": "c1", "state": "early",
                                       "code": "180", "reason": ""})
    with pytest.raises(WireError, match="bad field 'code'"):
        event_from_wire("call_state", {"account": "a", "call": "c1", "state": "early",
                                       "code": True, "reason": ""})


def test_stats_accept_integral_floats_and_compute_the_loss_ratio():
    base = {"codec": "PCMU/8000", "rx_packets": 90, "rx_bytes": 14400, "rx_lost": 10,
            "rx_discarded": 0, "rx_jitter_ms": 2, "rx_jitter_max_ms": 5.5, "tx_packets": 100,
            "tx_bytes": 16000, "tx_loss": 0, "tx_jitter_ms": 1.0, "rtt_ms": 0.8,
            "rtt_max_ms": 1.2, "rtcp_reports": 3, "duration_s": 2.0}
    st_ = stats_from_wire(base)
    assert isinstance(st_, StreamStats) and st_.rx_jitter_ms == 2.0 and not st_.final
    assert st_.rx_loss_ratio == pytest.approx(0.1)
    with pytest.raises(WireError, match="stats: missing field 'codec'"):
        stats_from_wire({k: v for k, v in base.items() if k != "codec"})
