"""The one console script, ``centralino``.

Each command family lives in its own module so that the sandbox, speech, CTI and quality code can
grow their commands without touching each other. Errors that a user can act on are raised as
``click.ClickException`` (one clear line, non-zero exit), never as a traceback.
"""

from __future__ import annotations

import importlib
import logging

import click

from gateway.settings import Settings

# module name -> attribute holding a click command or group
_COMMANDS = {
    "gateway.cli.asterisk_cmd": "asterisk",
    "gateway.cli.run_cmd": "run",
    "gateway.cli.db_cmd": "db",
    "gateway.cli.dialplan_cmd": "dialplan",
    "gateway.cli.speech_cmd": "speech",
    "gateway.cli.intent_cmd": "intent",
    "gateway.cli.quality_cmd": "quality",
    "gateway.cli.customers_cmd": "customers",
    "gateway.cli.users_cmd": "users",
    "gateway.cli.demo_cmd": "demo",
    "gateway.cli.phone_cmd": "phone",
}


class _Root(click.Group):
    """Loads each command module only when its command is used, so start-up stays fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS.values())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        for module, attr in _COMMANDS.items():
            if attr == name:
                return getattr(importlib.import_module(module), attr)
        return None


@click.group(cls=_Root)
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR (default from settings).")
@click.pass_context
def main(ctx: click.Context, log_level: str | None) -> None:
    """Centralino: a contact-centre gateway beside Asterisk."""
    try:
        settings = Settings()
    except Exception as exc:  # pydantic ValidationError, bad TOML, missing config file
        raise click.ClickException(f"invalid settings: {exc}") from exc
    logging.basicConfig(
        level=(log_level or settings.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # logs at import
    from speech.masking import install as mask_card_numbers_in_logs

    mask_card_numbers_in_logs()  # every handler of the root logger: no card number in any log
    ctx.obj = settings
