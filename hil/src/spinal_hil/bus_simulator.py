"""A Feetech STS servo bus simulated on a pseudo-terminal, so any program can open it like a serial port.

Used by spinal_hil.rig (the firmware under test opens the pty as its servo bus) and by `spinal-hil bus`.
"""

from __future__ import annotations

import os
import random
import select
import threading
import time
from collections.abc import Iterable, Mapping

from spinal_hil import sts3215 as reg
from spinal_hil.ptys import close_fds, open_raw_pty
from spinal_hil.servo_model import SimulatedServo


class ServoBusSimulator:
    """Servos on one half-duplex bus behind a pty; a thread answers instruction packets as the servos would.

    `path` is the tty to open (115200..1M baud settings are accepted and ignored, as on any pty). Access the
    servos through `servo(id)`; every access from another thread is serialized by `lock`.
    """

    def __init__(
        self,
        ids: Iterable[int] = (1, 2, 3, 4, 5, 6),
        *,
        positions: Mapping[int, float] | float = 2048,
        seed: int = 0,
        emulate_wire_time: bool = False,
        baudrate: int = 1_000_000,
        name: str = "bus",
    ) -> None:
        self.name = name
        self.lock = threading.RLock()
        self._rng = random.Random(seed)
        self._clock = time.monotonic
        now = self._clock()
        self.servos: list[SimulatedServo] = []
        for sid in ids:
            pos = positions[sid] if isinstance(positions, Mapping) else positions
            self.servos.append(SimulatedServo(sid, pos, now, self._rng))
        self.emulate_wire_time = emulate_wire_time
        self.baudrate = baudrate
        self.response_bit_flip_rate = 0.0
        """Probability per bit that an answer byte is flipped on the wire (electrical noise)."""
        self.packets = 0
        self.bad_packets = 0
        self.answers = 0
        self._master, self._slave, self.path = open_raw_pty()
        self._rx = bytearray()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> ServoBusSimulator:
        self._thread = threading.Thread(target=self._serve, name=f"sts-bus-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        close_fds(self._master, self._slave)

    def __enter__(self) -> ServoBusSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- access for tests -----------------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock()

    def servo(self, servo_id: int) -> SimulatedServo:
        with self.lock:
            for s in self.servos:
                if s.id == servo_id:
                    return s
        raise KeyError(f"no simulated servo with id {servo_id} on bus {self.name!r}")

    def positions(self) -> dict[int, float]:
        """True shaft positions (reported frame), integrated up to now."""
        with self.lock:
            now = self._clock()
            for s in self.servos:
                s.advance(now)
            return {s.id: s.position for s in self.servos}

    def torques(self) -> dict[int, bool]:
        with self.lock:
            return {s.id: s.torque_enabled for s in self.servos}

    # ---- the wire -------------------------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.1)
                if not ready:
                    continue
                data = os.read(self._master, 4096)
            except OSError:
                return  # closed under us by stop()
            if data:
                self._rx += data
                self._parse()

    def _parse(self) -> None:
        rx = self._rx
        while True:
            start = rx.find(b"\xff\xff")
            if start < 0:
                del rx[: max(0, len(rx) - 1)]
                return
            if start:
                del rx[:start]
            if len(rx) < 4:
                return
            length = rx[3]
            total = 4 + length
            if length < 2:
                self.bad_packets += 1
                del rx[:2]
                continue
            if len(rx) < total:
                return
            pkt = bytes(rx[:total])
            if reg.checksum(pkt[2:-1]) != pkt[-1]:
                self.bad_packets += 1
                del rx[:2]
                continue
            del rx[:total]
            self.packets += 1
            answer = self._handle(pkt[2], pkt[4], pkt[5:-1])
            if answer:
                self._answer(answer)

    def _answer(self, answer: bytes) -> None:
        delay = 0.0
        with self.lock:
            first = self.servos[0] if self.servos else None
            if first is not None:
                delay = first.return_delay_s
        if self.emulate_wire_time:
            delay += len(answer) * 10 / self.baudrate
        if delay >= 50e-6:
            time.sleep(delay)
        if self.response_bit_flip_rate:
            answer = self._flip_bits(answer)
        try:
            os.write(self._master, answer)
            self.answers += 1
        except OSError:
            pass

    def _flip_bits(self, data: bytes) -> bytes:
        out = bytearray(data)
        for i in range(len(out)):
            for bit in range(8):
                if self._rng.random() < self.response_bit_flip_rate:
                    out[i] ^= 1 << bit
        return bytes(out)

    def _listening(self, servo_id: int) -> list[SimulatedServo]:
        heard = []
        for s in self.servos:
            if servo_id != reg.BROADCAST_ID and s.id != servo_id:
                continue
            if s.faults.silent or s.baud_index != 0:
                continue
            if servo_id != reg.BROADCAST_ID and s.faults.silent_for_packets > 0:
                s.faults.silent_for_packets -= 1
                continue
            heard.append(s)
        return heard

    def _status(self, servo: SimulatedServo, data: bytes = b"", answer_id: int | None = None) -> bytes:
        pkt = bytearray(reg.packet(servo.id if answer_id is None else answer_id, servo.status_error(), data))
        if servo.faults.corrupt_rate and self._rng.random() < servo.faults.corrupt_rate:
            pkt[-1] ^= 0x5A
        return bytes(pkt)

    def _handle(self, servo_id: int, inst: int, params: bytes) -> bytes:
        now = self._clock()
        with self.lock:
            if inst == reg.SYNC_WRITE:
                return self._sync_write(params, now)
            if inst == reg.SYNC_READ:
                return self._sync_read(params, now)
            targets = self._listening(servo_id)
            answer = bytearray()
            for s in targets:
                reply: bytes | None = None
                if inst == reg.PING:
                    reply = self._status(s)
                elif inst == reg.READ and len(params) == 2:
                    reply = self._status(s, s.read(params[0], params[1], now))
                elif inst == reg.WRITE and params:
                    addressed = s.id  # an ID change is acknowledged from the id the host addressed
                    s.write(params[0], params[1:], now)
                    reply = self._status(s, answer_id=addressed) if s.answers_writes else None
                elif inst == reg.REG_WRITE and params:
                    s.reg_write(params[0], params[1:])
                    reply = self._status(s) if s.answers_writes else None
                elif inst == reg.ACTION:
                    s.action(now)
                if reply is not None and servo_id != reg.BROADCAST_ID:
                    answer += reply
            return bytes(answer)

    def _sync_write(self, params: bytes, now: float) -> bytes:
        if len(params) < 2:
            self.bad_packets += 1
            return b""
        addr, width = params[0], params[1]
        body = params[2:]
        if width == 0 or len(body) % (width + 1):
            self.bad_packets += 1
            return b""
        for o in range(0, len(body), width + 1):
            for s in self._listening(body[o]):
                s.write(addr, body[o + 1 : o + 1 + width], now)
        return b""

    def _sync_read(self, params: bytes, now: float) -> bytes:
        if len(params) < 2:
            self.bad_packets += 1
            return b""
        addr, width = params[0], params[1]
        answer = bytearray()
        for sid in params[2:]:
            for s in self._listening(sid):
                answer += self._status(s, s.read(addr, width, now))
        return bytes(answer)
