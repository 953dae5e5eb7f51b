"""The IVR state machine: routing, confirmation, retries, barge-in, and every fault we can inject.

Fakes here exist only to inject faults and hang-ups at exact steps (ARI refusing a request,
the recogniser raising or hanging, the caller leaving); the same code runs against the real
Asterisk in tests/integration/test_ivr_calls.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pytest

from gateway.ari.client import ARIError, ARINotFound
from gateway.dialplan.flow import load_flow
from gateway.dialplan.site import load_site, site_path
from gateway.ivr.ears import SPEECH_ENDED, SPEECH_STARTED, DtmfOnly, Heard
from gateway.ivr.session import IvrConfig, IvrSession
from gateway.settings import REPO_DIALPLANS

SITE = load_site(site_path(REPO_DIALPLANS))
BASE_FLOW = load_flow(REPO_DIALPLANS / "flows" / "demo-en.yaml", SITE)
FAST = dataclasses.replace(BASE_FLOW.recognition, no_input_timeout_s=0.15, max_speech_s=1.0,
                           dtmf_timeout_s=0.15)
FLOW = dataclasses.replace(BASE_FLOW, recognition=FAST)
CFG = IvrConfig("centralino", "/snd", "127.0.0.1", None, decode_timeout_s=0.3,
                prompt_timeout_s=2.0, db_timeout_s=0.3)
PROMPT_S = {"welcome": 0.3, "retry": 0.2, "confirm": 0.1, "transfer": 0.05, "fallback": 0.05}


class FakeAri:
    """Answers like ARI; plays prompts for PROMPT_S seconds; fails or hangs up on demand."""

    def __init__(self):
        self.session: IvrSession | None = None
        self.calls: list[tuple[str, str, dict]] = []
        self.fail: dict[str, Exception] = {}  # substring of "METHOD path" -> error
        self.hangup_on: str | None = None  # substring of "METHOD path" that makes the caller go
        self.gone = False
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.prompts: list[str] = []

    def hang_up(self):
        if not self.gone:
            self.gone = True
            self.session.on_ari_event({"type": "ChannelHangupRequest",
                                       "channel": {"id": "chan-1"}})
            self.session.on_ari_event({"type": "StasisEnd", "channel": {"id": "chan-1"}})

    def _finish(self, pid):
        self._timers.pop(pid, None)
        self.session.on_ari_event({"type": "PlaybackFinished",
                                   "playback": {"id": pid, "target_uri": "channel:chan-1"}})

    async def request(self, method, path, **params):
        key = f"{method} {path}"
        self.calls.append((method, path, params))
        await asyncio.sleep(0)
        if self.hangup_on and self.hangup_on in key + str(params.get("media", "")):
            self.hang_up()
        for k, exc in self.fail.items():
            if k in key:
                raise exc
        if self.gone and path.startswith("/channels/chan-1"):
            raise ARINotFound(f"{key}: not found")
        loop = asyncio.get_running_loop()
        if method == "POST" and "/play/" in path:
            pid = path.rsplit("/", 1)[1]
            name = params["media"].rsplit("/", 1)[1].split("-")[0]
            self.prompts.append(params["media"].rsplit("/", 1)[1])
            self._timers[pid] = loop.call_later(PROMPT_S.get(name, 0.1), self._finish, pid)
        elif method == "DELETE" and path.startswith("/playbacks/"):
            pid = path.rsplit("/", 1)[1]
            t = self._timers.pop(pid, None)
            if t is None:
                raise ARINotFound("playback not found")
            t.cancel()
            loop.call_soon(self._finish, pid)
        return {}

    def posted(self, suffix):
        return [(p, kw) for m, p, kw in self.calls if m == "POST" and p.endswith(suffix)]

    @property
    def variables(self):
        return {kw["variable"]: kw["value"] for _, kw in self.posted("/variable")}

    @property
    def continued(self):
        return [kw for _, kw in self.posted("/continue")]


@dataclass
class Script:
    """One utterance: speech starts after ``start`` frames and ends ``length`` frames later."""

    start: int | None = None
    length: int = 5
    heard: Heard | Exception | None = None
    result_delay: float = 0.0
    feed_error_at: int | None = None


class FakeUtterance:
    def __init__(self, script: Script, log: list):
        self.s, self.n, self.closed, self.log = script, 0, False, log

    async def feed(self, pcm):
        assert pcm.dtype == np.int16 and len(pcm) == 160
        self.n += 1
        if self.s.feed_error_at is not None and self.n >= self.s.feed_error_at:
            raise RuntimeError("recogniser crashed while decoding")
        out = []
        if self.s.start is not None:
            if self.n == self.s.start:
                out.append(SPEECH_STARTED)
            if self.n == self.s.start + self.s.length:
                out.append(SPEECH_ENDED)
        return out

    async def result(self):
        await asyncio.sleep(self.s.result_delay)
        if isinstance(self.s.heard, Exception):
            raise self.s.heard
        return self.s.heard or Heard(None, 0.0, "", "fake", "en", 1.0)

    async def close(self):
        self.closed = True


class FakeEars:
    speech = True
    engine = "fake"

    def __init__(self, *scripts: Script):
        self.scripts = list(scripts)
        self.made: list[FakeUtterance] = []
        self.grammars: list[str] = []

    def utterance(self, grammar):
        self.grammars.append(grammar)
        u = FakeUtterance(self.scripts.pop(0) if self.scripts else Script(), self.made)
        self.made.append(u)
        return u


class FakeMedia:
    """Delivers a 20 ms frame every 2 ms (time runs 10x fast) until stopped."""

    def __init__(self, on_pcm, fail_start=False):
        self.channel_ids = {"snoop-1", "media-1"}
        self.on_pcm, self.fail_start = on_pcm, fail_start
        self.task = None
        self.stopped = 0

    async def start(self):
        self.task = asyncio.create_task(self._run())
        if self.fail_start:
            raise ARIError("POST /channels/externalMedia: HTTP 500")

    async def _run(self):
        while True:
            self.on_pcm(np.zeros(160, np.int16))
            await asyncio.sleep(0.002)

    async def stop(self):
        self.stopped += 1
        self.task.cancel()


@dataclass
class Harness:
    ari: FakeAri
    ears: object
    session: IvrSession
    media: list = field(default_factory=list)
    left: list = field(default_factory=list)
    saved: list = field(default_factory=list)
    redirected: list = field(default_factory=list)


def make(ears=None, flow=FLOW, fail_media=False, save_error=None) -> Harness:
    ari = FakeAri()
    ears = ears if ears is not None else FakeEars()
    h = Harness(ari, ears, None)

    def media(on_pcm):
        m = FakeMedia(on_pcm, fail_media)
        h.media.append(m)
        return m

    async def save(s):
        if save_error:
            raise save_error
        h.saved.append((s.outcome.transcript, [t.heard.transcript for t in s.outcome.turns
                                               if t.heard]))
        return 41

    async def redirect(name, queue):
        h.redirected.append((name, queue))

    h.session = IvrSession(
        ari=ari, flow=flow, ears=ears, config=CFG,
        channel={"id": "chan-1", "name": "PJSIP/caller1-0001", "linkedid": "lid-1"},
        media_factory=media, save_transcript=save, redirect=redirect,
        on_leave=lambda s: h.left.append(s.outcome.via),
        on_media_stats=lambda *a: None)
    ari.session = h.session
    return h


async def run(h: Harness, timeout=10):
    return await asyncio.wait_for(h.session.run(), timeout)


def heard(intent, conf, text="text"):
    return Heard(intent, conf, text, "fake", "en", 12.0)


def press(h, digit, after):
    asyncio.get_running_loop().call_later(after, h.session.on_ari_event, {
        "type": "ChannelDtmfReceived", "digit": digit, "channel": {"id": "chan-1"}})


# -- routing ---------------------------------------------------------------------------------

async def test_a_key_during_the_welcome_stops_it_and_routes_by_dtmf():
    h = make(FakeEars(Script()))
    press(h, "2", 0.05)
    o = await run(h)
    assert (o.via, o.intent, o.queue, o.confidence) == ("dtmf", "lost_card", "lost_card", 1.0)
    assert o.turns[0].barged_in
    assert any(m == "DELETE" and p.startswith("/playbacks/") for m, p, _ in h.ari.calls)
    assert h.ari.continued == [{"context": "centralino-queues", "extension": "lost_card",
                                "priority": 1}]
    assert h.ari.variables["CENTRALINO_INTENT"] == "lost_card"
    assert h.ari.variables["CENTRALINO_IVR_VIA"] == "dtmf"
    assert h.ari.variables["CENTRALINO_LANGUAGE"] == "en"
    assert h.ari.prompts == ["welcome", "transfer-lost_card"]
    assert h.left == ["dtmf"] and h.media[0].stopped == 1
    assert h.saved == []  # nothing was said: no transcript row


async def test_confident_speech_routes_with_transcript_and_variables():
    h = make(FakeEars(Script(start=3, heard=heard("billing", 0.9, "a question about my bill"))))
    o = await run(h)
    assert (o.via, o.intent, o.queue) == ("speech", "billing", "billing")
    assert o.confidence == 0.9 and o.transcript_id == 41
    assert h.ari.variables["CENTRALINO_CONFIDENCE"] == "0.900"
    assert h.ari.variables["CENTRALINO_TRANSCRIPT_ID"] == "41"
    assert h.saved == [("a question about my bill", ["a question about my bill"])]
    assert o.turns[0].barged_in  # speech started during the welcome prompt
    assert all(u.closed for u in h.ears.made)


async def test_speech_between_threshold_and_confirm_below_is_confirmed_with_key_1():
    h = make(FakeEars(Script(start=3, heard=heard("billing", 0.6)), Script()))
    h.ari.hangup_on = None
    loop = asyncio.get_running_loop()

    def on_confirm_prompt():
        if "confirm-billing" in h.ari.prompts:
            press(h, "1", 0.01)
        else:
            loop.call_later(0.02, on_confirm_prompt)
    loop.call_later(0.02, on_confirm_prompt)
    o = await run(h)
    assert h.ari.prompts[:2] == ["welcome", "confirm-billing"]
    assert h.ears.grammars == ["intents", "yesno"]
    assert (o.via, o.intent) == ("speech", "billing")
    assert [t.kind for t in o.turns] == ["speech", "confirm_yes"]


async def test_a_no_to_the_confirmation_asks_again():
    h = make(FakeEars(Script(start=3, heard=heard("billing", 0.6)),
                      Script(start=2, heard=heard("no", 0.9)),
                      Script(start=2, heard=heard("tech_support", 0.95))))
    o = await run(h)
    assert h.ari.prompts[:3] == ["welcome", "confirm-billing", "retry"]
    assert (o.via, o.intent) == ("speech", "tech_support")


async def test_out_of_grammar_speech_asks_again_and_never_picks_a_queue():
    h = make(FakeEars(Script(start=3, heard=heard(None, 0.0, "what's the weather tomorrow")),
                      Script(start=3, heard=heard(None, 0.1, "weather")),
                      Script(start=3, heard=heard("billing", 0.3, "bill"))))  # below threshold
    o = await run(h)
    assert h.ari.prompts == ["welcome", "retry", "retry", "fallback"]
    assert [t.kind for t in o.turns] == ["no_match", "no_match", "no_match"]
    assert (o.via, o.intent, o.queue, o.confidence) == ("fallback", "agent", "customer_care", None)
    assert h.saved and h.saved[0][1] == ["what's the weather tomorrow", "weather", "bill"]


async def test_silence_reprompts_then_falls_back_to_the_agent_queue():
    h = make(FakeEars())
    o = await run(h)
    assert h.ari.prompts == ["welcome", "retry", "retry", "fallback"]
    assert [t.kind for t in o.turns] == ["no_input"] * 3
    assert (o.via, o.queue) == ("fallback", "customer_care")
    assert h.ari.continued[0]["extension"] == "customer_care"


async def test_an_unknown_key_is_a_retry():
    h = make(FakeEars())
    press(h, "9", 0.05)
    press(h, "3", 0.45)
    o = await run(h)
    assert o.turns[0].kind == "no_match" and (o.via, o.intent) == ("dtmf", "tech_support")


async def test_without_barge_in_keys_wait_for_the_end_of_the_prompt():
    flow = dataclasses.replace(FLOW, recognition=dataclasses.replace(FAST, barge_in=False))
    h = make(FakeEars(Script(start=2, heard=heard("billing", 0.9)), Script()), flow=flow)
    press(h, "1", 0.05)
    o = await run(h)
    assert not any(m == "DELETE" and p.startswith("/playbacks/") for m, p, _ in h.ari.calls)
    assert (o.via, o.intent) == ("dtmf", "billing")


async def test_a_flow_without_speech_model_runs_on_keys_only():
    h = make(DtmfOnly("no Italian model"))
    press(h, "0", 0.4)
    o = await run(h)
    assert h.media == []  # no external media at all
    assert (o.via, o.intent, o.queue) == ("dtmf", "agent", "customer_care")


async def test_card_numbers_are_masked_before_saving_even_if_the_engine_forgot():
    h = make(FakeEars(Script(start=3, heard=heard(
        "lost_card", 0.95, "my card number is four five five six one two three four"))))
    o = await run(h)
    assert "four five five six" not in o.transcript
    assert h.saved[0][0] == "my card number is [number]"


# -- faults ------------------------------------------------------------------------------------

async def test_a_recogniser_raising_on_result_routes_to_the_fallback_queue(caplog):
    h = make(FakeEars(Script(start=3, heard=RuntimeError("decoder exploded"))))
    o = await run(h)
    assert (o.via, o.queue) == ("fallback", "customer_care")
    assert "decoder exploded" in o.error and "internal error" in caplog.text
    assert h.ari.continued[0]["extension"] == "customer_care"
    assert h.media[0].stopped == 1


async def test_a_recogniser_raising_while_fed_routes_to_the_fallback_queue():
    h = make(FakeEars(Script(feed_error_at=5)))
    o = await run(h)
    assert (o.via, o.queue) == ("fallback", "customer_care") and "crashed" in o.error


async def test_a_recogniser_that_hangs_after_end_of_speech_is_bounded_by_decode_timeout():
    h = make(FakeEars(Script(start=3, heard=heard("billing", 0.9), result_delay=30)))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    o = await run(h)
    assert (o.via, o.queue) == ("fallback", "customer_care") and "after end of speech" in o.error
    assert loop.time() - t0 < 3


async def test_media_set_up_failing_routes_to_the_fallback_queue_and_cleans_up():
    h = make(FakeEars(), fail_media=True)
    o = await run(h)
    assert (o.via, o.queue) == ("fallback", "customer_care") and "externalMedia" in o.error
    assert h.media[0].stopped == 1


async def test_ari_refusing_to_play_routes_to_the_fallback_queue():
    h = make(FakeEars())
    h.ari.fail["/play/"] = ARIError("POST play: HTTP 500")
    o = await run(h)
    assert (o.via, o.queue) == ("fallback", "customer_care")
    assert h.ari.continued[0]["extension"] == "customer_care"


async def test_ari_refusing_to_continue_falls_back_to_an_ami_redirect_to_the_same_queue():
    h = make(FakeEars())
    h.ari.fail["/continue"] = ARIError("POST continue: HTTP 500")
    press(h, "1", 0.05)
    o = await run(h)
    assert o.queue == "billing" and h.redirected == [("PJSIP/caller1-0001", "billing")]


async def test_a_transcript_that_cannot_be_saved_does_not_stop_the_transfer():
    h = make(FakeEars(Script(start=3, heard=heard("billing", 0.9))), save_error=OSError("db"))
    o = await run(h)
    assert (o.via, o.queue, o.transcript_id) == ("speech", "billing", None)
    assert h.ari.variables["CENTRALINO_TRANSCRIPT_ID"] == ""


async def test_gateway_shutdown_routes_the_caller_to_the_fallback_queue():
    h = make(FakeEars())
    asyncio.get_running_loop().call_later(0.05, h.session.shutdown)
    o = await run(h)
    assert (o.via, o.queue) == ("fallback", "customer_care")


# -- hang-up at every step -----------------------------------------------------------------------

@pytest.mark.parametrize("step", [
    "POST /channels/chan-1/answer",
    "welcome",  # while the welcome prompt plays
    "DELETE /playbacks/",  # the moment barge-in stops it
    "confirm-billing",  # during the confirmation
    "transfer-billing",  # during the transfer announcement
    "/variable",  # while the variables are set
    "/continue",  # as the channel is continued
])
async def test_a_caller_hanging_up_at_any_step_is_recorded_and_leaves_nothing(step):
    h = make(FakeEars(Script(start=3, heard=heard("billing", 0.6, "bill")), Script()))
    h.ari.hangup_on = step
    loop = asyncio.get_running_loop()

    def confirm_yes():
        if "confirm-billing" in h.ari.prompts:
            press(h, "1", 0.01)
        else:
            loop.call_later(0.02, confirm_yes)
    loop.call_later(0.02, confirm_yes)
    o = await run(h)
    assert o.via == "hangup" and h.left == ["hangup"]
    assert all(m.stopped == 1 for m in h.media)
    assert all(u.closed for u in h.ears.made)
    at = next(i for i, (m, p, kw) in enumerate(h.ari.calls)
              if step in f"{m} {p}{kw.get('media', '')}")
    after = h.ari.calls[at + 1:]
    assert not any(p.endswith("/continue") for _, p, _ in after)
    assert h.session._pump is None or h.session._pump.done()


async def test_a_caller_hanging_up_after_speaking_keeps_the_masked_transcript():
    h = make(FakeEars(Script(start=3, heard=heard(None, 0.0, "card four five five six one two "
                                                 "three four five")), Script()))
    h.ari.hangup_on = "/retry"
    o = await run(h)
    assert o.via == "hangup" and o.transcript_id == 41
    assert h.saved[0][0] == "card [number]"
