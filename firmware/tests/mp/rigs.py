"""Builds a Firmware over FakeHal and drives it tick by tick with a fake clock, for the MicroPython tests."""

import host
from fakes import FakeClock, FakeHal
from spinalfw import proto
from spinalfw.app import Firmware

SIX = ((1, 1000, 3000, 20), (2, 1000, 3000, 20), (3, 1000, 3000, 20), (4, 1000, 3000, 20), (5, 1000, 3000, 20), (6, 1000, 3000, 20))


class Bench:
    """A booted firmware plus helpers to send frames, tick, and read back what it sent."""

    def __init__(self, leader=False, leader_ids=(1, 2, 3, 4, 5, 6), ids=(1, 2, 3, 4, 5, 6)):
        self.hal = FakeHal(ids=ids, leader_ids=leader_ids if leader else None)
        self.clock = FakeClock()
        self.fw = Firmware(self.hal, rate_hz=200, scan_first=1, scan_last=8)
        self.fw.ticks_ms = self.clock
        self.fw.boot()
        self.seq = 100
        self.hal.link.take()

    def send(self, msg_type, payload=b""):
        self.seq += 1
        self.hal.link.feed(host.frame(msg_type, self.seq, payload))
        return self.seq

    def tick(self, n=1, ms=5):
        for _ in range(n):
            self.clock.now += ms
            self.fw.tick()

    def frames(self):
        return host.decode_frames(self.hal.link.take())

    def replies(self, msg_type):
        return [f for f in self.frames() if f[0] == msg_type]

    def configure(self, joints=SIX, **kw):
        seq = self.send(proto.MSG_CONFIG, host.config_payload(joints, **kw))
        self.tick()
        acks = [f for f in self.frames() if f[0] == proto.MSG_ACK and f[2][:2] == host.u16(seq)]
        assert acks, "CONFIG not acknowledged"

    def torque_on(self):
        seq = self.send(proto.MSG_TORQUE, b"\x01")
        self.tick()
        assert any(f[0] == proto.MSG_ACK and f[2][:2] == host.u16(seq) for f in self.frames()), "TORQUE not acked"

    def targets(self, positions):
        return self.send(proto.MSG_TARGETS, host.targets_payload(positions))

    def servo(self, sid):
        return self.hal.bus.servos[sid]

    def last_state(self):
        states = [f for f in self.frames() if f[0] == proto.MSG_STATE]
        assert states, "no STATE sent"
        return parse_state(states[-1][2])


def parse_state(p):
    def u16(o):
        return p[o] | (p[o + 1] << 8)

    def s16(o):
        v = u16(o)
        return v - 0x10000 if v & 0x8000 else v

    n = p[34]
    joints = []
    for i in range(n):
        o = 35 + 9 * i
        joints.append({"pos": u16(o), "vel": s16(o + 2), "load": s16(o + 4), "status": p[o + 8]})
    return {
        "boot_id": u16(0),
        "flags": u16(6),
        "last_target_seq": u16(8),
        "rx_crc_errors": u16(22),
        "bus_errors": u16(28),
        "alloc_ticks": u16(30),
        "hold_after_ms": u16(32),
        "joints": joints,
    }


def error_code(frame):
    return frame[2][3]
