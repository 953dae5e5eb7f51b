"""Events/s parsed and dispatched on one core: Centralino's AMI framing vs panoramisk vs asterisk-ami.

Same synthetic stream (a realistic mix: channel life cycle, queue, agent, RTCP, CDR/CEL events),
same 4 KiB reads, same run, each library's own parsing and dispatch path. Prints a table and the
ratio of ours to the best of the other two. Run: ``python -m bench.ami_throughput [--events N]``.
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from collections import deque

from gateway.ami.protocol import Event, Parser

TEMPLATES = [
    ("Newchannel", {"Privilege": "call,all", "Channel": "PJSIP/caller1-{n:08x}", "ChannelState": "0",
                    "ChannelStateDesc": "Down", "CallerIDNum": "3351234567", "CallerIDName": "Mario Rossi",
                    "ConnectedLineNum": "<unknown>", "Language": "en", "AccountCode": "",
                    "Context": "from-callers", "Exten": "100", "Priority": "1", "Uniqueid": "17000.{n}",
                    "Linkedid": "17000.{n}"}),
    ("VarSet", {"Channel": "PJSIP/caller1-{n:08x}", "Variable": "RTPAUDIOQOS", "Value": "ssrc=1;themssrc=2;lp=0;rxjitter=0.000125;rxcount=250"}),
    ("QueueCallerJoin", {"Channel": "PJSIP/caller1-{n:08x}", "Queue": "billing", "Position": "1", "Count": "1",
                         "Uniqueid": "17000.{n}", "Linkedid": "17000.{n}"}),
    ("AgentCalled", {"Queue": "billing", "Interface": "PJSIP/agent1", "MemberName": "agent1",
                     "DestChannel": "PJSIP/agent1-{n:08x}", "Uniqueid": "17000.{n}", "Linkedid": "17000.{n}"}),
    ("RTCPReceived", {"Channel": "PJSIP/caller1-{n:08x}", "SSRC": "0x1234", "PT": "200(SR)", "ReportCount": "1",
                      "SentNTP": "1700000000.5", "SentRTP": "8000", "SentPackets": "250", "SentOctets": "40000",
                      "Report0SourceSSRC": "0x5678", "Report0FractionLost": "0", "Report0CumulativeLost": "0",
                      "Report0HighestSequence": "1234", "Report0SequenceNumberCycles": "0",
                      "Report0IAJitter": "12", "Report0LSR": "0", "Report0DLSR": "0.0", "RTT": "0.0012",
                      "Uniqueid": "17000.{n}", "Linkedid": "17000.{n}"}),
    ("Hangup", {"Channel": "PJSIP/caller1-{n:08x}", "Cause": "16", "Cause-txt": "Normal Clearing",
                "Uniqueid": "17000.{n}", "Linkedid": "17000.{n}"}),
    ("Cdr", {"AccountCode": "", "Source": "3351234567", "Destination": "100", "DestinationContext": "from-callers",
             "CallerID": "\"Mario\" <3351234567>", "Channel": "PJSIP/caller1-{n:08x}", "StartTime": "2026-11-22 10:00:00",
             "AnswerTime": "2026-11-22 10:00:01", "EndTime": "2026-11-22 10:03:00", "Duration": "180",
             "BillableSeconds": "179", "Disposition": "ANSWERED", "UniqueID": "17000.{n}"}),
]


def make_stream(n_events: int, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    parts = [b"Asterisk Call Manager/9.0.0\r\n"]
    for i in range(n_events):
        name, hdrs = rnd.choice(TEMPLATES)
        lines = [f"Event: {name}"] + [f"{k}: {v.format(n=i)}" for k, v in hdrs.items()]
        parts.append(("\r\n".join(lines) + "\r\n\r\n").encode())
    return b"".join(parts)


def chunks(data: bytes, size: int = 4096):
    return [data[i:i + size] for i in range(0, len(data), size)]


def run_ours(blocks) -> int:
    seen = 0
    handlers = {}

    def on_event(ev: Event) -> None:
        nonlocal seen
        seen += 1

    p = Parser()
    for b in blocks:
        for m in p.feed(b):
            if type(m) is Event:
                handlers.get(m.name, on_event)(m)
    return seen


def run_panoramisk(blocks) -> int:
    from panoramisk.ami_protocol import AMIProtocol

    seen = 0

    class Factory:
        save_stream = None

        def dispatch(self, message) -> None:
            nonlocal seen
            seen += 1

    proto = AMIProtocol()
    proto.transport, proto.closed, proto.queue, proto.responses = None, False, deque(), {}
    proto.factory, proto.version, proto.log = Factory(), None, logging.getLogger("panoramisk.bench")
    for b in blocks:
        proto.data_received(b)
    return seen


def run_asterisk_ami(blocks) -> int:
    """Its reader is a blocking socket loop (``AMIClient._next_pack``); we run the same loop body
    (its own regexes, decoding and ``fire_recv_pack``) over the same reads, without the socket."""
    from asterisk.ami.client import AMIClient

    seen = 0

    def on_event(event, source) -> None:
        nonlocal seen
        seen += 1

    client = AMIClient()
    client.add_event_listener(on_event)
    data = b""
    first = True
    for b in blocks:
        data += b
        if first and client.asterisk_line_regex.search(data):
            _, data = client.asterisk_line_regex.split(data, 1)
            first = False
        while client.asterisk_pack_regex.search(data):
            pack, data = client.asterisk_pack_regex.split(data, 1)
            client.fire_recv_pack(client._decode_pack(pack))
    return seen


def measure(fn, blocks, n_events: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        seen = fn(blocks)
        best = min(best, time.perf_counter() - t0)
        if seen != n_events:
            raise SystemExit(f"{fn.__name__} dispatched {seen} events, expected {n_events}")
    return n_events / best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    blocks = chunks(make_stream(args.events))
    rates = {
        "centralino": measure(run_ours, blocks, args.events, args.repeat),
        "panoramisk 1.4": measure(run_panoramisk, blocks, args.events, args.repeat),
        "asterisk-ami 0.1.7": measure(run_asterisk_ami, blocks, args.events, args.repeat),
    }
    print(f"AMI parse+dispatch, {args.events} events, 4 KiB reads, best of {args.repeat}, one core")
    for name, rate in rates.items():
        print(f"  {name:20s} {rate:12,.0f} events/s")
    best_other = max(v for k, v in rates.items() if k != "centralino")
    print(f"  ratio centralino / best other: {rates['centralino'] / best_other:.2f}x (target >= 2x)")


if __name__ == "__main__":
    main()
