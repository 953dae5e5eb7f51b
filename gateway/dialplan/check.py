"""Check a whole dialplans directory (or one file) before anything reaches Asterisk.

What is checked: the site file, every flow in ``flows/`` (against the site's queues), that every
IVR number's flow exists, and that every ``*.conf.j2`` template parses and renders with the
site (Jinja syntax errors and unknown variables, with their line).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from gateway.dialplan.flow import Flow, check_flow
from gateway.dialplan.problems import Problem, display_path
from gateway.dialplan.site import Site, check_site, site_path


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    site: Site | None = None
    flows: dict[str, Flow] = field(default_factory=dict)
    templates: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def check_path(path: Path, dialplans_dir: Path) -> Report:
    """``path`` may be a dialplans dir, a site file or one flow file."""
    if path.is_dir():
        return check_dir(path)
    rep = Report()
    if not path.exists():
        rep.problems.append(Problem(display_path(path), 1, "file not found"))
        return rep
    if path.name == "site.yaml":
        rep.site, rep.problems = check_site(path)
        return rep
    site, site_problems = check_site(site_path(dialplans_dir))
    if site is None:
        rep.problems += [p for p in site_problems if p.severity == "error"]
    flow, problems = check_flow(path, site)
    rep.problems += problems
    if flow is not None:
        rep.flows[flow.name] = flow
    return rep


def check_dir(d: Path) -> Report:
    rep = Report()
    sp = site_path(d)
    if not sp.exists():
        rep.problems.append(Problem(display_path(sp), 1, "site file not found"))
    else:
        rep.site, problems = check_site(sp, d / "flows")
        rep.problems += problems
    for f in sorted((d / "flows").glob("*.yaml")):
        flow, problems = check_flow(f, rep.site)
        rep.problems += problems
        if flow is not None:
            rep.flows[flow.name] = flow
    if rep.site is not None:
        rep.problems += _check_templates(d, rep.site, rep)
    return rep


def _check_templates(d: Path, site: Site, rep: Report) -> list[Problem]:
    from gateway.dialplan.render import render_all
    from gateway.settings import Settings

    problems = []
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(d)), undefined=jinja2.StrictUndefined)
    for tpl in sorted(d.glob("*.conf.j2")):
        try:
            env.parse(tpl.read_text(), tpl.name, str(tpl))
        except jinja2.TemplateSyntaxError as exc:
            problems.append(Problem(display_path(tpl), exc.lineno or 1, f"template: {exc.message}"))
        else:
            rep.templates.append(tpl.name)
    if problems:
        return problems
    try:
        render_all(Settings(dialplans_dir=d), site, ami_password="x", ari_password="x", base="/x",
                   phones={p: "x" for p in site.phones})
    except jinja2.UndefinedError as exc:
        problems.append(Problem(display_path(d), 1, f"template: {exc.message}"))
    except jinja2.TemplateError as exc:
        problems.append(Problem(display_path(d), getattr(exc, "lineno", 1) or 1, f"template: {exc}"))
    return problems
