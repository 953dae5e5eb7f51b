"""AMI framing: any byte split gives the same messages; bad frames are reported and skipped."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ami.protocol import (
    Banner,
    Event,
    Parser,
    ProtocolError,
    Response,
    encode_action,
    parse_headers,
)

STREAM = (
    b"Asterisk Call Manager/9.0.0\r\n"
    b"Response: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\n"
    b"Event: Newchannel\r\nChannel: PJSIP/caller1-00000001\r\nUniqueid: 1700000000.1\r\n"
    b"Linkedid: 1700000000.1\r\nCallerIDNum: 3351234567\r\n\r\n"
    b"Event: VarSet\r\nVariable: X\r\nValue: a: b: c\r\n\r\n"
    b"Event: AgentCalled\r\nQueue: billing\r\nChanVariable: A=1\r\nChanVariable: B=2\r\n\r\n"
    b"Response: Success\r\nActionID: 2\r\nMessage: Command output follows\r\n"
    b"Output: Asterisk 22.10.1 built by root\r\nOutput: second line: with colon\r\n\r\n"
)


def parse_all(chunks, parser=None):
    p = parser or Parser()
    out = []
    for c in chunks:
        out.extend(p.feed(c))
    return out


def kinds(msgs):
    return [type(m).__name__ for m in msgs]


def test_a_stream_becomes_typed_messages():
    banner, login, newch, varset, called, command = parse_all([STREAM])
    assert banner == Banner("9.0.0")
    assert isinstance(login, Response) and login.success and login.action_id == "1"
    assert login.message == "Authentication accepted"
    assert isinstance(newch, Event) and newch.name == "Newchannel"
    assert newch.get("Channel") == "PJSIP/caller1-00000001"
    assert varset.get("Value") == "a: b: c"
    assert called.get_all("ChanVariable") == ["A=1", "B=2"]
    assert command.action_id == "2"
    assert command.output == ["Asterisk 22.10.1 built by root", "second line: with colon"]


def test_keys_are_kept_as_sent_and_looked_up_case_insensitively():
    (ev,) = parse_all([b"Event: Cdr\r\nUniqueID: 17.1\r\nDisposition: ANSWERED\r\n\r\n"])
    assert list(ev.headers) == ["Event", "UniqueID", "Disposition"]
    assert ev.get("Uniqueid") == ev.get("uniqueid") == ev.get("UniqueID") == "17.1"
    assert ev.get("Missing") is None and ev.get("Missing", "x") == "x"
    assert ev.get_all("disposition") == ["ANSWERED"]


def test_a_repeated_key_is_a_list_and_get_returns_the_first_value():
    (ev,) = parse_all([(b"Event: AgentCalled\r\nChanVariable: A=1\r\nQueue: q\r\n"
                       b"ChanVariable: B=2\r\nChanVariable: C=3\r\n\r\n")])
    assert ev.get("ChanVariable") == "A=1"
    assert ev.headers["ChanVariable"] == ["A=1", "B=2", "C=3"]
    assert ev.headers["Queue"] == "q"
    assert ev.get("ChanVariable") == "A=1"  # same answer once the dict is built


def test_bare_and_mixed_newlines_are_tolerated():
    msgs = parse_all([STREAM.replace(b"\r\n", b"\n")])
    assert msgs == parse_all([STREAM])
    mixed = b"Event: Hangup\nCause: 16\r\nChannel: PJSIP/a-1\n\r\n"
    (ev,) = parse_all([mixed])
    assert ev.get("Cause") == "16" and ev.get("Channel") == "PJSIP/a-1"


def test_extra_blank_lines_between_frames_are_ignored():
    msgs = parse_all([b"\r\n\r\nEvent: A\r\nX: 1\r\n\r\n\r\n\r\n\r\nEvent: B\r\n\r\n\r\n"])
    assert [m.name for m in msgs] == ["A", "B"]


def test_a_missing_banner_is_not_required():
    (ev,) = parse_all([b"Event: Hangup\r\nCause: 16\r\n\r\n"])
    assert ev.name == "Hangup"


# --- any split, any valid stream -----------------------------------------------------------

_key = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,12}", fullmatch=True).filter(
    lambda k: k.lower() not in ("event", "response", "actionid", "output", "message"))
_value = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
                 max_size=30)
_frame = st.tuples(st.sampled_from(["Newchannel", "Hangup", "RTCPSent", "Cdr", "QueueMemberStatus"]),
                   st.lists(st.tuples(_key, _value), max_size=8))


def _encode(frames, eol):
    out = [b"Asterisk Call Manager/9.0.0" + eol]
    for name, pairs in frames:
        lines = [f"Event: {name}"] + [f"{k}: {v}" for k, v in pairs]
        out.append(eol.join(s.encode() for s in lines) + eol + eol)
    return b"".join(out)


def _expected(pairs):
    want = {}
    for k, v in pairs:
        want.setdefault(k, []).append(v)
    return {k: (vs if len(vs) > 1 else vs[0]) for k, vs in want.items()}


@settings(max_examples=200)
@given(st.lists(_frame, min_size=1, max_size=8), st.sampled_from([b"\r\n", b"\n"]), st.data())
def test_any_split_of_any_valid_stream_gives_the_same_correct_messages(frames, eol, data):
    raw = _encode(frames, eol)
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(raw)), max_size=30))))
    chunks = [raw[a:b] for a, b in zip([0] + cuts, cuts + [len(raw)])]
    whole = parse_all([raw])
    split = parse_all(chunks)
    assert split == whole
    assert whole[0] == Banner("9.0.0")
    events = whole[1:]
    assert [e.name for e in events] == [name for name, _ in frames]
    for ev, (name, pairs) in zip(events, frames):
        want = _expected(pairs)
        for k, v in want.items():  # the lazy lookup agrees with the dict built later
            assert ev.get(k) == (v[0] if isinstance(v, list) else v)
        assert {k: v for k, v in ev.headers.items() if k != "Event"} == want


@given(st.lists(st.integers(0, len(STREAM)), max_size=20))
def test_any_split_of_the_reference_stream_gives_the_same_messages(cuts):
    cuts = sorted(set(cuts))
    chunks = [STREAM[a:b] for a, b in zip([0] + cuts, cuts + [len(STREAM)])]
    assert parse_all(chunks) == parse_all([STREAM])


def test_one_byte_at_a_time_works():
    assert parse_all([STREAM[i:i + 1] for i in range(len(STREAM))]) == parse_all([STREAM])


# --- bad input: reported, skipped, parsing goes on -------------------------------------------

def test_a_frame_without_event_or_response_is_an_error_and_parsing_goes_on():
    msgs = parse_all([b"Asterisk Call Manager/9.0.0\r\nFoo: bar\r\n\r\nEvent: Hangup\r\n\r\n"])
    assert kinds(msgs) == ["Banner", "ProtocolError", "Event"]
    assert "neither Event nor Response" in str(msgs[1])
    assert msgs[2].name == "Hangup"


def test_a_line_without_colon_is_reported_and_the_good_headers_are_kept():
    msgs = parse_all([(b"Event: Hangup\r\nChannel: PJSIP/a-1\r\ngarbage here\r\nCause: 16\r\n\r\n"
                      b"Event: Newchannel\r\nChannel: PJSIP/b-2\r\n\r\n")])
    assert kinds(msgs) == ["Event", "ProtocolError", "Event"]
    hangup, err, newch = msgs
    assert hangup.get("Cause") == "16" and hangup.get("Channel") == "PJSIP/a-1"
    assert "garbage here" in str(err) and "Hangup" in str(err)
    assert newch.get("Channel") == "PJSIP/b-2"


def test_a_bad_line_hidden_next_to_a_value_with_colons_is_still_found():
    # As many ": " as lines, but one line has two and another none: must not pass as clean.
    msgs = parse_all([b"Event: VarSet\r\nValue: a: b\r\nnocolon\r\n\r\n"])
    assert kinds(msgs) == ["Event", "ProtocolError"]
    assert msgs[0].get("Value") == "a: b"


def test_key_colon_value_without_space_is_tolerated():
    (ev,) = parse_all([b"Event: Hangup\r\nCause:16\r\nCause-txt:\r\n\r\n"])
    assert ev.get("Cause") == "16" and ev.get("Cause-txt") == ""


def test_truncated_frame_waits_for_the_rest():
    p = Parser()
    assert p.feed(b"Event: Hangup\r\nCause: 1") == []
    (ev,) = p.feed(b"6\r\n\r\n")
    assert ev.get("Cause") == "16"


def test_a_frame_cut_off_mid_line_is_reported_and_the_next_frame_parses():
    msgs = parse_all([(b"Event: Hangup\r\nChannel: PJSIP/a-1\r\nCau\r\n\r\n"
                      b"Event: Newchannel\r\nChannel: PJSIP/b-2\r\n\r\n")])
    assert kinds(msgs) == ["Event", "ProtocolError", "Event"]
    assert msgs[2].name == "Newchannel"


@pytest.mark.parametrize("read_size", [1, 7, 700, 100_000])
def test_an_oversized_frame_is_dropped_and_the_next_frame_still_parses(read_size):
    p = Parser(max_frame_bytes=1000)
    stream = (b"Event: Before\r\n\r\n" + b"Event: Huge\r\nX: " + b"y" * 5000 + b"\r\n\r\n"
              + b"Event: Hangup\r\nCause: 16\r\n\r\n")
    out = parse_all([stream[i:i + read_size] for i in range(0, len(stream), read_size)], p)
    assert [m.name for m in out if isinstance(m, Event)] == ["Before", "Hangup"]
    errors = [m for m in out if isinstance(m, ProtocolError)]
    assert len(errors) == 1 and "exceeds 1000" in str(errors[0])


def test_an_oversized_frame_with_many_lines_is_skipped_to_its_own_end():
    p = Parser(max_frame_bytes=200)
    huge = b"Event: Huge\r\n" + b"".join(b"K%d: v\r\n" % i for i in range(200)) + b"\r\n"
    out = parse_all([huge[i:i + 64] for i in range(0, len(huge), 64)] + [b"Event: Ok\r\n\r\n"], p)
    assert kinds(out) == ["ProtocolError", "Event"] and out[1].name == "Ok"


def test_invalid_utf8_is_replaced_not_fatal():
    (ev,) = parse_all([b"Event: Newchannel\r\nCallerIDName: \xff\xfeBob\r\n\r\n"])
    assert ev.get("CallerIDName") == "\ufffd\ufffdBob"


def test_a_utf8_character_split_across_reads_survives():
    raw = "Event: Newchannel\r\nCallerIDName: Niccolò Müller\r\n\r\n".encode()
    cut = raw.index("ò".encode()) + 1
    (ev,) = parse_all([raw[:cut], raw[cut:]])
    assert ev.get("CallerIDName") == "Niccolò Müller"


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash_and_the_next_good_frame_parses(data):
    p = Parser(max_frame_bytes=512)
    msgs = p.feed(data) + p.feed(b"\r\n\r\nEvent: Ok\r\n\r\n")
    assert all(isinstance(m, (Event, Response, Banner, ProtocolError)) for m in msgs)
    assert isinstance(msgs[-1], Event) and msgs[-1].name == "Ok"


@settings(max_examples=200)
@given(st.lists(st.sampled_from([b"Event: A\r\n", b"X: 1\r\n", b"junk\r\n", b"\r\n", b": \r\n",
                                 b"Response: Error\r\n", b"\xff:\xfe\r\n", b"Y: a: b\r\n"]),
                max_size=40))
def test_garbage_made_of_plausible_lines_never_crashes(lines):
    msgs = parse_all([b"".join(lines), b"\r\n\r\nEvent: Ok\r\n\r\n"])
    assert isinstance(msgs[-1], Event) and msgs[-1].name == "Ok"
    for m in msgs:
        if isinstance(m, Event):
            m.headers, m.get("X"), m.get_all("Y")


# --- responses ------------------------------------------------------------------------------

def test_an_error_response_is_not_success_and_keeps_its_message():
    (resp,) = parse_all([b"Response: Error\r\nActionID: 9\r\nMessage: Authentication failed\r\n\r\n"])
    assert not resp.success and resp.action_id == "9" and resp.message == "Authentication failed"


def test_legacy_follows_output_keeps_blank_lines_and_colons():
    raw = (b"Response: Follows\r\nPrivilege: Command\r\nActionID: 3\r\n"
           b"Name: value lines look like headers\nsecond\n\nafter a blank line\n"
           b"--END COMMAND--\r\n\r\nEvent: Hangup\r\n\r\n")
    whole = parse_all([raw])
    assert parse_all([raw[i:i + 5] for i in range(0, len(raw), 5)]) == whole
    resp, ev = whole
    assert resp.success and resp.action_id == "3"
    assert resp.output == ["Name: value lines look like headers", "second", "",
                           "after a blank line"]
    assert ev.name == "Hangup"


def test_legacy_follows_without_its_end_marker_does_not_swallow_events():
    msgs = parse_all([b"Response: Follows\r\nActionID: 4\r\ntext\r\n\r\nEvent: Hangup\r\n\r\n"])
    assert kinds(msgs) == ["Response", "Event"]
    assert msgs[0].output == ["text"]


# --- parse_headers and Event helpers --------------------------------------------------------

def test_parse_headers_returns_the_lines_it_could_not_read():
    headers, bad = parse_headers("A: 1\r\nnope\r\nB:2\r\nA: 3")
    assert headers == {"A": ["1", "3"], "B": "2"} and bad == ["nope"]


def test_events_built_from_a_dict_behave_like_parsed_ones():
    ev = Event.from_headers({"Event": "Hangup", "Cause": "16"})
    assert ev == parse_all([b"Event: Hangup\r\nCause: 16\r\n\r\n"])[0]


# --- encoding -------------------------------------------------------------------------------

def test_actions_are_encoded_with_repeated_keys():
    raw = encode_action("Originate", "7", Channel="Local/100@from-callers", Variable=["A=1", "B=2"])
    assert raw == (b"Action: Originate\r\nActionID: 7\r\nChannel: Local/100@from-callers\r\n"
                   b"Variable: A=1\r\nVariable: B=2\r\n\r\n")


@pytest.mark.parametrize("bad", ["core show version\r\nAction: Logoff", "x\ny", "x\rAction: Logoff"])
def test_a_line_break_in_a_value_is_refused_so_no_action_can_be_injected(bad):
    with pytest.raises(ValueError, match="line break"):
        encode_action("Command", "8", Command=bad)
