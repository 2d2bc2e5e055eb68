"""Round trips of every message, the tensor and image codecs, and additive evolution."""

import msgpack
import numpy as np
import pytest
import simplejpeg
from spinal.protocol import (
    ActionChunk,
    EncodedImage,
    Event,
    MalformedMessage,
    Observation,
    Reset,
    ResetAck,
    SessionAck,
    SessionClose,
    SessionOpen,
    Status,
    Telemetry,
    decode_action_chunk,
    decode_message,
    decode_observation,
    decode_tensor,
    encode_action_chunk,
    encode_image,
    encode_message,
    encode_observation,
    encode_tensor,
    peek_op,
)
from spinal.protocol.golden import same_message
from spinal.protocol.limits import DEFAULT_LIMITS


def _rgb(h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_observation_round_trip_with_raw_images_is_byte_exact():
    img = _rgb()
    obs = Observation(
        state=np.arange(6, dtype=np.float32),
        images={"front": img},
        task="stack the cubes",
        inference_delay_steps=5,
        prefix_model=np.ones((4, 6), np.float32),
        prefix_robot=np.zeros((4, 6), np.float32),
        episode_start=True,
        jpeg_quality=0,
    )
    back = decode_observation(encode_observation(obs), decode_images=True)
    np.testing.assert_array_equal(back.images["front"], img)
    np.testing.assert_array_equal(back.state, obs.state)
    np.testing.assert_array_equal(back.prefix_model, obs.prefix_model)
    assert (back.task, back.inference_delay_steps, back.episode_start) == ("stack the cubes", 5, True)


def test_observation_jpeg_round_trip_is_close():
    img = np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], (48, 1, 3))
    back = decode_observation(encode_observation(Observation(images={"front": img})), decode_images=True)
    assert back.images["front"].shape == img.shape
    assert np.abs(back.images["front"].astype(int) - img.astype(int)).mean() < 5


@pytest.mark.parametrize("channel", [0, 1, 2])
def test_jpeg_keeps_rgb_channel_order(channel):
    """A silent RGB/BGR swap would poison every policy: pure red must stay red."""
    img = np.zeros((32, 32, 3), np.uint8)
    img[..., channel] = 255
    back = decode_observation(encode_observation(Observation(images={"c": img})), decode_images=True).images[
        "c"
    ]
    means = back.reshape(-1, 3).mean(axis=0)
    assert means.argmax() == channel
    assert means[channel] > 240 and means.sum() - means[channel] < 20


def test_camera_jpeg_passes_through_without_reencoding():
    camera_jpeg = simplejpeg.encode_jpeg(_rgb(), quality=75, colorspace="RGB")
    obs = Observation(images={"front": EncodedImage.jpeg(camera_jpeg)})
    decoded = decode_observation(encode_observation(obs))
    assert decoded.images["front"].data == camera_jpeg  # the very bytes the camera produced


def test_passthrough_refuses_non_jpeg_bytes():
    with pytest.raises(MalformedMessage, match="not JPEG"):
        EncodedImage.jpeg(b"\x89PNG....")


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3), np.float32)]
)
def test_encode_image_requires_uint8_hwc_rgb(bad):
    with pytest.raises(MalformedMessage, match="uint8 HWC RGB"):
        encode_image(bad)


def test_action_chunk_round_trip():
    chunk = ActionChunk(
        seq_id_echo=2**64 - 1,
        client_mono_ns_echo=-99,
        episode_id_echo=3,
        chunk_model=np.random.default_rng(1).normal(size=(50, 6)).astype(np.float32),
        chunk_robot=np.random.default_rng(2).normal(size=(50, 6)).astype(np.float32),
        queue_wait_ms=0.5,
        inference_ms=20.0,
        superseded_seqs=3,
        server_load=0.75,
        session_id="s1",
    )
    assert same_message(decode_action_chunk(encode_action_chunk(chunk)), chunk)


def test_action_chunk_must_be_two_dimensional():
    body = encode_action_chunk(ActionChunk(chunk_robot=np.zeros((50,), np.float32)))
    with pytest.raises(MalformedMessage, match="2-D"):
        decode_action_chunk(body)


@pytest.mark.parametrize(
    "msg",
    [
        Status(model_repo="m", action_names=["a", "b"], camera_shapes={"front": [96, 128]}, max_sessions=4),
        SessionOpen(client_uuid="r1", action_names=["a"], camera_names=["front"], tags={"k": "v"}, fps=30.0),
        SessionAck(accepted=True, session_id="s", warnings=["w"], trained_fps=30.0),
        SessionClose(client_uuid="r1", session_id="s"),
        Reset(client_uuid="r1", episode_id=4),
        ResetAck(ok=False, error="unknown client"),
        Event(kind="drain", detail="bye"),
        Telemetry(client_uuid="r1", state="DEGRADED", counters={"timeouts": 2.0}),
    ],
    ids=lambda m: type(m).__name__,
)
def test_flat_messages_round_trip(msg):
    assert same_message(decode_message(type(msg), encode_message(msg)), msg)


