"""One phone host, many calls: one after another, overlapping, with speech and hold on a later
call. Every call must send RTP for as long as it lasts, counted by the phone itself and by the
far end (Asterisk's own RTP counters, or the other phone), because load callers, quality tests
and the demo all reuse one host for call after call.

Counts are checked against the time the test measured (50 packets/s of 20 ms G.711), with wide
bounds: a loaded box may lose a few clock ticks, never whole seconds of a call.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest

from gateway.ami.client import AMIActionError, AMIClient
from gateway.sip import Call, CallState, MediaStatus, PhoneHost
from gateway.sip.audio import tts_wav_async, wav_level

pytestmark = pytest.mark.integration

PPS = 50  # RTP packets per second at 20 ms ptime
TALK_S = 4.0
SPEECH = "Hello, I am calling about my last invoice. It seems too high this month."


@pytest.fixture
async def ami(sandbox):
    client = AMIClient(sandbox.settings)
    await client.connect()
    try:
        yield client
    finally:
        await client.close()


def _host_fixture():
    @pytest.fixture
    async def fixture(sandbox):
        """A phone host; leaving the test closes it and fails on an unclean pjsua shutdown."""
        async with PhoneHost() as host:
            a = sandbox.settings.asterisk
            host.pbx = (a.host, a.sip_port)
            yield host
        assert host.returncode == 0
    return fixture


phones = _host_fixture()  # the host under test
far = _host_fixture()  # the far end's phones, in a host of their own


async def callers(sandbox, host, *names):
    for name in names:
        await host.add_account(name, sandbox.phone_password(name), *host.pbx, register=False)


async def agents(sandbox, host, *names):
    for name in names:
        await host.register(name, sandbox.phone_password(name), *host.pbx)


@pytest.fixture
async def billing(ami):
    """Adds agents to the billing queue (6001) as their desktop would; removed afterwards."""
    added = []

    async def add(*names):
        for name in names:
            try:
                await ami.action("QueueAdd", Queue="billing", Interface=f"PJSIP/{name}",
                                 MemberName=name)
                added.append(name)
            except AMIActionError as exc:
                if "Already there" not in str(exc):
                    raise
    yield add
    for name in added:
        await ami.action("QueueRemove", Queue="billing", Interface=f"PJSIP/{name}")


def expected(elapsed_s: float) -> tuple[int, int]:
    """Bounds for packets sent or received over ``elapsed_s`` of media."""
    return int(0.6 * PPS * elapsed_s), int(1.2 * PPS * (elapsed_s + 1.0))


async def channel_of(ami, account: str) -> str:
    """Asterisk's one live channel for ``account`` (each test call uses its own account)."""
    for _ in range(100):
        found = [e.get("Channel") for e in await ami.action_list("CoreShowChannels")
                 if (e.get("Channel") or "").startswith(f"PJSIP/{account}-")]
        if len(found) == 1:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no single Asterisk channel for {account}: {found}")


async def asterisk_rx(ami, channel: str) -> int:
    """RTP packets Asterisk has received on ``channel`` (its own counter, not RTCP's)."""
    res = await ami.action("Getvar", Channel=channel, Variable="CHANNEL(rtcp,rxcount)")
    return int(res.get("Value"))


async def gone(ami, channel: str) -> None:
    for _ in range(100):
        if not any(e.get("Channel") == channel
                   for e in await ami.action_list("CoreShowChannels")):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{channel} still up in Asterisk")


@dataclass
class Leg:
    """What one call sent over a measured window, as the phone and as Asterisk counted it."""

    label: str
    elapsed_s: float
    phone_tx: int
    asterisk_rx: int

    def check(self) -> str | None:
        low, high = expected(self.elapsed_s)
        ok = low <= self.phone_tx <= high and low <= self.asterisk_rx <= high
        return None if ok else (f"{self.label}: {self.elapsed_s:.1f} s -> phone sent "
                                f"{self.phone_tx}, Asterisk received {self.asterisk_rx} "
                                f"(expected {low}..{high})")


async def measure(phones, ami, call: Call, channel: str, label: str,
                  seconds: float = TALK_S) -> Leg:
    """Packets over the next ``seconds``, as deltas (the stream may have run before)."""
    tx0 = (await phones.stats(call)).tx_packets
    rx0 = await asterisk_rx(ami, channel)
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    tx1 = (await phones.stats(call)).tx_packets
    rx1 = await asterisk_rx(ami, channel)
    return Leg(label, time.monotonic() - t0, tx1 - tx0, rx1 - rx0)


async def line_call(phones, ami, account: str) -> tuple[Call, str]:
    """A call to 198, which answers and listens: Asterisk only counts what we send."""
    call = await phones.call(account, "198")
    await phones.wait_for_media(call)
    return call, await channel_of(ami, account)


async def end(phones, ami, call: Call, channel: str) -> None:
    await phones.hangup(call)
    await phones.wait_for_state(call, CallState.DISCONNECTED)
    await gone(ami, channel)


async def test_calls_one_after_another_each_send_rtp_for_their_whole_length(
        sandbox, phones, ami):
    await callers(sandbox, phones, "caller1")
    legs = []
    # call 2 starts at once (within pjsua's idle window after call 1), call 3 after a pause
    for n, pause in enumerate((0.0, 0.0, 2.5), 1):
        await asyncio.sleep(pause)
        call, channel = await line_call(phones, ami, "caller1")
        legs.append(await measure(phones, ami, call, channel, f"call {n}"))
        await end(phones, ami, call, channel)
        final = await phones.stats(call)
        assert final.final and final.tx_packets >= legs[-1].phone_tx, final
    problems = [p for p in (leg.check() for leg in legs) if p]
    assert not problems, "\n".join(problems)


