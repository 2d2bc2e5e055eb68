"""Inference-server benchmark: requests/s and latency against the number of robots, round-robin vs micro-batching.

The server runs in its own process (`spinal-server serve`, embedded router on 127.0.0.1) with a CPU ONNX MLP
whose batch-1 forward takes a few ms; simulated robots (one request in flight each) share one Zenoh session
in this process. The headline number is the micro-batching / round-robin throughput ratio at 16 robots.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zenoh
from spinal.protocol import (
    MsgHeader,
    MsgType,
    Observation,
    SessionClose,
    SessionOpen,
    decode_session_ack,
    encode_message,
    encode_observation,
)
from spinal_server.demo_policy import SO101_ACTIONS
from spinal_server.generated_models import build_mlp_policy
from spinal_server.runtime import PolicyRuntime, example_observation
from spinal_server.testing import server_subprocess
from spinal_server.zenoh_config import OBSERVATION_QOS

from bench.harness import Table, percentile

CLIENT_COUNTS = (1, 4, 16, 64)
SCHEDULERS = ("round_robin", "batch")
MAX_BATCH = 16
MAX_WAIT_MS = 5.0
HIDDEN, LAYERS = 4096, 2
LOST_AFTER_S = 2.0


@dataclass
class LoadResult:
    clients: int
    requests: int
    seconds: float
    latencies_ms: list[float]
    lost: int = 0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class RobotFleet:
    """N simulated robots on one Zenoh session: each keeps exactly one observation in flight.

    Answers arrive on one wildcard subscriber with a Rust-side FIFO that the driver polls, so the load
    generator costs little CPU per request (no Python callback thread, no hand-off).
    """

    def __init__(self, endpoint: str, keys, count: int, tag: str) -> None:
        config = zenoh.Config.from_json5(
            '{"mode": "client", "scouting": {"multicast": {"enabled": false}}, '
            f'"connect": {{"endpoints": ["{endpoint}"]}}, '
            # many robots share this one transport: let a burst of observations queue instead of dropping
            '"transport": {"link": {"tx": {"queue": {"size": {"data": 16}}}}}}'
        )
        self.session = zenoh.open(config)
        self.keys = keys
        self.names = [f"{tag}-{i:03d}" for i in range(count)]
        self.index = {keys.action(name): i for i, name in enumerate(self.names)}
        self.answers = self.session.declare_subscriber(
            f"{keys.prefix}/*/action", zenoh.handlers.FifoChannel(4096)
        )
        self.publishers = []
        self.bodies = []
        self.seq = [0] * count
        self.sent_at = [0.0] * count
        for i, name in enumerate(self.names):
            ack = decode_session_ack(self._query(keys.session, encode_message(self._open(name))))
            if not ack.accepted:
                raise RuntimeError(f"benchmark robot {name} refused: {ack.error}")
            self.publishers.append(self.session.declare_publisher(keys.obs(name), **OBSERVATION_QOS))
            rng = np.random.default_rng(i)
            obs = Observation(
                state=rng.uniform(-50, 50, 6).astype(np.float32),
                images={"front": rng.integers(0, 255, (48, 64, 3), np.uint8)},
                jpeg_quality=0,
            )
            self.bodies.append(encode_observation(obs))

    def _open(self, name: str) -> SessionOpen:
        return SessionOpen(
            client_uuid=name,
            action_names=SO101_ACTIONS,
            camera_names=["front"],
            state_dim=6,
        )

    def _query(self, key: str, payload: bytes) -> bytes:
        for reply in self.session.get(key, payload=payload, timeout=10.0):
            if reply.ok is not None:
                return reply.ok.payload.to_bytes()
        raise TimeoutError(f"no reply from {key}")

    def send(self, index: int) -> None:
        self.seq[index] += 1
        header = MsgHeader(msg_type=MsgType.OBS, seq_id=self.seq[index], client_mono_ns=time.monotonic_ns())
        self.sent_at[index] = time.perf_counter()
        self.publishers[index].put(self.bodies[index], attachment=header.pack())

    def _next_answer(self, deadline: float) -> tuple[int, int, float] | None:
        """The next chunk's (robot, seq, arrival), or None once `deadline` passes with nothing."""
        while True:
            sample = self.answers.try_recv()
            if sample is not None:
                arrived = time.perf_counter()
                header = MsgHeader.unpack(sample.attachment.to_bytes())
                if header.msg_type != MsgType.CHUNK:
                    raise RuntimeError(
                        f"the server answered with an event: {sample.payload.to_bytes()[:200]!r}"
                    )
                return self.index[str(sample.key_expr)], header.seq_id, arrived
            if time.perf_counter() > deadline:
                return None
            time.sleep(0.00005)

    def run(self, warmup_s: float, measure_s: float) -> LoadResult:
        """Closed loop: every answer triggers that robot's next observation; count answers in the window.

        Zenoh may drop a message under congestion (DROP, by design): a request unanswered for
        `LOST_AFTER_S` is counted lost and re-sent, as a robot's request timeout would.
        """
        for i in range(len(self.names)):
            self.send(i)
        start = time.perf_counter()
        window_start, window_end = start + warmup_s, start + warmup_s + measure_s
        latencies: list[float] = []
        waiting = set(range(len(self.names)))
        count = lost = 0
        while waiting:
            now = time.perf_counter()
            if now > window_end + LOST_AFTER_S:
                lost += len(waiting)
                break
            answer = self._next_answer(now + 0.05)
            if answer is None:
                for index in list(waiting):
                    if time.perf_counter() - self.sent_at[index] > LOST_AFTER_S:
                        lost += 1
                        waiting.discard(index)
                        if time.perf_counter() < window_end:
                            self.send(index)
                            waiting.add(index)
                continue
            index, seq, arrived = answer
            if seq != self.seq[index] or index not in waiting:
                continue  # a late answer to a request already given up
            waiting.discard(index)
            if window_start <= arrived < window_end:
                count += 1
                latencies.append((arrived - self.sent_at[index]) * 1000)
            if arrived < window_end:
                self.send(index)
                waiting.add(index)
        return LoadResult(len(self.names), count, measure_s, latencies, lost)

    def close(self) -> None:
        for name in self.names:
            with contextlib.suppress(TimeoutError):
                self._query(self.keys.session, encode_message(SessionClose(client_uuid=name)))
        for entity in [self.answers, *self.publishers]:
            entity.undeclare()
        self.session.close()


