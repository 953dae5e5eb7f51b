"""The asyncio phone client against fake hosts: deaths, garbage and silence never hang a test."""

import asyncio
import sys
import textwrap
import time

import pytest

from gateway.sip.client import (
    CallEnded,
    CommandError,
    PhoneError,
    PhoneHost,
    PhoneHostDied,
    PhoneTimeout,
    RegistrationError,
    check_wav,
)
from gateway.sip.model import CallState

FAKE = textwrap.dedent('''
    import json, sys, time
    mode = sys.argv[1]
    def out(obj):
        sys.stdout.write(json.dumps(obj) + "\\n"); sys.stdout.flush()
    if mode == "no_ready":
        print("pjsua2 failed to start: address already in use", file=sys.stderr)
        sys.exit(3)
    out({"event": "ready", "data": {"pid": 1, "pjsua": "fake", "max_accounts": 8,
                                    "max_calls": 32, "clock_rate": 8000}})
    if mode == "garbage":
        sys.stdout.write("this is not json\\n")
        out({"event": "call_state", "data": {"call": "c1"}})
        out({"event": "something_new", "data": {}})
        sys.stdout.flush()
    for line in sys.stdin:
        cmd = json.loads(line)
        name, mid, args = cmd["cmd"], cmd["id"], cmd["args"]
        if mode == "die_on_command":
            print("Assertion `acc_cnt < 8` failed", file=sys.stderr)
            sys.stderr.flush()
            sys.exit(134)
        if mode == "silent" and name != "shutdown":
            continue
        if name == "shutdown":
            out({"id": mid, "ok": True, "result": {}})
            sys.exit(0 if mode != "dirty_exit" else 6)
        if name == "add_account":
            out({"id": mid, "ok": True, "result": {"account": args["account"]}})
            code = 200 if args["password"] == "good" else 401
            out({"event": "reg_state", "data": {"account": args["account"], "code": code,
                 "reason": "OK" if code == 200 else "Unauthorized",
                 "registered": code == 200, "expires": 300}})
        elif name == "call":
            out({"event": "call_state", "data": {"account": args["account"], "call": "c1",
                 "state": "calling", "code": 0, "reason": ""}})
            if args["number"] == "answers_at_once":  # the reply read after all of these
                acc = args["account"]
                for state in ("connecting", "confirmed"):
                    out({"event": "call_state", "data": {"account": acc, "call": "c1",
                         "state": state, "code": 200, "reason": "OK"}})
                out({"event": "media_state", "data": {"account": acc, "call": "c1",
                     "status": "active", "codec": "PCMU/8000"}})
                out({"event": "dtmf", "data": {"account": acc, "call": "c1", "digit": "5",
                     "method": "rfc2833", "duration_ms": 100}})
            out({"id": mid, "ok": True, "result": {"call": "c1", "uri": "sip:x@y"}})
            if args["number"] == "busy":
                out({"event": "call_state", "data": {"account": args["account"], "call": "c1",
                     "state": "disconnected", "code": 486, "reason": "Busy Here"}})
        elif name == "ping":
            out({"id": mid, "ok": True, "result": {"accounts": []}})
        else:
            out({"id": mid, "ok": False, "error": f"no account {args.get('account')!r}",
                 "kind": "not_found"})
''')


@pytest.fixture
def fake(tmp_path):
    path = tmp_path / "fake_host.py"
    path.write_text(FAKE)

    def make(mode: str, **kw) -> PhoneHost:
        return PhoneHost(command=[sys.executable, str(path), mode], **kw)
    return make


async def test_a_host_that_fails_to_start_raises_with_its_own_words(fake):
    with pytest.raises(PhoneHostDied, match="exit status 3") as err:
        await fake("no_ready").start()
    assert "address already in use" in str(err.value)


