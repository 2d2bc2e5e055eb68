"""Hostile input: every decoder enforces its limits and lets only ProtocolError escape."""

import contextlib
import struct
import tracemalloc

import msgpack
import numpy as np
import pytest
import simplejpeg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spinal.protocol import (
    DecodeLimits,
    LimitExceeded,
    MalformedMessage,
    MsgHeader,
    Observation,
    ProtocolError,
    SessionOpen,
    decode_action_chunk,
    decode_event,
    decode_observation,
    decode_reset,
    decode_reset_ack,
    decode_session_ack,
    decode_session_close,
    decode_session_open,
    decode_status,
    decode_telemetry,
    encode_message,
    encode_observation,
    peek_op,
)
from spinal.protocol.golden import VECTORS_DIR, golden_vectors

DECODERS = {
    "observation": lambda b: decode_observation(b, decode_images=True),
    "action_chunk": decode_action_chunk,
    "status": decode_status,
    "session_open": decode_session_open,
    "session_ack": decode_session_ack,
    "session_close": decode_session_close,
    "reset": decode_reset,
    "reset_ack": decode_reset_ack,
    "event": decode_event,
    "telemetry": decode_telemetry,
    "peek_op": peek_op,
    "header": MsgHeader.unpack,
}
SEEDS = [(VECTORS_DIR / f"{name}.bin").read_bytes() for name in sorted(golden_vectors())]


def _only_protocol_errors(decoder, data):
    """Run a decoder on hostile bytes; any exception other than ProtocolError fails the test."""
    with contextlib.suppress(ProtocolError):
        decoder(data)


# ---- limits ----------------------------------------------------------------------------------


def test_oversize_message_is_refused_before_parsing():
    limits = DecodeLimits(max_message_bytes=1000)
    with pytest.raises(LimitExceeded, match="max_message_bytes"):
        decode_observation(b"\x80" + b"\x00" * 2000, limits)


def test_too_many_images_is_refused():
    obs = Observation(images={f"cam{i}": np.zeros((8, 8, 3), np.uint8) for i in range(5)}, jpeg_quality=0)
    with pytest.raises(LimitExceeded, match="5 images, over the limit of 4"):
        decode_observation(encode_observation(obs), DecodeLimits(max_images=4))


def test_oversize_jpeg_is_refused_from_its_header_without_decoding():
    jpeg = simplejpeg.encode_jpeg(np.zeros((64, 200, 3), np.uint8), colorspace="RGB")
    body = msgpack.packb({"images": {"front": {"codec": "jpeg", "data": jpeg}}})
    with pytest.raises(LimitExceeded, match="200x64"):
        decode_observation(body, DecodeLimits(max_image_width=128))


def test_raw_image_dimension_lies_are_refused():
    body = msgpack.packb(
        {"images": {"front": {"codec": "raw", "shape": [100000, 100000, 3], "data": b"\x00"}}}
    )
    with pytest.raises(LimitExceeded, match="100000x100000"):
        decode_observation(body)
    body = msgpack.packb({"images": {"front": {"codec": "raw", "shape": [2, 2, 3], "data": b"\x00" * 5}}})
    with pytest.raises(MalformedMessage, match="needs 12"):
        decode_observation(body)


def test_unknown_image_codec_is_refused():
    body = msgpack.packb({"images": {"front": {"codec": "webp", "data": b"RIFF"}}})
    with pytest.raises(MalformedMessage, match="codec 'webp' is unknown"):
        decode_observation(body)


def test_hostile_tensor_element_count_is_refused_before_allocation():
    body = msgpack.packb({"state": {"dtype": "<f8", "shape": [2**31, 2**31], "data": b""}})
    with pytest.raises(LimitExceeded, match="max_tensor_elements"):
        decode_observation(body)


def test_long_strings_and_lists_are_refused():
    limits = DecodeLimits(max_string_bytes=64, max_list_items=8)
    with pytest.raises(MalformedMessage):
        decode_session_open(encode_message(SessionOpen(task="x" * 65)), limits)
    with pytest.raises(MalformedMessage):
        decode_session_open(encode_message(SessionOpen(action_names=["a"] * 9)), limits)


def test_hostile_length_prefixes_allocate_nothing_large():
    """A 5-byte body claiming a 4 GiB bin / array / map must fail fast without allocating."""
    hostile = [
        b"\xc6" + struct.pack(">I", 2**32 - 1),  # bin32 of 4 GiB
        b"\xdd" + struct.pack(">I", 2**32 - 1),  # array32 of 4 billion items
        b"\xdf" + struct.pack(">I", 2**32 - 1),  # map32 of 4 billion pairs
        b"\xdb" + struct.pack(">I", 2**32 - 1),  # str32 of 4 GiB
        b"\x81\xa5state\xc6" + struct.pack(">I", 2**31),
    ]
    tracemalloc.start()
    try:
        for body in hostile:
            for decoder in DECODERS.values():
                _only_protocol_errors(decoder, body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024


def test_deep_nesting_is_a_protocol_error():
    body = b"\x91" * 100_000 + b"\xc0"
    for decoder in DECODERS.values():
        _only_protocol_errors(decoder, body)


def test_ext_types_and_trailing_bytes_are_refused():
    with pytest.raises(MalformedMessage, match="extension"):
        decode_status(msgpack.packb({"x": msgpack.ExtType(5, b"code")}))
    with pytest.raises(MalformedMessage, match="trailing"):
        decode_status(msgpack.packb({}) + b"\x00")


@pytest.mark.parametrize(
    "body", [b"", b"\x00", msgpack.packb([1, 2]), msgpack.packb({1: 2}), msgpack.packb("s")]
)
def test_non_map_bodies_are_malformed(body):
    for name, decoder in DECODERS.items():
        if name == "header":
            continue
        with pytest.raises(MalformedMessage):
            decoder(body)


# ---- fuzzing ---------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_random_bytes_raise_only_protocol_errors(data):
    for decoder in DECODERS.values():
        _only_protocol_errors(decoder, data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_mutated_golden_messages_raise_only_protocol_errors(seed, data):
    mutated = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "set", "truncate", "insert"]))
        if not mutated:
            break
        pos = data.draw(st.integers(0, len(mutated) - 1))
        if op == "flip":
            mutated[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set":
            mutated[pos] = data.draw(st.sampled_from([0x00, 0xFF, 0xC6, 0xDD, 0xDF, 0xC1, 0x7F, 0x80]))
        elif op == "truncate":
            del mutated[pos:]
        else:
            mutated[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    for decoder in DECODERS.values():
        _only_protocol_errors(decoder, bytes(mutated))


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**64 - 1)
        | st.floats()
        | st.text(max_size=20)
        | st.binary(max_size=20),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_well_formed_msgpack_of_the_wrong_shape_raises_only_protocol_errors(value):
    body = msgpack.packb(
        {
            "state": value,
            "images": value,
            "chunk_robot": value,
            "task": value,
            "action_names": value,
            "tags": value,
            "counters": value,
            "op": value,
        }
    )
    for decoder in DECODERS.values():
        _only_protocol_errors(decoder, body)
