"""Prometheus metrics for the daemon, read from its status at scrape time (nothing is counted twice).

Registered by `create_app` on the app's own registry and served at /metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

_STATS = ("p50", "p99", "max")


class DaemonCollector(Collector):
    """Turns one `EdgeDaemon.status()` snapshot (and the auth gate's counters) into metric families."""

    def __init__(
        self, status: Callable[[], dict[str, Any]], extra: Callable[[], dict[str, float]] | None = None
    ):
        self._status = status
        self._extra = extra or dict

    def collect(self) -> Iterator[Metric]:
        s = self._status()
        info = InfoMetricFamily("spinal_edge", "the daemon's version and device name")
        info.add_metric([], {"version": s["version"], "device": s["device_name"]})
        yield info
        yield _gauge("spinal_edge_uptime_seconds", "seconds since the daemon started", s["uptime_s"])
        mode = GaugeMetricFamily("spinal_edge_mode", "1 for the mode in force", labels=["mode"])
        for name in ("idle", "teleop", "policy"):
            mode.add_metric([name], 1.0 if s["mode"] == name else 0.0)
        yield mode
        yield from _loop(s["loop"])
        yield from _cameras(s["cameras"])
        yield from _mcu(s["mcu"])
        yield from _inference(s["inference"])
        if s["recorder"] is not None:
            yield from _recorder(s["recorder"])
        for name, value in self._extra().items():
            yield _counter(name, "API requests refused for lack of credentials", value)


def _gauge(name: str, doc: str, value: float | None) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, doc)
    if value is not None:
        g.add_metric([], float(value))
    return g


def _counter(name: str, doc: str, value: float | None) -> CounterMetricFamily:
    c = CounterMetricFamily(name.removesuffix("_total"), doc)
    c.add_metric([], float(value or 0))
    return c


def _loop(loop: dict[str, Any]) -> Iterator[Metric]:
    yield _gauge("spinal_edge_loop_rate_hz", "configured control-loop rate", loop["rate_hz"])
    yield _gauge("spinal_edge_loop_running", "1 while the control loop runs", 1.0 if loop["running"] else 0.0)
    yield _counter("spinal_edge_loop_ticks_total", "control ticks run", loop["ticks"])
    yield _counter(
        "spinal_edge_loop_overruns_total", "ticks skipped because the loop fell behind", loop["overruns"]
    )
    yield _counter("spinal_edge_loop_faults_total", "faults that sent the arm to idle", loop["faults"])
    yield _counter(
        "spinal_edge_loop_targets_total", "joint target sets sent to the MCU", loop["targets_sent"]
    )
    for key, doc in (
        ("period_us", "tick period"),
        ("jitter_us", "|period - nominal|"),
        ("work_us", "tick work"),
    ):
        g = GaugeMetricFamily(
            f"spinal_edge_loop_{key.removesuffix('_us')}_seconds", f"{doc} over recent ticks", labels=["stat"]
        )
        values = loop.get(key)
        if values:
            for stat in _STATS:
                g.add_metric([stat], values[stat] / 1e6)
        yield g


def _cameras(cameras: dict[str, dict[str, Any]]) -> Iterator[Metric]:
    fps = GaugeMetricFamily("spinal_edge_camera_fps", "frames per second delivered", labels=["camera"])
    frames = CounterMetricFamily("spinal_edge_camera_frames", "frames delivered", labels=["camera"])
    dropped = CounterMetricFamily(
        "spinal_edge_camera_dropped", "frames replaced before the loop saw them", labels=["camera"]
    )
    errors = CounterMetricFamily("spinal_edge_camera_errors", "capture errors", labels=["camera"])
    for name, c in cameras.items():
        fps.add_metric([name], c["fps"])
        frames.add_metric([name], c["frames"])
        dropped.add_metric([name], c["dropped"])
        errors.add_metric([name], c["errors"])
    yield from (fps, frames, dropped, errors)


def _mcu(mcu: dict[str, Any]) -> Iterator[Metric]:
    yield _gauge("spinal_edge_mcu_connected", "1 while the MCU link is up", 1.0 if mcu["connected"] else 0.0)
    age = mcu["state_age_ms"]
    yield _gauge(
        "spinal_edge_mcu_state_age_seconds", "age of the newest MCU state", None if age is None else age / 1e3
    )
    for key, value in sorted(mcu.get("link", {}).items()):
        if isinstance(value, int | float) and not isinstance(value, bool):
            yield _gauge(f"spinal_edge_mcu_link_{_metric_name(key)}", f"MCU link: {key}", value)


def _inference(inf: dict[str, Any]) -> Iterator[Metric]:
    state = GaugeMetricFamily(
        "spinal_edge_inference_state", "1 for the engine's fail-safe state", labels=["state"]
    )
    state.add_metric([str(inf.get("state", "off"))], 1.0)
    yield state
    yield _gauge(
        "spinal_edge_inference_ready", "1 while a session is ready", 1.0 if inf.get("ready") else 0.0
    )
    yield _gauge(
        "spinal_edge_inference_failed", "1 once the engine gave up", 1.0 if inf.get("failed") else 0.0
    )
    if "queue_depth" in inf:
        yield _gauge("spinal_edge_inference_queue_depth", "actions queued", inf["queue_depth"])
    for key in ("latency_p50_ms", "latency_p95_ms"):
        if inf.get(key) is not None:
            yield _gauge(
                f"spinal_edge_inference_{key.removesuffix('_ms')}_seconds",
                "request round trip",
                inf[key] / 1e3,
            )
    for key in (
        "requests",
        "chunks_merged",
        "request_failures",
        "reconnects",
        "stale_drops",
        "fallback_ticks",
    ):
        if key in inf:
            yield _counter(
                f"spinal_edge_inference_{key}_total", f"inference: {key.replace('_', ' ')}", inf[key]
            )


def _recorder(rec: dict[str, Any]) -> Iterator[Metric]:
    yield _gauge(
        "spinal_edge_recorder_recording",
        "1 while an episode records",
        1.0 if rec["state"] == "recording" else 0.0,
    )
    yield _gauge("spinal_edge_recorder_queue_depth", "items waiting for the writer", rec["queue_depth"])
    yield _counter(
        "spinal_edge_recorder_refused_total", "items refused because the queue was full", rec["refused"]
    )
    yield _counter("spinal_edge_recorder_episodes_total", "episodes finished", rec["episodes_finished"])
    yield _gauge("spinal_edge_recorder_free_bytes", "free bytes on the data partition", rec["free_bytes"])


def _metric_name(key: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in key.lower())
