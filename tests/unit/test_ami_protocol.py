"""AMI framing: any byte split gives the same messages; bad frames are reported and skipped."""

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ami.protocol import Banner, Event, Parser, ProtocolError, Response, encode_action

STREAM = (
    b"Asterisk Call Manager/9.0.0\r\n"
    b"Response: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\n"
    b"Event: Newchannel\r\nChannel: PJSIP/caller1-00000001\r\nUniqueid: 1700000000.1\r\n"
    b"Linkedid: 1700000000.1\r\nCallerIDNum: 3351234567\r\n\r\n"
    b"Event: VarSet\r\nVariable: X\r\nValue: a: b: c\r\n\r\n"
    b"Event: AgentCalled\r\nQueue: billing\r\nChanVariable: A=1\r\nChanVariable: B=2\r\n\r\n"
    b"Response: Follows\r\nActionID: 2\r\nOutput: Asterisk 22.10.1\r\nOutput: second line\r\n\r\n"
)


def parse_all(chunks):
    p = Parser()
    out = []
    for c in chunks:
        out.extend(p.feed(c))
    return out


def test_a_stream_becomes_typed_messages():
    banner, login, newch, varset, called, follows = parse_all([STREAM])
    assert banner == Banner("9.0.0")
    assert isinstance(login, Response) and login.success and login.action_id == "1"
    assert isinstance(newch, Event) and newch.name == "Newchannel"
    assert newch.get("linkedid") == "1700000000.1"
    assert varset.get("Value") == "a: b: c"
    assert called.get_all("ChanVariable") == ["A=1", "B=2"]
    assert follows.output == ["Asterisk 22.10.1", "second line"]


def test_bare_newlines_are_tolerated():
    msgs = parse_all([STREAM.replace(b"\r\n", b"\n")])
    assert [type(m).__name__ for m in msgs] == ["Banner", "Response", "Event", "Event", "Event",
                                               "Response"]


@given(st.lists(st.integers(0, len(STREAM)), max_size=20))
def test_any_split_of_the_stream_gives_the_same_messages(cuts):
    cuts = sorted(set(cuts))
    chunks = [STREAM[a:b] for a, b in zip([0] + cuts, cuts + [len(STREAM)])]
    assert parse_all(chunks) == parse_all([STREAM])


def test_a_frame_without_event_or_response_is_an_error_and_parsing_goes_on():
    msgs = parse_all([b"Asterisk Call Manager/9.0.0\r\nFoo: bar\r\n\r\nEvent: Hangup\r\n\r\n"])
    assert isinstance(msgs[1], ProtocolError)
    assert isinstance(msgs[2], Event) and msgs[2].name == "Hangup"


def test_an_oversized_frame_is_dropped_and_the_next_frame_still_parses():
    p = Parser(max_frame_bytes=1000)
    big = b"Event: Huge\r\n" + b"X: " + b"y" * 5000 + b"\r\n\r\n"
    out = []
    for i in range(0, len(big), 700):
        out.extend(p.feed(big[i:i + 700]))
    out.extend(p.feed(b"Event: Hangup\r\nCause: 16\r\n\r\n"))
    assert any(isinstance(m, ProtocolError) for m in out)
    events = [m for m in out if isinstance(m, Event)]
    assert [e.name for e in events] == ["Hangup"]


def test_invalid_utf8_is_replaced_not_fatal():
    (ev,) = parse_all([b"Event: Newchannel\r\nCallerIDName: \xff\xfeBob\r\n\r\n"])
    assert ev.get("CallerIDName").endswith("Bob")


def test_truncated_frame_waits_for_the_rest():
    p = Parser()
    assert p.feed(b"Event: Hangup\r\nCause: 1") == []
    (ev,) = p.feed(b"6\r\n\r\n")
    assert ev.get("Cause") == "16"


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash_the_parser(data):
    p = Parser(max_frame_bytes=512)
    for m in p.feed(data) + p.feed(b"\r\n\r\nEvent: Ok\r\n\r\n"):
        assert isinstance(m, (Event, Response, Banner, ProtocolError))


def test_actions_are_encoded_with_repeated_keys_and_no_injection():
    raw = encode_action("Originate", "7", Channel="Local/100@from-callers", Variable=["A=1", "B=2"])
    assert raw.endswith(b"\r\n\r\n")
    assert b"Variable: A=1\r\nVariable: B=2\r\n" in raw
    try:
        encode_action("Command", "8", Command="core show version\r\nAction: Logoff")
    except ValueError as exc:
        assert "line break" in str(exc)
    else:
        raise AssertionError("header injection was not refused")
