"""Test helpers for any package: a real server on 127.0.0.1 (in-process or a subprocess) and a small client.

`running_server()` / `server_subprocess()` yield a `RunningServer` (endpoint, service keys, manifest);
`PolicyClient` speaks the wire protocol over a real Zenoh session (status, session, obs, chunks, reset).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
import zenoh
from spinal.protocol import (
    SCHEMA_VERSION,
    ActionChunk,
    Event,
    MsgHeader,
    MsgType,
    Observation,
    Reset,
    ResetAck,
    ServiceKeys,
    SessionAck,
    SessionClose,
    SessionOpen,
    Status,
    Telemetry,
    decode_action_chunk,
    decode_event,
    decode_reset_ack,
    decode_session_ack,
    decode_status,
    encode_message,
    encode_observation,
)

from spinal_server.demo_policy import DEMO_MODEL_ID, build_demo_policy
from spinal_server.manifest import Manifest, deep_merge, load_manifest
from spinal_server.server import PolicyServer
from spinal_server.zenoh_config import OBSERVATION_QOS

TEST_LEASE_MS = 1000


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_test_manifest(
    model_path: Path,
    *,
    port: int | None = None,
    model_id: str = "test-policy",
    health: bool = False,
    overrides: Sequence[str] = (),
) -> Manifest:
    """A manifest for tests: embedded router on 127.0.0.1:<port>, no multicast, short lease, no warm-up."""
    port = port or free_tcp_port()
    base = {
        "model": {"path": str(model_path), "device": "cpu"},
        "service": {"model_id": model_id},
        "warmup_inferences": 1,
        "liveliness_grace_s": 0.5,
        "zenoh": {"mode": "router", "listen": [f"tcp/127.0.0.1:{port}"], "lease_ms": TEST_LEASE_MS},
        "health": {"host": "127.0.0.1", "port": 0 if health else None},
    }
    return load_manifest(None, list(overrides), base=base)


@dataclass
class RunningServer:
    """A server the test can reach: `endpoint` to connect to, `keys` of its service, and its manifest."""

    endpoint: str
    keys: ServiceKeys
    manifest: Manifest
    server: PolicyServer | None = None
    process: subprocess.Popen | None = None
    health_url: str | None = None
    workdir: Path | None = None

    def client(self, client_uuid: str | None = None, **kwargs: Any) -> PolicyClient:
        return PolicyClient(self.endpoint, self.keys, client_uuid, **kwargs)


@contextlib.contextmanager
def running_server(
    model_path: Path | None = None,
    *,
    overrides: Sequence[str] = (),
    health: bool = False,
    model_id: str | None = None,
    **server_kwargs: Any,
) -> Iterator[RunningServer]:
    """Start a `PolicyServer` in this process on a free 127.0.0.1 port (the demo policy unless `model_path`).

    Drains it on exit. `server_kwargs` go to `PolicyServer` (e.g. `runtime=`, `scheduler=`).
    """
    with tempfile.TemporaryDirectory(prefix="spinal-server-test-") as tmp:
        if model_path is None:
            model_path = build_demo_policy(Path(tmp) / "model")
            model_id = model_id or DEMO_MODEL_ID
        manifest = make_test_manifest(
            model_path, model_id=model_id or "test-policy", health=health, overrides=overrides
        )
        server = PolicyServer(manifest, **server_kwargs).start()
        try:
            yield RunningServer(
                endpoint=(manifest.zenoh.listen or manifest.zenoh.connect)[0],
                keys=server.keys,
                manifest=manifest,
                server=server,
                health_url=server.health.url if server.health else None,
                workdir=Path(tmp),
            )
        finally:
            server.drain(timeout=10)


@contextlib.contextmanager
def server_subprocess(
    model_path: Path | None = None,
    *,
    overrides: Sequence[str] = (),
    health: bool = False,
    model_id: str | None = None,
    start_timeout_s: float = 60.0,
    log_path: Path | None = None,
) -> Iterator[RunningServer]:
    """Run `python -m spinal_server serve` in a subprocess on a free port; waits until `status` answers.

    The process is sent SIGTERM (drain) on exit and killed if it has not stopped within 15 s.
    """
    with tempfile.TemporaryDirectory(prefix="spinal-server-proc-") as tmp:
        work = Path(tmp)
        if model_path is None:
            model_path = build_demo_policy(work / "model")
            model_id = model_id or DEMO_MODEL_ID
        health_port = free_tcp_port() if health else None
        manifest = make_test_manifest(
            model_path,
            model_id=model_id or "test-policy",
            overrides=[*overrides, f"health.port={'null' if health_port is None else health_port}"],
        )
        manifest_path = work / "server.yaml"
        manifest_path.write_text(yaml.safe_dump(manifest.model_dump(mode="json")))
        log_file = (log_path or work / "server.log").open("wb")
        cmd = [sys.executable, "-m", "spinal_server", "serve", "--manifest", str(manifest_path)]
        process = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        running = RunningServer(
            endpoint=manifest.zenoh.listen[0],
            keys=manifest.service_keys(),
            manifest=manifest,
            process=process,
            health_url=f"http://127.0.0.1:{health_port}" if health_port else None,
            workdir=work,
        )
        try:
            _wait_for_status(running, process, start_timeout_s, log_file.name)
            yield running
        finally:
            stop_process(process)
            log_file.close()


def stop_process(process: subprocess.Popen, timeout: float = 15.0) -> int | None:
    """SIGTERM, wait, then SIGKILL: a test never leaves a server behind."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return process.returncode


