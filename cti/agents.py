"""Agent sessions as Asterisk sees them: queue membership, pause, offered and connected calls.

Why Asterisk is the source of truth: a member can be added, paused or removed from the CLI, by a
supervisor's tool or lost in a PBX restart (``persistentmembers = no``); the desktop must show
what the queue will actually do. So the desktop's buttons send AMI actions, and the state here
changes only from AMI events (``QueueMemberAdded/Removed/Pause/Status``, ``AgentCalled``...) and
from ``QueueStatus`` after every (re)connect. This module is pure state (no I/O), so it can be
driven from recordings; :mod:`cti.component` does the talking.

An agent's state, in order of precedence: ``on_call`` (a call connected to their phone),
``ringing`` (a call offered), ``wrap_up`` (a finished call not yet wrapped up), ``paused``
(paused in every queue they are in), ``ready`` (in at least one queue), ``logged_out``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

WRAP_UP = "wrap-up"  # the pause reason Asterisk shows during after-call work
STATES = ("logged_out", "ready", "paused", "ringing", "on_call", "wrap_up")


def endpoint_of(channel: str | None) -> str | None:
    """``PJSIP/agent1-0000002a`` -> ``agent1``; None for other technologies."""
    if not channel:
        return None
    tech, _, rest = channel.partition("/")
    if tech.upper() != "PJSIP" or not rest:
        return None
    return rest.rsplit("-", 1)[0] if "-" in rest else rest


@dataclass
class Agent:
    user_id: int
    username: str
    endpoint: str
    team: str | None
    allowed: tuple[str, ...]
    member: dict[str, tuple[bool, str | None]] = field(default_factory=dict)  # queue -> paused, why
    offered: dict[str, str | None] = field(default_factory=dict)  # linkedid -> queue
    connected: dict[str, str | None] = field(default_factory=dict)  # linkedid -> queue
    wrapup: list[str] = field(default_factory=list)  # linkedids awaiting the wrap-up form
    channels: dict[str, str] = field(default_factory=dict)  # uniqueid -> linkedid of their phone
    published: tuple[str, str | None] | None = None  # last (state, reason) announced
    last_frame: str | None = None  # last state frame sent to desktops
    version: int = 0  # gateway-wide sequence number of this agent's last state frame
    releasing: bool = False  # the wrap-up pause is being lifted (the agent is ready)

    @property
    def interface(self) -> str:
        return f"PJSIP/{self.endpoint}"

    @property
    def paused(self) -> bool:
        return bool(self.member) and all(p for p, _ in self.member.values())

    @property
    def pause_reason(self) -> str | None:
        return next((r for p, r in self.member.values() if p and r), None)

    def state(self) -> tuple[str, str | None]:
        if self.connected:
            return "on_call", None
        if self.offered:
            return "ringing", None
        if self.wrapup:
            return "wrap_up", None
        if self.paused and self.pause_reason == WRAP_UP and not self.releasing:
            return "wrap_up", None  # after-call work of a call we did not see (gateway restart)
        if self.paused and not (self.releasing and self.pause_reason == WRAP_UP):
            return "paused", self.pause_reason
        if self.member:
            return "ready", None
        return "logged_out", None

    def involved(self, linkedid: str) -> bool:
        """The agent may see this call's customer: offered, connected or in its wrap-up."""
        return linkedid in self.offered or linkedid in self.connected or linkedid in self.wrapup

    def public(self) -> dict:
        state, reason = self.state()
        return {"agent": self.username, "endpoint": self.endpoint, "team": self.team,
                "state": state, "reason": reason, "queues": sorted(self.member),
                "allowed_queues": list(self.allowed), "paused": self.paused,
                "wrapup": list(self.wrapup), "calls": sorted(self.connected),
                "offered": sorted(self.offered), "version": self.version}


# What the component must do after an event, beyond publishing state changes.
@dataclass(frozen=True, slots=True)
class Effect:
    kind: str  # offered | connected | ended_offer | ended_call | moved
    agent: Agent
    linkedid: str
    queue: str | None = None
    why: str | None = None


