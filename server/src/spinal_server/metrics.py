"""Prometheus metrics of one server: counters, gauges and histograms in a registry of its own.

Served on `/metrics` by `health.HealthServer`; a private registry lets several servers share a test process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_PREFIX = "spinal_server"
_MS_BUCKETS = (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
DROP_REASONS = (
    "unknown_client",
    "schema_version",
    "bad_header",
    "msg_type",
    "drain",
    "closed",
    "control_overload",
)


class ServerMetrics:
    """Every number the server exports; names are `spinal_server_<name>`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(f"{_PREFIX}_requests", "Observations answered with a chunk", registry=r)
        self.errors = Counter(
            f"{_PREFIX}_errors",
            "Observations that failed (bad body, bad content, model error)",
            ["kind"],
            registry=r,
        )
        self.superseded = Counter(
            f"{_PREFIX}_superseded",
            "Observations overwritten in a mailbox before they were served",
            registry=r,
        )
        self.dropped = Counter(
            f"{_PREFIX}_dropped", "Messages dropped before the mailbox, by reason", ["reason"], registry=r
        )
        self.sessions_opened = Counter(f"{_PREFIX}_sessions_opened", "Sessions accepted", registry=r)
        self.sessions_refused = Counter(f"{_PREFIX}_sessions_refused", "Session opens refused", registry=r)
        self.sessions_closed = Counter(
            f"{_PREFIX}_sessions_closed", "Sessions ended, by reason", ["reason"], registry=r
        )
        self.heartbeats = Counter(f"{_PREFIX}_heartbeats", "Telemetry heartbeats received", registry=r)
        self.capture_dropped = Counter(
            f"{_PREFIX}_capture_dropped",
            "Capture records not written (writer behind or disk error)",
            registry=r,
        )
        self.active_sessions = Gauge(f"{_PREFIX}_active_sessions", "Open sessions", registry=r)
        self.server_load = Gauge(f"{_PREFIX}_server_load", "active_sessions / max_sessions", registry=r)
        self.draining = Gauge(f"{_PREFIX}_draining", "1 while the server drains", registry=r)
        self.queue_wait = Histogram(
            f"{_PREFIX}_queue_wait_ms",
            "Time an observation waited in its mailbox (ms)",
            buckets=_MS_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            f"{_PREFIX}_inference_ms",
            "Pre-process + forward + post-process time per request (ms)",
            buckets=_MS_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            f"{_PREFIX}_batch_size",
            "Observations per forward",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=r,
        )
        for reason in DROP_REASONS:
            self.dropped.labels(reason=reason)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float:
        """One sample's current value (tests and `status`); 0 when it was never set."""
        value = self.registry.get_sample_value(f"{_PREFIX}_{name}", labels or None)
        return float(value or 0.0)