def _wait_for_status(
    running: RunningServer, process: subprocess.Popen, timeout: float, log_name: str
) -> None:
    """Poll `status` until it answers; a loaded machine may refuse the first connects or time out queries."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"spinal-server exited with {process.returncode}; see {log_name}")
        try:
            with PolicyClient(
                running.endpoint, running.keys, declare_token=False, connect_retries=0
            ) as probe:
                while time.monotonic() < deadline:
                    if process.poll() is not None:
                        raise RuntimeError(f"spinal-server exited with {process.returncode}; see {log_name}")
                    try:
                        probe.status(timeout=1.0)
                        return
                    except (TimeoutError, QueryFailed) as exc:
                        last = exc
                        time.sleep(0.2)
        except zenoh.ZError as exc:  # not listening yet
            last = exc
            time.sleep(0.2)
    raise TimeoutError(f"spinal-server did not answer status within {timeout} s ({last}); see {log_name}")


# ---- the client -------------------------------------------------------------------------------------


class RemoteError(RuntimeError):
    """The server answered an observation with an error event."""


class QueryFailed(RuntimeError):
    """A control query (status, session, reset) was answered with an error reply."""


@dataclass
class Received:
    """One message from the server on the client's action key."""

    header: MsgHeader
    chunk: ActionChunk | None = None
    event: Event | None = None
    received_mono: float = field(default_factory=time.monotonic)


