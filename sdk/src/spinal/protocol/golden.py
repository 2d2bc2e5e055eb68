"""Golden test vectors: canonical messages and the bytes they must encode to, for every message type.

`python -m spinal.protocol.golden [DIR]` rewrites the checked-in files; tests (edge, server, third parties)
verify that encoding gives exactly these bytes and that decoding them gives the canonical messages.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spinal.protocol import codec
from spinal.protocol.constants import MsgType
from spinal.protocol.header import MsgHeader
from spinal.protocol.image import EncodedImage
from spinal.protocol.messages import (
    ActionChunk,
    Event,
    Observation,
    Reset,
    ResetAck,
    SessionAck,
    SessionClose,
    SessionOpen,
    Status,
    Telemetry,
)
from spinal.robots import SO101_FEATURE_NAMES

VECTORS_DIR = Path(__file__).resolve().parent / "vectors"
PASSTHROUGH_JPEG = "passthrough.jpg"
ACTION_NAMES = list(SO101_FEATURE_NAMES)


class Vector:
    """One golden vector: a message, how to encode it, and how to decode its bytes."""

    def __init__(
        self, message: Any, encode: Callable[[Any], bytes], decode: Callable[[bytes], Any], about: str
    ):
        self.message, self.encode, self.decode, self.about = message, encode, decode, about


def _chunk(rows: int, cols: int, scale: float) -> np.ndarray:
    return (np.arange(rows * cols, dtype=np.float32).reshape(rows, cols) * np.float32(scale)).astype(
        np.float32
    )


def golden_vectors(vectors_dir: Path = VECTORS_DIR) -> dict[str, Vector]:
    """The canonical messages by vector name (the passthrough JPEG bytes are read from `vectors_dir`)."""
    jpeg = (vectors_dir / PASSTHROUGH_JPEG).read_bytes()
    raw_image = np.zeros((4, 6, 3), dtype=np.uint8)
    raw_image[..., 0] = 255  # pure red: the RGB channel-order regression in byte form
    raw_image[1, 2] = (1, 2, 3)
    header = MsgHeader.pack
    return {
        "header_obs": Vector(
            MsgHeader(1, MsgType.OBS, 2**64 - 1, 7, -123_456_789, 3),
            header,
            MsgHeader.unpack,
            "observation header: max u64 seq_id, negative monotonic stamp",
        ),
        "header_chunk": Vector(
            MsgHeader(1, MsgType.CHUNK, 42, 2**32 - 1, 2**63 - 1, 2**32 - 1),
            header,
            MsgHeader.unpack,
            "chunk header: max u32 episode and epoch, max i64 stamp",
        ),
        "observation": Vector(
            Observation(
                state=np.array([0.5, -1.25, 3.0, 0.0, 100.0, -100.0], dtype=np.float32),
                images={
                    "front": EncodedImage.jpeg(jpeg),
                    "wrist": EncodedImage("raw", raw_image.tobytes(), (4, 6, 3)),
                },
                task="fold the towel",
                inference_delay_steps=4,
                prefix_model=_chunk(3, 6, 0.25),
                prefix_robot=_chunk(3, 6, -0.5),
                episode_start=True,
            ),
            codec.encode_observation,
            codec.decode_observation,
            "observation: state, a passthrough JPEG camera and a raw camera, task, RTC prefixes, episode start",
        ),
        "observation_minimal": Vector(
            Observation(),
            codec.encode_observation,
            codec.decode_observation,
            "observation with every default",
        ),
        "action_chunk": Vector(
            ActionChunk(
                seq_id_echo=42,
                client_mono_ns_echo=-5,
                episode_id_echo=7,
                chunk_model=_chunk(50, 6, 0.01),
                chunk_robot=_chunk(50, 6, 1.5),
                queue_wait_ms=1.5,
                inference_ms=12.25,
                superseded_seqs=2,
                server_load=0.25,
                session_id="s-0001",
            ),
            codec.encode_action_chunk,
            codec.decode_action_chunk,
            "a 50x6 action chunk, model and robot space",
        ),
        "status": Vector(
            Status(
                model_repo="spinal/demo-policy",
                model_revision="main",
                policy_type="act",
                action_names=list(ACTION_NAMES),
                expected_cameras=["front"],
                state_dim=6,
                chunk_size=50,
                trained_fps=30.0,
                supports_rtc=True,
                rtc_execution_horizon=10,
                serving_mode="shared",
                warmed_up=True,
                active_sessions=3,
                max_sessions=8,
                server_load=0.375,
                default_task="fold the towel",
                model_fingerprint="sha256:00ff",
                batchable=True,
                camera_shapes={"front": [96, 128]},
            ),
            codec.encode_message,
            codec.decode_status,
            "status reply with capabilities and load",
        ),
        "session_open": Vector(
            SessionOpen(
                client_uuid="robot-17",
                robot_type="so101_follower",
                policy_type="act",
                fps=30.0,
                action_names=list(ACTION_NAMES),
                camera_names=["front", "wrist"],
                state_dim=6,
                rtc_enabled=True,
                task="fold the towel",
                tags={"site": "lab-a"},
                camera_shapes={"front": [480, 640], "wrist": [480, 640]},
            ),
            codec.encode_message,
            codec.decode_session_open,
            "session open request",
        ),
        "session_ack": Vector(
            SessionAck(
                accepted=True,
                warnings=["client fps 25.0 differs from trained fps 30.0"],
                session_id="s-0001",
                model_repo="spinal/demo-policy",
                model_revision="main",
                policy_type="act",
                action_names=list(ACTION_NAMES),
                expected_cameras=["front"],
                state_dim=6,
                chunk_size=50,
                trained_fps=30.0,
                supports_rtc=True,
                rtc_execution_horizon=10,
                serving_mode="shared",
                warmed_up=True,
                server_load=0.5,
                model_fingerprint="sha256:00ff",
            ),
            codec.encode_message,
            codec.decode_session_ack,
            "session accepted with a warning",
        ),
        "session_ack_refused": Vector(
            SessionAck(accepted=False, error="server full: 8/8 sessions active", server_load=1.0),
            codec.encode_message,
            codec.decode_session_ack,
            "session refused at capacity, with the load",
        ),
        "session_close": Vector(
            SessionClose(client_uuid="robot-17", session_id="s-0001"),
            codec.encode_message,
            codec.decode_session_close,
            "session close request",
        ),
        "reset": Vector(
            Reset(client_uuid="robot-17", episode_id=8),
            codec.encode_message,
            codec.decode_reset,
            "episode reset",
        ),
        "reset_ack": Vector(
            ResetAck(ok=True), codec.encode_message, codec.decode_reset_ack, "reset acknowledged"
        ),
        "event": Vector(
            Event(kind="drain", detail="server is shutting down", session_id="s-0001"),
            codec.encode_message,
            codec.decode_event,
            "server drain notice",
        ),
        "telemetry": Vector(
            Telemetry(
                client_uuid="robot-17",
                session_id="s-0001",
                state="STREAMING",
                queue_depth=23,
                latency_p50_ms=41.5,
                latency_p95_ms=88.0,
                counters={"chunks_received": 120.0, "stale_chunks_dropped": 1.0},
            ),
            codec.encode_message,
            codec.decode_telemetry,
            "client telemetry / heartbeat",
        ),
    }


def write_vectors(vectors_dir: Path = VECTORS_DIR) -> dict[str, str]:
    """Write every vector's bytes and an index of sha256 digests; returns the index."""
    vectors_dir.mkdir(parents=True, exist_ok=True)
    jpeg_path = vectors_dir / PASSTHROUGH_JPEG
    if not jpeg_path.exists():
        jpeg_path.write_bytes(_make_passthrough_jpeg())
    index: dict[str, str] = {}
    about: dict[str, str] = {}
    for name, vector in golden_vectors(vectors_dir).items():
        data = vector.encode(vector.message)
        (vectors_dir / f"{name}.bin").write_bytes(data)
        index[name] = hashlib.sha256(data).hexdigest()
        about[name] = vector.about
    (vectors_dir / "index.json").write_text(json.dumps({"sha256": index, "about": about}, indent=2) + "\n")
    return index


def _make_passthrough_jpeg() -> bytes:
    import simplejpeg

    img = np.zeros((16, 16, 3), dtype=np.uint8)
    img[..., 0] = 255
    return simplejpeg.encode_jpeg(img, quality=90, colorspace="RGB")


def same_message(a: Any, b: Any) -> bool:
    """Field-by-field equality of two messages, comparing arrays by dtype, shape and bytes."""
    if type(a) is not type(b):
        return False
    if isinstance(a, MsgHeader):
        return a == b
    return all(_same_value(getattr(a, f), getattr(b, f)) for f in a.__slots__ if f != "jpeg_quality")


def _same_value(x: Any, y: Any) -> bool:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return (
            isinstance(x, np.ndarray)
            and isinstance(y, np.ndarray)
            and x.dtype == y.dtype
            and x.shape == y.shape
            and x.tobytes() == y.tobytes()
        )
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same_value(x[k], y[k]) for k in x)
    return x == y


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else VECTORS_DIR
    for name, digest in write_vectors(target).items():
        print(f"{name:24s} {digest}")
