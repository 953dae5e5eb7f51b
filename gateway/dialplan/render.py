"""Render the Asterisk configuration from settings: one template per file in ``dialplans/``.

Rendering is a pure function (settings + credentials in, file texts out) so it can be tested
without Asterisk; writing the files is the sandbox's job.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from gateway.settings import Settings


QUEUES = ("billing", "lost_card", "tech_support", "general")


def render_all(settings: Settings, *, ami_password: str, ari_password: str,
               base: str, phones: dict[str, str] | None = None) -> dict[str, str]:
    """Return ``{file name: text}`` for every ``*.conf.j2`` template in the dialplans dir."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(settings.dialplans_path)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    ctx = {"a": settings.asterisk, "instance": settings.asterisk.instance, "base": base,
           "ami_password": ami_password, "ari_password": ari_password,
           "phones": phones or {}, "queues": QUEUES}
    out = {}
    for tpl in sorted(Path(settings.dialplans_path).glob("*.conf.j2")):
        out[tpl.name[: -len(".j2")]] = env.get_template(tpl.name).render(ctx)
    return out