class AgentRegistry:
    """Every agent the gateway knows (enabled users with role agent), indexed by phone."""

    def __init__(self) -> None:
        self.by_name: dict[str, Agent] = {}
        self.by_endpoint: dict[str, Agent] = {}
        self._handlers: dict[str, Callable] = {
            name[4:]: getattr(self, name) for name in dir(self) if name.startswith("_on_")}

    # -- roster ----------------------------------------------------------------------------------
    def put(self, user_id: int, username: str, endpoint: str, team: str | None,
            allowed: tuple[str, ...]) -> Agent:
        """Add or refresh an agent (a changed phone moves their live state with them)."""
        old = self.by_name.get(username)
        if old is not None and old.endpoint != endpoint:
            self.by_endpoint.pop(old.endpoint, None)
        a = old or Agent(user_id, username, endpoint, team, allowed)
        a.user_id, a.endpoint, a.team, a.allowed = user_id, endpoint, team, allowed
        self.by_name[username] = a
        self.by_endpoint[endpoint] = a
        return a

    def remove(self, username: str) -> None:
        a = self.by_name.pop(username, None)
        if a is not None and self.by_endpoint.get(a.endpoint) is a:
            del self.by_endpoint[a.endpoint]

    def of_interface(self, get: Callable[[str], str | None]) -> Agent | None:
        for key in ("Interface", "Location", "StateInterface"):
            ep = endpoint_of(get(key))
            if ep is not None:
                return self.by_endpoint.get(ep)
        return None

    def with_call(self, linkedid: str) -> list[Agent]:
        return [a for a in self.by_name.values() if a.involved(linkedid)]

    # -- AMI events ------------------------------------------------------------------------------
    def handle(self, name: str, get: Callable[[str], str | None],
               is_customer_call: Callable[[str], bool] = lambda lid: True) -> list[Effect]:
        """Apply one AMI event; returns what happened to whom (state changes are read after)."""
        fn = self._handlers.get(name)
        return fn(get, is_customer_call) or [] if fn is not None else []

    def _on_QueueMemberAdded(self, get, _):
        a = self.of_interface(get)
        if a is not None and get("Queue"):
            a.member[get("Queue")] = (get("Paused") == "1", get("PausedReason") or None)

    def _on_QueueMemberRemoved(self, get, _):
        a = self.of_interface(get)
        if a is not None:
            a.member.pop(get("Queue") or "", None)

    def _on_QueueMemberPause(self, get, _):
        a = self.of_interface(get)
        q = get("Queue")
        if a is not None and q:
            paused = get("Paused") == "1"
            reason = (get("PausedReason") or get("Reason") or None) if paused else None
            a.member[q] = (paused, reason)

    def _on_QueueMemberStatus(self, get, _):
        a = self.of_interface(get)
        q = get("Queue")
        if a is not None and q and get("Paused") is not None:
            paused = get("Paused") == "1"
            a.member[q] = (paused, (get("PausedReason") or None) if paused else None)

    def _on_AgentCalled(self, get, _):
        a = self.of_interface(get)
        lid = get("Linkedid")
        if a is None or not lid or lid in a.connected:
            return None
        if lid in a.offered:  # its phone reported ringing first: now we know the queue
            a.offered[lid] = a.offered[lid] or get("Queue")
            return None
        a.offered[lid] = get("Queue")
        return [Effect("offered", a, lid, get("Queue"))]

    def _on_AgentRingNoAnswer(self, get, _):
        return self._end_offer(self.of_interface(get), get("Linkedid"), "no_answer")

    def _on_AgentConnect(self, get, _):
        a = self.of_interface(get)
        lid = get("Linkedid")
        if a is None or not lid:
            return None
        queue = a.offered.pop(lid, None) or get("Queue")
        if lid in a.connected:
            return None
        a.connected[lid] = queue
        return [Effect("connected", a, lid, queue)]

    def _on_AgentComplete(self, get, _):
        return self._end_call(self.of_interface(get), get("Linkedid"), get("Reason"))

    def _on_AgentDump(self, get, _):
        return self._end_call(self.of_interface(get), get("Linkedid"), "dump")

    def _on_QueueCallerAbandon(self, get, _):
        lid = get("Linkedid")
        out: list[Effect] = []
        for a in list(self.by_name.values()):
            if lid and lid in a.offered:
                out += self._end_offer(a, lid, "abandoned") or []
        return out

    # An agent's own phone: direct (non-queue) deliveries, transfers and hang-ups.
    def _on_Newchannel(self, get, _):
        a = self.by_endpoint.get(endpoint_of(get("Channel")) or "")
        if a is not None and get("Uniqueid"):
            a.channels[get("Uniqueid")] = get("Linkedid") or get("Uniqueid")

    def _on_Newstate(self, get, is_customer_call):
        a = self.by_endpoint.get(endpoint_of(get("Channel")) or "")
        uid = get("Uniqueid") or ""
        if a is None or uid not in a.channels:
            return None
        lid = a.channels[uid]
        state = get("ChannelStateDesc")
        if not is_customer_call(lid):
            return None
        if state == "Ringing" and lid not in a.offered and lid not in a.connected:
            a.offered[lid] = None
            return [Effect("offered", a, lid, None)]
        if state == "Up" and lid in a.offered and a.offered[lid] is None:
            del a.offered[lid]  # a direct call answered (queue calls connect via AgentConnect)
            a.connected[lid] = None
            return [Effect("connected", a, lid, None)]
        return None

    def _on_Hangup(self, get, _):
        a = self.by_endpoint.get(endpoint_of(get("Channel")) or "")
        uid = get("Uniqueid") or ""
        if a is None or uid not in a.channels:
            return None
        lid = a.channels.pop(uid)
        if lid in a.channels.values():
            return None  # another channel of this phone is still in the call
        if lid in a.offered:
            return self._end_offer(a, lid, "hangup")
        if lid in a.connected:
            return self._end_call(a, lid, "hangup")
        return None

    def _on_AttendedTransfer(self, get, _):
        """The consulted agent now talks to the original caller: their call becomes that one."""
        orig, second = get("OrigTransfererLinkedid"), get("SecondTransfererLinkedid")
        if not orig or not second or orig == second:
            return None
        transferer = endpoint_of(get("SecondTransfererChannel"))
        out = []
        for a in self.by_name.values():
            if a.endpoint == transferer:
                continue
            if second in a.channels.values() or second in a.connected:
                for uid, lid in a.channels.items():
                    if lid == second:
                        a.channels[uid] = orig
                a.connected.pop(second, None)
                a.offered.pop(second, None)
                a.connected[orig] = None
                out.append(Effect("moved", a, orig, None, second))
        return out

    # -- helpers ---------------------------------------------------------------------------------
    def _end_offer(self, a: Agent | None, lid: str | None, why: str) -> list[Effect] | None:
        if a is None or not lid or lid not in a.offered:
            return None
        queue = a.offered.pop(lid)
        return [Effect("ended_offer", a, lid, queue, why)]

    def _end_call(self, a: Agent | None, lid: str | None, why: str | None) -> list[Effect] | None:
        if a is None or not lid or lid not in a.connected:
            return None
        queue = a.connected.pop(lid)
        if lid not in a.wrapup:
            a.wrapup.append(lid)
        return [Effect("ended_call", a, lid, queue, why)]

    def finish_wrapup(self, a: Agent, linkedid: str | None = None) -> list[str]:
        """Wrap-up done for ``linkedid`` (None: all of them, the agent went ready)."""
        done = [linkedid] if linkedid is not None else list(a.wrapup)
        a.wrapup = [lid for lid in a.wrapup if lid not in done]
        return done

    def resync(self, members: list[Callable[[str], str | None]]) -> None:
        """Membership and pause from a fresh ``QueueStatus`` (its ``QueueMember`` entries)."""
        seen: dict[str, dict[str, tuple[bool, str | None]]] = {}
        for get in members:
            a = self.of_interface(get)
            if a is None or not get("Queue"):
                continue
            paused = get("Paused") == "1"
            seen.setdefault(a.username, {})[get("Queue")] = (
                paused, (get("PausedReason") or None) if paused else None)
        for a in self.by_name.values():
            a.member = seen.get(a.username, {})
