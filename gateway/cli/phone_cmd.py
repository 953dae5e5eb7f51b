"""`centralino phone call|load`: real SIP test calls and load callers against the sandbox.

Passwords come from the sandbox instance's credentials file (``centralino asterisk up`` makes
it); the instance and ports come from the settings, so ``CENTRALINO_ASTERISK__INSTANCE=...``
points these commands at another sandbox. Results are printed as JSON.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict
from pathlib import Path

import click


@click.group(name="phone")
def phone() -> None:
    """Scriptable SIP phones (pjsua2) for test calls and load against the sandbox."""


def _sandbox(settings):
    from gateway.sandbox.instance import Sandbox

    sb = Sandbox(settings)
    if not (sb.state_dir / "credentials.json").exists():
        raise click.ClickException(
            f"no credentials for sandbox instance {sb.instance!r} in {sb.state_dir}: "
            "start it with `centralino asterisk up`")
    return sb


def _password(sb, endpoint: str) -> str:
    from gateway.sandbox.instance import SandboxError

    try:
        return sb.phone_password(endpoint)
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None


def _run(coro):
    from gateway.sip.audio import AudioError
    from gateway.sip.client import PhoneError

    try:
        return asyncio.run(coro)
    except (PhoneError, AudioError) as exc:
        raise click.ClickException(str(exc)) from None


@phone.command(name="call")
@click.argument("number")
@click.option("--as", "endpoint", required=True, help="Phone to call from, e.g. caller1.")
@click.option("--play", "play", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="WAV (8 or 16 kHz mono 16-bit) to play once answered.")
@click.option("--say", help="Text to speak into the call (espeak-ng), after --play.")
@click.option("--dtmf", help="DTMF digits to send (RFC 4733) once answered and played.")
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path),
              help="Record what the phone hears to this WAV.")
@click.option("--hangup-after", type=float, default=None,
              help="Seconds after answer to hang up (default: once play/DTMF are done, +1 s).")
@click.option("--answer-timeout", type=float, default=30.0, show_default=True)
@click.pass_obj
def call_cmd(settings, number: str, endpoint: str, play: Path | None, say: str | None,
             dtmf: str | None, record: Path | None, hangup_after: float | None,
             answer_timeout: float) -> None:
    """Place one real SIP call to NUMBER through the sandbox and report what happened."""
    sb = _sandbox(settings)
    password = _password(sb, endpoint)
    a = settings.asterisk
    wavs = [play] if play else []
    if say:
        from gateway.sip.audio import tts_wav

        wavs.append(tts_wav(say, cache_dir=settings.cache_dir / "tts"))
    result = _run(_call(a.host, a.sip_port, endpoint, password, number, wavs, dtmf, record,
                        hangup_after, answer_timeout))
    click.echo(json.dumps(result))
    if not result["answered"]:
        raise click.ClickException(
            f"call to {number} as {endpoint} was not answered: {result['code']} {result['reason']}")


async def _call(host: str, port: int, endpoint: str, password: str, number: str,
                wavs: list[Path], dtmf: str | None, record: Path | None,
                hangup_after: float | None, answer_timeout: float) -> dict:
    from gateway.sip.client import CallEnded, CommandError, PhoneHost, PhoneTimeout
    from gateway.sip.model import CallState, to_data

    out: dict = {"number": number, "as": endpoint, "answered": False}
    async with PhoneHost() as phones:
        await phones.add_account(endpoint, password, host, port, register=False)
        t0 = time.monotonic()
        call = await phones.call(endpoint, number)
        if record:
            await phones.start_recording(call, record)
        try:
            await phones.wait_for_state(call, CallState.CONFIRMED, answer_timeout)
        except (CallEnded, PhoneTimeout):
            await phones.hangup(call)
            out.update(code=call.code, reason=call.reason or "no answer")
            return out
        answered = time.monotonic()
        out.update(answered=True, setup_s=round(answered - t0, 3))
        ended_by = "us"
        try:
            await phones.wait_for_media(call)
            out["codec"] = call.codec
            out["played"] = []
            for wav in wavs:
                pb = await phones.play(call, wav)
                out["played"].append({"file": str(wav), "completed": await pb.wait()})
            if dtmf:
                await phones.send_dtmf(call, dtmf)
                await asyncio.sleep(0.25 * len(dtmf))
                out["dtmf_sent"] = dtmf
            rest = (hangup_after - (time.monotonic() - answered) if hangup_after is not None
                    else 1.0)
            if rest > 0:
                await phones.wait_for_state(call, CallState.DISCONNECTED, rest)
            ended_by = "remote"
        except PhoneTimeout:
            pass  # still up: the normal end of the script
        except CallEnded:
            ended_by = "remote"
        try:
            out["stats"] = to_data(await phones.stats(call))
        except CommandError as exc:
            out["stats"] = {"error": str(exc)}
        if not call.ended:
            await phones.hangup(call)
            await phones.wait_for_state(call, CallState.DISCONNECTED)
        out.update(ended_by=ended_by, code=call.code, reason=call.reason,
                   talk_s=round(time.monotonic() - answered, 2), dtmf_received=call.dtmf)
        if record:
            out["recording"] = asdict(await phones.stop_recording(call))
    return out


@phone.command(name="load")
@click.option("--calls", type=click.IntRange(1), required=True, help="Calls to place in all.")
@click.option("--concurrency", type=click.IntRange(1), default=5, show_default=True)
@click.option("--number", required=True, help="Number to call, e.g. 198 (silent line) or 6001.")
@click.option("--play", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="WAV to play on each answered call.")
@click.option("--hold-s", type=float, default=5.0, show_default=True,
              help="Seconds each answered call stays up.")
@click.option("--as", "endpoints", multiple=True,
              help="Caller phones to use (repeatable); default: the load pool, else callers.")
@click.option("--answer-timeout", type=float, default=30.0, show_default=True)
@click.pass_obj
def load_cmd(settings, calls: int, concurrency: int, number: str, play: Path | None,
             hold_s: float, endpoints: tuple[str, ...], answer_timeout: float) -> None:
    """Place CALLS real calls to NUMBER, CONCURRENCY at a time; print JSON results."""
    from gateway.sip.load import run_load

    sb = _sandbox(settings)
    names = list(endpoints) or _load_phones(sb)
    if not names:
        raise click.ClickException("the site file defines no caller phones to load with")
    accounts = [(n, _password(sb, n)) for n in names]
    a = settings.asterisk
    result = _run(run_load(accounts=accounts, host=a.host, port=a.sip_port, number=number,
                           calls=calls, concurrency=concurrency, hold_s=hold_s, play=play,
                           answer_timeout=answer_timeout))
    click.echo(json.dumps(result.as_dict()))


def _load_phones(sb) -> list[str]:
    """The ``load`` pool when the site has one, else every caller phone."""
    from gateway.sandbox.instance import SandboxError

    try:
        phones = sb.site.phones
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None
    pool = [n for n in phones if n.startswith("load")]
    return pool or [n for n, p in phones.items() if p.kind == "caller"]
