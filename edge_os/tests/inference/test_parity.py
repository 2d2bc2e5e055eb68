"""Golden parity: remote (encode -> real server over Zenoh -> decode -> merge) and local (the same model
runtime in-process) engines, fed identical observations, consumption and latencies, hold identical queues."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import simplejpeg

testing = pytest.importorskip(
    "spinal_server.testing", reason="needs spinal-server (the edge's `local` extra)"
)

from spinal.protocol import EncodedImage  # noqa: E402
from spinal_edge.inference import InferenceConfig, ManualClock, RobotObservation, RobotSpec  # noqa: E402
from spinal_edge.inference.chunk_engine import ChunkEngine  # noqa: E402
from spinal_edge.inference.local import LocalChunkSource, load_runtime  # noqa: E402
from spinal_edge.inference.zenoh_source import ZenohChunkSource  # noqa: E402

ROBOT = RobotSpec(cameras=("front",), fps=30.0)


@dataclass(frozen=True)
class Step:
    consume_before: int  # actions the control loop executes before the observation
    consume_in_flight: int  # ... and while its request is in flight
    latency_s: float  # how long the request takes on the engine clock
    reset_before: bool = False


SCRIPT = [
    Step(0, 0, 0.20),  # idle robot at episode start: 6 steps of latency, nothing consumed -> no trim
    Step(20, 3, 0.10),
    Step(12, 1, 0.15),
    Step(15, 5, 0.05),
    Step(0, 2, 0.30, reset_before=True),
    Step(18, 4, 0.12),
    Step(25, 0, 0.00),
]


class ScriptedTiming:
    """Wraps a real ChunkSource: after its real reply, the loop consumes `consume_in_flight` actions and the
    engine clock moves by `latency_s`, so both engines see the same timing whatever the machine does."""

    def __init__(self, inner: Any, clock: ManualClock) -> None:
        self.inner = inner
        self.clock = clock
        self.engine: ChunkEngine | None = None
        self.step: Step | None = None
        self.requests: list[Any] = []

    def request(self, request: Any, timeout_s: float, cancelled: Callable[[], bool]) -> Any:
        self.requests.append(request)
        reply = self.inner.request(request, 10.0, cancelled)
        assert self.engine is not None and self.step is not None
        for _ in range(self.step.consume_in_flight):
            self.engine.get_action()
        self.clock.advance(self.step.latency_s)
        return reply

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def frame(i: int, codec: str) -> np.ndarray | EncodedImage:
    rng = np.random.default_rng(100 + i)
    img = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    if codec == "jpeg":
        return EncodedImage.jpeg(simplejpeg.encode_jpeg(img, quality=85, colorspace="RGB"))
    return img


def run(
    engine: ChunkEngine, timing: ScriptedTiming, codec: str, waiter
) -> list[tuple[np.ndarray, np.ndarray]]:
    timing.engine = engine
    engine.start()
    assert engine.wait_ready(20)
    states = np.random.default_rng(3).normal(0, 20, (len(SCRIPT), 6)).astype(np.float32)
    queues = []
    for i, step in enumerate(SCRIPT):
        timing.step = step
        if step.reset_before:
            assert engine.reset(wait_s=10)
        for _ in range(step.consume_before):
            engine.get_action()
        merged = engine.stats.chunks_merged
        engine.notify_observation(RobotObservation(state=states[i], images={"front": frame(i, codec)}))
        waiter(lambda m=merged: engine.stats.chunks_merged == m + 1, timeout=20, what=f"merge {i}")
        queues.append(engine.queue.snapshot())
    return queues


def parity_config(srv, **kw) -> InferenceConfig:
    return InferenceConfig(
        model_id=srv.manifest.service.model_id, service="default", endpoints=[srv.endpoint], lease_ms=1000,
        buffer_time_s=60.0, max_action_age_s=60.0, jpeg_quality=0, request_timeout_s=10.0, **kw,
    )  # fmt: skip


@pytest.mark.parametrize("codec", ["raw", "jpeg"])
def test_remote_and_local_engines_hold_identical_queues(codec, engines, waiter):
    with testing.running_server() as srv:
        cfg = parity_config(srv)
        remote_clock, local_clock = ManualClock(), ManualClock()
        remote_timing = ScriptedTiming(ZenohChunkSource(cfg), remote_clock)
        remote = ChunkEngine(cfg, ROBOT, remote_timing, clock=remote_clock)
        engines.append(remote)
        runtime = load_runtime(srv.manifest.model.path)
        local_timing = ScriptedTiming(LocalChunkSource(cfg, runtime, warmup=0), local_clock)
        local = ChunkEngine(cfg, ROBOT, local_timing, clock=local_clock)
        engines.append(local)

        remote_queues = run(remote, remote_timing, codec, waiter)
        local_queues = run(local, local_timing, codec, waiter)
        assert remote.session.rtc and local.session.rtc  # replace merges with prefixes: the hard case
        chunk_size = remote.session.chunk_size

    for i, ((rm, rr), (lm, lr)) in enumerate(zip(remote_queues, local_queues, strict=True)):
        assert rm.shape == lm.shape and rm.size > 0, f"step {i}: queue sizes differ"
        assert np.array_equal(rm, lm), f"step {i}: model-space queues differ"
        assert np.array_equal(rr, lr), f"step {i}: robot-space queues differ"
    for rq, lq in zip(remote_timing.requests, local_timing.requests, strict=True):
        ro, lo = rq.observation, lq.observation
        assert (rq.seq_id, rq.episode_id, ro.inference_delay_steps, ro.episode_start) == (
            lq.seq_id, lq.episode_id, lo.inference_delay_steps, lo.episode_start,
        )  # fmt: skip
        for a, b in ((ro.prefix_model, lo.prefix_model), (ro.prefix_robot, lo.prefix_robot)):
            assert (a is None and b is None) or np.array_equal(a, b)
    delays = [r.observation.inference_delay_steps for r in remote_timing.requests]
    assert max(delays) >= 6 and remote.stats.actions_trimmed == local.stats.actions_trimmed > 0
    first_queue_len = len(remote_queues[0][0])
    assert first_queue_len == chunk_size  # step 0: idle robot, nothing trimmed
