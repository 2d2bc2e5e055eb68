"""The Zenoh callbacks of the server: they only deposit (a mailbox slot, a timestamp, a control-queue entry).

Everything that takes time happens in threads the server owns; hostile input is counted and logged once.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from typing import Any

import zenoh
from spinal.protocol import (
    MAX_SUPPORTED_SCHEMA_VERSION,
    MIN_SUPPORTED_SCHEMA_VERSION,
    HeaderError,
    KeyExpressionError,
    MsgHeader,
    MsgType,
    ServiceKeys,
)

from spinal_server.logsupport import OnceLog
from spinal_server.metrics import ServerMetrics
from spinal_server.session import MailboxItem, SessionRegistry

log = logging.getLogger("spinal_server.ingest")


class Ingest:
    """Deposit-only handlers for observations, telemetry (heartbeats), liveliness and control queries."""

    def __init__(
        self,
        *,
        keys: ServiceKeys,
        registry: SessionRegistry,
        metrics: ServerMetrics,
        control: queue.Queue[tuple[str, Any]],
        draining: Callable[[], bool],
        wake: Callable[[], None],
    ) -> None:
        self.keys = keys
        self.registry = registry
        self.metrics = metrics
        self.control = control
        self.draining = draining
        self.wake = wake
        self._warn_once = OnceLog(log)

    def query_depositor(self, kind: str):
        def deposit(query: zenoh.Query) -> None:
            try:
                self.control.put_nowait((kind, query))
            except queue.Full:
                self.metrics.dropped.labels(reason="control_overload").inc()
                self._warn_once.warn(
                    "control-overload", "control queries arrive faster than served; dropping"
                )
                query.drop()

        return deposit

    def client_of(self, key: Any, channel: str) -> str | None:
        try:
            return self.keys.client_uuid_from_key(str(key))
        except KeyExpressionError:
            self.metrics.dropped.labels(reason="bad_header").inc()
            self._warn_once.warn(
                ("key", channel, str(key)[:80]), "ignoring %s on unexpected key %s", channel, key
            )
            return None

    def on_observation(self, sample: zenoh.Sample) -> None:
        client = self.client_of(sample.key_expr, "observation")
        if client is None:
            return
        session = self.registry.get(client)
        if session is None or session.closed:
            self.metrics.dropped.labels(reason="unknown_client").inc()
            self._warn_once.warn(
                ("unknown", client),
                "observation from unknown client %r dropped (no open session); counted from now on",
                client,
            )
            return
        attachment = sample.attachment
        try:
            header = MsgHeader.unpack(attachment.to_bytes() if attachment is not None else None)
        except HeaderError as exc:
            self.metrics.dropped.labels(reason="bad_header").inc()
            self._warn_once.warn(("header", client), "observation from %r dropped: %s", client, exc)
            return
        if not MIN_SUPPORTED_SCHEMA_VERSION <= header.schema_version <= MAX_SUPPORTED_SCHEMA_VERSION:
            self.metrics.dropped.labels(reason="schema_version").inc()
            self._warn_once.warn(
                ("schema", client, header.schema_version),
                "observations from %r use schema_version %d, outside %d..%d; dropped and counted",
                client,
                header.schema_version,
                MIN_SUPPORTED_SCHEMA_VERSION,
                MAX_SUPPORTED_SCHEMA_VERSION,
            )
            return
        if header.msg_type != MsgType.OBS:
            self.metrics.dropped.labels(reason="msg_type").inc()
            self._warn_once.warn(
                ("type", client), "message type %d on %r's obs key dropped", header.msg_type, client
            )
            return
        if self.draining():
            self.metrics.dropped.labels(reason="drain").inc()
            return
        now = time.monotonic()
        if session.mailbox.deposit(MailboxItem(header, sample.payload.to_bytes(), now)):
            self.metrics.superseded.inc()
        session.touch(now)
        self.wake()

    def on_telemetry(self, sample: zenoh.Sample) -> None:
        client = self.client_of(sample.key_expr, "telemetry")
        if client is None:
            return
        session = self.registry.get(client)
        if session is None:
            self.metrics.dropped.labels(reason="unknown_client").inc()
            self._warn_once.warn(
                ("unknown-telemetry", client), "telemetry from unknown client %r ignored", client
            )
            return
        attachment = sample.attachment
        if attachment is not None:
            try:
                header = MsgHeader.unpack(attachment.to_bytes())
            except HeaderError:
                header = None
            if (
                header is None
                or not MIN_SUPPORTED_SCHEMA_VERSION <= header.schema_version <= MAX_SUPPORTED_SCHEMA_VERSION
            ):
                self.metrics.dropped.labels(reason="schema_version" if header else "bad_header").inc()
                self._warn_once.warn(
                    ("telemetry-header", client), "telemetry from %r has a foreign header", client
                )
                return
        session.touch()  # the heartbeat: a paused client keeps its session
        session.extras["telemetry"] = sample.payload.to_bytes()
        self.metrics.heartbeats.inc()

    def on_liveliness(self, sample: zenoh.Sample) -> None:
        try:
            client = self.keys.client_uuid_from_key(str(sample.key_expr))
        except KeyExpressionError:
            return
        session = self.registry.get(client)
        if session is None:
            return
        if sample.kind == zenoh.SampleKind.DELETE:
            session.token_dropped_mono = time.monotonic()
        else:
            session.token_dropped_mono = None
            session.touch()