class PolicyClient:
    """A minimal robot-side client over a real Zenoh session: enough to test and benchmark the server.

    Not the edge engine: no action queue, no fail-safe; one call per protocol step.
    """

    def __init__(
        self,
        endpoint: str,
        keys: ServiceKeys,
        client_uuid: str | None = None,
        *,
        declare_token: bool = True,
        connect_retries: int = 20,
        lease_ms: int = TEST_LEASE_MS,
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        self.keys = keys
        self.client_uuid = client_uuid or uuid.uuid4().hex[:12]
        config = {
            "mode": "client",
            "scouting": {"multicast": {"enabled": False}},
            "connect": {"endpoints": [endpoint], "timeout_ms": 5000},
            # A big observation is many fragments; Zenoh's default queue of 2 batches drops them when the
            # machine is busy. 16 (the maximum) lets a frame through; DROP still protects the control loop.
            "transport": {"link": {"tx": {"lease": lease_ms, "queue": {"size": {"data": 16}}}}},
        }
        config = deep_merge(config, extra_config or {})
        self._zenoh = _open_with_retries(zenoh.Config.from_json5(json.dumps(config)), connect_retries)
        self._inbox: queue.Queue[Received] = queue.Queue(maxsize=1024)
        self._seq = itertools.count(1)
        self.session: SessionAck | None = None
        self.episode_id = 0
        self.epoch = 0
        self._subscriber = self._zenoh.declare_subscriber(keys.action(self.client_uuid), self._on_action)
        self._publisher = self._zenoh.declare_publisher(keys.obs(self.client_uuid), **OBSERVATION_QOS)
        self._token = (
            self._zenoh.liveliness().declare_token(keys.alive(self.client_uuid)) if declare_token else None
        )

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- control plane ----------------------------------------------------------------------------

    def status(self, timeout: float = 5.0) -> Status:
        return decode_status(self._query(self.keys.status, b"", timeout))

    def open_session(self, timeout: float = 5.0, **fields: Any) -> SessionAck:
        """Open a session; fields default to what `status` says the policy needs."""
        if not {"action_names", "camera_names", "state_dim"} <= fields.keys():
            st = self.status(timeout)
            fields.setdefault("action_names", st.action_names)
            fields.setdefault("camera_names", st.expected_cameras)
            fields.setdefault("state_dim", st.state_dim)
            fields.setdefault("fps", st.trained_fps)
        msg = SessionOpen(client_uuid=self.client_uuid, **fields)
        self.session = decode_session_ack(self._query(self.keys.session, encode_message(msg), timeout))
        return self.session

    def close_session(self, timeout: float = 5.0) -> ResetAck:
        msg = SessionClose(
            client_uuid=self.client_uuid, session_id=self.session.session_id if self.session else ""
        )
        return decode_reset_ack(self._query(self.keys.session, encode_message(msg), timeout))

    def reset(self, episode_id: int | None = None, timeout: float = 5.0) -> ResetAck:
        self.episode_id = self.episode_id + 1 if episode_id is None else episode_id
        msg = Reset(client_uuid=self.client_uuid, episode_id=self.episode_id)
        return decode_reset_ack(self._query(self.keys.reset(self.client_uuid), encode_message(msg), timeout))

    def server_alive(self, timeout: float = 1.0) -> bool:
        """Whether the server's liveliness token is declared (it goes first when the server drains)."""
        replies = self._zenoh.liveliness().get(self.keys.server_alive, timeout=timeout)
        return any(reply.ok is not None for reply in replies)

    def _query(self, key: str, payload: bytes, timeout: float) -> bytes:
        replies = self._zenoh.get(key, payload=payload, timeout=timeout)
        for reply in replies:
            if reply.ok is not None:
                return reply.ok.payload.to_bytes()
            raise QueryFailed(f"query {key} answered with an error: {reply.err.payload.to_bytes()!r:.200}")
        raise TimeoutError(f"no reply to {key} within {timeout} s")

    # ---- data plane -------------------------------------------------------------------------------

    def send(
        self,
        obs: Observation,
        *,
        seq_id: int | None = None,
        schema_version: int = SCHEMA_VERSION,
        client_mono_ns: int | None = None,
    ) -> int:
        """Publish one observation; returns its seq_id."""
        seq = next(self._seq) if seq_id is None else seq_id
        header = MsgHeader(
            schema_version=schema_version,
            msg_type=MsgType.OBS,
            seq_id=seq,
            episode_id=self.episode_id,
            client_mono_ns=time.monotonic_ns() if client_mono_ns is None else client_mono_ns,
            session_epoch=self.epoch,
        )
        self._publisher.put(encode_observation(obs), attachment=header.pack())
        return seq

    def send_raw(self, body: bytes, attachment: bytes | None) -> None:
        """Publish arbitrary bytes on this client's obs key (for hostile-input tests)."""
        if attachment is None:
            self._publisher.put(body)
        else:
            self._publisher.put(body, attachment=attachment)

    def heartbeat(self, *, paused: bool = False, state: str = "") -> None:
        """Telemetry on `<client>/telemetry`: the heartbeat that keeps an idle (paused) session alive."""
        body = encode_message(
            Telemetry(
                client_uuid=self.client_uuid,
                session_id=self.session.session_id if self.session else "",
                state=state,
                paused=paused,
            )
        )
        header = MsgHeader(msg_type=MsgType.TELEMETRY, episode_id=self.episode_id, session_epoch=self.epoch)
        self._zenoh.put(self.keys.telemetry(self.client_uuid), body, attachment=header.pack())

    def receive(self, timeout: float = 10.0) -> Received:
        try:
            return self._inbox.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"nothing from the server within {timeout} s") from None

    def wait_for(self, seq_id: int, timeout: float = 10.0) -> ActionChunk:
        """The chunk answering `seq_id` (older chunks are skipped); an error event for it raises `RemoteError`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no chunk for seq {seq_id} within {timeout} s")
            msg = self.receive(left)
            if msg.header.seq_id != seq_id:
                continue
            if msg.event is not None:
                raise RemoteError(f"{msg.event.kind}: {msg.event.detail}")
            if msg.chunk is not None:
                return msg.chunk

    def request(self, obs: Observation, timeout: float = 10.0) -> ActionChunk:
        """Send one observation and wait for its chunk (one request in flight)."""
        return self.wait_for(self.send(obs), timeout)

    def _on_action(self, sample: zenoh.Sample) -> None:
        try:
            header = MsgHeader.unpack(sample.attachment.to_bytes() if sample.attachment is not None else None)
            body = sample.payload.to_bytes()
            if header.msg_type == MsgType.CHUNK:
                item = Received(header, chunk=decode_action_chunk(body))
            else:
                item = Received(header, event=decode_event(body))
            self._inbox.put_nowait(item)
        except (ValueError, queue.Full):
            pass  # a test client: a bad or surplus message is simply not delivered

    def close(self) -> None:
        for entity in (self._token, self._subscriber, self._publisher):
            if entity is not None:
                with contextlib.suppress(Exception):
                    entity.undeclare()
        with contextlib.suppress(Exception):
            self._zenoh.close()


def _open_with_retries(config: zenoh.Config, retries: int) -> Any:
    for attempt in range(retries + 1):
        try:
            return zenoh.open(config)
        except zenoh.ZError:
            if attempt == retries:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")


def observation(
    state: Sequence[float] | np.ndarray,
    *,
    cameras: dict[str, tuple[int, int]] | None = None,
    value: int = 128,
    **fields: Any,
) -> Observation:
    """An observation with a flat-colour frame per camera (native size `(h, w)`), JPEG-encoded on send
    (`jpeg_quality=0` in `fields` sends raw pixels instead)."""
    cams = {"front": (480, 640)} if cameras is None else cameras
    images = {name: np.full((h, w, 3), value, np.uint8) for name, (h, w) in cams.items()}
    fields.setdefault("jpeg_quality", 90)
    return Observation(state=np.asarray(state, np.float32), images=images, **fields)
