"""`centralino dialplan validate|render`: the admin's files, checked and turned into Asterisk's."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group(name="dialplan")
def dialplan() -> None:
    """Check the site file and IVR flows, and render the Asterisk configuration."""


@dialplan.command()
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.pass_obj
def validate(settings, path: Path | None) -> None:
    """Report every problem with file and line; exit 1 on any error.

    PATH is a dialplans directory (default: the configured one), a site file or one flow.
    """
    from gateway.dialplan.check import check_path

    rep = check_path(path or settings.dialplans_path, settings.dialplans_path)
    for p in rep.problems:
        click.echo(str(p), err=True)
    if rep.errors:
        n = len(rep.errors)
        raise click.ClickException(f"{n} error{'s' if n > 1 else ''}; nothing was changed")
    parts = []
    if rep.site:
        parts.append(f"site {rep.site.name}: {len(rep.site.queues)} queues, "
                     f"{len(rep.site.phones)} phones, {len(rep.site.ivr)} IVR numbers")
    parts += [f"flow {f.name}: {f.locale}, {len(f.intents)} intents" for f in rep.flows.values()]
    if rep.templates:
        parts.append(f"{len(rep.templates)} Asterisk templates")
    click.echo("OK: " + "; ".join(parts))


@dialplan.command()
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Directory for the Asterisk configuration files (e.g. /etc/asterisk).")
@click.option("--sounds", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Directory for the IVR prompts (default: asterisk.prompts_dir).")
@click.option("--asterisk-etc", default=None,
              help="Where Asterisk will read these files (default: the --out directory).")
@click.pass_obj
def render(settings, out: Path, sounds: Path | None, asterisk_etc: str | None) -> None:
    """Validate, then write the Asterisk configs and the IVR prompts.

    The configs are for a packaged Asterisk (Debian's layout: /var/lib/asterisk, /var/spool,
    /var/log, /var/run). Passwords are generated once per installation into
    DATA_DIR/secrets.json (0600); AMI/ARI passwords given in settings win. Nothing is written
    when validation fails.
    """
    from gateway.dialplan.check import check_dir
    from gateway.dialplan.prompts import PromptError, render_prompts
    from gateway.dialplan.render import DEBIAN_PATHS, render_all
    from gateway.dialplan.secrets import install_secrets

    rep = check_dir(settings.dialplans_path)
    for p in rep.problems:
        click.echo(str(p), err=True)
    if rep.errors or rep.site is None:
        raise click.ClickException("the dialplans have errors; nothing was written")
    a = settings.asterisk
    try:
        c = install_secrets(settings.data_dir / "secrets.json", list(rep.site.phones),
                            a.ami_password.get_secret_value() if a.ami_password else None,
                            a.ari_password.get_secret_value() if a.ari_password else None)
    except OSError as exc:
        raise click.ClickException(str(exc)) from exc
    files = render_all(settings, rep.site, ami_password=c["ami_password"],
                       ari_password=c["ari_password"], base="/var/lib/asterisk",
                       phones={p: c[f"sip:{p}"] for p in rep.site.phones},
                       paths=DEBIAN_PATHS | {"etc": asterisk_etc or str(out)})
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = out / name
        path.write_text(text)
        path.chmod(0o640)
    sounds = sounds or Path(a.prompts_dir)
    try:
        prompts = [p for f in sorted(set(rep.site.ivr.values()))
                   for p in render_prompts(rep.flows[f], sounds, settings.cache_dir)]
    except PromptError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps({"configs": sorted(files), "out": str(out), "prompts": len(prompts),
                           "sounds": str(sounds), "secrets": str(settings.data_dir / "secrets.json")}))
