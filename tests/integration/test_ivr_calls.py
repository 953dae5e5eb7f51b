"""The speech IVR on the real sandbox: pjsua2 callers dial 100, speak (espeak-ng, G.711 RTP) or
press keys, and land in the right Asterisk queue (AMI QueueCallerJoin); the call records, the
transcript table, ARI's channels and bridges, and the logs are checked afterwards."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import wave

import pytest
from sqlalchemy import select

from gateway.events import IvrCompleted, MediaStats
from gateway.ivr.component import IvrComponent
from gateway.ivr.orm import IvrTranscriptRow
from gateway.service import GatewayService
from gateway.sip import CallState, PhoneHost
from gateway.sip.audio import tts_wav_async

pytestmark = pytest.mark.integration

IVR = "100"
DIGIT = {"billing": "1", "lost_card": "2", "tech_support": "3", "customer_care": "0"}


async def until(cond, timeout=60.0, what="condition", step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        await asyncio.sleep(step)
    raise AssertionError(f"timed out after {timeout:g} s waiting for "
                         f"{what() if callable(what) else what}")


class Gateway:
    """The gateway service with the IVR component, plus what the test watches on AMI and ARI."""

    def __init__(self, service: GatewayService, ivr: IvrComponent):
        self.service, self.ivr = service, ivr
        self.joins: list[tuple[str, str]] = []  # (linkedid, queue) from AMI QueueCallerJoin
        self.ari_events: list[tuple[float, dict]] = []
        self.completed: list[IvrCompleted] = []
        self.media: list[MediaStats] = []
        service.ami.on_event(self._ami)
        service.ari.on_event(lambda ev: self.ari_events.append((time.monotonic(), ev)))
        service.bus.subscribe(IvrCompleted, self.completed.append)
        service.bus.subscribe(MediaStats, self.media.append)

    def _ami(self, ev):
        if ev.name == "QueueCallerJoin":
            self.joins.append((ev.get("Linkedid"), ev.get("Queue")))

    async def completed_for(self, caller: str, timeout=90.0) -> IvrCompleted:
        """The IVR result of the call whose channel is ``PJSIP/<caller>-...``."""
        def find():
            for s in self.ivr.completed:
                if s.channel_name.startswith(f"PJSIP/{caller}-"):
                    return next((e for e in self.completed if e.channel_id == s.channel_id),
                                None)
            return None
        return await until(find, timeout, f"the IVR to finish with {caller}")

    async def joined(self, linkedid: str, timeout=30.0) -> str:
        return await until(lambda: next((q for lid, q in self.joins if lid == linkedid), None),
                           timeout, f"QueueCallerJoin of {linkedid}")

    async def saved(self, linkedid: str, timeout=30.0):
        store = self.service.store

        async def get():
            return await store.get(linkedid)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            call = await get()
            if call is not None:
                return call
            await asyncio.sleep(0.1)
        raise AssertionError(f"call {linkedid} was never saved")

    def playbacks(self, channel_id: str) -> list[tuple[str, float, float | None, str]]:
        """(media, started, finished, state) per playback on the caller, from ARI's events."""
        out: dict[str, list] = {}
        for t, ev in self.ari_events:
            pb = ev.get("playback") or {}
            if pb.get("target_uri") != f"channel:{channel_id}":
                continue
            if ev["type"] == "PlaybackStarted":
                out[pb["id"]] = [pb["media_uri"].rsplit("/", 1)[1], t, None, pb.get("state")]
            elif ev["type"] == "PlaybackFinished" and pb["id"] in out:
                out[pb["id"]][2:] = [t, pb.get("state")]
        return [tuple(v) for v in out.values()]


@pytest.fixture
async def gateway(sandbox, tmp_path):
    s = sandbox.settings
    ivr = IvrComponent()
    service = GatewayService(s.model_copy(update={
        "data_dir": tmp_path, "http": s.http.model_copy(update={"port": 0})}), components=[ivr])
    await service.start()
    try:
        yield Gateway(service, ivr)
    finally:
        await service.stop()


