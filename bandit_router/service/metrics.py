"""Prometheus metrics of one app (a registry per app, so several apps never collide).

Counters and histograms are updated by the routes; spend, budget remaining and the number
of routable models are read from the router when ``/metrics`` is scraped.

>>> m = ServiceMetrics()
>>> m.decision("small", "admitted", 0.004)
>>> m.feedback("small", 1.0, 3.0)
>>> text = m.render().decode()
>>> 'router_decisions_total{model="small",reason="admitted"} 1.0' in text
True
>>> 'router_mean_reward{model="small"} 1.0' in text
True
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_DELAY = (1, 5, 30, 60, 300, 900, 3600, 4 * 3600, 86_400, 7 * 86_400)


class _LedgerCollector(Collector):
    """Spend and budget remaining per user, read at scrape time."""

    def __init__(self, accounts: Callable[[], Iterable[tuple[str, float, float]]]) -> None:
        self.accounts = accounts

    def collect(self):
        spent = GaugeMetricFamily(
            "router_user_spend_usd",
            "USD spent plus reserved in the current period",
            labels=["user"],
        )
        left = GaugeMetricFamily(
            "router_user_budget_remaining_usd", "USD left in the current period", labels=["user"]
        )
        try:
            rows = list(self.accounts())
        except Exception:  # a scrape never fails because the store is busy
            rows = []
        for user, committed, remaining in rows:
            spent.add_metric([user], committed)
            left.add_metric([user], remaining)
        yield spent
        yield left


class _SyncCollector(Collector):
    """The store sync of a scale-out process (``bandit_router.sync.StoreSync``), read at
    scrape time: whether the store answers, how old the last sync is, the watermark."""

    def __init__(self, sync: Any, router: Any) -> None:
        self.sync = sync
        self.router = router

    def collect(self):
        up = GaugeMetricFamily(
            "router_store_up", "1 when the last sync with the database succeeded, else 0"
        )
        up.add_metric([], 1.0 if self.sync.healthy else 0.0)
        yield up
        age = self.sync.age()
        lag = GaugeMetricFamily(
            "router_sync_age_seconds",
            "Seconds since this process last folded in the shared feedback log",
        )
        lag.add_metric([], -1.0 if age is None else age)
        yield lag
        if self.sync.last_lag_s is not None:
            applied = GaugeMetricFamily(
                "router_sync_lag_seconds",
                "Seconds from another process writing the newest feedback to its being applied here",
            )
            applied.add_metric([], self.sync.last_lag_s)
            yield applied
        last = GaugeMetricFamily(
            "router_last_feedback_id", "Id of the last feedback folded into this process's state"
        )
        last.add_metric([], float(self.router.last_feedback_id))
        yield last
        writer = GaugeMetricFamily(
            "router_snapshot_writer", "1 when this process writes the periodic snapshots"
        )
        writer.add_metric([], 1.0 if self.sync.is_snapshot_writer() else 0.0)
        yield writer


class ServiceMetrics:
    """The app's metrics on its own ``CollectorRegistry``; ``accounts()`` yields
    ``(user, committed USD, remaining USD)`` at scrape time.

    >>> m = ServiceMetrics(lambda: [("ann", 1.5, 3.5)])
    >>> 'router_user_budget_remaining_usd{user="ann"} 3.5' in m.render().decode()
    True
    """

    def __init__(
        self, accounts: Callable[[], Iterable[tuple[str, float, float]]] | None = None
    ) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.decisions = Counter(
            "router_decisions", "Routed decisions", ["model", "reason"], registry=r
        )
        self.refusals = Counter(
            "router_refusals", "Queries no model could take (budget or constraints)", ["reason"],
            registry=r,
        )  # fmt: skip
        self.route_latency = Histogram(
            "router_route_latency_seconds", "Time to route one query (embedding included)",
            buckets=_LATENCY, registry=r,
        )  # fmt: skip
        self.embed_latency = Histogram(
            "router_embedding_latency_seconds", "Time to embed one batch of prompts",
            buckets=_LATENCY, registry=r,
        )  # fmt: skip
        self.embed_batch = Histogram(
            "router_embedding_batch_size", "Prompts per embedding batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r,
        )  # fmt: skip
        self.estimated_cost = Counter(
            "router_estimated_cost_usd", "USD reserved by decisions", ["model"], registry=r
        )
        self.feedbacks = Counter("router_feedback", "Feedback applied", ["model"], registry=r)
        self.feedback_delay = Histogram(
            "router_feedback_delay_seconds", "Time from decision to its feedback",
            buckets=_DELAY, registry=r,
        )  # fmt: skip
        self.settled_cost = Counter(
            "router_settled_cost_usd", "Actual USD settled by feedback", ["model"], registry=r
        )
        self.mean_reward = Gauge(
            "router_mean_reward", "Mean reward per model since start", ["model"], registry=r
        )
        self.upstream = Counter(
            "router_upstream_requests", "Calls to upstream models", ["model", "outcome"],
            registry=r,
        )  # fmt: skip
        self.retries = Counter(
            "router_upstream_retries", "Queries retried on the next-best model", registry=r
        )
        self._rewards: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()
        if accounts is not None:
            r.register(_LedgerCollector(accounts))

    def watch_sync(self, sync: Any, router: Any) -> None:
        """Export the store sync's health (``router_store_up``, ``router_sync_age_seconds``,
        ``router_last_feedback_id``, ``router_snapshot_writer``)."""
        self.registry.register(_SyncCollector(sync, router))

    def decision(self, model: str, reason: str, cost: float) -> None:
        self.decisions.labels(model, reason).inc()
        self.estimated_cost.labels(model).inc(max(cost, 0.0))

    def feedback(
        self, model: str, reward: float | None, delay_s: float | None, cost: float = 0.0
    ) -> None:
        self.feedbacks.labels(model).inc()
        self.settled_cost.labels(model).inc(max(cost, 0.0))
        if delay_s is not None and delay_s >= 0:
            self.feedback_delay.observe(delay_s)
        if reward is not None:
            with self._lock:
                s, n = self._rewards.get(model, (0.0, 0))
                s, n = s + reward, n + 1
                self._rewards[model] = (s, n)
            self.mean_reward.labels(model).set(s / n)

    def embedded(self, n: int, seconds: float) -> None:
        self.embed_batch.observe(n)
        self.embed_latency.observe(seconds)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)

    def summary(self) -> dict[str, Any]:
        """Mean reward and feedback count per model (admin stats)."""
        with self._lock:
            return {m: {"mean_reward": s / n, "feedback": n} for m, (s, n) in self._rewards.items()}