async def test_a_host_dying_mid_command_fails_that_command_and_every_later_one(fake):
    async with fake("die_on_command") as host:
        waiting = asyncio.create_task(host.wait_for_incoming("agent1", timeout=60))
        t0 = time.monotonic()
        with pytest.raises(PhoneHostDied, match="exit status 134") as err:
            await host.ping()
        assert "Assertion" in str(err.value)  # the host's last words are in the error
        with pytest.raises(PhoneHostDied):
            await waiting  # a waiter does not sit out its 60 s
        assert time.monotonic() - t0 < 10
        with pytest.raises(PhoneHostDied):
            await host.call("caller1", "6001")
        assert not host.alive
    # leaving the block after the death does not raise a second time


async def test_garbage_from_the_host_is_reported_and_the_link_goes_on(fake):
    async with fake("garbage") as host:
        assert await host.ping() == {"accounts": []}
        assert any("not JSON" in p for p in host.problems)
        assert any("missing field" in p for p in host.problems)
        assert len(host.problems) == 2  # an unknown event name is not a problem


async def test_a_host_that_does_not_answer_gives_a_timeout_naming_the_command(fake):
    async with fake("silent", command_timeout=0.5) as host:
        with pytest.raises(PhoneTimeout, match="did not answer 'ping' within 0.5 s"):
            await host.ping()


async def test_registration_verdicts_and_refused_commands(fake):
    async with fake("ok") as host:
        reg = await host.register("agent1", "good", "127.0.0.1", 5060)
        assert reg.registered and reg.code == 200
        with pytest.raises(RegistrationError, match="refused: 401 Unauthorized") as err:
            await host.register("agent2", "bad", "127.0.0.1", 5060)
        assert err.value.code == 401 and "wrong password" in str(err.value)
        with pytest.raises(CommandError, match="no account 'ghost'") as cerr:
            await host.unregister("ghost", timeout=1)
        assert cerr.value.kind == "not_found"


async def test_a_call_that_ends_early_fails_the_wait_at_once_with_its_sip_status(fake):
    async with fake("ok") as host:
        call = await host.call("caller1", "busy")
        assert call.states[0] is CallState.CALLING  # reported before the reply, not lost
        t0 = time.monotonic()
        with pytest.raises(CallEnded, match="486 Busy Here before reaching confirmed") as err:
            await host.wait_for_state(call, CallState.CONFIRMED, timeout=30)
        assert err.value.code == 486 and time.monotonic() - t0 < 5
        assert (await host.wait_for_state(call, "disconnected")).code == 486


async def test_an_unclean_exit_on_close_is_an_error(fake):
    host = await fake("dirty_exit").start()
    with pytest.raises(PhoneHostDied, match="did not shut down cleanly"):
        await host.close()


async def test_commands_before_start_are_refused(fake):
    with pytest.raises(PhoneError, match="not started"):
        await fake("ok").ping()


def test_only_phone_ready_wavs_are_accepted(tmp_path):
    import wave

    def write(name, rate, ch, width):
        p = tmp_path / name
        with wave.open(str(p), "wb") as w:
            w.setnchannels(ch)
            w.setsampwidth(width)
            w.setframerate(rate)
            w.writeframes(b"\0" * rate * ch * width)
        return p
    assert check_wav(write("ok.wav", 8000, 1, 2)) == 1.0
    assert check_wav(write("ok16.wav", 16000, 1, 2)) == 1.0
    with pytest.raises(PhoneError, match="44100 Hz, 2 channel"):
        check_wav(write("cd.wav", 44100, 2, 2))
    with pytest.raises(PhoneError, match="no such file"):
        check_wav(tmp_path / "missing.wav")
    (tmp_path / "text.wav").write_text("hello")
    with pytest.raises(PhoneError, match="not a PCM WAV"):
        check_wav(tmp_path / "text.wav")


async def test_events_of_a_call_that_arrive_before_its_reply_is_read_are_not_lost(fake):
    """A PBX on loopback can answer before the client has read the reply to its INVITE: the
    call's state, media and DTMF events then precede the call handle, and must still apply."""
    async with fake("normal") as host:
        call = await host.call("alice", "answers_at_once")
        media = await host.wait_for_media(call, timeout=2)
        assert media.codec == "PCMU/8000"
        assert call.states == [CallState.CALLING, CallState.CONNECTING, CallState.CONFIRMED]
        assert await host.wait_for_dtmf(call, timeout=2) == "5"
