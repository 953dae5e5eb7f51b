"""Prometheus metrics of the gateway: aggregate series only.

Why a registry of our own (not the process-global one): each gateway (and each test) gets its
own counters, and nothing another library registers leaks into the page. Labels are limited to
values the site file bounds (queue, intent, link name): never an agent, a username, a caller
number or a linkedid, so a scrape cannot be turned into a per-person view.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ALLOWED_LABELS = frozenset({"queue", "intent", "link"})
MOS_BUCKETS = (1.0, 2.0, 2.5, 3.0, 3.5, 3.6, 3.8, 4.0, 4.2, 4.3, 4.4, 4.5)
AHT_BUCKETS = (30, 60, 120, 180, 240, 300, 420, 600, 900, 1200, 1800, 3600)
WAIT_BUCKETS = (5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600)


def _label(v: str | None) -> str:
    return v if v else "none"


class _Live(Collector):
    """Values read at scrape time (active calls, link state) from callbacks."""

    def __init__(self, active: Callable[[], int], links: Callable[[], dict[str, bool]]) -> None:
        self._active, self._links = active, links

    def collect(self):
        g = GaugeMetricFamily("centralino_active_calls", "Calls in progress now.")
        g.add_metric([], float(self._active()))
        yield g
        up = GaugeMetricFamily("centralino_link_up", "1 when the link is up.", labels=["link"])
        for name, ok in sorted(self._links().items()):
            up.add_metric([name], 1.0 if ok else 0.0)
        yield up


class GatewayMetrics:
    def __init__(self, active: Callable[[], int] = lambda: 0,
                 links: Callable[[], dict[str, bool]] = dict) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.calls = Counter("centralino_calls", "Calls finished, by queue and IVR intent.",
                             ["queue", "intent"], registry=r)
        self.answered = Counter("centralino_calls_answered", "Calls an agent answered.",
                                ["queue"], registry=r)
        self.within_sl = Counter("centralino_calls_answered_within_sl",
                                 "Queued calls answered within the queue's service level.",
                                 ["queue"], registry=r)
        self.mos = Histogram("centralino_call_mos", "E-model MOS of each call's worst leg.",
                             buckets=MOS_BUCKETS, registry=r)
        self.aht = Histogram("centralino_aht_seconds",
                             "Average handle time per call (talk + hold + after-call work).",
                             ["queue"], buckets=AHT_BUCKETS, registry=r)
        self.queue_wait = Histogram("centralino_queue_wait_seconds", "Time callers waited in "
                                    "a queue.", ["queue"], buckets=WAIT_BUCKETS, registry=r)
        self.acw_capped = Counter("centralino_acw_capped", "After-call work closed at the "
                                  "maximum (no wrap-up).", ["queue"], registry=r)
        self.links_state: dict[str, bool] = {}
        r.register(_Live(active, lambda: {**self.links_state, **links()}))

    def call_saved(self, *, queue: str | None, intent: str | None, queued: bool,
                   answered: bool, within_sl: bool | None, queue_wait_s: float,
                   mos: float | None) -> None:
        self.calls.labels(_label(queue), _label(intent)).inc()
        if answered:
            self.answered.labels(_label(queue)).inc()
        if within_sl:
            self.within_sl.labels(_label(queue)).inc()
        if queued:
            self.queue_wait.labels(_label(queue)).observe(queue_wait_s)
        if mos is not None:
            self.mos.observe(mos)

    def acw_closed(self, *, queue: str | None, aht_s: float | None, capped: bool) -> None:
        if aht_s is not None:
            self.aht.labels(_label(queue)).observe(aht_s)
        if capped:
            self.acw_capped.labels(_label(queue)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