def _forward_times(model: Path) -> dict[int, float]:
    runtime = PolicyRuntime.from_model_path(model)
    prepared = runtime.prepare(example_observation(runtime.spec), runtime.new_session_state())
    out = {}
    for batch in (1, MAX_BATCH):
        runtime.forward([prepared] * batch)
        samples = []
        for _ in range(30):
            t0 = time.perf_counter()
            runtime.forward([prepared] * batch)
            samples.append((time.perf_counter() - t0) * 1000)
        out[batch] = min(samples)  # the model's own cost; the machine is shared, so the best of 30
    return out


def run(quick: bool = False) -> list[Table]:
    warmup_s, measure_s, rounds = (0.3, 1.0, 1) if quick else (0.3, 1.0, 6)
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp, contextlib.ExitStack() as stack:
        model = build_mlp_policy(Path(tmp), hidden=HIDDEN, layers=LAYERS)
        forward = _forward_times(model)
        servers = {}
        for scheduler in SCHEDULERS:
            overrides = [
                f"scheduler.kind={scheduler}",
                f"scheduler.max_batch={MAX_BATCH}",
                f"scheduler.max_wait_ms={MAX_WAIT_MS}",
                f"max_sessions={max(CLIENT_COUNTS)}",
                "warmup_inferences=5",
            ]
            servers[scheduler] = stack.enter_context(server_subprocess(model, overrides=overrides))
        runs: dict[tuple[str, int], list[LoadResult]] = {}
        for count in CLIENT_COUNTS:
            fleets = {
                s: RobotFleet(rs.endpoint, rs.keys, count, f"{s[:2]}{count}") for s, rs in servers.items()
            }
            try:
                # Alternate the two schedulers so a noisy neighbour on the machine hits both alike.
                for round_index in range(rounds):
                    order = list(fleets.items())
                    for scheduler, fleet in order if round_index % 2 == 0 else order[::-1]:
                        runs.setdefault((scheduler, count), []).append(fleet.run(warmup_s, measure_s))
            finally:
                for fleet in fleets.values():
                    fleet.close()
    results = {
        key: LoadResult(
            count,
            sum(r.requests for r in parts),
            sum(r.seconds for r in parts),
            [x for r in parts for x in r.latencies_ms],
            sum(r.lost for r in parts),
        )
        for key, parts in runs.items()
        for count in [key[1]]
    }
    load = Table(
        "spinal-server: closed-loop robots on loopback (one request in flight each)",
        ["scheduler", "robots", "requests/s", "p50 ms", "p99 ms", "lost"],
    )
    for (scheduler, count), r in results.items():
        # A lost request is a robot that waited at least LOST_AFTER_S: it counts in the percentiles at that.
        waits = r.latencies_ms + [LOST_AFTER_S * 1000] * r.lost
        load.add(scheduler, count, r.rate, percentile(waits, 50), percentile(waits, 99), r.lost)
    ratio = Table(
        "micro-batching / round-robin throughput",
        ["robots", "round_robin req/s", "batch req/s", "ratio"],
    )
    for count in CLIENT_COUNTS:
        rr, mb = results[("round_robin", count)].rate, results[("batch", count)].rate
        ratio.add(count, rr, mb, mb / rr if rr else float("nan"))
    headline = results[("batch", 16)].rate / max(results[("round_robin", 16)].rate, 1e-9)
    for table in (load, ratio):
        table.notes.extend(
            [
                f"model: ONNX MLP (conv + {LAYERS}x{HIDDEN} tanh + chunk 50x6) on CPU; forward (best of 30) "
                f"{forward[1]:.2f} ms at batch 1, {forward[MAX_BATCH]:.2f} ms at batch {MAX_BATCH} "
                f"({forward[1] * MAX_BATCH / forward[MAX_BATCH]:.1f}x per-sample gain)",
                f"batch scheduler: max_batch {MAX_BATCH}, max_wait_ms {MAX_WAIT_MS:g}; server in its own process, "
                "robots share one Zenoh session in the benchmark process (both on the same cores)",
                "observation: 6 joints + one raw 64x48 camera frame (the model's size, so no resize); "
                f"{rounds} x {measure_s:g} s measured per point (after {warmup_s:g} s warm-up each), "
                "the two schedulers alternating",
            ]
        )
    ratio.notes.insert(
        0, f"headline: micro-batching serves {headline:.2f}x the requests of round-robin at 16 robots"
    )
    load.notes.append(
        f"lost: no answer within {LOST_AFTER_S:g} s (Zenoh drops under congestion by design; the robot re-sends); "
        f"each counts in p50/p99 as {LOST_AFTER_S * 1000:g} ms"
    )
    return [load, ratio]


if __name__ == "__main__":  # a quick look without the harness
    for table in run(quick=True):
        print(table.to_markdown())
    print(threading.active_count(), "threads")
