"""Concurrent calls in real time: N listeners fed 20 ms frames on a clock, one process per core.

Kept apart from ``__main__`` so that worker processes (spawned, not forked: a forked child would
inherit decoders mid-use) can import the worker function.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bench.asr.corpus import Item
from gateway.dialplan.flow import load_flow
from gateway.settings import Settings
from speech.audio import frames, read_wav, write_wav
from speech.pipeline import AsyncSpeechPipeline, SpeechEnded, SpeechPipeline


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _call_worker(args: tuple) -> dict:
    return asyncio.run(_calls(*args))


async def _calls(flow_path: str, engine: str, wavs: list[str], n_streams: int, seconds: float,
                 seed: int) -> dict:
    """One process: an event loop feeding ``n_streams`` calls through the gateway's own async
    facade (end-pointer on the loop, decoding in a thread pool), as the IVR does."""
    flow = load_flow(flow_path)
    executor = ThreadPoolExecutor(1, thread_name_prefix="speech")  # GIL-bound engine
    pipeline = AsyncSpeechPipeline(SpeechPipeline.from_flow(flow, Settings(), engine=engine),
                                   executor)
    clips = [read_wav(p).pcm for p in wavs]
    rng = np.random.default_rng(seed)
    gap = np.zeros(8000 * 3 // 2, np.int16)
    late: list[float] = []
    latency: list[float] = []
    pending: set[asyncio.Task] = set()

    async def wait_result(turn, due: float) -> None:
        await turn.result()
        latency.append((time.perf_counter() - due) * 1000)

    class Call:
        def __init__(self) -> None:
            self.frames: list[np.ndarray] = []
            self.turn = pipeline.listen(8000)
            self.more()
            del self.frames[: int(rng.integers(0, len(self.frames)))]  # de-synchronise

        def more(self) -> None:
            clip = clips[int(rng.integers(len(clips)))]
            self.frames.extend(frames(np.concatenate([clip, gap]), 8000, 20))

    calls = [Call() for _ in range(n_streams)]
    start = time.perf_counter() + 0.2
    cpu0 = time.process_time()
    for k in range(int(seconds * 50)):
        due = start + k * 0.02
        delay = due - time.perf_counter()
        await asyncio.sleep(max(0.0, delay))
        late.append((time.perf_counter() - due) * 1000)
        for c in calls:
            if not c.frames:
                c.more()
            for ev in c.turn.feed(c.frames.pop(0)):
                if isinstance(ev, SpeechEnded):
                    task = asyncio.create_task(wait_result(c.turn, due))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                    c.turn = pipeline.listen(8000)
    if pending:
        await asyncio.wait(pending, timeout=10)
    cpu = time.process_time() - cpu0
    executor.shutdown()
    return {"late": late, "latency": latency, "results": len(latency), "cpu_s": cpu,
            "wall_s": seconds}


def concurrency(flow_path: Path, engine: str, items: list[Item], *, seconds: float,
                procs: int, max_n: int) -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-asr-"))
    wavs = []
    for i, it in enumerate(x for x in items if x.category == "phrase" and x.snr == "clean"):
        p = tmp / f"{i}.wav"
        write_wav(p, it.audio.pcm, it.audio.sample_rate)
        wavs.append(str(p))
    out = []
    n = 10
    ctx = mp.get_context("spawn")
    with ctx.Pool(procs) as pool:
        while n <= max_n:
            per = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
            t0 = time.perf_counter()
            parts = pool.map(_call_worker, [(str(flow_path), engine, wavs, k, seconds, i)
                                           for i, k in enumerate(per)])
            late = [x for p in parts for x in p["late"]]
            lat = [x for p in parts for x in p["latency"]]
            row = {"calls": n, "late_p99_ms": pct(late, 99), "late_max_ms": max(late),
                   "latency_p50_ms": pct(lat, 50), "latency_p95_ms": pct(lat, 95),
                   "results": sum(p["results"] for p in parts),
                   "cpu_share": sum(p["cpu_s"] for p in parts) / (seconds * procs),
                   "wall_s": time.perf_counter() - t0}
            row["keeps_up"] = row["late_p99_ms"] < 100 and row["latency_p95_ms"] < 300
            out.append(row)
            print(f"  {n:4d} calls: frame clock p99 late {row['late_p99_ms']:7.1f} ms, "
                  f"intent latency p50 {row['latency_p50_ms']:6.1f} p95 "
                  f"{row['latency_p95_ms']:6.1f} ms, {row['results']} results, CPU "
                  f"{row['cpu_share']:.0%} of {procs} cores -> "
                  f"{'keeps up' if row['keeps_up'] else 'FALLS BEHIND'}")
            if not row["keeps_up"]:
                break
            n = n * 2 if n < 40 else n + 20
    return out


