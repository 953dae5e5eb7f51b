"""The phones and queues this site has, for validating agents (``users add --phone/--queues``).

Why: an agent bound to a phone Asterisk does not know would log in to queues and never ring.
The names come from the admin's site file (``dialplans/site.yaml``, read with
:mod:`gateway.dialplan.site`), the one place phones and queues are declared.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.settings import Settings


@dataclass(frozen=True)
class SiteNames:
    agent_phones: frozenset[str]
    caller_phones: frozenset[str]
    queues: tuple[str, ...]

    def check_agent_phone(self, endpoint: str) -> str | None:
        """None when fine, else the reason, worded for the admin."""
        if endpoint in self.agent_phones:
            return None
        if endpoint in self.caller_phones:
            return f"phone {endpoint!r} is a caller phone in the site file, not an agent phone"
        return (f"unknown phone {endpoint!r}; agent phones on this site: "
                f"{', '.join(sorted(self.agent_phones)) or 'none'}")


def site_names(settings: Settings) -> SiteNames:
    """Read the site file; :class:`gateway.dialplan.problems.ConfigError` (file:line) if broken."""
    from gateway.dialplan.site import load_site, site_path

    path = site_path(settings.dialplans_path)
    if not path.is_file():
        raise FileNotFoundError(f"no site file at {path}: phones and queues are declared there")
    site = load_site(path)
    agents = frozenset(p.name for p in site.phones.values() if p.kind == "agent")
    callers = frozenset(p.name for p in site.phones.values() if p.kind != "agent")
    return SiteNames(agents, callers, tuple(site.queues))
