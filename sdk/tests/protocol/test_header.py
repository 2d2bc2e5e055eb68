"""The 27-byte attachment header: layout, ranges and malformed input."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spinal.protocol import HEADER_SIZE, HeaderError, MsgHeader, MsgType, ProtocolError


def test_header_is_27_bytes_little_endian_in_field_order():
    h = MsgHeader(
        schema_version=1,
        msg_type=MsgType.CHUNK,
        seq_id=0x0102030405060708,
        episode_id=9,
        client_mono_ns=-2,
        session_epoch=0xAABBCCDD,
    )
    data = h.pack()
    assert HEADER_SIZE == len(data) == 27
    assert data[0:2] == b"\x01\x00"
    assert data[2] == 2
    assert data[3:11] == bytes([8, 7, 6, 5, 4, 3, 2, 1])
    assert data[11:15] == b"\x09\x00\x00\x00"
    assert data[15:23] == struct.pack("<q", -2)
    assert data[23:27] == b"\xdd\xcc\xbb\xaa"


def test_defaults_are_schema_1_observation():
    h = MsgHeader.unpack(MsgHeader().pack())
    assert (h.schema_version, h.kind, h.seq_id, h.episode_id, h.client_mono_ns, h.session_epoch) == (
        1,
        MsgType.OBS,
        0,
        0,
        0,
        0,
    )


def test_extremes_round_trip():
    h = MsgHeader(65535, 255, 2**64 - 1, 2**32 - 1, -(2**63), 2**32 - 1)
    assert MsgHeader.unpack(h.pack()) == h
    assert MsgHeader.unpack(h.pack()).kind is None  # unknown type byte survives, flagged as unknown


@pytest.mark.parametrize("length", [0, 1, 26, 28, 100])
def test_wrong_length_is_a_header_error(length):
    with pytest.raises(HeaderError, match=f"exactly 27 bytes, got {length}"):
        MsgHeader.unpack(b"\x00" * length)


def test_missing_attachment_is_a_header_error():
    with pytest.raises(HeaderError, match="no attachment"):
        MsgHeader.unpack(None)


@pytest.mark.parametrize(
    "field,value",
    [
        ("seq_id", 2**64),
        ("seq_id", -1),
        ("episode_id", 2**32),
        ("client_mono_ns", 2**63),
        ("session_epoch", -1),
        ("msg_type", 256),
        ("schema_version", 70000),
        ("seq_id", True),
        ("seq_id", 1.0),
    ],
)
def test_out_of_range_field_names_the_field(field, value):
    with pytest.raises(HeaderError, match=field):
        MsgHeader(**{field: value}).pack()


def test_header_error_is_a_protocol_error():
    assert issubclass(HeaderError, ProtocolError)


@given(
    schema=st.integers(0, 2**16 - 1),
    kind=st.integers(0, 255),
    seq=st.integers(0, 2**64 - 1),
    episode=st.integers(0, 2**32 - 1),
    stamp=st.integers(-(2**63), 2**63 - 1),
    epoch=st.integers(0, 2**32 - 1),
)
def test_any_in_range_header_round_trips(schema, kind, seq, episode, stamp, epoch):
    h = MsgHeader(schema, kind, seq, episode, stamp, epoch)
    assert MsgHeader.unpack(h.pack()) == h
    assert MsgHeader.unpack(memoryview(bytearray(h.pack()))) == h
