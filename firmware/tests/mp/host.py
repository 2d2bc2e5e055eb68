"""Host-side frame building for firmware tests: what the Pi would send (COBS + CRC via the firmware's codec).

Independent of spinal_edge on purpose; the shared vectors tie the two implementations together.
"""

from spinalfw.framing import cobs_encode, crc16


def frame(msg_type, seq, payload=b""):
    raw = bytearray(3 + len(payload) + 2)
    raw[0] = msg_type
    raw[1] = seq & 0xFF
    raw[2] = (seq >> 8) & 0xFF
    raw[3 : 3 + len(payload)] = payload
    c = crc16(raw, 0, 3 + len(payload))
    raw[3 + len(payload)] = c & 0xFF
    raw[4 + len(payload)] = c >> 8
    enc = bytearray(len(raw) + 2)
    n = cobs_encode(raw, len(raw), enc)
    return bytes(enc[:n]) + b"\x00"


def u16(value):
    return bytes((value & 0xFF, (value >> 8) & 0xFF))


def config_payload(joints, timeout_ms=200, rate=0, state_every=1, leader_bus=0, leader_ids=()):
    out = bytearray(u16(timeout_ms) + u16(rate) + bytes((state_every, len(joints))))
    for sid, lo, hi, step in joints:
        out += bytes((sid,)) + u16(lo) + u16(hi) + u16(step)
    out += bytes((leader_bus if leader_ids else 0, len(leader_ids))) + bytes(leader_ids)
    return bytes(out)


def targets_payload(positions):
    out = bytearray((len(positions),))
    for p in positions:
        out += u16(p)
    return bytes(out)


def decode_frames(data):
    """Split captured bytes into (type, seq, payload) tuples; asserts every frame is valid."""
    from spinalfw.framing import cobs_decode

    out = []
    start = 0
    for i in range(len(data)):
        if data[i] == 0:
            block = bytearray(data[start:i])
            start = i + 1
            if not block:
                continue
            dec = bytearray(len(block))
            n = cobs_decode(block, len(block), dec)
            assert n >= 5, "short frame"
            assert crc16(dec, 0, n - 2) == dec[n - 2] | (dec[n - 1] << 8), "bad crc in firmware output"
            out.append((dec[0], dec[1] | (dec[2] << 8), bytes(dec[3 : n - 2])))
    return out
