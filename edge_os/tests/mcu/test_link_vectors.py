"""spinal_edge.mcu's framing and messages against the vectors the firmware is tested with."""

from __future__ import annotations

import pytest
from spinal_edge.mcu import framing
from spinal_edge.mcu import messages as m


def _frames(vectors: dict, direction: str) -> list[dict]:
    return [v for v in vectors["frames"] if v["direction"] == direction]


def test_crc16_matches_vectors(vectors: dict) -> None:
    for case in vectors["crc16"]["cases"]:
        assert framing.crc16(bytes.fromhex(case["data_hex"])) == case["crc"]


def test_cobs_matches_vectors_both_ways(vectors: dict) -> None:
    for case in vectors["cobs"]:
        decoded, encoded = bytes.fromhex(case["decoded_hex"]), bytes.fromhex(case["encoded_hex"])
        assert framing.cobs_encode(decoded) == encoded
        assert framing.cobs_decode(encoded) == decoded


def test_every_vector_frame_encodes_and_decodes(vectors: dict) -> None:
    for v in vectors["frames"]:
        payload, wire = bytes.fromhex(v["payload_hex"]), bytes.fromhex(v["wire_hex"])
        assert framing.encode_frame(v["type"], v["seq"], payload) == wire, v["name"]
        assert framing.FrameDecoder().feed(wire) == [framing.Frame(v["type"], v["seq"], payload)], v["name"]


def test_invalid_wire_vectors_are_counted_never_returned(vectors: dict) -> None:
    for v in vectors["invalid_wire"]:
        decoder = framing.FrameDecoder()
        assert decoder.feed(bytes.fromhex(v["wire_hex"])) == []
        expected = {"crc": (1, 0), "bad": (0, 1), "none": (0, 0)}[v["reason"]]
        assert (decoder.crc_errors, decoder.bad_frames) == expected, v["name"]


def _by_name(vectors: dict, name: str) -> dict:
    return next(v for v in vectors["frames"] if v["name"] == name)


def test_host_messages_encode_to_vector_payloads(vectors: dict) -> None:
    for name in ("hello", "hello_rescan"):
        v = _by_name(vectors, name)
        assert m.encode_hello(v["fields"]["rescan"]).hex() == v["payload_hex"]
    for name in ("config_follower_and_leader", "config_one_joint_no_leader"):
        v = _by_name(vectors, name)
        f = v["fields"]
        config = m.LinkConfig(
            joints=tuple(m.JointLimits(j["id"], j["min"], j["max"], j["max_step"]) for j in f["joints"]),
            leader_ids=tuple(f["leader_ids"]),
            leader_bus=f["leader_bus"] if f["leader_ids"] else 1,
            link_timeout_ms=f["link_timeout_ms"],
            rate_hz=f["rate_hz"],
            state_every=f["state_every"],
        )
        assert m.encode_config(config).hex() == v["payload_hex"], name
    v = _by_name(vectors, "targets_six")
    assert m.encode_targets(v["fields"]["positions"]).hex() == v["payload_hex"]
    for name in ("torque_on", "torque_off"):
        v = _by_name(vectors, name)
        assert m.encode_torque(v["fields"]["enabled"]).hex() == v["payload_hex"]


def test_mcu_messages_decode_to_vector_fields(vectors: dict) -> None:
    hs = m.decode_handshake(bytes.fromhex(_by_name(vectors, "hello_reply")["payload_hex"]))
    f = _by_name(vectors, "hello_reply")["fields"]
    assert (hs.protocol_version, list(hs.firmware_version), hs.boot_id) == (
        1,
        f["firmware_version"],
        f["boot_id"],
    )
    assert [list(b) for b in hs.buses] == f["buses"] and hs.board == f["board"] and hs.rate_hz == f["rate_hz"]

    for name in ("state_three_joints", "state_unconfigured"):
        v = _by_name(vectors, name)
        f = v["fields"]
        state = m.decode_state(bytes.fromhex(v["payload_hex"]), v["seq"])
        for key in ("boot_id", "uptime_ms", "last_target_seq", "period_mean_us", "period_max_us", "work_mean_us",
                    "work_max_us", "overruns", "rx_frames", "rx_crc_errors", "rx_bad_frames", "tx_dropped",
                    "bus_errors", "alloc_ticks", "hold_after_ms"):  # fmt: skip
            assert getattr(state, key) == f[key], (name, key)
        assert int(state.flags) == f["flags"]
        got = [
            (j.position, j.velocity, j.load, round(j.voltage * 10), j.temperature, int(j.status))
            for j in state.joints
        ]
        want = [
            (j["position"], j["velocity"], j["load"], j["voltage_dv"], j["temperature"], j["status"])
            for j in f["joints"]
        ]
        assert got == want, name

    v = _by_name(vectors, "leader_two_joints")
    leader = m.decode_leader(bytes.fromhex(v["payload_hex"]))
    assert list(leader.positions) == v["fields"]["positions"]
    assert [int(s) for s in leader.status] == v["fields"]["status"]
    assert leader.uptime_ms == v["fields"]["uptime_ms"]

    v = _by_name(vectors, "ack_config")
    assert m.decode_ack(bytes.fromhex(v["payload_hex"])) == m.Ack(**v["fields"])
    v = _by_name(vectors, "error_estop_latched")
    err = m.decode_error(bytes.fromhex(v["payload_hex"]))
    assert (err.ref_seq, err.ref_type, err.code, err.message) == tuple(v["fields"].values())
    assert err.code_name == "ESTOP_LATCHED"
    v = _by_name(vectors, "log_hold")
    assert m.decode_log(bytes.fromhex(v["payload_hex"])) == m.LogLine(**v["fields"])


def test_flags_and_joint_status_names_match_the_protocol() -> None:
    assert m.StateFlag.HOLD == 0x0002 and m.StateFlag.TARGETS_IGNORED == 0x0400
    assert m.JointStatus.NO_RESPONSE == 0x80 and m.JointStatus.OVERLOAD == 0x20


@pytest.mark.parametrize(
    ("decode", "payload", "words"),
    [
        (m.decode_state, b"\x00" * 10, "STATE payload of 10 bytes"),
        (m.decode_state, b"\x00" * 34 + b"\x02" + b"\x00" * 9, "does not match its 2 joints"),
        (m.decode_leader, b"\x00\x00\x00\x00\x03\x00", "does not match its 3 joints"),
        (m.decode_ack, b"\x01", "ACK payload of 1 bytes"),
        (m.decode_handshake, b"\x01\x00\x01\x00\x00\x00\xc8\x00\x08\x01\x09", "shorter than"),
    ],
)
def test_malformed_mcu_payloads_raise_protocol_errors(decode, payload: bytes, words: str) -> None:
    with pytest.raises(m.McuProtocolError, match=words):
        decode(payload)
