"""CRC-16, COBS and the link codec of the firmware against the shared vectors (tests/vectors/link_vectors.json)."""

from fakes import MemoryPort, unhex, vectors
from spinalfw import framing
from spinalfw.link import LinkPort


def test_crc16_matches_vectors():
    for case in vectors()["crc16"]["cases"]:
        data = bytearray(unhex(case["data_hex"]))
        assert framing.crc16(data, 0, len(data)) == case["crc"], case


def test_cobs_encode_matches_vectors():
    for case in vectors()["cobs"]:
        data = bytearray(unhex(case["decoded_hex"]))
        out = bytearray(len(data) + 2)
        n = framing.cobs_encode(data, len(data), out)
        assert bytes(out[:n]) == unhex(case["encoded_hex"]), case


def test_cobs_decode_matches_vectors():
    for case in vectors()["cobs"]:
        enc = bytearray(unhex(case["encoded_hex"]))
        out = bytearray(len(enc))
        n = framing.cobs_decode(enc, len(enc), out)
        assert bytes(out[:n]) == unhex(case["decoded_hex"]), case


def test_cobs_decode_rejects_code_past_end_and_embedded_zero():
    out = bytearray(8)
    assert framing.cobs_decode(bytearray(b"\x05\x11"), 2, out) == -1
    assert framing.cobs_decode(bytearray(b"\x03\x11\x00"), 3, out) == -1


def _port_with(wire):
    port = MemoryPort()
    port.feed(wire)
    return LinkPort(port)


def test_every_vector_frame_decodes_to_its_type_seq_and_payload():
    for v in vectors()["frames"]:
        link = _port_with(unhex(v["wire_hex"]))
        assert link.poll(), v["name"]
        assert link.frame_type() == v["type"], v["name"]
        assert link.frame_seq() == v["seq"], v["name"]
        payload = bytes(link.frame[3 : 3 + link.payload_len()])
        assert payload == unhex(v["payload_hex"]), v["name"]
        assert not link.poll()


def test_every_vector_frame_encodes_to_its_wire_bytes():
    for v in vectors()["frames"]:
        port = MemoryPort()
        link = LinkPort(port)
        payload = unhex(v["payload_hex"])
        link.out[3 : 3 + len(payload)] = payload
        link.tx_seq = v["seq"]
        link.send(v["type"], len(payload))
        assert port.take() == unhex(v["wire_hex"]), v["name"]


def test_invalid_wire_vectors_are_counted_and_never_delivered():
    for v in vectors()["invalid_wire"]:
        link = _port_with(unhex(v["wire_hex"]))
        assert not link.poll(), v["name"]
        expected = {"crc": (1, 0), "bad": (0, 1), "none": (0, 0)}[v["reason"]]
        assert (link.rx_crc_errors, link.rx_bad_frames) == expected, v["name"]


def test_frame_split_across_reads_and_after_garbage_is_recovered():
    wire = unhex(vectors()["frames"][0]["wire_hex"])
    port = MemoryPort()
    link = LinkPort(port)
    port.feed(b"\x13\x37garbage\x00")  # noise, then a delimiter: one bad frame
    assert not link.poll()
    for i in range(len(wire)):
        port.feed(wire[i : i + 1])
        ready = link.poll()
        assert ready == (i == len(wire) - 1)
    assert link.frame_type() == 1
    assert link.rx_frames == 1


def test_overlong_frame_is_dropped_and_the_next_one_received():
    port = MemoryPort()
    link = LinkPort(port)
    port.feed(b"\x01" * 600 + b"\x00")
    assert not link.poll()
    assert link.rx_bad_frames == 1
    port.feed(unhex(vectors()["frames"][0]["wire_hex"]))
    assert link.poll()


def test_send_is_dropped_and_counted_when_the_link_cannot_take_it():
    port = MemoryPort()
    port.writable_now = False
    link = LinkPort(port)
    assert not link.send(0x84, 0)
    assert link.tx_dropped == 1
    assert port.take() == b""
