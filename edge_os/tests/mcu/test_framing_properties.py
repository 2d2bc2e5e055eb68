"""Properties of the host framing: any payload survives, any noise is survived, nothing bad is delivered."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from spinal_edge.mcu import framing

payloads = st.binary(max_size=framing.MAX_PAYLOAD)


@given(st.binary(max_size=253))
def test_cobs_round_trips_and_adds_exactly_one_byte_below_254(data: bytes) -> None:
    encoded = framing.cobs_encode(data)
    assert 0 not in encoded
    assert len(encoded) == len(data) + 1
    assert framing.cobs_decode(encoded) == data


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 0xFFFF), payloads), max_size=8), st.data())
def test_frames_survive_any_chunking(frames: list, data: st.DataObject) -> None:
    wire = b"".join(framing.encode_frame(t, s, p) for t, s, p in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=10)))
    decoder = framing.FrameDecoder()
    got = []
    for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        got += decoder.feed(wire[a:b])
    assert got == [framing.Frame(t, s, p) for t, s, p in frames]


@settings(max_examples=200)
@given(st.binary(max_size=2000))
def test_decoder_never_raises_and_resyncs_after_noise(noise: bytes) -> None:
    decoder = framing.FrameDecoder()
    decoder.feed(noise)
    good = framing.encode_frame(0x82, 7, b"\x01\x02")
    assert decoder.feed(b"\x00" + good)[-1] == framing.Frame(0x82, 7, b"\x01\x02")


@given(payloads, st.integers(0, 8 * 40 - 1))
def test_a_single_flipped_bit_is_never_delivered_as_a_valid_different_frame(payload: bytes, bit: int) -> None:
    wire = bytearray(framing.encode_frame(0x03, 1, payload))
    bit %= (len(wire) - 1) * 8
    wire[bit // 8] ^= 1 << (bit % 8)
    frames = framing.FrameDecoder().feed(bytes(wire) + b"\x00")
    assert all(f == framing.Frame(0x03, 1, payload) for f in frames) and not frames
