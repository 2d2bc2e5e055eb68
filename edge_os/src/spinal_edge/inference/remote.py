"""The remote engine: the policy runs on a spinal-server (or LeRobot policy server) reached over Zenoh.

What the edge daemon builds in policy mode: `RemoteEngine(config, robot).start()`.
"""

from __future__ import annotations

from collections.abc import Callable

from spinal.protocol import DEFAULT_LIMITS, DecodeLimits

from spinal_edge.inference.chunk_engine import ChunkEngine
from spinal_edge.inference.clock import Clock
from spinal_edge.inference.config import InferenceConfig
from spinal_edge.inference.failsafe import Transition
from spinal_edge.inference.types import RobotSpec
from spinal_edge.inference.zenoh_source import ZenohChunkSource


class RemoteEngine(ChunkEngine):
    """`ChunkEngine` over `ZenohChunkSource`: weightless, one request in flight, fail-safe on the edge."""

    def __init__(
        self,
        config: InferenceConfig,
        robot: RobotSpec,
        *,
        clock: Clock | None = None,
        on_dead: Callable[[str], None] | None = None,
        on_transition: Callable[[Transition], None] | None = None,
        limits: DecodeLimits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(
            config,
            robot,
            ZenohChunkSource(config, limits=limits),
            clock=clock,
            on_dead=on_dead,
            on_transition=on_transition,
        )
