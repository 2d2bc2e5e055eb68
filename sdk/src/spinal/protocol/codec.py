"""Encoders and decoders for every message body; the one place bodies become bytes and back.

Used by the edge client and the server. Decoders enforce `DecodeLimits` and raise only `ProtocolError`.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from functools import cache
from typing import Any, TypeVar

from spinal.protocol import wire
from spinal.protocol.errors import LimitExceeded, MalformedMessage
from spinal.protocol.image import encode_image, image_from_wire
from spinal.protocol.limits import DEFAULT_LIMITS, DecodeLimits
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
from spinal.protocol.tensor import decode_optional_tensor, encode_tensor

T = TypeVar("T")

# ---- observation -----------------------------------------------------------------------------


def encode_observation(obs: Observation) -> bytes:
    """msgpack body of an observation; array images are JPEG-encoded, EncodedImage ones pass through."""
    images = {name: encode_image(img, obs.jpeg_quality).to_wire() for name, img in obs.images.items()}
    return wire.pack(
        {
            "state": None if obs.state is None else encode_tensor(obs.state),
            "images": images,
            "task": obs.task,
            "inference_delay_steps": int(obs.inference_delay_steps),
            "prefix_model": None if obs.prefix_model is None else encode_tensor(obs.prefix_model),
            "prefix_robot": None if obs.prefix_robot is None else encode_tensor(obs.prefix_robot),
            "episode_start": bool(obs.episode_start),
        }
    )


def decode_observation(
    body: bytes | bytearray | memoryview,
    limits: DecodeLimits = DEFAULT_LIMITS,
    *,
    decode_images: bool = False,
) -> Observation:
    """An Observation; images stay `EncodedImage` (headers validated) unless `decode_images` is set."""
    what = "observation"
    msg = wire.unpack_map(body, limits, what=what)
    raw_images = wire.get_field(msg, "images", dict, {}, what=what)
    if len(raw_images) > limits.max_images:
        raise LimitExceeded(
            f"observation has {len(raw_images)} images, over the limit of {limits.max_images}"
        )
    images: dict[str, Any] = {}
    for name, raw in raw_images.items():
        if not isinstance(name, str) or not name:
            raise MalformedMessage(f"observation.images has an invalid camera name {name!r:.40}")
        encoded = image_from_wire(raw, limits, field=f"observation.images[{name!r}]")
        images[name] = (
            encoded.decode(limits, field=f"observation.images[{name!r}]") if decode_images else encoded
        )
    delay = wire.get_field(msg, "inference_delay_steps", int, 0, what=what)
    if not 0 <= delay < 2**31:
        raise MalformedMessage(f"observation.inference_delay_steps={delay} must be between 0 and 2**31-1")
    return Observation(
        state=decode_optional_tensor(msg.get("state"), limits, field="observation.state"),
        images=images,
        task=wire.get_field(msg, "task", str, "", what=what),
        inference_delay_steps=delay,
        prefix_model=decode_optional_tensor(
            msg.get("prefix_model"), limits, field="observation.prefix_model"
        ),
        prefix_robot=decode_optional_tensor(
            msg.get("prefix_robot"), limits, field="observation.prefix_robot"
        ),
        episode_start=wire.get_field(msg, "episode_start", bool, False, what=what),
    )


# ---- action chunk ----------------------------------------------------------------------------


def encode_action_chunk(chunk: ActionChunk) -> bytes:
    """msgpack body of an action chunk."""
    return wire.pack(
        {
            "seq_id_echo": int(chunk.seq_id_echo),
            "client_mono_ns_echo": int(chunk.client_mono_ns_echo),
            "episode_id_echo": int(chunk.episode_id_echo),
            "chunk_model": None if chunk.chunk_model is None else encode_tensor(chunk.chunk_model),
            "chunk_robot": None if chunk.chunk_robot is None else encode_tensor(chunk.chunk_robot),
            "queue_wait_ms": float(chunk.queue_wait_ms),
            "inference_ms": float(chunk.inference_ms),
            "superseded_seqs": int(chunk.superseded_seqs),
            "server_load": float(chunk.server_load),
            "session_id": chunk.session_id,
        }
    )


def decode_action_chunk(
    body: bytes | bytearray | memoryview, limits: DecodeLimits = DEFAULT_LIMITS
) -> ActionChunk:
    """An ActionChunk; both chunks are checked to be 2-D [horizon, action_dim] when present."""
    what = "action_chunk"
    msg = wire.unpack_map(body, limits, what=what)
    chunk = ActionChunk(
        chunk_model=decode_optional_tensor(msg.get("chunk_model"), limits, field="action_chunk.chunk_model"),
        chunk_robot=decode_optional_tensor(msg.get("chunk_robot"), limits, field="action_chunk.chunk_robot"),
        **_decode_scalars(ActionChunk, msg, what, skip={"chunk_model", "chunk_robot"}),
    )
    for name in ("chunk_model", "chunk_robot"):
        arr = getattr(chunk, name)
        if arr is not None and arr.ndim != 2:
            raise MalformedMessage(
                f"action_chunk.{name} must be 2-D [horizon, action_dim], got shape {arr.shape}"
            )
    return chunk


# ---- flat messages (control plane, events, telemetry) ---------------------------------------------


def encode_message(msg: Any) -> bytes:
    """msgpack body of a flat message (status, session, reset, event, telemetry): its fields as a map."""
    return wire.pack(dataclasses.asdict(msg))


def decode_message(
    cls: type[T], body: bytes | bytearray | memoryview, limits: DecodeLimits = DEFAULT_LIMITS
) -> T:
    """A flat message of type `cls`; unknown keys are ignored, missing keys take defaults."""
    what = _snake(cls.__name__)
    msg = wire.unpack_map(body, limits, what=what)
    return cls(**_decode_scalars(cls, msg, what))


def peek_op(body: bytes | bytearray | memoryview, limits: DecodeLimits = DEFAULT_LIMITS) -> str:
    """The `op` of a session query ("open" / "close") without building the message."""
    msg = wire.unpack_map(body, limits, what="session request")
    op = msg.get("op", "open")
    if op not in ("open", "close"):
        raise MalformedMessage(f"session request op {op!r:.40} is unknown; expected 'open' or 'close'")
    return op


def encode_status(msg: Status) -> bytes:
    return encode_message(msg)


def decode_status(body: bytes | bytearray | memoryview, limits: DecodeLimits = DEFAULT_LIMITS) -> Status:
    return decode_message(Status, body, limits)


def decode_session_open(
    body: bytes | bytearray | memoryview, limits: DecodeLimits = DEFAULT_LIMITS
) -> SessionOpen:
    return decode_message(SessionOpen, body, limits)


def decode_session_ack(
    body: bytes | bytearray | memoryview, limits: DecodeLimits = DEFAULT_LIMITS
) -> SessionAck:
    return decode_message(SessionAck, body, limits)


def decode_session_close(
    body: bytes | bytearray | memoryview, limits: DecodeLimits = DEFAULT_LIMITS
) -> SessionClose:
    return decode_message(SessionClose, body, limits)


def decode_reset(body: bytes | bytearray | memoryview, limits: DecodeLimits = DEFAULT_LIMITS) -> Reset:
    return decode_message(Reset, body, limits)


def decode_reset_ack(body: bytes | bytearray | memoryview, limits: DecodeLimits = DEFAULT_LIMITS) -> ResetAck:
    return decode_message(ResetAck, body, limits)


def decode_event(body: bytes | bytearray | memoryview, limits: DecodeLimits = DEFAULT_LIMITS) -> Event:
    return decode_message(Event, body, limits)


def decode_telemetry(
    body: bytes | bytearray | memoryview, limits: DecodeLimits = DEFAULT_LIMITS
) -> Telemetry:
    return decode_message(Telemetry, body, limits)


# ---- field validation ------------------------------------------------------------------------


@cache
def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _decode_scalars(cls: type, msg: dict[str, Any], what: str, skip: frozenset[str] | set[str] = frozenset()):
    out: dict[str, Any] = {}
    for name, tp in _field_types(cls).items():
        if name in skip or name not in msg or msg[name] is None:
            continue
        out[name] = _check(msg[name], tp, f"{what}.{name}")
    return out


def _check(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is bool:
        if not isinstance(value, bool):
            raise MalformedMessage(f"{where} must be a bool, got {type(value).__name__}")
        return value
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise MalformedMessage(f"{where} must be an integer, got {type(value).__name__}")
        return value
    if tp is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise MalformedMessage(f"{where} must be a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise MalformedMessage(f"{where} must be finite, got {value}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise MalformedMessage(f"{where} must be a string, got {type(value).__name__}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise MalformedMessage(f"{where} must be a list, got {type(value).__name__}")
        (item_tp,) = typing.get_args(tp)
        return [_check(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise MalformedMessage(f"{where} must be a map, got {type(value).__name__}")
        key_tp, val_tp = typing.get_args(tp)
        return {
            _check(k, key_tp, f"{where} key"): _check(v, val_tp, f"{where}[{k!r:.40}]")
            for k, v in value.items()
        }
    raise TypeError(f"unsupported field type {tp!r} for {where}")  # a programming error, not bad input


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))
