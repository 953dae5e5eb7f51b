"""`centralino users`: who may log in to the agent desktop, the supervisor views and the API.

Passwords are read from stdin (``--password-stdin``, one line) or typed at a hidden prompt,
never taken as an argument: command lines end up in shell history and ``ps``.
"""

from __future__ import annotations

import sys

import click

from cti.auth import ROLES, UserError, add_user, disable_user, list_users, set_password
from cti.clidb import run_db
from gateway.settings import Settings


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise click.ClickException("--password-stdin: nothing on stdin")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise click.ClickException("give the password on stdin with --password-stdin "
                                   "(or run in a terminal to be prompted)")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _site(settings: Settings):
    from cti.site import site_names

    try:
        return site_names(settings)
    except Exception as exc:  # a broken site file: say where, do not add a user blind
        raise click.ClickException(f"cannot read the site's phones and queues: {exc}") from exc


@click.group(name="users")
def users() -> None:
    """Manage users: agents, supervisors, managers, admins."""


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (one line).")
@click.option("--team", default=None, help="The user's team (at most one).")
@click.option("--phone", default=None, metavar="ENDPOINT",
              help="The PJSIP endpoint an agent answers on (required for agents).")
@click.option("--queues", default="", metavar="Q1,Q2", help="Queues an agent may serve.")
@click.pass_obj
def add(settings: Settings, name: str, role: str, password_stdin: bool, team: str | None,
        phone: str | None, queues: str) -> None:
    """Add user NAME."""
    site = _site(settings) if (phone or queues) else None
    password = _read_password(password_stdin)
    try:
        info = run_db(settings, lambda s: add_user(
            s, name, role, password, team=team, endpoint=phone,
            queues=[q for q in queues.split(",") if q.strip()], site=site))
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"added {info.username} ({info.role}"
               + (f", team {info.team}" if info.team else "")
               + (f", phone {info.endpoint}" if info.endpoint else "")
               + (f", queues {','.join(info.queues)}" if info.queues else "") + ")")


@users.command("list")
@click.pass_obj
def list_(settings: Settings) -> None:
    """List users (never passwords)."""
    rows = run_db(settings, list_users)
    if not rows:
        click.echo("no users yet: centralino users add NAME --role admin --password-stdin")
        return
    click.echo(f"{'USER':<20} {'ROLE':<10} {'TEAM':<14} {'PHONE':<10} {'QUEUES':<30} STATE")
    for u in rows:
        click.echo(f"{u.username:<20} {u.role:<10} {u.team or '-':<14} {u.endpoint or '-':<10} "
                   f"{','.join(u.queues) or '-':<30} {'disabled' if u.disabled else 'active'}")


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from stdin.")
@click.pass_obj
def passwd(settings: Settings, name: str, password_stdin: bool) -> None:
    """Set NAME's password; their open sessions end."""
    password = _read_password(password_stdin)
    try:
        run_db(settings, lambda s: set_password(s, name, password))
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"password changed for {name.strip().lower()}; their sessions were ended")


@users.command("disable")
@click.argument("name")
@click.pass_obj
def disable(settings: Settings, name: str) -> None:
    """Stop NAME from logging in; their sessions end and their phone is free again."""
    try:
        run_db(settings, lambda s: disable_user(s, name))
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"disabled {name.strip().lower()}")
