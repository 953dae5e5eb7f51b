"""The SIP softphone module against the real Asterisk sandbox: real REGISTER, INVITE, G.711 RTP,
re-INVITE hold, RFC 4733 DTMF, REFER, speech played by one phone and recorded by the other."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import pytest

from gateway.ami.client import AMIActionError, AMIClient
from gateway.sip import (
    CallEnded,
    CallState,
    MediaStatus,
    PhoneHost,
    PhoneHostDied,
    RegistrationError,
)
from gateway.sip.audio import tts_wav_async, wav_level

pytestmark = pytest.mark.integration

SPEECH = "Thank you for calling Centralino. Your card has been blocked."


@pytest.fixture
async def ami(sandbox):
    client = AMIClient(sandbox.settings)
    events = []
    client.on_event(events.append)
    await client.connect()
    client.seen = events
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def phones(sandbox):
    """A phone host; leaving the test closes it and fails on an unclean pjsua shutdown."""
    async with PhoneHost() as host:
        a = sandbox.settings.asterisk
        host.pbx = (a.host, a.sip_port)
        yield host
    assert host.returncode == 0


async def register(sandbox, phones, *names, **kw):
    for name in names:
        await phones.register(name, sandbox.phone_password(name), *phones.pbx, **kw)


async def caller(sandbox, phones, name="caller1"):
    """Callers only authenticate their INVITEs: no REGISTER needed to place calls."""
    await phones.add_account(name, sandbox.phone_password(name), *phones.pbx, register=False)


@pytest.fixture
async def billing_agent1(ami):
    """agent1 logged in to the billing queue (6001), as the agent desktop would do."""
    added = await queue_add(ami, "billing", "agent1")
    yield
    if added:
        await ami.action("QueueRemove", Queue="billing", Interface="PJSIP/agent1")


async def queue_add(ami, queue, agent) -> bool:
    try:
        await ami.action("QueueAdd", Queue=queue, Interface=f"PJSIP/{agent}", MemberName=agent)
        return True
    except AMIActionError as exc:
        if "Already there" not in str(exc):
            raise
        return False


async def until(cond, timeout=15.0, what="condition"):
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout} s")


async def connect(phones, out_account, number, in_account):
    out = await phones.call(out_account, number)
    inc = await phones.wait_for_incoming(in_account, timeout=20)
    assert inc.states[0] is CallState.INCOMING and out_account in inc.remote_uri
    await phones.answer(inc)
    await phones.wait_for_state(out, CallState.CONFIRMED)
    await phones.wait_for_media(out)
    await phones.wait_for_media(inc)
    return out, inc


async def test_registration_is_accepted_and_a_wrong_password_is_refused_clearly(sandbox, phones):
    reg = await phones.register("agent3", sandbox.phone_password("agent3"), *phones.pbx)
    assert reg.registered and reg.code == 200 and reg.expires > 0
    assert "agent3/sip:agent3@127.0.0.1" in sandbox.cli("pjsip show contacts")
    with pytest.raises(RegistrationError, match="agent4 .* refused: 401 .*wrong password"):
        await phones.register("agent4", "not-the-password", *phones.pbx)
    assert "agent4/sip:" not in sandbox.cli("pjsip show contacts")
    await phones.unregister("agent3")
    await until(lambda: "agent3/sip:" not in sandbox.cli("pjsip show contacts"), 10,
                "agent3 unregistered")


async def test_a_caller_reaches_an_agent_through_a_queue_with_g711_both_ways(
        sandbox, phones, billing_agent1):
    await register(sandbox, phones, "agent1")
    await caller(sandbox, phones)
    out, inc = await connect(phones, "caller1", "6001", "agent1")
    assert out.codec == inc.codec == "PCMU/8000"
    await asyncio.sleep(3)
    for side in (await phones.stats(out), await phones.stats(inc)):
        assert side.codec == "PCMU/8000"
        # 50 packets/s for ~3 s each way; both directions carry real RTP through Asterisk
        assert side.rx_packets > 100 and side.tx_packets > 100, side
        assert side.rx_bytes == side.rx_packets * 160  # 20 ms of G.711 per packet
        assert 0 <= side.rx_jitter_ms < 40 and side.rx_loss_ratio < 0.05, side
        assert side.rtcp_reports >= 1 and 0 <= side.rtt_ms < 200, side  # RTCP from Asterisk
    await phones.hangup(out)
    await phones.wait_for_state(inc, CallState.DISCONNECTED)
    final = await phones.stats(inc)
    assert final.final and final.rx_packets > 100


async def test_agents_dial_each_other_directly_and_busy_is_reported(sandbox, phones):
    await register(sandbox, phones, "agent1", "agent2")
    out, inc = await connect(phones, "agent1", "agent2", "agent2")
    await phones.hangup(inc)
    await phones.wait_for_state(out, CallState.DISCONNECTED)
    again = await phones.call("agent1", "agent2")
    ringing = await phones.wait_for_incoming("agent2")
    await phones.busy(ringing)
    with pytest.raises(CallEnded, match="486") as err:
        await phones.wait_for_state(again, CallState.CONFIRMED)
    assert err.value.code == 486


async def test_hold_and_unhold_are_re_invites_asterisk_reports(sandbox, phones, ami):
    await register(sandbox, phones, "agent1", "agent2")
    out, inc = await connect(phones, "agent1", "agent2", "agent2")
    await phones.hold(out)
    assert (await phones.wait_for_media(out, MediaStatus.LOCAL_HOLD)).status == "local_hold"
    await until(lambda: any(e.name == "Hold" and "agent1" in (e.get("Channel") or "")
                            for e in ami.seen), what="AMI Hold on agent1's channel")
    await phones.unhold(out)
    await phones.wait_for_media(out, MediaStatus.ACTIVE)
    await until(lambda: any(e.name == "Unhold" and "agent1" in (e.get("Channel") or "")
                            for e in ami.seen), what="AMI Unhold on agent1's channel")
    before = (await phones.stats(inc)).rx_packets
    await asyncio.sleep(1)
    assert (await phones.stats(inc)).rx_packets > before + 20  # audio flows again after unhold
    await phones.hangup(out)


async def test_dtmf_from_a_phone_reaches_asterisk_as_rfc4733_events(sandbox, phones, ami):
    await register(sandbox, phones, "agent1")
    line = await phones.call("agent1", "198")  # answers and listens: Asterisk reads the digits
    await phones.wait_for_state(line, CallState.CONFIRMED)
    await phones.wait_for_media(line)
    await phones.send_dtmf(line, "4711#*")

    def received(name):
        return "".join(e.get("Digit") for e in ami.seen if e.name == name
                       and e.get("Direction") == "Received" and "agent1" in e.get("Channel"))
    await until(lambda: received("DTMFEnd") == "4711#*", what="AMI DTMFEnd for every digit")
    assert received("DTMFBegin") == "4711#*"
    assert all(int(e.get("DurationMs")) > 0 for e in ami.seen if e.name == "DTMFEnd")
    await phones.hangup(line)


async def test_dtmf_is_relayed_from_phone_to_phone(sandbox, phones):
    await register(sandbox, phones, "agent1", "agent2")
    out, inc = await connect(phones, "agent1", "agent2", "agent2")
    await phones.send_dtmf(out, "90*")
    assert await phones.wait_for_dtmf(inc, 2) == "90"
    assert await phones.wait_for_dtmf(inc, 1) == "*"  # each digit is handed out once
    assert inc.dtmf == "90*"
    await phones.send_dtmf(inc, "#")
    assert await phones.wait_for_dtmf(out) == "#"
    await phones.hangup(out)


async def test_speech_played_by_one_phone_is_recorded_by_the_other(
        sandbox, phones, billing_agent1, tmp_path):
    wav = await tts_wav_async(SPEECH)
    spoken = wav_level(wav)
    assert spoken.rate == 8000 and spoken.duration_s > 2
    await register(sandbox, phones, "agent1")
    await caller(sandbox, phones)
    out, inc = await connect(phones, "caller1", "6001", "agent1")
    await phones.start_recording(inc, tmp_path / "quiet.wav")
    await asyncio.sleep(1.0)
    quiet = await phones.stop_recording(inc)
    await phones.start_recording(inc, tmp_path / "heard.wav")
    playback = await phones.play(out, wav)
    assert await playback.wait() is True
    heard = await phones.stop_recording(inc)
    assert quiet.duration_s > 0.8 and wav_level(quiet.path).silent  # nothing sent: silence
    level = wav_level(heard.path)
    assert heard.duration_s >= spoken.duration_s * 0.9
    assert not level.silent and level.rms_dbfs > -40
    assert 0.5 * spoken.active_s < level.active_s < 1.5 * spoken.active_s + 0.5, (spoken, level)
    await phones.hangup(out)


async def test_a_blind_transfer_moves_the_caller_to_another_agent(
        sandbox, phones, ami, billing_agent1):
    await register(sandbox, phones, "agent1", "agent2")
    await caller(sandbox, phones)
    out, first = await connect(phones, "caller1", "6001", "agent1")
    # an agent transfers once talking: Asterisk refuses a REFER before its bridge is complete
    await until(lambda: any(e.name == "AgentConnect" and e.get("MemberName") == "agent1"
                            for e in ami.seen), what="AMI AgentConnect for agent1")
    await phones.transfer(first, "agent2")
    second = await phones.wait_for_incoming("agent2", timeout=20)
    assert "caller1" in second.remote_uri
    await phones.answer(second)
    done = await phones.wait_for_transfer(first)
    assert done.code == 200 and done.final
    await phones.wait_for_state(first, CallState.DISCONNECTED)  # the transferer drops out
    await phones.wait_for_state(second, CallState.CONFIRMED)
    await phones.wait_for_media(second)
    assert out.state is CallState.CONFIRMED  # the caller never left
    await until(lambda: any(e.name == "BlindTransfer" and e.get("Extension") == "agent2"
                            and "agent1" in e.get("TransfererChannel") for e in ami.seen),
                what="AMI BlindTransfer from agent1 to agent2")
    before = (await phones.stats(second)).rx_packets
    await asyncio.sleep(1)
    assert (await phones.stats(second)).rx_packets > before + 20  # caller's audio now here
    await phones.hangup(out)
    await phones.wait_for_state(second, CallState.DISCONNECTED)


async def test_a_crashed_phone_host_is_a_clear_error_and_a_new_host_works(sandbox, ami):
    host = await PhoneHost().start()
    a = sandbox.settings.asterisk
    await host.register("agent3", sandbox.phone_password("agent3"), a.host, a.sip_port)
    await host.add_account("agent4", sandbox.phone_password("agent4"), a.host, a.sip_port)
    out = await host.call("agent4", "agent3")
    inc = await host.wait_for_incoming("agent3")
    await host.answer(inc)
    await host.wait_for_state(out, CallState.CONFIRMED)
    waiting = asyncio.create_task(host.wait_for_state(out, CallState.DISCONNECTED, timeout=120))
    os.kill(host.pid, signal.SIGKILL)
    try:
        with pytest.raises(PhoneHostDied, match="killed by SIGKILL"):
            await asyncio.wait_for(waiting, 10)
        with pytest.raises(PhoneHostDied):
            await host.hangup(out)
        await host.close()  # no second error: the death was already reported
        async with PhoneHost() as again:  # the same account registers again from a new host
            reg = await again.register("agent3", sandbox.phone_password("agent3"), a.host,
                                       a.sip_port)
            assert reg.registered
    finally:  # Asterisk cannot know the phones died: end their channels for later tests
        await ami.action("Hangup", Channel="/^PJSIP/agent[34]-/")


async def test_each_account_offers_its_own_codec(sandbox, phones, billing_agent1):
    await register(sandbox, phones, "agent1")
    await phones.add_account("caller1", sandbox.phone_password("caller1"), *phones.pbx,
                             register=False, codec="G722/16000")
    await phones.add_account("caller2", sandbox.phone_password("caller2"), *phones.pbx,
                             register=False, codec="PCMA/8000")
    out, inc = await connect(phones, "caller1", "6001", "agent1")
    # Asterisk then offers the agent the caller's codec first; the agent answers in its order
    assert out.codec == inc.codec == "G722/16000"
    line = await phones.call("caller2", "198")
    await phones.wait_for_media(line)
    assert line.codec == "PCMA/8000"
    await asyncio.sleep(2)
    wideband = await phones.stats(inc)
    assert wideband.codec == "G722/16000" and wideband.rx_packets > 50
    assert wideband.rx_bytes == wideband.rx_packets * 160  # G.722: 64 kbit/s, 20 ms packets
    await phones.hangup(line)
    await phones.hangup(out)


def _cli(sandbox, *args):
    from click.testing import CliRunner

    from gateway.cli.phone_cmd import phone

    return CliRunner().invoke(phone, list(args), obj=sandbox.settings, catch_exceptions=False)


def test_cli_test_call_hears_the_line_check_beep(sandbox, tmp_path):
    res = _cli(sandbox, "call", "199", "--as", "caller3", "--record", str(tmp_path / "b.wav"))
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["answered"] and out["ended_by"] == "remote" and out["codec"] == "PCMU/8000"
    assert out["stats"]["rx_packets"] > 10
    assert not wav_level(out["recording"]["path"]).silent  # Asterisk's beep, recorded


def test_cli_reports_an_unanswered_call_and_an_unknown_phone_clearly(sandbox):
    res = _cli(sandbox, "call", "5555", "--as", "caller3")
    assert res.exit_code == 1 and "was not answered: 404 Not Found" in res.output
    res = _cli(sandbox, "call", "199", "--as", "nobody")
    assert res.exit_code == 1 and "no phone 'nobody'" in res.output


def test_cli_load_spreads_concurrent_calls_over_several_hosts(sandbox):
    res = _cli(sandbox, "load", "--calls", "10", "--concurrency", "6", "--number", "198",
               "--hold-s", "1")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["hosts"] == 2 and out["answered"] == 10 and out["failed"] == 0, out
    assert 0 < out["mean_setup_s"] <= out["max_setup_s"] < 10