@pytest.fixture
async def phones(sandbox):
    async with PhoneHost(clock_rate=8000) as host:
        a = sandbox.settings.asterisk
        host.pbx = (a.host, a.sip_port)
        yield host
    assert host.returncode == 0


async def dial_ivr(sandbox, phones, name="caller1"):
    await phones.add_account(name, sandbox.phone_password(name), *phones.pbx, register=False)
    call = await phones.call(name, IVR)
    await phones.wait_for_state(call, CallState.CONFIRMED, timeout=15)
    return call


def prompt_seconds(sandbox, name: str) -> float:
    path = sandbox.host_path(f"{sandbox.base}/sounds/demo-en/{name}.wav")
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


async def no_leftovers(gateway: Gateway):
    """Nothing of the IVR is left in Asterisk: no snoop/external media channel, no bridge."""
    ari = gateway.service.ari

    async def clean():
        chans = [c["name"] for c in await ari.request("GET", "/channels")]
        bridges = await ari.request("GET", "/bridges")
        return (not any(n.startswith(("Snoop/", "UnicastRTP/")) for n in chans)
                and not bridges, chans, bridges)
    end = time.monotonic() + 10
    while True:
        ok, chans, bridges = await clean()
        if ok:
            return
        if time.monotonic() > end:
            raise AssertionError(f"left in Asterisk: channels {chans}, bridges {bridges}")
        await asyncio.sleep(0.1)


# -- keys ---------------------------------------------------------------------------------------

async def test_a_key_during_the_welcome_stops_it_and_lands_in_the_lost_card_queue(
        sandbox, gateway, phones):
    call = await dial_ivr(sandbox, phones)
    welcome_s = prompt_seconds(sandbox, "welcome")
    s = await until(lambda: next(iter(gateway.ivr.sessions.values()), None), 15, "an IVR session")
    await until(lambda: any(p[0] == "welcome" for p in gateway.playbacks(s.channel_id)), 15,
                "the welcome prompt to start")
    await phones.send_dtmf(call, "2")
    done = await gateway.completed_for("caller1")
    assert (done.intent, done.via, done.queue, done.confidence) == (
        "lost_card", "dtmf", "lost_card", 1.0)
    assert await gateway.joined(done.linkedid) == "lost_card"
    welcome = next(p for p in gateway.playbacks(s.channel_id) if p[0] == "welcome")
    # barge-in: ARI says the welcome stopped long before its end
    assert welcome[2] is not None and welcome[2] - welcome[1] < welcome_s / 2, welcome
    await phones.hangup(call)
    rec = await gateway.saved(done.linkedid)
    assert (rec.intent, rec.ivr_via, rec.queue, rec.intent_confidence) == (
        "lost_card", "dtmf", "lost_card", 1.0)
    assert rec.language == "en"
    await no_leftovers(gateway)


async def in_welcome(gateway: Gateway, caller: str):
    """The caller's IVR session once ARI says its welcome prompt is playing."""
    s = await until(lambda: next((x for x in gateway.ivr.sessions.values()
                                  if x.channel_name.startswith(f"PJSIP/{caller}-")), None),
                    15, f"an IVR session for {caller}")
    await until(lambda: any(p[0] == "welcome" for p in gateway.playbacks(s.channel_id)), 15,
                "the welcome prompt to start")
    return s


async def transcript_row(gateway: Gateway, tid: int) -> IvrTranscriptRow:
    async with gateway.service.ctx.sessions() as db:
        return (await db.execute(select(IvrTranscriptRow).where(IvrTranscriptRow.id == tid))
                ).scalar_one()


# -- speech -------------------------------------------------------------------------------------

