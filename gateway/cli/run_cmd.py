"""`centralino run`: the gateway service (optionally with the Asterisk sandbox)."""

from __future__ import annotations

import asyncio
import signal

import click

from gateway.ami.client import AMIError
from gateway.ari.client import ARIError


@click.command(name="run")
@click.option("--sandbox", is_flag=True, help="Also start the Asterisk sandbox (and stop it on exit).")
@click.option("--port", type=int, default=None, help="HTTP port (default from settings).")
@click.pass_obj
def run(settings, sandbox: bool, port: int | None) -> None:
    """Start the gateway: AMI + ARI links, call records, HTTP API (/healthz, /readyz)."""
    from gateway.sandbox.instance import Sandbox, SandboxError
    from gateway.service import GatewayService

    sb = None
    if sandbox:
        sb = Sandbox(settings)
        try:
            settings = sb.up()
        except SandboxError as exc:
            raise click.ClickException(str(exc)) from exc
    if port is not None:
        settings = settings.model_copy(update={"http": settings.http.model_copy(update={"port": port})})

    async def main() -> None:
        service = GatewayService(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await service.start()
            await stop.wait()
        finally:
            await service.stop()

    try:
        asyncio.run(main())
    except (AMIError, ARIError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if sb is not None:
            sb.down()
