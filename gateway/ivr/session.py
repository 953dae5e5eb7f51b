"""One caller in the IVR, from StasisStart to a queue (or their hang-up): the state machine.

The call is one coroutine, :meth:`IvrSession.run`, reading one inbox: ARI events for this
caller (keys, playback ends, hang-up), speech events from the audio pump, and shutdown. Each
turn plays a prompt while already listening (barge-in), waits for an answer with a timeout, and
decides: route, confirm, or ask again; after ``max_retries`` failed turns the flow's fallback
intent routes the call.

Promises to the caller, whatever happens inside the gateway:

- no silence longer than the flow's ``no_input_timeout_s`` after a prompt: then the retry prompt;
  decoding after end of speech is bounded by ``ivr.decode_timeout_s``, a prompt by
  ``ivr.prompt_timeout_s``;
- any internal error (recogniser raising, ARI refusing a request, media set-up failing, a bug)
  routes the call to the fallback intent's queue and logs why; if ARI cannot even continue the
  channel, AMI ``Redirect`` takes it to the same queue;
- the gateway stopping routes every caller still in the IVR to the fallback queue;
- a caller who hangs up is recorded with ``via=hangup`` and leaves nothing behind (snoop,
  external media channel, bridge, UDP socket, recogniser session).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gateway.ari.client import ARIError, ARINotFound
from gateway.dialplan.flow import Flow
from gateway.dialplan.prompts import sound_name
from gateway.ivr.ears import SPEECH_ENDED, SPEECH_STARTED, Ears, Grammar, Heard, Utterance
from gateway.ivr.transcripts import mask

log = logging.getLogger(__name__)

QUEUES_CONTEXT = "centralino-queues"
YES, NO = "yes", "no"
_FEED_BACKLOG = 250  # 5 s of 20 ms frames: beyond that the recogniser is hopelessly behind


class CallerGone(Exception):
    """The caller hung up (or the channel vanished) while in the IVR."""


class ShuttingDown(Exception):
    """The gateway is stopping: route what can be routed now."""


@dataclass(slots=True)
class Turn:
    prompt: str
    kind: str  # speech | dtmf | no_input | no_match | confirm_yes | confirm_no
    digit: str | None = None
    heard: Heard | None = None
    barged_in: bool = False


@dataclass(slots=True)
class Outcome:
    """What the IVR did with the call (the record, the event and the transcript row)."""

    via: str | None = None  # speech | dtmf | fallback | hangup
    intent: str | None = None
    confidence: float | None = None
    queue: str | None = None
    transcript: str | None = None  # masked
    transcript_id: int | None = None
    engine: str | None = None
    latency_ms: float | None = None
    error: str | None = None
    turns: list[Turn] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class IvrConfig:
    app: str
    prompts_dir: str
    media_host: str
    rtp_ports: tuple[int, int] | None
    decode_timeout_s: float
    prompt_timeout_s: float
    db_timeout_s: float


class IvrSession:
    """Construct on StasisStart, feed ARI events with :meth:`on_ari_event`, await :meth:`run`.

    ``media_factory(on_pcm)`` returns an object with ``start()``, ``stop()`` and
    ``channel_ids`` (see :class:`gateway.ivr.media.CallMedia`); ``save_transcript(outcome)``
    returns the transcript id; ``redirect(channel_name, queue)`` is the AMI last resort.
    """

    def __init__(self, *, ari, flow: Flow, ears: Ears, config: IvrConfig, channel: dict,
                 media_factory: Callable[[Callable[[np.ndarray], None]], Any] | None,
                 save_transcript: Callable[[IvrSession], Awaitable[int | None]],
                 redirect: Callable[[str, str], Awaitable[None]],
                 on_leave: Callable[[IvrSession], None],
                 on_media_stats: Callable[[IvrSession, Any, Any], None]) -> None:
        self.ari = ari
        self.flow = flow
        self.ears = ears
        self.cfg = config
        self.channel = channel
        self.channel_id: str = channel["id"]
        self.channel_name: str = channel.get("name", "")
        self.linkedid: str = channel.get("linkedid") or channel["id"]
        self._media_factory = media_factory
        self._save_transcript = save_transcript
        self._redirect = redirect
        self._on_leave = on_leave
        self._on_media_stats = on_media_stats
        self.outcome = Outcome()
        self.media: Any = None
        self._inbox: asyncio.Queue[tuple] = asyncio.Queue()
        self._audio: asyncio.Queue[np.ndarray] = asyncio.Queue()
        self._utt: Utterance | None = None
        self._pump: asyncio.Task | None = None
        self._playbacks: set[str] = set()
        self._gone = False
        self._continued = False
        self._done = False
        self._reported = False
        self._saving: asyncio.Future | None = None
        self.playback_log: list[tuple[str, float, float | None, str]] = []  # id, start, stop, why
        self.events_seen = 0

    # -- inputs ----------------------------------------------------------------------------------
    @property
    def channel_ids(self) -> set[str]:
        ids = {self.channel_id}
        if self.media is not None:
            ids |= self.media.channel_ids
        return ids

    def on_ari_event(self, ev: dict) -> None:
        """Called by the component for events about this caller or its playbacks; never blocks."""
        self.events_seen += 1
        kind = ev.get("type")
        chan = (ev.get("channel") or {}).get("id")
        if kind == "StasisStart" and self.media is not None and chan in self.media.channel_ids:
            self.media.entered_stasis(chan)
        elif kind == "ChannelDtmfReceived" and chan == self.channel_id:
            self._inbox.put_nowait(("dtmf", ev.get("digit", "")))
        elif kind == "PlaybackFinished":
            self._inbox.put_nowait(("playback_done", (ev.get("playback") or {}).get("id")))
        elif kind in ("StasisEnd", "ChannelDestroyed", "ChannelHangupRequest") \
                and chan == self.channel_id and not self._continued:
            self._gone = True
            self._inbox.put_nowait(("gone",))

    def shutdown(self) -> None:
        self._inbox.put_nowait(("shutdown",))

    def _on_pcm(self, pcm: np.ndarray) -> None:
        """From the RTP endpoint (inside the loop's datagram callback): queue, never block."""
        if self._utt is not None and self._audio.qsize() < _FEED_BACKLOG:
            self._audio.put_nowait(pcm)

    async def _audio_pump(self) -> None:
        """Feeds the current utterance; its speech events go to the inbox. A failing recogniser
        is reported to the main procedure (which then routes to the fallback)."""
        while True:
            pcm = await self._audio.get()
            utt = self._utt
            if utt is None:
                continue
            try:
                events = await utt.feed(pcm)
            except Exception as exc:  # noqa: BLE001 - the run loop routes to fallback
                self._inbox.put_nowait(("speech_error", exc))
                self._utt = None
                continue
            for e in events:
                if utt is self._utt:
                    self._inbox.put_nowait(("speech", e))

    # -- the procedure ----------------------------------------------------------------------------
    async def run(self) -> Outcome:
        try:
            await self._run()
        except CallerGone:
            self.outcome.via = "hangup"
            log.info("IVR %s: caller hung up in flow %s", self.linkedid, self.flow.name)
        except ShuttingDown:
            await self._fallback_quietly("gateway stopping")
        except Exception as exc:
            log.exception("IVR %s: internal error; routing to the fallback queue", self.linkedid)
            self.outcome.error = f"{type(exc).__name__}: {exc}"
            await self._fallback_quietly(self.outcome.error)
        finally:
            await self._cleanup()
        return self.outcome

    async def _run(self) -> None:
        await self._req("POST", f"/channels/{self.channel_id}/answer")
        if self.ears.speech and self._media_factory is not None:
            self.media = self._media_factory(self._on_pcm)
            self._pump = asyncio.create_task(self._audio_pump(), name=f"ivr-audio-{self.linkedid}")
            await self.media.start()
        rec = self.flow.recognition
        failures = 0
        prompt, intent = "welcome", None
        while True:
            turn = await self._turn(prompt, intent, "intents")
            self.outcome.turns.append(turn)
            decided = self._decide(turn)
            if decided is not None and turn.kind == "speech" and turn.heard is not None \
                    and rec.confirm_below and turn.heard.confidence < rec.confirm_below \
                    and "confirm" in self.flow.prompts:
                answer = await self._turn("confirm", decided, "yesno")
                answer.kind = "confirm_yes" if self._yes(answer) else "confirm_no"
                self.outcome.turns.append(answer)
                if answer.kind == "confirm_no":
                    decided = None
            if decided is not None:
                await self._route(decided, turn.kind, turn.heard)
                return
            failures += 1
            if failures > rec.max_retries:
                await self._route(self.flow.fallback_intent, "fallback", turn.heard)
                return
            prompt, intent = "retry", None

    def _decide(self, turn: Turn) -> str | None:
        rec = self.flow.recognition
        if turn.kind == "dtmf":
            found = self.flow.by_digit(turn.digit or "")
            if found is None:
                turn.kind = "no_match"
            return found.name if found else None
        if turn.kind == "speech" and turn.heard is not None:
            h = turn.heard
            known = {i.name for i in self.flow.intents}
            if h.intent in known and h.confidence >= rec.confidence_threshold:
                return h.intent
            turn.kind = "no_match"
        return None

    def _yes(self, turn: Turn) -> bool:
        if turn.digit is not None:
            return turn.digit == "1"
        h = turn.heard
        return h is not None and h.intent == YES and \
            h.confidence >= self.flow.recognition.confidence_threshold

    # -- one prompt and its answer -----------------------------------------------------------------
    async def _turn(self, prompt: str, intent: str | None, grammar: Grammar) -> Turn:
        rec = self.flow.recognition
        turn = Turn(prompt, "no_input")
        speech = self.ears.speech and self.media is not None
        if speech:
            await self._listen(grammar)
        pid = await self._play(prompt, intent)
        speaking = False
        early_digit: str | None = None
        deadline = time.monotonic() + self.cfg.prompt_timeout_s
        while pid is not None:
            item = await self._next(deadline - time.monotonic())
            if item is None:
                log.warning("IVR %s: prompt %s did not finish in %.0f s; stopped", self.linkedid,
                            prompt, self.cfg.prompt_timeout_s)
                await self._stop_playback(pid, "timeout")
                break
            if item[0] == "playback_done" and item[1] == pid:
                self._playback_ended(pid, "finished")
                break
            if item[0] == "dtmf":
                if rec.barge_in:
                    await self._stop_playback(pid, "dtmf")
                    turn.barged_in = True
                    return self._digit(turn, item[1])
                early_digit = early_digit or item[1]
            elif item[0] == "speech" and item[1] == SPEECH_STARTED and rec.barge_in:
                await self._stop_playback(pid, "speech")
                turn.barged_in = speaking = True
                break
        if early_digit is not None:
            return self._digit(turn, early_digit)
        if speech and not speaking and not rec.barge_in:
            await self._listen(grammar)  # speech over the prompt is not an answer
        wait = rec.no_input_timeout_s if speech else max(rec.no_input_timeout_s,
                                                         rec.dtmf_timeout_s)
        deadline = time.monotonic() + wait
        while not speaking:
            item = await self._next(deadline - time.monotonic())
            if item is None:
                await self._stop_listening()
                return turn  # no input
            if item[0] == "dtmf":
                return self._digit(turn, item[1])
            if item[0] == "speech" and item[1] == SPEECH_STARTED:
                speaking = True
        deadline = time.monotonic() + rec.max_speech_s + 1.0
        while True:
            item = await self._next(deadline - time.monotonic())
            if item is None:
                break  # talked past max_speech_s: decode what we have
            if item[0] == "dtmf":
                return self._digit(turn, item[1])
            if item[0] == "speech" and item[1] == SPEECH_ENDED:
                break
        turn.heard = await self._result()
        turn.kind = "speech"
        log.info("IVR %s: heard %r -> %s (%.2f, %s ms)", self.linkedid, turn.heard.transcript,
                 turn.heard.intent, turn.heard.confidence,
                 None if turn.heard.latency_ms is None else round(turn.heard.latency_ms))
        return turn

    def _digit(self, turn: Turn, digit: str) -> Turn:
        turn.kind, turn.digit = "dtmf", digit
        self._utt_drop()
        return turn

    async def _next(self, timeout: float) -> tuple | None:
        """The next inbox item, None after ``timeout``; raises when the caller is gone, on
        shutdown and when the recogniser failed."""
        try:
            item = await asyncio.wait_for(self._inbox.get(), max(timeout, 0.0))
        except TimeoutError:
            return None
        if item[0] == "gone":
            raise CallerGone()
        if item[0] == "shutdown":
            raise ShuttingDown()
        if item[0] == "speech_error":
            raise item[1]
        if item[0] == "playback_done" and item[1] not in self._playbacks:
            return ("stale",)
        return item

    # -- listening -----------------------------------------------------------------------------------
    async def _listen(self, grammar: Grammar) -> None:
        await self._stop_listening()
        while not self._audio.empty():  # audio from before this prompt is not the answer
            self._audio.get_nowait()
        self._utt = self.ears.utterance(grammar)

    def _utt_drop(self) -> None:
        utt, self._utt = self._utt, None
        if utt is not None:
            task = asyncio.ensure_future(utt.close())
            task.add_done_callback(lambda t: t.exception())

    async def _stop_listening(self) -> None:
        utt, self._utt = self._utt, None
        if utt is not None:
            await utt.close()

    async def _result(self) -> Heard:
        utt = self._utt
        if utt is None:
            raise RuntimeError("no recogniser session to take a result from")
        self._utt = None
        try:
            heard = await asyncio.wait_for(utt.result(), self.cfg.decode_timeout_s)
        except TimeoutError:
            raise RuntimeError(f"no intent {self.cfg.decode_timeout_s} s after end of speech"
                               ) from None
        finally:
            await utt.close()
        return Heard(heard.intent, heard.confidence, mask(heard.transcript), heard.engine,
                     heard.language, heard.latency_ms)

    # -- prompts -----------------------------------------------------------------------------------
    def _media_uri(self, prompt: str, intent: str | None) -> str:
        return f"sound:{self.cfg.prompts_dir}/{self.flow.name}/{sound_name(prompt, intent, self.flow)}"

    async def _play(self, prompt: str, intent: str | None) -> str | None:
        if prompt not in self.flow.prompts:
            return None
        pid = f"ivr-play-{uuid.uuid4().hex[:12]}"
        self._playbacks.add(pid)
        self.playback_log.append((pid, time.monotonic(), None, prompt))
        await self._req("POST", f"/channels/{self.channel_id}/play/{pid}",
                        media=self._media_uri(prompt, intent))
        return pid

    def _playback_ended(self, pid: str, why: str) -> None:
        self._playbacks.discard(pid)
        for n, (p, start, stop, name) in enumerate(self.playback_log):
            if p == pid and stop is None:
                self.playback_log[n] = (p, start, time.monotonic(), f"{name}:{why}")

    async def _stop_playback(self, pid: str, why: str) -> None:
        self._playback_ended(pid, why)
        try:
            await self.ari.request("DELETE", f"/playbacks/{pid}")
        except ARINotFound:
            pass  # it had just finished

    async def _play_to_end(self, prompt: str, intent: str | None) -> None:
        """A prompt the caller must hear (transfer, fallback): keys are ignored."""
        pid = await self._play(prompt, intent)
        deadline = time.monotonic() + self.cfg.prompt_timeout_s
        while pid is not None:
            item = await self._next(deadline - time.monotonic())
            if item is None:
                await self._stop_playback(pid, "timeout")
                return
            if item[0] == "playback_done" and item[1] == pid:
                self._playback_ended(pid, "finished")
                return

    # -- leaving -------------------------------------------------------------------------------------
    async def _route(self, intent_name: str, via: str, heard: Heard | None) -> None:
        intent = self.flow.intent(intent_name)
        o = self.outcome
        o.via, o.intent, o.queue = via, intent.name, intent.queue
        o.confidence = heard.confidence if via == "speech" and heard else (
            1.0 if via == "dtmf" else None)
        last = next((t.heard for t in reversed(o.turns) if t.heard is not None), None)
        decisive = heard if heard is not None else last
        if decisive is not None:
            o.transcript, o.engine, o.latency_ms = (decisive.transcript, decisive.engine,
                                                    decisive.latency_ms)
        await self._stop_listening()
        save = asyncio.ensure_future(self._save()) if last is not None else None
        self._saving = save
        prompt = "fallback" if via == "fallback" else "transfer"
        try:
            await self._play_to_end(prompt, intent.name)
        except ARIError as exc:  # the caller is routed anyway
            if isinstance(exc, ARINotFound) and self._gone:
                raise CallerGone() from exc
            log.warning("IVR %s: could not play %s: %s", self.linkedid, prompt, exc)
        await self._teardown_media()
        if save is not None:
            o.transcript_id = await save
        await self._leave()

    async def _save(self) -> int | None:
        try:
            return await asyncio.wait_for(self._save_transcript(self), self.cfg.db_timeout_s)
        except Exception as exc:  # noqa: BLE001 - the transcript must not stop the transfer
            log.error("IVR %s: transcript not saved (%s); routing goes on", self.linkedid,
                      type(exc).__name__)
            return None

    async def _leave(self) -> None:
        """Channel variables, then continue into the queue's extension (AMI if ARI cannot)."""
        o = self.outcome
        values = {"CENTRALINO_INTENT": o.intent or "", "CENTRALINO_IVR_VIA": o.via or "",
                  "CENTRALINO_CONFIDENCE": "" if o.confidence is None else f"{o.confidence:.3f}",
                  "CENTRALINO_LANGUAGE": self.flow.language,
                  "CENTRALINO_TRANSCRIPT_ID": "" if o.transcript_id is None else str(o.transcript_id)}
        for name, value in values.items():
            try:
                await self.ari.request("POST", f"/channels/{self.channel_id}/variable",
                                       variable=name, value=value)
            except ARINotFound:
                if self._gone:
                    raise CallerGone() from None
            except ARIError as exc:
                log.warning("IVR %s: variable %s not set: %s", self.linkedid, name, exc)
        self._continued = True
        try:
            await self.ari.request("POST", f"/channels/{self.channel_id}/continue",
                                   context=QUEUES_CONTEXT, extension=o.queue, priority=1)
        except ARIError as exc:
            if self._gone or isinstance(exc, ARINotFound):
                self._continued = False
                raise CallerGone() from exc
            log.error("IVR %s: ARI continue failed (%s); redirecting with AMI", self.linkedid, exc)
            await self._redirect(self.channel_name, o.queue)
        log.info("IVR %s: -> queue %s (intent %s via %s)", self.linkedid, o.queue, o.intent, o.via)
        self._done = True
        self._left()

    async def _fallback_quietly(self, why: str) -> None:
        """Last resort after an error: no prompts that could fail again, straight to the queue."""
        if self._done or self._gone:
            if self._gone and not self._done:
                self.outcome.via = "hangup"
            return
        fb = self.flow.intent(self.flow.fallback_intent)
        o = self.outcome
        o.via, o.intent, o.queue, o.confidence = "fallback", fb.name, fb.queue, None
        log.warning("IVR %s: routed to %s after: %s", self.linkedid, fb.queue, why)
        await self._stop_listening_quietly()
        await self._teardown_media()
        try:
            await self._leave()
        except CallerGone:
            o.via = "hangup"
        except Exception:
            log.exception("IVR %s: could not route to the fallback queue", self.linkedid)

    async def _stop_listening_quietly(self) -> None:
        with contextlib.suppress(Exception):
            await self._stop_listening()

    async def _teardown_media(self) -> None:
        media, self.media = self.media, None
        if media is None:
            return
        stats = None
        try:
            stats = await media.stop()
        except Exception:
            log.exception("IVR %s: media cleanup failed", self.linkedid)
        if stats is not None:
            self._on_media_stats(self, media, stats)

    async def _cleanup(self) -> None:
        for pid in list(self._playbacks):
            self._playbacks.discard(pid)
            if not self._gone:
                with contextlib.suppress(Exception):
                    await self.ari.request("DELETE", f"/playbacks/{pid}")
        await self._stop_listening_quietly()
        await self._teardown_media()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self._saving is not None and self.outcome.transcript_id is None:
            self.outcome.transcript_id = await self._saving  # hung up during the transfer
        elif self.outcome.via == "hangup" and any(t.heard for t in self.outcome.turns) and \
                self.outcome.transcript_id is None:
            last = next(t.heard for t in reversed(self.outcome.turns) if t.heard)
            self.outcome.transcript, self.outcome.engine = last.transcript, last.engine
            self.outcome.transcript_id = await self._save()
        if self.outcome.via == "hangup":
            self._left()

    def _left(self) -> None:
        if not self._reported:
            self._reported = True
            self._on_leave(self)

    async def _req(self, method: str, path: str, **params: Any) -> Any:
        """An ARI request on the caller's channel: "not found" means the caller left."""
        try:
            return await self.ari.request(method, path, **params)
        except ARINotFound as exc:
            if path.startswith(f"/channels/{self.channel_id}"):
                self._gone = True
                raise CallerGone() from exc
            raise
