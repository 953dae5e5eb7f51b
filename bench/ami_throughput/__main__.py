"""Events/s parsed and dispatched on one core: Centralino's AMI code vs panoramisk vs asterisk-ami.

Same byte stream, same reads, same run, each library's own parsing *and dispatch* path:

- centralino: ``Parser.feed`` + the connector's real routing (``AMIClient._deliver``) to an
  ``on_event`` callback;
- panoramisk: ``AMIProtocol.data_received`` -> ``handle_message`` -> ``Manager.dispatch`` (its
  fnmatch patterns) to a callback registered for ``*``;
- asterisk-ami: the body of its blocking reader loop (``AMIClient._next_pack``: its regexes,
  decoding, ``fire_recv_pack``) to an event listener, over the same reads without the socket.

Three consumers, because our events parse their headers lazily and that must not flatter us:
``name`` looks only at the event name (what most traffic gets: routed, then ignored), ``3 hdrs``
reads Uniqueid/Linkedid/Channel (what the call tracker does), ``all hdrs`` walks every header.

The stream is synthetic but shaped like a contact centre: each call is a caller leg through an
IVR into a queue, an agent leg, RTCP reports every few seconds on both legs, hangups, Cdr and CEL.
``--stream FILE`` runs a recorded raw AMI byte stream instead (e.g. captured with ``socat``).

Run: ``python -m bench.ami_throughput [--events N] [--repeat R] [--cpu C]``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import platform
import random
import time
from collections import deque
from collections.abc import Callable

from gateway.ami.client import AMIClient
from gateway.ami.protocol import Parser
from gateway.settings import Settings

# --- a realistic stream ---------------------------------------------------------------------


def _channel_headers(chan: str, uid: str, lid: str, state: str, num: str, name: str,
                     ctx: str, exten: str) -> dict[str, str]:
    states = {"0": "Down", "4": "Ring", "5": "Ringing", "6": "Up"}
    return {"Channel": chan, "ChannelState": state, "ChannelStateDesc": states[state],
            "CallerIDNum": num, "CallerIDName": name, "ConnectedLineNum": "<unknown>",
            "ConnectedLineName": "<unknown>", "Language": "en", "AccountCode": "",
            "Context": ctx, "Exten": exten, "Priority": "1", "Uniqueid": uid, "Linkedid": lid}


def _rtcp(kind: str, base: dict[str, str], rnd: random.Random, seq: int) -> tuple[str, dict]:
    h = dict(base)
    h.update({"SSRC": f"0x{rnd.getrandbits(32):08x}", "PT": "200(SR)" if kind == "RTCPSent" else "201(RR)",
              "To" if kind == "RTCPSent" else "From": "127.0.0.1:10234",
              "ReportCount": "1", "SentNTP": f"{1763800000 + seq}.{rnd.randrange(10**6):06d}",
              "SentRTP": str(8000 * seq), "SentPackets": str(250 * seq), "SentOctets": str(40000 * seq),
              "Report0SourceSSRC": f"0x{rnd.getrandbits(32):08x}", "Report0FractionLost": "0",
              "Report0CumulativeLost": str(rnd.randrange(3)), "Report0HighestSequence": str(1000 + 250 * seq),
              "Report0SequenceNumberCycles": "0", "Report0IAJitter": str(rnd.randrange(4, 40)),
              "Report0LSR": str(rnd.getrandbits(32)), "Report0DLSR": f"{rnd.random():.4f}",
              "RTT": f"{rnd.random() / 50:.4f}", "MES": f"{rnd.uniform(85, 99):.1f}"})
    return kind, h


def call_events(i: int, rnd: random.Random, rtcp_per_leg: int) -> list[tuple[str, dict]]:
    uid, lid, auid = f"1763800000.{2 * i}", f"1763800000.{2 * i}", f"1763800000.{2 * i + 1}"
    caller, agent = f"PJSIP/caller{i % 50}-{2 * i:08x}", f"PJSIP/agent{i % 12}-{2 * i + 1:08x}"
    num = f"33{rnd.randrange(10**8):08d}"
    c = lambda st, ctx="from-callers", ex="100": _channel_headers(
        caller, uid, lid, st, num, "Mario Rossi", ctx, ex)
    a = lambda st: _channel_headers(agent, auid, lid, st, num, "Mario Rossi", "agents", "s")
    ev: list[tuple[str, dict]] = [
        ("Newchannel", c("0")),
        ("VarSet", {**c("4"), "Variable": "__CENTRALINO_FLOW", "Value": "demo-en"}),
        ("Newexten", {**c("4"), "Extension": "100", "Application": "Answer", "AppData": ""}),
        ("Newstate", c("6")),
        ("Newexten", {**c("6"), "Extension": "100", "Application": "Stasis", "AppData": "centralino"}),
        ("VarSet", {**c("6"), "Variable": "RTPAUDIOQOS",
                    "Value": "ssrc=1;themssrc=2;lp=0;rxjitter=0.000125;rxcount=250;txjitter=0;txcount=250;rlp=0;rtt=0.001"}),
        ("QueueCallerJoin", {**c("6", "queues", "billing"), "Queue": "billing", "Position": "1", "Count": "1"}),
        ("Newchannel", a("0")),
        ("AgentCalled", {**c("6", "queues", "billing"), **{f"Dest{k}": v for k, v in a("5").items()},
                         "Queue": "billing", "Interface": f"PJSIP/agent{i % 12}", "MemberName": f"agent{i % 12}"}),
        ("DialBegin", {**c("6", "queues", "billing"), **{f"Dest{k}": v for k, v in a("5").items()},
                       "DialString": f"agent{i % 12}"}),
        ("Newstate", a("6")),
        ("DialEnd", {**c("6", "queues", "billing"), **{f"Dest{k}": v for k, v in a("6").items()},
                     "DialStatus": "ANSWER"}),
        ("AgentConnect", {**c("6", "queues", "billing"), **{f"Dest{k}": v for k, v in a("6").items()},
                          "Queue": "billing", "MemberName": f"agent{i % 12}", "HoldTime": str(rnd.randrange(60)),
                          "RingTime": str(rnd.randrange(10))}),
        ("BridgeEnter", {"BridgeUniqueid": f"b{i}", "BridgeType": "basic", "BridgeTechnology": "simple_bridge",
                         "BridgeCreator": "<unknown>", "BridgeName": "<unknown>", "BridgeNumChannels": "2",
                         "BridgeVideoSourceMode": "none", **c("6", "queues", "billing")}),
        ("QueueCallerLeave", {**c("6", "queues", "billing"), "Queue": "billing", "Position": "1", "Count": "0"}),
    ]
    for seq in range(1, rtcp_per_leg + 1):
        ev.append(_rtcp("RTCPSent", c("6", "queues", "billing"), rnd, seq))
        ev.append(_rtcp("RTCPReceived", a("6"), rnd, seq))
    ev += [
        ("AgentComplete", {**c("6", "queues", "billing"), **{f"Dest{k}": v for k, v in a("6").items()},
                           "Queue": "billing", "MemberName": f"agent{i % 12}", "HoldTime": "12",
                           "TalkTime": str(rnd.randrange(30, 600)), "Reason": "caller"}),
        ("Hangup", {**c("6", "queues", "billing"), "Cause": "16", "Cause-txt": "Normal Clearing"}),
        ("Hangup", {**a("6"), "Cause": "16", "Cause-txt": "Normal Clearing"}),
        ("Cdr", {"AccountCode": "", "Source": num, "Destination": "billing", "DestinationContext": "queues",
                 "CallerID": f"\"Mario Rossi\" <{num}>", "Channel": caller, "DestinationChannel": agent,
                 "LastApplication": "Queue", "LastData": "billing", "StartTime": "2026-11-22 10:00:00",
                 "AnswerTime": "2026-11-22 10:00:01", "EndTime": "2026-11-22 10:03:00", "Duration": "180",
                 "BillableSeconds": "179", "Disposition": "ANSWERED", "AMAFlags": "DOCUMENTATION",
                 "UniqueID": uid, "UserField": ""}),
        ("CEL", {"EventName": "LINKEDID_END", "AccountCode": "", "CallerIDnum": num, "CallerIDname": "Mario Rossi",
                 "CallerIDani": num, "CallerIDrdnis": "", "CallerIDdnid": "100", "Exten": "billing",
                 "Context": "queues", "Channel": caller, "Application": "", "AppData": "",
                 "EventTime": "2026-11-22 10:03:00", "AMAFlags": "DOCUMENTATION", "UniqueID": uid,
                 "LinkedID": lid, "Userfield": "", "Peer": "", "PeerAccount": "", "Extra": ""}),
    ]
    return ev


def make_stream(n_events: int, seed: int = 1, rtcp_per_leg: int = 10) -> bytes:
    """About ``n_events`` events (whole calls), as Asterisk would write them, banner first."""
    rnd = random.Random(seed)
    parts = [b"Asterisk Call Manager/9.0.0\r\n"]
    count = i = 0
    while count < n_events:
        for name, hdrs in call_events(i, rnd, rtcp_per_leg):
            lines = [f"Event: {name}", "Privilege: call,all"] + [f"{k}: {v}" for k, v in hdrs.items()]
            parts.append(("\r\n".join(lines) + "\r\n\r\n").encode())
            count += 1
        i += 1
    return b"".join(parts)


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


# --- the three consumers, per library -------------------------------------------------------

KEYS = ("Uniqueid", "Linkedid", "Channel")


def run_ours(blocks: list[bytes], consume: str) -> int:
    seen = 0
    routes: dict[str, Callable] = {}

    def on_name(ev) -> None:
        nonlocal seen
        routes.get(ev.name)
        seen += 1

    def on_three(ev) -> None:
        nonlocal seen
        ev.get("Uniqueid"), ev.get("Linkedid"), ev.get("Channel")
        seen += 1

    def on_all(ev) -> None:
        nonlocal seen
        for _k, _v in ev.headers.items():
            pass
        seen += 1

    client = AMIClient(Settings())
    client.on_event({"name": on_name, "3 hdrs": on_three, "all hdrs": on_all}[consume])
    p = Parser()
    deliver = client._deliver
    for b in blocks:
        deliver(p.feed(b), 0)
    return seen


def run_panoramisk(blocks: list[bytes], consume: str) -> int:
    from panoramisk.ami_protocol import AMIProtocol
    from panoramisk.manager import Manager

    seen = 0
    routes: dict[str, Callable] = {}

    def on_name(manager, ev) -> None:
        nonlocal seen
        routes.get(ev["Event"])
        seen += 1

    def on_three(manager, ev) -> None:
        nonlocal seen
        ev.get("Uniqueid"), ev.get("Linkedid"), ev.get("Channel")
        seen += 1

    def on_all(manager, ev) -> None:
        nonlocal seen
        for _k, _v in ev.items():
            pass
        seen += 1

    manager = Manager(loop=None)
    manager.register_event("*", {"name": on_name, "3 hdrs": on_three, "all hdrs": on_all}[consume])
    proto = AMIProtocol()
    proto.transport, proto.closed, proto.queue, proto.responses = None, False, deque(), {}
    proto.factory, proto.version, proto.log = manager, None, logging.getLogger("panoramisk.bench")
    for b in blocks:
        proto.data_received(b)
    return seen


def run_asterisk_ami(blocks: list[bytes], consume: str) -> int:
    """Its reader is a blocking socket loop (``AMIClient._next_pack``); this is the same loop body
    (its regexes, decoding and ``fire_recv_pack``) over the same reads, minus the socket."""
    from asterisk.ami.client import AMIClient as BlockingClient

    seen = 0
    routes: dict[str, Callable] = {}

    def on_name(event, source) -> None:
        nonlocal seen
        routes.get(event.name)
        seen += 1

    def on_three(event, source) -> None:
        nonlocal seen
        k = event.keys
        k.get("Uniqueid"), k.get("Linkedid"), k.get("Channel")
        seen += 1

    def on_all(event, source) -> None:
        nonlocal seen
        for _k, _v in event.keys.items():
            pass
        seen += 1

    client = BlockingClient()
    client.add_event_listener({"name": on_name, "3 hdrs": on_three, "all hdrs": on_all}[consume])
    data = b""
    first = True
    for b in blocks:
        data += b
        if first:
            if not client.asterisk_line_regex.search(data):
                continue
            _, data = client.asterisk_line_regex.split(data, 1)
            first = False
        while client.asterisk_pack_regex.search(data):
            pack, data = client.asterisk_pack_regex.split(data, 1)
            client.fire_recv_pack(client._decode_pack(pack))
    return seen


LIBS = {"centralino": run_ours, "panoramisk": run_panoramisk, "asterisk-ami": run_asterisk_ami}
CONSUMERS = ("name", "3 hdrs", "all hdrs")


def measure(fn, blocks: list[bytes], consume: str, n_events: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        seen = fn(blocks, consume)
        best = min(best, time.perf_counter() - t0)
        if seen != n_events:
            raise SystemExit(f"{fn.__name__}/{consume} dispatched {seen} events, expected {n_events}")
    return n_events / best


def _version(dist: str) -> str:
    from importlib.metadata import version
    return version(dist)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=40_000)
    ap.add_argument("--repeat", type=int, default=5, help="best of R runs per cell")
    ap.add_argument("--reads", default="4096,65536", help="read sizes in bytes, comma separated")
    ap.add_argument("--cpu", type=int, default=0, help="pin to this core (-1: do not pin)")
    ap.add_argument("--rtcp-per-leg", type=int, default=10)
    ap.add_argument("--stream", help="a recorded raw AMI byte stream to use instead")
    args = ap.parse_args()
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    logging.getLogger("panoramisk").setLevel(logging.WARNING)

    if args.stream:
        with open(args.stream, "rb") as f:
            data = f.read()
    else:
        data = make_stream(args.events, rtcp_per_leg=args.rtcp_per_leg)
    norm = data.replace(b"\r\n", b"\n")  # counted without our parser, to check every library
    n_events = norm.count(b"\n\nEvent: ") + norm.startswith(b"Event: ") + (
        norm.startswith(b"Asterisk Call Manager/") and norm.split(b"\n", 1)[1].startswith(b"Event: "))
    versions = {"centralino": _version("centralino"), "panoramisk": _version("panoramisk"),
                "asterisk-ami": _version("asterisk-ami")}
    print(f"AMI parse + dispatch: {n_events} events, {len(data) / n_events:.0f} B/event, "
          f"best of {args.repeat}, one core (cpu {args.cpu}), Python {platform.python_version()}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    for size in (int(s) for s in args.reads.split(",")):
        blocks = chunks(data, size)
        print(f"\nreads of {size} B                 " + "".join(f"{c:>14s}" for c in CONSUMERS))
        rates = {lib: {c: measure(fn, blocks, c, n_events, args.repeat) for c in CONSUMERS}
                 for lib, fn in LIBS.items()}
        for lib, row in rates.items():
            print(f"  {lib:14s} events/s      " + "".join(f"{row[c]:14,.0f}" for c in CONSUMERS))
        ratio = {c: rates["centralino"][c] / max(rates[o][c] for o in LIBS if o != "centralino")
                 for c in CONSUMERS}
        print("  centralino / best other      " + "".join(f"{ratio[c]:13.2f}x" for c in CONSUMERS))
    print("\ntarget: centralino >= 2x the best of the other two")


if __name__ == "__main__":
    main()