async def test_speech_during_the_welcome_barges_in_and_lands_in_the_right_queue(
        sandbox, gateway, phones):
    wav = await tts_wav_async("I lost my card")
    call = await dial_ivr(sandbox, phones)
    s = await in_welcome(gateway, "caller1")
    await phones.play(call, wav)
    done = await gateway.completed_for("caller1")
    assert (done.intent, done.via, done.queue) == ("lost_card", "speech", "lost_card")
    assert done.confidence >= 0.5 and done.transcript == "i lost my card"
    assert await gateway.joined(done.linkedid) == "lost_card"
    welcome = next(p for p in gateway.playbacks(s.channel_id) if p[0] == "welcome")
    assert welcome[2] - welcome[1] < prompt_seconds(sandbox, "welcome") / 2, welcome
    latency = s.outcome.latency_ms
    print(f"\nintent latency after end of speech on a real call: {latency:.0f} ms")
    await phones.hangup(call)
    rec = await gateway.saved(done.linkedid)
    assert (rec.intent, rec.ivr_via, rec.queue) == ("lost_card", "speech", "lost_card")
    assert rec.intent_confidence == pytest.approx(done.confidence)
    assert rec.transcript_id == done.transcript_id is not None
    row = await transcript_row(gateway, rec.transcript_id)
    assert (row.transcript, row.intent, row.linkedid) == ("i lost my card", "lost_card",
                                                          done.linkedid)
    media = await until(lambda: next((m for m in gateway.media if m.linkedid == done.linkedid),
                                     None), 10, "MediaStats")
    assert media.codec == "ulaw" and media.packets > 50 and media.lost == 0
    print(f"external media: {media.packets} packets, jitter avg {media.jitter_ms_avg:.2f} ms, "
          f"max {media.jitter_ms_max:.2f} ms")
    await no_leftovers(gateway)


async def test_a_card_number_said_in_the_ivr_never_reaches_the_database_or_the_logs(
        sandbox, gateway, phones, caplog):
    caplog.set_level(logging.DEBUG)
    said = ("I lost my card. My card number is four five five six one two three four "
            "five six seven eight nine zero one two")
    wav = await tts_wav_async(said)
    call = await dial_ivr(sandbox, phones)
    await in_welcome(gateway, "caller1")
    await phones.play(call, wav)
    s = await until(lambda: next((x for x in gateway.ivr.sessions.values() if x.outcome.turns),
                                 None) or next(iter(gateway.ivr.completed), None), 60,
                    "a first answer")
    await phones.hangup(call)  # routed or not, the answer is stored (via=hangup if not routed)
    done = await gateway.completed_for("caller1")
    assert s.outcome.turns[0].kind in ("speech", "no_match") and s.outcome.turns[0].heard
    rec = await gateway.saved(done.linkedid)
    spoken = re.compile(r"(four|five|six|seven|eight|nine|zero|one|two|three)[ -]+"
                        r"(four|five|six|seven|eight|nine|zero|one|two|three)[ -]+"
                        r"(four|five|six|seven|eight|nine|zero|one|two|three)", re.IGNORECASE)
    async with gateway.service.ctx.sessions() as db:
        rows = (await db.execute(select(IvrTranscriptRow))).scalars().all()
    stored = " ".join(f"{r.transcript} {r.turns}" for r in rows)
    assert [r.id for r in rows] == [done.transcript_id]
    assert rec.ivr_via == done.via, [(e.kind, e.data) for e in rec.timeline]
    for text in (stored, caplog.text, str(done)):
        assert not spoken.search(text), text[:500]
        assert not re.search(r"4\D?5\D?5\D?6\D?1\D?2", text), text[:500]


async def test_out_of_grammar_speech_is_asked_again_not_sent_to_a_random_queue(
        sandbox, gateway, phones):
    wav = await tts_wav_async("What's the weather tomorrow")
    call = await dial_ivr(sandbox, phones)
    s = await in_welcome(gateway, "caller1")
    await phones.play(call, wav)
    await until(lambda: any(p[0] == "retry" for p in gateway.playbacks(s.channel_id)), 60,
                "the retry prompt")
    assert [t.kind for t in s.outcome.turns] == ["no_match"]
    assert s.outcome.turns[0].heard.intent is None
    assert not gateway.joins  # nowhere yet
    await phones.send_dtmf(call, "3")
    done = await gateway.completed_for("caller1")
    assert (done.queue, done.via) == ("tech_support", "dtmf")
    assert await gateway.joined(done.linkedid) == "tech_support"
    await phones.hangup(call)


