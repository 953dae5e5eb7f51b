"""Render the Asterisk configuration from settings and the site file: one template per file.

Rendering is a pure function (settings + site + secrets in, file texts out) so it can be tested
without Asterisk; writing the files is the sandbox's (or ``centralino dialplan render``'s) job.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from sqlalchemy.engine import make_url

from gateway.dialplan.site import Site

# Where Debian's asterisk package keeps modules and data (the sandbox and the Docker image).
DEBIAN_DIRS = {"modules": "/usr/lib/x86_64-linux-gnu/asterisk/modules",
               "share": "/usr/share/asterisk", "varlib": "/var/lib/asterisk"}
# Where Debian's asterisk package keeps its own state (the Docker image runs it that way).
DEBIAN_PATHS = {"etc": "/etc/asterisk", "db": "/var/lib/asterisk", "spool": "/var/spool/asterisk",
                "run": "/var/run/asterisk", "log": "/var/log/asterisk"}


def instance_paths(base: str, rundir: str | None = None) -> dict[str, str]:
    return {"etc": f"{base}/etc", "db": f"{base}/db", "spool": f"{base}/spool",
            "run": rundir or f"{base}/run", "log": f"{base}/log"}
from gateway.settings import Settings


def render_all(settings: Settings, site: Site, *, ami_password: str, ari_password: str,
               base: str, phones: dict[str, str],
               cel_sqlite_path: str | None = None,
               dirs: dict[str, str] | None = None, rundir: str | None = None,
               paths: dict[str, str] | None = None) -> dict[str, str]:
    """Return ``{file name: text}`` for every ``*.conf.j2`` template in the dialplans dir.

    ``phones`` maps each phone of the site to its SIP password; ``base`` is the directory
    Asterisk keeps this instance's run, spool and log files in; ``cel_sqlite_path`` (as
    Asterisk sees it, without ``.db``) turns on CEL into SQLite, the embedded set-up's trail.
    ``paths`` (etc, db, spool, run, log) default to directories under ``base``, one set per
    instance; a packaged Asterisk uses :data:`DEBIAN_PATHS`.
    """
    missing = sorted(set(site.phones) - set(phones))
    if missing:
        raise ValueError(f"no SIP password for phone(s) {', '.join(missing)}")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(settings.dialplans_path)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    ctx = {"a": settings.asterisk, "instance": settings.asterisk.instance, "base": base,
           "ami_password": ami_password, "ari_password": ari_password, "site": site,
           "phones": [(site.phones[n], phones[n]) for n in site.phones],
           "cel_sqlite_path": cel_sqlite_path, "dirs": dirs or DEBIAN_DIRS,
           "paths": paths or instance_paths(base, rundir), "cel_pgsql": _pgsql(settings.asterisk.cel_url)}
    out = {}
    for tpl in sorted(Path(settings.dialplans_path).glob("*.conf.j2")):
        out[tpl.name[: -len(".j2")]] = env.get_template(tpl.name).render(ctx)
    return out


def _pgsql(url: str | None) -> dict[str, object] | None:
    """cel_pgsql's connection from ``asterisk.cel_url`` when CEL goes to PostgreSQL."""
    if not url:
        return None
    u = make_url(url)
    if u.get_backend_name() != "postgresql":
        return None
    return {"host": u.host or "127.0.0.1", "port": u.port or 5432, "dbname": u.database,
            "user": u.username or "postgres", "password": u.password or ""}
