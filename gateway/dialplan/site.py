"""The site file, ``dialplans/site.yaml``: the queues, phones and IVR numbers the admin edits.

Why a file of our own rather than hand-written Asterisk configs: the gateway, the IVR flows and
the CTI all need the same names (a flow routes to a queue, an agent is bound to a phone), so
they are declared once, validated with line-numbered errors, and rendered into Asterisk's
``pjsip.conf``, ``queues.conf`` and ``extensions.conf``. SIP passwords are never in this file:
they are generated per installation (see :mod:`gateway.dialplan.secrets`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from gateway.dialplan.problems import ConfigError, Problem, Problems, display_path
from gateway.dialplan.schema import Strict, validate_model
from gateway.dialplan.yamlsrc import Doc, load_doc

NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
PHONE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
NUMBER = re.compile(r"^[0-9]{2,8}$")
RESERVED_NUMBERS = {"198": "the silent test line", "199": "the line check"}
# queues.conf reads these sections as its own settings, never as queues.
RESERVED_QUEUES = {"general", "globals"}
CODECS = ("ulaw", "alaw", "g722", "gsm", "ilbc", "g729", "opus")


class QueueModel(Strict):
    label: str | None = None
    number: str | None = None  # direct number in from-callers, bypassing the IVR
    strategy: Literal["ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear",
                      "wrandom"] = "rrmemory"
    ring_timeout_s: int = Field(20, ge=5, le=300)
    max_wait_s: int = Field(300, ge=10, le=7200)
    service_level_s: int = Field(20, ge=1, le=600)

    @field_validator("number", mode="before")
    @classmethod
    def _number(cls, v: object) -> object:
        v = str(v) if isinstance(v, int) else v
        if v is not None and not NUMBER.match(str(v)):
            raise ValueError(f"must be 2-8 digits, got {v!r}")
        return v


CALLERID = re.compile(r'^(?:"?(?P<name>[^"<>]{0,40})"?\s*)?<(?P<num>\+?[0-9]{2,20})>$|^(?P<bare>\+?[0-9]{2,20})$')


class PhoneModel(Strict):
    kind: Literal["caller", "agent"]
    codecs: tuple[str, ...] = ("ulaw", "alaw", "g722")
    callerid: str | None = None  # what the phone presents, e.g. "Mario Rossi <+390212345678>"

    @field_validator("callerid", mode="before")
    @classmethod
    def _callerid(cls, v: object) -> object:
        v = str(v) if isinstance(v, int) else v
        if v is not None and not CALLERID.match(str(v).strip()):
            raise ValueError(f'use "Name <number>" or a number, got {v!r}')
        return v

    @field_validator("codecs")
    @classmethod
    def _codecs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [c for c in v if c not in CODECS]
        if bad or not v:
            raise ValueError(f"unknown codec(s) {bad}; use some of {', '.join(CODECS)}")
        return v


class PoolModel(Strict):
    kind: Literal["caller", "agent"]
    count: int = Field(ge=1, le=500)
    codecs: tuple[str, ...] = ("ulaw", "alaw", "g722")


class SiteModel(Strict):
    site: str = "centralino"
    queues: dict[str, QueueModel]
    phones: dict[str, PhoneModel] = Field(default_factory=dict)
    phone_pools: dict[str, PoolModel] = Field(default_factory=dict)
    ivr: dict[str, str] = Field(default_factory=dict)  # number -> flow name


@dataclass(frozen=True, slots=True)
class Queue:
    name: str
    label: str
    number: str | None
    strategy: str
    ring_timeout_s: int
    max_wait_s: int
    service_level_s: int


@dataclass(frozen=True, slots=True)
class Phone:
    name: str
    kind: str  # caller | agent
    codecs: tuple[str, ...]
    callerid: str | None = None


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    path: Path
    queues: dict[str, Queue]
    phones: dict[str, Phone]
    ivr: dict[str, str]  # number -> flow name

    def agents(self) -> list[str]:
        return [p.name for p in self.phones.values() if p.kind == "agent"]


def site_path(dialplans_dir: Path) -> Path:
    return dialplans_dir / "site.yaml"


def check_site(path: Path, flows_dir: Path | None = None) -> tuple[Site | None, list[Problem]]:
    """Every problem in the site file; the :class:`Site` when there are no errors."""
    doc, problems = load_doc(path, display_path(path))
    if doc is None:
        return None, problems
    probs = Problems(doc.file, list(problems))
    model = validate_model(SiteModel, doc, probs)
    if model is None:
        return None, probs.items
    site = _semantics(model, doc, probs, path, flows_dir if flows_dir else path.parent / "flows")
    return (site if not probs.errors else None), probs.items


def load_site(path: Path) -> Site:
    """The site, or :class:`ConfigError` listing every problem (file:line)."""
    site, problems = check_site(path)
    if site is None:
        raise ConfigError([p for p in problems if p.severity == "error"])
    return site


def _semantics(m: SiteModel, doc: Doc, probs: Problems, path: Path, flows_dir: Path) -> Site:
    numbers: dict[str, tuple[str, int]] = {}

    def claim(number: str, what: str, line: int) -> None:
        if number in RESERVED_NUMBERS:
            probs.add(line, f"{what}: number {number} is reserved for {RESERVED_NUMBERS[number]}")
        elif number in numbers:
            other, oline = numbers[number]
            probs.add(line, f"{what}: number {number} is already used by {other} (line {oline})")
        else:
            numbers[number] = (what, line)

    if not m.queues:
        probs.add(doc.line(("queues",)), "queues: at least one queue is needed")
    queues = {}
    for name, q in m.queues.items():
        if not NAME.match(name):
            probs.add(doc.key_line(("queues", name)),
                      f"queue name {name!r}: use lower-case letters, digits and _ (max 32)")
        elif name in RESERVED_QUEUES:
            probs.add(doc.key_line(("queues", name)),
                      f"queue name {name!r} is reserved: Asterisk's queues.conf reads [{name}] as "
                      f"its settings, so such a queue would not exist")
        if q.number:
            claim(q.number, f"queue {name}", doc.line(("queues", name, "number")))
        queues[name] = Queue(name, q.label or name.replace("_", " "), q.number, q.strategy,
                             q.ring_timeout_s, q.max_wait_s, q.service_level_s)
    phones = {}
    for name, p in m.phones.items():
        if not PHONE_NAME.match(name):
            probs.add(doc.key_line(("phones", name)),
                      f"phone name {name!r}: use lower-case letters, digits, - and _ (max 32)")
        phones[name] = Phone(name, p.kind, p.codecs, _callerid(p.callerid))
    for prefix, pool in m.phone_pools.items():
        if not PHONE_NAME.match(prefix):
            probs.add(doc.key_line(("phone_pools", prefix)), f"pool prefix {prefix!r}: bad name")
        for i in range(1, pool.count + 1):
            name = f"{prefix}{i}"
            if name in phones:
                probs.add(doc.key_line(("phone_pools", prefix)),
                          f"pool {prefix} makes phone {name}, which phones: already defines")
            phones[name] = Phone(name, pool.kind, pool.codecs)
    ivr = {}
    for number, flow in m.ivr.items():
        line = doc.key_line(("ivr", number))
        if not NUMBER.match(number):
            probs.add(line, f"ivr: {number!r} is not a 2-8 digit number")
            continue
        claim(number, f"ivr flow {flow}", line)
        if not (flows_dir / f"{flow}.yaml").is_file():
            probs.add(doc.line(("ivr", number)),
                      f"ivr {number}: flow {flow!r} not found ({display_path(flows_dir / (flow + '.yaml'))})")
        ivr[number] = flow
    return Site(m.site, path, queues, phones, ivr)


def _callerid(v: str | None) -> str | None:
    """As pjsip.conf wants it: ``"Name" <number>`` or ``<number>``."""
    if v is None:
        return None
    m = CALLERID.match(v.strip())
    num = m["num"] or m["bare"]
    name = (m["name"] or "").strip()
    return f'"{name}" <{num}>' if name else f"<{num}>"