async def test_a_silent_caller_is_asked_again_then_sent_to_the_customer_care_queue(
        sandbox, gateway, phones):
    call = await dial_ivr(sandbox, phones)
    s = await in_welcome(gateway, "caller1")
    done = await gateway.completed_for("caller1", timeout=120)
    assert (done.intent, done.via, done.queue, done.confidence) == (
        "agent", "fallback", "customer_care", None)
    assert [p[0] for p in gateway.playbacks(s.channel_id)] == [
        "welcome", "retry", "retry", "fallback"]
    assert [t.kind for t in s.outcome.turns] == ["no_input"] * 3
    assert "customer_care" in gateway.ivr.asterisk_queues
    assert await gateway.joined(done.linkedid) == "customer_care"
    await phones.hangup(call)
    rec = await gateway.saved(done.linkedid)
    assert (rec.intent, rec.ivr_via, rec.queue, rec.transcript_id) == (
        "agent", "fallback", "customer_care", None)
    await no_leftovers(gateway)


async def test_a_caller_hanging_up_in_the_ivr_leaves_nothing_behind(sandbox, gateway, phones):
    call = await dial_ivr(sandbox, phones)
    s = await in_welcome(gateway, "caller1")
    await until(lambda: s.media is not None and s.media.endpoint is not None
                and s.media.endpoint.stats.snapshot().received > 10, 15, "caller audio")
    await phones.hangup(call)
    done = await gateway.completed_for("caller1")
    assert (done.via, done.queue, done.intent) == ("hangup", None, None)
    rec = await gateway.saved(done.linkedid)
    assert rec.ivr_via == "hangup" and rec.queue is None
    await no_leftovers(gateway)
    assert not gateway.joins


# -- many at once -------------------------------------------------------------------------------

async def test_several_callers_at_once_are_each_routed_by_what_they_said(sandbox, gateway):
    said = {"load1": ("I lost my card", "lost_card"), "load2": ("technical support",
                                                            "tech_support"),
            "load3": ("2", "lost_card"), "load4": ("I want a refund", "billing"),
            "load5": ("I forgot my password", "tech_support"), "load6": ("1", "billing"),
            "load7": ("3", "tech_support"), "load8": ("I lost my card", "lost_card")}
    wavs = {n: await tts_wav_async(t) for n, (t, _) in said.items() if not t.isdigit()}
    a = sandbox.settings.asterisk
    async with PhoneHost(clock_rate=8000) as h1, PhoneHost(clock_rate=8000) as h2:
        hosts = {}
        for i, name in enumerate(said):
            host = (h1, h2)[i % 2]
            hosts[name] = host
            await host.add_account(name, sandbox.phone_password(name), a.host, a.sip_port,
                                   register=False)

        async def one(name):
            host = hosts[name]
            call = await host.call(name, IVR)
            await host.wait_for_state(call, CallState.CONFIRMED, timeout=30)
            s = await in_welcome(gateway, name)
            if name in wavs:
                await host.play(call, wavs[name])
                # Not understood (or not sure)? Like a real caller, use the keys the retry or
                # confirmation prompt offers; a wrong queue is never acceptable.
                seen = await until(lambda: s.outcome.via or next(
                    (p[0] for p in gateway.playbacks(s.channel_id)
                     if p[0] == "retry" or p[0].startswith("confirm")), None), 60,
                    f"{name}: routed, or asked again")
                if seen == "retry":
                    await host.send_dtmf(call, DIGIT[said[name][1]])
                elif seen.startswith("confirm"):
                    await host.send_dtmf(call, "1")
            else:
                await host.send_dtmf(call, said[name][0])
            done = await gateway.completed_for(name, timeout=120)
            queue = await gateway.joined(done.linkedid)
            await host.hangup(call)
            return name, queue, done

        results = await asyncio.gather(*(one(n) for n in said))
    for name, queue, done in results:
        assert queue == said[name][1], (name, done)
    assert any(d.via == "speech" for _, _, d in results)
    print(f"\n{len(results)} concurrent IVR calls routed: "
          + ", ".join(f"{n}->{q} ({d.via}, {d.confidence})" for n, q, d in results))
    await no_leftovers(gateway)