def test_unknown_keys_are_ignored_and_missing_keys_take_defaults():
    newer_peer = msgpack.packb({"accepted": True, "session_id": "s9", "shiny_new_field": {"x": [1, 2]}})
    ack = decode_message(SessionAck, newer_peer)
    assert ack.accepted and ack.session_id == "s9"
    assert ack.action_names == [] and ack.chunk_size == 0 and ack.warnings == []


def test_older_peer_observation_without_prefixes_decodes():
    older = msgpack.packb({"state": encode_tensor(np.zeros(3, np.float32)), "images": {}, "task": "t"})
    obs = decode_observation(older)
    assert obs.prefix_model is None and obs.inference_delay_steps == 0 and obs.episode_start is False


def test_our_messages_decode_on_a_peer_that_knows_fewer_fields():
    """A peer that filters to the upstream field set still reads our status (additive evolution, other way)."""
    upstream_status_fields = {"model_repo", "action_names", "state_dim", "chunk_size", "max_sessions"}
    body = msgpack.unpackb(encode_message(Status(model_repo="m", state_dim=6, chunk_size=50, max_sessions=2)))
    filtered = {k: v for k, v in body.items() if k in upstream_status_fields}
    assert filtered == {
        "model_repo": "m",
        "action_names": [],
        "state_dim": 6,
        "chunk_size": 50,
        "max_sessions": 2,
    }


def test_wrong_field_type_names_the_field():
    with pytest.raises(MalformedMessage, match=r"session_open\.state_dim must be an integer"):
        decode_message(SessionOpen, msgpack.packb({"state_dim": "six"}))
    with pytest.raises(MalformedMessage, match=r"session_open\.action_names\[1\] must be a string"):
        decode_message(SessionOpen, msgpack.packb({"action_names": ["a", 3]}))


def test_peek_op_reads_session_requests():
    assert peek_op(encode_message(SessionClose())) == "close"
    assert peek_op(encode_message(SessionOpen())) == "open"
    with pytest.raises(MalformedMessage, match="op"):
        peek_op(msgpack.packb({"op": "explode"}))


# ---- tensors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype",
    [
        "bool",
        "int8",
        "uint8",
        "int16",
        "uint16",
        "int32",
        "uint32",
        "int64",
        "uint64",
        "float16",
        "float32",
        "float64",
    ],
)
def test_tensor_round_trip_every_numeric_dtype(dtype):
    arr = (np.arange(24) % 7).astype(dtype).reshape(2, 3, 4)
    back = decode_tensor(encode_tensor(arr), DEFAULT_LIMITS, field="t")
    assert back.dtype == arr.dtype and back.shape == arr.shape and np.array_equal(back, arr)
    assert back.flags.writeable and back.flags.c_contiguous


def test_big_endian_tensor_is_sent_little_endian():
    arr = np.arange(5, dtype=">f4")
    wire = encode_tensor(arr)
    assert wire["dtype"] == "<f4"
    np.testing.assert_array_equal(decode_tensor(wire, DEFAULT_LIMITS, field="t"), arr)


def test_zero_d_and_empty_tensors_keep_their_shape():
    assert decode_tensor(encode_tensor(np.float32(2.5)), DEFAULT_LIMITS, field="t").shape == ()
    assert decode_tensor(encode_tensor(np.zeros((0, 6), np.float32)), DEFAULT_LIMITS, field="t").shape == (
        0,
        6,
    )


def test_non_contiguous_tensor_encodes_its_values():
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]
    np.testing.assert_array_equal(decode_tensor(encode_tensor(arr), DEFAULT_LIMITS, field="t"), arr)


@pytest.mark.parametrize("arr", [np.array([object()]), np.array(["a"]), np.zeros(2, dtype=complex)])
def test_non_numeric_tensors_are_refused(arr):
    with pytest.raises(MalformedMessage, match="refusing"):
        encode_tensor(arr)


@pytest.mark.parametrize(
    "wire,match",
    [
        ({"dtype": "|O", "shape": [1], "data": b"x" * 8}, "not a wire dtype"),
        ({"dtype": "<f4", "shape": [2], "data": b"\x00" * 7}, "needs 8"),
        ({"dtype": "<f4", "shape": [-1], "data": b""}, "negative"),
        ({"dtype": "<f4", "shape": "3", "data": b""}, "list of integers"),
        ({"dtype": "<f4", "shape": [1], "data": "text"}, "must be bytes"),
        ([1, 2], "tensor map"),
    ],
)
def test_malformed_tensors_are_refused(wire, match):
    with pytest.raises(MalformedMessage, match=match):
        decode_tensor(wire, DEFAULT_LIMITS, field="observation.state")