async def test_overlapping_calls_and_a_call_right_after_both_keep_sending(sandbox, phones, ami):
    await callers(sandbox, phones, "caller1", "caller2", "caller3")
    a, ch_a = await line_call(phones, ami, "caller1")
    b, ch_b = await line_call(phones, ami, "caller2")
    legs = [await measure(phones, ami, a, ch_a, "A beside B", 2.0)]
    await end(phones, ami, a, ch_a)
    legs.append(await measure(phones, ami, b, ch_b, "B after A ended"))
    await end(phones, ami, b, ch_b)
    c, ch_c = await line_call(phones, ami, "caller3")  # the host had no call for a moment
    legs.append(await measure(phones, ami, c, ch_c, "C after both"))
    await end(phones, ami, c, ch_c)
    problems = [p for p in (leg.check() for leg in legs) if p]
    assert not problems, "\n".join(problems)


async def answer_next(agent_host, names, timeout=30.0) -> Call:
    """Whichever agent's phone rings first answers (queue strategy decides who)."""
    waits = {asyncio.create_task(agent_host.wait_for_incoming(n, timeout=timeout)): n
             for n in names}
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    inc = done.pop().result()
    await agent_host.answer(inc)
    await agent_host.wait_for_media(inc)
    return inc


async def queue_call(callers_host, agent_host, names) -> tuple[Call, Call]:
    out = await callers_host.call("caller1", "6001")
    inc = await answer_next(agent_host, names)
    await callers_host.wait_for_state(out, CallState.CONFIRMED)
    await callers_host.wait_for_media(out)
    return out, inc


async def flow(sender_host, sender: Call, receiver_host, receiver: Call,
               seconds: float = TALK_S) -> tuple[float, int, int]:
    """(seconds, packets the sender sent, packets the receiver got) over the next ``seconds``."""
    tx0 = (await sender_host.stats(sender)).tx_packets
    rx0 = (await receiver_host.stats(receiver)).rx_packets
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    tx1 = (await sender_host.stats(sender)).tx_packets
    rx1 = (await receiver_host.stats(receiver)).rx_packets
    return time.monotonic() - t0, tx1 - tx0, rx1 - rx0


def check_flow(label: str, measured: tuple[float, int, int]) -> str | None:
    elapsed, tx, rx = measured
    low, high = expected(elapsed)
    if low <= tx <= high and low <= rx <= high:
        return None
    return f"{label}: {elapsed:.1f} s -> sent {tx}, received {rx} (expected {low}..{high})"


async def test_speech_played_on_later_calls_reaches_the_agent(
        sandbox, phones, far, billing, tmp_path):
    wav = await tts_wav_async(SPEECH)
    spoken = wav_level(wav)
    await callers(sandbox, phones, "caller1")
    await agents(sandbox, far, "agent1")
    await billing("agent1")
    problems = []
    for n in (1, 2, 3):
        out, inc = await queue_call(phones, far, ["agent1"])
        problems.append(check_flow(f"call {n} caller -> agent", await flow(phones, out, far, inc,
                                                                           2.0)))
        if n > 1:
            await far.start_recording(inc, tmp_path / f"heard{n}.wav")
            playback = await phones.play(out, wav)
            assert await playback.wait() is True
            heard = await far.stop_recording(inc)
            level = wav_level(heard.path)
            assert heard.duration_s >= spoken.duration_s * 0.9, (n, heard)
            assert not level.silent and level.rms_dbfs > -40, (n, level)
            assert 0.5 * spoken.active_s < level.active_s < 1.5 * spoken.active_s + 0.5, (
                n, spoken, level)
        await phones.hangup(out)
        await far.wait_for_state(inc, CallState.DISCONNECTED)
        await phones.wait_for_state(out, CallState.DISCONNECTED)
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)


async def test_two_agents_in_one_host_answer_queue_calls_in_turn_with_hold_on_a_later_call(
        sandbox, phones, far, billing):
    """As the demo runs: both agents' phones in one host, callers' phones in another."""
    await agents(sandbox, phones, "agent1", "agent2")
    await callers(sandbox, far, "caller1")
    await billing("agent1", "agent2")
    problems, answered_by = [], []
    for n in (1, 2, 3):
        out, inc = await queue_call(far, phones, ["agent1", "agent2"])
        answered_by.append(inc.account)
        problems.append(check_flow(f"call {n} agent -> caller", await flow(phones, inc, far,
                                                                           out)))
        if n == 3:
            await phones.hold(inc)
            await phones.wait_for_media(inc, MediaStatus.LOCAL_HOLD)
            await asyncio.sleep(1.0)
            await phones.unhold(inc)
            await phones.wait_for_media(inc, MediaStatus.ACTIVE)
            problems.append(check_flow("call 3 agent -> caller after unhold",
                                       await flow(phones, inc, far, out)))
            problems.append(check_flow("call 3 caller -> agent after unhold",
                                       await flow(far, out, phones, inc, 2.0)))
        await far.hangup(out)
        await phones.wait_for_state(inc, CallState.DISCONNECTED)
    assert set(answered_by) == {"agent1", "agent2"}, answered_by  # both phones took calls
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)