# -- a flow without a speech model ---------------------------------------------------------------

async def test_a_flow_without_a_speech_model_runs_on_keys_with_one_warning_at_start(
        caplog, sandbox, gateway, phones):
    warned = [r.getMessage() for r in caplog.get_records("setup")
              if r.name == "gateway.ivr.component" and "demo-it" in r.getMessage()
              and "keys only" in r.getMessage()]
    assert len(warned) == 1, warned
    assert not gateway.ivr.ears["demo-it"].speech
    await phones.add_account("caller2", sandbox.phone_password("caller2"), *phones.pbx,
                             register=False)
    call = await phones.call("caller2", "101")
    await phones.wait_for_state(call, CallState.CONFIRMED, timeout=15)
    s = await in_welcome(gateway, "caller2")
    assert s.flow.name == "demo-it" and s.media is None  # no external media without speech
    await phones.send_dtmf(call, "1")
    done = await gateway.completed_for("caller2")
    assert (done.flow, done.language, done.intent, done.via) == ("demo-it", "it", "billing",
                                                                 "dtmf")
    assert await gateway.joined(done.linkedid) == "billing"
    await phones.hangup(call)
    rec = await gateway.saved(done.linkedid)
    assert (rec.intent, rec.language, rec.ivr_via) == ("billing", "it", "dtmf")


@pytest.fixture
async def always_confirm(sandbox, tmp_path):
    """The gateway with demo-en asking "is that right?" below confidence 1.0 (always, in
    practice), so the confirmation does not depend on how sure the recogniser is today."""
    flows = tmp_path / "flows"
    flows.mkdir()
    text = (sandbox.settings.flows_path / "demo-en.yaml").read_text()
    assert "confirm_below: 0.7" in text
    assert "confidence_threshold: 0.5" in text
    (flows / "demo-en.yaml").write_text(text.replace("confirm_below: 0.7", "confirm_below: 1.0")
                                        .replace("confidence_threshold: 0.5",
                                                 "confidence_threshold: 0.2"))
    s = sandbox.settings
    ivr = IvrComponent()
    service = GatewayService(s.model_copy(update={
        "data_dir": tmp_path, "http": s.http.model_copy(update={"port": 0}),
        "speech": s.speech.model_copy(update={"flows_dir": flows})}), components=[ivr])
    await service.start()
    try:
        yield Gateway(service, ivr)
    finally:
        await service.stop()


async def test_a_doubtful_answer_is_confirmed_by_saying_yes(sandbox, always_confirm, phones):
    gateway = always_confirm
    ask, yes = await tts_wav_async("I cannot log in"), await tts_wav_async("Yes")
    call = await dial_ivr(sandbox, phones)
    s = await in_welcome(gateway, "caller1")
    await phones.play(call, ask)
    await until(lambda: any(p[0] == "confirm-tech_support"
                            for p in gateway.playbacks(s.channel_id)),
                60, lambda: f"the confirm-tech_support prompt; turns: {s.outcome.turns}, playbacks: "
                            f"{gateway.playbacks(s.channel_id)}")
    await phones.play(call, yes)
    done = await gateway.completed_for("caller1")
    assert [t.kind for t in s.outcome.turns] == ["speech", "confirm_yes"]
    assert s.outcome.turns[1].heard.intent == "yes"
    assert (done.intent, done.via, done.queue) == ("tech_support", "speech", "tech_support")
    assert 0.2 <= done.confidence < 1.0
    assert await gateway.joined(done.linkedid) == "tech_support"
    await phones.hangup(call)
