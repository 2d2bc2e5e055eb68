"""Shared fixtures for the MCU link tests: the link vectors and `FakeMcu`, a scripted servo MCU on a pty.

The fake answers HELLO/CONFIG/TORQUE/... and streams STATE; tests make it unplug, reboot, reject or corrupt
frames. The real firmware is exercised by the HIL scenarios in hil/tests; the fake makes edge cases deterministic.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import struct
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest
from spinal_edge.mcu.framing import FrameDecoder, encode_frame
from spinal_edge.mcu.messages import MsgType, StateFlag

VECTORS = Path(__file__).resolve().parents[3] / "firmware" / "tests" / "vectors" / "link_vectors.json"


@pytest.fixture(scope="session")
def vectors() -> dict:
    return json.loads(VECTORS.read_text())


@pytest.fixture
def fake_mcu(tmp_path: Path) -> Iterator[FakeMcu]:
    mcu = FakeMcu(tmp_path / "ttyACM0").start()
    try:
        yield mcu
    finally:
        mcu.stop()


# CONFIG payload: <HHBB> (joint count last), then 7 bytes per joint starting with its servo id.
_CONFIG_JOINTS_AT = 5
_CONFIG_JOINT_BYTES = 7


class FakeMcu:
    def __init__(
        self, path: Path, *, joints: int = 6, protocol_version: int = 1, boot_id: int = 0x1111
    ) -> None:
        self.path = str(path)
        self.joints = joints
        self.protocol_version = protocol_version
        self.boot_id = boot_id
        self.lock = threading.Lock()
        self.received: list[tuple[int, int, bytes]] = []
        self.configured = False
        self.torque = False
        self.hold = False
        self.estop = False
        self.positions = [2048] * joints
        self.found: list[int] = list(range(1, joints + 1))
        """The ids HELLO_REPLY lists; an accepted CONFIG adds its own (the firmware pings them then)."""
        self.reject: dict[int, tuple[int, bytes]] = {}
        """msg type -> (error code, message) to answer with ERROR instead of ACK."""
        self.corrupt_next = 0
        self.skip_seq_next = 0
        self.state_period_s = 0.01
        self._seq = 0
        self._decoder = FrameDecoder()
        self._master: int | None = None
        self._slave: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.plug()

    # ---- control ----------------------------------------------------------------------------------------------

    def start(self) -> FakeMcu:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.unplug()

    def plug(self) -> None:
        with self.lock:
            master, slave = os.openpty()
            tty.setraw(slave)
            os.set_blocking(master, False)
            tmp = self.path + ".new"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(os.ttyname(slave), tmp)
            os.replace(tmp, self.path)
            self._master, self._slave = master, slave
            self._decoder = FrameDecoder()

    def unplug(self) -> None:
        with self.lock:
            if self._master is None:
                return
            if os.path.lexists(self.path):
                os.unlink(self.path)
            for fd in (self._master, self._slave):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._master = self._slave = None

    def reboot(self, boot_id: int) -> None:
        with self.lock:
            self.boot_id = boot_id
            self.configured = self.torque = self.hold = False
            self._seq = 0

    def types_received(self) -> list[int]:
        with self.lock:
            return [t for t, _, _ in self.received]

    def payloads(self, msg_type: int) -> list[bytes]:
        with self.lock:
            return [p for t, _, p in self.received if t == msg_type]

    # ---- the wire ---------------------------------------------------------------------------------------------

    def _send(self, msg_type: int, payload: bytes) -> None:
        if self.skip_seq_next:
            self.skip_seq_next -= 1
            self._seq += 1
        wire = bytearray(encode_frame(msg_type, self._seq, payload))
        self._seq = (self._seq + 1) & 0xFFFF
        if self.corrupt_next:
            self.corrupt_next -= 1
            wire[3] ^= 0x10
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.write(self._master, bytes(wire))

    def _flags(self) -> int:
        f = StateFlag.NONE
        if self.configured:
            f |= StateFlag.CONFIGURED
        if self.torque:
            f |= StateFlag.TORQUE
        if self.hold:
            f |= StateFlag.HOLD
        if self.estop:
            f |= StateFlag.ESTOP
        return int(f)

    def _state(self) -> bytes:
        n = self.joints if self.configured else 0
        head = struct.pack(
            "<HIHHHHHHHHHHHHHHB",
            self.boot_id,
            1,
            self._flags(),
            0,
            5000,
            5100,
            800,
            900,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            n,
        )
        return head + b"".join(struct.pack("<HhhBBB", p, 0, 0, 74, 30, 0) for p in self.positions[:n])

    def _serve(self) -> None:
        next_state = time.monotonic()
        while not self._stop.is_set():
            with self.lock:
                master = self._master
            if master is None:
                time.sleep(0.01)
                continue
            try:
                ready, _, _ = select.select([master], [], [], 0.005)
                data = os.read(master, 4096) if ready else b""
            except OSError:
                data = b""
            with self.lock:
                for frame in self._decoder.feed(data):
                    self.received.append((frame.msg_type, frame.seq, frame.payload))
                    self._answer(frame.msg_type, frame.seq, frame.payload)
                if time.monotonic() >= next_state:
                    next_state = time.monotonic() + self.state_period_s
                    self._send(MsgType.STATE, self._state())

    def _answer(self, msg_type: int, seq: int, payload: bytes) -> None:
        if msg_type == MsgType.HELLO:
            hello = struct.pack("<BBBBHHBB", self.protocol_version, 0, 1, 0, self.boot_id, 200, 8, 1)
            self._send(MsgType.HELLO_REPLY, hello + bytes([len(self.found), *self.found]) + b"\x04fake")
            return
        if msg_type in (MsgType.TARGETS, MsgType.HEARTBEAT):
            if msg_type == MsgType.TARGETS and self.torque and not self.hold:
                self.positions = list(struct.unpack(f"<{payload[0]}H", payload[1:]))
            return
        if msg_type in self.reject:
            code, message = self.reject[msg_type]
            self._send(MsgType.ERROR, struct.pack("<HBB", seq, msg_type, code) + message)
            return
        if msg_type == MsgType.CONFIG:
            self.configured = True
            ids = payload[_CONFIG_JOINTS_AT + 1 :: _CONFIG_JOINT_BYTES][: payload[_CONFIG_JOINTS_AT]]
            self.found = sorted(set(self.found) | set(ids))
        elif msg_type == MsgType.TORQUE:
            self.torque = bool(payload[0])
        elif msg_type == MsgType.ESTOP:
            self.estop, self.torque = True, False
        elif msg_type == MsgType.ESTOP_CLEAR:
            self.estop = False
        elif msg_type == MsgType.HOLD_ACK:
            self.hold = False
        self._send(MsgType.ACK, struct.pack("<HB", seq, msg_type))
