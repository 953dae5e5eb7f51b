"""`centralino asterisk up|down|status|cli`: the Asterisk sandbox."""

from __future__ import annotations

import json

import click

from gateway.sandbox.instance import Sandbox, SandboxError


@click.group(name="asterisk")
def asterisk() -> None:
    """Start, stop and talk to the Asterisk 22 sandbox (bound to 127.0.0.1)."""


def _sandbox() -> Sandbox:
    return Sandbox(click.get_current_context().find_root().obj)


@asterisk.command()
def up() -> None:
    """Start the sandbox (building its rootfs once) and wait until fully booted."""
    try:
        sb = _sandbox()
        sb.up()
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(sb.status()))


@asterisk.command()
def down() -> None:
    """Stop the sandbox cleanly."""
    try:
        _sandbox().down()
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from exc


@asterisk.command()
def status() -> None:
    """Print the sandbox state as JSON."""
    try:
        click.echo(json.dumps(_sandbox().status()))
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from exc


@asterisk.command()
@click.argument("command")
def cli(command: str) -> None:
    """Run one Asterisk CLI command, e.g. `centralino asterisk cli "core show version"`."""
    try:
        click.echo(_sandbox().cli(command), nl=False)
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from exc
