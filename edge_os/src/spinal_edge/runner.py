"""`spinal-edge run`: the process around the daemon — HTTP server, systemd notify and watchdog, signals.

READY=1 goes out once the HTTP socket listens; WATCHDOG=1 pings continue only while the control loop ticks,
so a stuck loop gets the service restarted. SIGTERM/SIGINT hold the arm and stop everything in order. Start-up
ends with the real-time set-up of edge_os/docs/realtime.md (frozen heap, thread priorities, locked memory).
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn

from spinal_edge.api.app import create_app
from spinal_edge.api.auth import load_or_create_token
from spinal_edge.config_file import load_config_file
from spinal_edge.control.gil import freeze_heap
from spinal_edge.control.scheduling import schedule_daemon_threads
from spinal_edge.daemon import EdgeDaemon
from spinal_edge.errors import ConfigError, EdgeError
from spinal_edge.logs import setup_logging
from spinal_edge.sdnotify import SystemdNotifier
from spinal_edge.settings import LoopSettings
from spinal_edge.settings_store import SettingsStore

log = logging.getLogger(__name__)


class HttpServer:
    """uvicorn on a socket bound here first, so a taken port is a clear error and port 0 works (tests, demo)."""

    def __init__(self, app: object, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
        except OSError as exc:
            self.socket.close()
            raise ConfigError(
                f"[http] port {port} on {host} cannot be used ({exc.strerror}); choose a free port or stop the "
                "process holding it",
                field="http.port",
            ) from None
        self.socket.listen(128)
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=3
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)

    def _serve(self) -> None:
        self.server.run(sockets=[self.socket])

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise EdgeError("the HTTP server did not start; see the log above")
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self._thread.ident is not None:  # started
            self._thread.join(timeout)
        self.socket.close()


class LoopWatchdog:
    """Pings systemd's watchdog while the control loop keeps ticking; silence gets the service restarted."""

    def __init__(self, notifier: SystemdNotifier, ticks: Callable[[], int]) -> None:
        self._notifier = notifier
        self._ticks = ticks
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pings = 0
        self.withheld = 0

    def start(self) -> None:
        interval = self._notifier.watchdog_interval_s
        if interval is None:
            return
        self._thread = threading.Thread(target=self._run, args=(interval,), name="watchdog", daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        last = self._ticks()
        while not self._stop.wait(interval):
            now = self._ticks()
            if now != last:
                self._notifier.watchdog()
                self.pings += 1
            else:
                self.withheld += 1
                log.error("control loop stalled; withholding the systemd watchdog ping")
            last = now

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)


def run(config_path: Path, *, build: Callable[[SettingsStore], EdgeDaemon] | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT; returns the process exit code."""
    try:
        config, raw = load_config_file(config_path)
    except ConfigError as exc:
        print(f"spinal-edge: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log.level, json_lines=config.log.json_lines)
    store = SettingsStore(raw, source=str(config_path))
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        store.load_overlay()
        token = load_or_create_token(store.config.token_path())
    except OSError as exc:
        print(
            f"spinal-edge: data_dir {config.data_dir} is not writable ({exc.strerror}); fix its permissions "
            "or set data_dir to a writable directory.",
            file=sys.stderr,
        )
        return 2

    if build is None:
        from spinal_edge.assembly import build_daemon

        build = build_daemon
    notifier = SystemdNotifier()
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    try:
        daemon = build(store)
        app = create_app(daemon, token=token, public_metrics=store.config.http.public_metrics)
        http = HttpServer(app, store.config.http.host, store.config.http.port)
    except EdgeError as exc:
        log.error("the daemon cannot be built", extra={"error": str(exc)})
        print(f"spinal-edge: {exc}", file=sys.stderr)
        return 2
    # The one full garbage collection of the start-up heap happens now, before the loop runs; afterwards no
    # collection walks those objects again (a pause of tens of milliseconds each time otherwise).
    frozen = freeze_heap(collect=True)
    watchdog = LoopWatchdog(notifier, lambda: daemon.loop.stats.ticks)
    try:
        daemon.start()
        http.start()
        watchdog.start()
        frozen = freeze_heap(collect=False)  # what starting made (threads, sessions, the HTTP server)
        _schedule(daemon, store.config.loop)
        notifier.ready(f"listening on {store.config.http.host}:{http.port}")
        log.info(
            "ready",
            extra={
                "host": store.config.http.host,
                "port": http.port,
                "mode": daemon.loop.mode.value,
                "frozen_objects": frozen,
            },
        )
        stop.wait()
    except EdgeError as exc:
        log.error("start-up failed", extra={"error": str(exc)})
        print(f"spinal-edge: {exc}", file=sys.stderr)
        return 2
    finally:
        notifier.stopping()
        watchdog.stop()
        http.stop()
        daemon.stop()
        log.info("stopped")
    return 0


def _schedule(daemon: EdgeDaemon, loop: LoopSettings) -> None:
    """Real-time scheduling for the daemon's threads and memory, as configured; a refusal is never fatal."""
    result = schedule_daemon_threads(loop.daemon_priority, loop.lock_memory)
    daemon.process_scheduling = result
    for error in result.errors:
        log.info("real-time set-up incomplete", extra={"reason": error})
    daemon.loop.wait_prepared(timeout=5.0)
    refusals = [e for e in (daemon.loop.realtime_error, *result.errors) if e]
    if refusals and loop.realtime_explicit:
        # One warning naming every refusal: warnings of one code in a row merge, keeping the last message only.
        daemon.warnings.add("realtime_refused", "; ".join(refusals))
    log.info(
        "scheduling",
        extra={
            "loop_priority": daemon.loop.thread_priority,
            "daemon_priority": result.daemon_priority,
            "threads_promoted": result.threads_promoted,
            "memory_locked": result.memory_locked,
        },
    )
