"""The IVR component's dispatch: StasisStart arguments, events to the right call, bad flows."""

import asyncio
from types import SimpleNamespace

from gateway.bus import Bus
from gateway.calls.tracker import CallTracker
from gateway.ivr.component import IvrComponent
from gateway.settings import Settings


class RecordingAri:
    def __init__(self):
        self.calls, self.handlers = [], []

    def on_event(self, h):
        self.handlers.append(h)

    async def request(self, method, path, **params):
        self.calls.append((method, path, params))
        return {}


def make(tmp_path):
    settings = Settings(data_dir=tmp_path, ivr={"fallback_queue": "customer_care"})
    ari = RecordingAri()
    ctx = SimpleNamespace(settings=settings, ari=ari, ami=None, tracker=CallTracker(),
                          bus=Bus(), readiness={}, sessions=None)
    comp = IvrComponent()
    comp.setup(ctx)
    return comp, ari


async def test_a_stasis_start_for_an_unknown_flow_still_reaches_an_agent(tmp_path, caplog):
    _, ari = make(tmp_path)
    ari.handlers[0]({"type": "StasisStart", "args": ["ivr", "nope"],
                     "channel": {"id": "c1", "name": "PJSIP/caller1-1"}})
    for _ in range(50):
        if ari.calls:
            break
        await asyncio.sleep(0.01)
    assert ari.calls == [("POST", "/channels/c1/continue",
                          {"context": "centralino-queues", "extension": "customer_care",
                           "priority": 1})]
    assert "unknown flow 'nope'" in caplog.text


async def test_other_applications_channels_and_our_own_media_channels_are_not_calls(tmp_path):
    comp, ari = make(tmp_path)
    ari.handlers[0]({"type": "StasisStart", "args": ["ivr-snoop"], "channel": {"id": "s1"}})
    ari.handlers[0]({"type": "StasisStart", "args": [], "channel": {"id": "m1"}})
    await asyncio.sleep(0.05)
    assert comp.sessions == {} and ari.calls == []


async def test_playback_events_reach_the_call_they_target(tmp_path):
    comp, ari = make(tmp_path)
    seen = []
    comp._by_channel["c9"] = SimpleNamespace(on_ari_event=seen.append)
    ev = {"type": "PlaybackFinished", "playback": {"id": "p", "target_uri": "channel:c9"}}
    ari.handlers[0](ev)
    ari.handlers[0]({"type": "PlaybackFinished",
                     "playback": {"id": "q", "target_uri": "channel:other"}})
    ari.handlers[0]({"type": "ChannelDtmfReceived", "digit": "5", "channel": {"id": "c9"}})
    assert seen == [ev, {"type": "ChannelDtmfReceived", "digit": "5", "channel": {"id": "c9"}}]
