"""The bench's other side, in its own process: a fake Asterisk AMI server and the agents'
desktops (real websocket clients). Kept out of the gateway's process so that the gateway's CPU
time per pop counts only the gateway.

Talks to the bench over stdin/stdout, one JSON object per line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def frame(**h: str) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode()


class FakeAMI:
    """Answers every action with Success (lists come back empty) and sends what it is told."""

    def __init__(self) -> None:
        self.writer: asyncio.StreamWriter | None = None
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        self.writer = writer
        try:
            await self._serve(reader, writer)
        except ConnectionError:
            pass
        finally:
            self.closed.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = b""
        while data := await reader.read(65536):
            buf += data
            while b"\r\n\r\n" in buf:
                raw, buf = buf.split(b"\r\n\r\n", 1)
                h = dict(line.split(": ", 1) for line in raw.decode().split("\r\n") if ": " in line)
                aid = h.get("ActionID", "")
                action = h.get("Action", "").lower()
                if action in ("queuestatus", "coreshowchannels", "status"):
                    writer.write(frame(Response="Success", ActionID=aid, EventList="start",
                                       Message="follows"))
                    writer.write(frame(Event=f"{h['Action']}Complete", ActionID=aid,
                                       EventList="Complete", ListItems="0"))
                else:
                    writer.write(frame(Response="Success", ActionID=aid, Message="ok"))
                if action == "login":
                    self.connected.set()

    def send(self, data: bytes) -> float:
        self.writer.write(data)
        return time.perf_counter()


def call_frames(i: int, number: str, agent: str) -> tuple[bytes, bytes, bytes]:
    lid = f"1763900000.{i}"
    chan = f"PJSIP/caller-{i:08x}"
    base = {"Channel": chan, "ChannelState": "6", "ChannelStateDesc": "Up",
            "CallerIDNum": number, "CallerIDName": "<unknown>", "ConnectedLineNum": "<unknown>",
            "ConnectedLineName": "<unknown>", "Language": "it", "AccountCode": "",
            "Context": "centralino-queues", "Exten": "billing", "Priority": "2",
            "Uniqueid": lid, "Linkedid": lid}
    start = frame(Event="Newchannel", Privilege="call,all", **{**base, "ChannelState": "0",
                                                                "ChannelStateDesc": "Down"})
    start += frame(Event="Newstate", Privilege="call,all", **base)
    start += frame(Event="QueueCallerJoin", Privilege="agent,all", **base, Queue="billing",
                   Position="1", Count="1")
    called = frame(Event="AgentCalled", Privilege="agent,all", **base, Queue="billing",
                   Interface=f"PJSIP/{agent}", MemberName=agent,
                   DestChannel=f"PJSIP/{agent}-{i:08x}", DestUniqueid=f"{lid}1",
                   DestLinkedid=lid, DestCallerIDNum=agent)
    end = frame(Event="QueueCallerAbandon", Privilege="agent,all", **base, Queue="billing",
                Position="1", OriginalPosition="1", HoldTime="1")
    end += frame(Event="Hangup", Privilege="call,all", **base, Cause="16",
                 **{"Cause-txt": "Normal Clearing"})
    return start, called, end


class Desk:
    def __init__(self, agent: str, token: str) -> None:
        self.agent, self.token = agent, token
        self.first: dict[str, float] = {}  # linkedid -> first pop frame received
        self.complete: dict[str, float] = {}  # linkedid -> first pop with the lookup done
        self.ended: set[str] = set()
        self.changed = asyncio.Event()

    async def run(self, http: aiohttp.ClientSession, url: str, ready: asyncio.Event) -> None:
        async with http.ws_connect(url, max_msg_size=0) as ws:
            await ws.send_json({"type": "auth", "token": self.token})
            async for msg in ws:
                now = time.perf_counter()
                f = json.loads(msg.data)
                t = f["type"]
                if t == "hello":
                    ready.set()
                elif t == "pop":
                    self.first.setdefault(f["linkedid"], now)
                    if f["match"] != "loading":
                        self.complete.setdefault(f["linkedid"], now)
                elif t == "pop_end":
                    self.ended.add(f["linkedid"])
                self.changed.set()


async def until(cond, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("the gateway did not deliver in time")
        await asyncio.sleep(0.005)


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def say(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    async def hear() -> dict:
        return json.loads(await reader.readline())

    ami = FakeAMI()
    server = await asyncio.start_server(ami.handle, "127.0.0.1", 0)
    say({"ami_port": server.sockets[0].getsockname()[1]})
    setup = await hear()
    await ami.connected.wait()
    url = f"ws://127.0.0.1:{setup['http_port']}/api/v1/ws"
    desks = [Desk(a, t) for a, t in zip(setup["agents"], setup["tokens"], strict=True)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        readies = [asyncio.Event() for _ in desks]
        tasks = [asyncio.create_task(d.run(http, url, r)) for d, r in zip(desks, readies,
                                                                          strict=True)]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
        say({"connected": len(desks)})
        go = await hear()
        numbers = setup["numbers"]
        sent: dict[str, float] = {}
        i = 0
        for rnd in range(go["rounds"]):
            batch = []
            starts, calls, ends = b"", b"", b""
            for k, d in enumerate(desks[: go["burst"]]):
                i += 1
                s, c, e = call_frames(i, numbers[(rnd * 7919 + k) % len(numbers)], d.agent)
                starts, calls, ends = starts + s, calls + c, ends + e
                batch.append((d, f"1763900000.{i}"))
            ami.send(starts)
            await asyncio.sleep(go["ring_delay_ms"] / 1000)
            t = ami.send(calls)  # the whole burst of AgentCalled in one write
            for _, lid in batch:
                sent[lid] = t
            await until(lambda b=batch: all(lid in d.complete for d, lid in b))
            ami.send(ends)
            await until(lambda b=batch: all(lid in d.ended for d, lid in b))
            say({"round": rnd})
        say({"done": True, "sent": sent,
             "first": {lid: t for d in desks for lid, t in d.first.items()},
             "complete": {lid: t for d in desks for lid, t in d.complete.items()}})
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.wait_for(ami.closed.wait(), 60)  # the gateway hangs up AMI last
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
