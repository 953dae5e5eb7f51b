"""`centralino demo`: the whole product on the embedded defaults, with real calls."""

from __future__ import annotations

import asyncio
import logging

import click


@click.command(name="demo")
@click.option("--keep", is_flag=True,
              help="Keep everything running afterwards, to explore the desktop and dashboards.")
@click.pass_obj
def demo(settings, keep: bool) -> None:
    """Sandbox Asterisk + gateway on SQLite; callers talk to the IVR, agents get screen pops.

    Four real SIP calls: speech and keys into the IVR, routing to the right queue, the agent's
    pop before they answer, hold and wrap-up, then per-call voice quality and handle time and
    the manager's aggregate overview. Needs root (the Asterisk sandbox uses chroot).
    """
    from gateway.demo.scenario import run
    from gateway.sandbox.instance import SandboxError

    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger().setLevel(logging.WARNING)  # the demo's own lines tell the story
    try:
        outcomes = asyncio.run(run(settings, click.echo, keep))
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        return
    failed = [o for o in outcomes if o.error]
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(outcomes)} demo calls failed")
