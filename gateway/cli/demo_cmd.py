"""`centralino demo`: what works today, end to end, on the embedded defaults.

Starts the Asterisk sandbox, the gateway service on SQLite, places a few real calls through
Asterisk (Local channels to the line-check number), prints their call records, and stops.
"""

from __future__ import annotations

import asyncio
import json

import click


@click.command(name="demo")
@click.option("--calls", default=3, show_default=True, help="How many calls to place.")
@click.pass_obj
def demo(settings, calls: int) -> None:
    """Run the demo on the embedded defaults (sandbox Asterisk + SQLite)."""
    from gateway.sandbox.instance import Sandbox, SandboxError
    from gateway.service import GatewayService

    sb = Sandbox(settings.model_copy(update={"asterisk": settings.asterisk.model_copy(
        update={"instance": "demo"})}))
    try:
        eff = sb.up()
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Asterisk sandbox up: {json.dumps(sb.status())}")

    async def run() -> None:
        service = GatewayService(eff)
        await service.start()
        try:
            before = await service.store.count()
            for i in range(calls):
                await service.ami.action("Originate", Channel="Local/199@from-callers",
                                         Application="Wait", Data="1", Async="true",
                                         CallerID=f"Demo caller {i + 1} <33512345{i:02d}>")
            for _ in range(200):
                if await service.store.count() >= before + calls and not service.tracker.live:
                    break
                await asyncio.sleep(0.1)
            from sqlalchemy import text

            async with service.engine.connect() as conn:
                rows = (await conn.execute(text(
                    "SELECT linkedid FROM calls ORDER BY started_at DESC LIMIT :n"), {"n": calls})).all()
            for (lid,) in reversed(rows):
                c = await service.store.get(lid)
                click.echo(json.dumps({
                    "linkedid": c.linkedid, "caller": c.caller_number,
                    "duration_s": round((c.ended_at - c.started_at).total_seconds(), 2),
                    "hangup_cause": c.hangup_cause,
                    "legs": [{"channel": l.channel, "direction": l.direction} for l in c.legs],
                    "timeline": [e.kind.value for e in c.timeline]}))
            click.echo(f"call records are in {eff.database_url}")
        finally:
            await service.stop()

    try:
        asyncio.run(run())
    finally:
        sb.down()
        click.echo("Asterisk sandbox stopped.")
