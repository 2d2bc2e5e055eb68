"""One simulated Feetech STS3215: its register file, first-order position dynamics and injectable faults.

Owned by spinal_hil.bus_simulator.ServoBusSimulator, which serializes access to it under the bus lock.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from spinal_hil import sts3215 as reg

MAX_SPEED_TICKS_S = 3000.0
"""No-load speed of an STS3215 at 7.4 V (about 0.22 s per 60 degrees), in encoder ticks per second."""

TIME_CONSTANT_S = 0.03
"""First-order lag of the servo's position loop once it is within reach of the goal."""


@dataclass
class ServoFaults:
    """Faults a test may inject into one servo."""

    silent: bool = False
    """The servo answers nothing (unpowered, broken wire, wrong id)."""
    silent_for_packets: int = 0
    """The next N instructions addressed to this servo go unheard and unanswered, then it behaves again (a
    servo still powering up, or answering too late for the MCU's boot scan). Broadcasts do not count."""
    corrupt_rate: float = 0.0
    """Probability that an answer carries a wrong checksum."""
    error_bits: int = 0
    """Bits forced into every status packet and the STATUS register (e.g. ERR_OVERLOAD)."""
    position_noise: float = 0.0
    """Standard deviation of the reported position, in ticks."""
    stuck: bool = False
    """The shaft does not move whatever the goal (a jammed joint)."""


class SimulatedServo:
    """A servo shaft and its registers. `position` is the true shaft position in the servo's reported frame."""

    def __init__(self, servo_id: int, position: float, now: float, rng: random.Random) -> None:
        self.regs = bytearray(256)
        for addr, size, value in reg.DEFAULTS:
            self._put(addr, size, value)
        self.regs[reg.ID] = servo_id
        self._pos = float(position)  # physical shaft, before the homing offset
        self._vel = 0.0
        self._t = now
        self._rng = rng
        self.faults = ServoFaults()
        self.hand: Callable[[float], float] | None = None
        """Moves the shaft (in reported ticks, as a function of time) while torque is off: a hand on a leader arm."""
        self.goal_history: deque[tuple[float, int]] = deque(maxlen=20_000)
        """Every goal position written while torque was on, with the time it was written."""
        self._pending: tuple[int, bytes] | None = None

    # ---- registers ------------------------------------------------------------------------------------------

    def _put(self, addr: int, size: int, value: int) -> None:
        self.regs[addr : addr + size] = int(value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")

    def _get(self, addr: int, size: int) -> int:
        return int.from_bytes(self.regs[addr : addr + size], "little")

    @property
    def id(self) -> int:
        return self.regs[reg.ID]

    @property
    def torque_enabled(self) -> bool:
        return self.regs[reg.TORQUE_ENABLE] == 1

    @property
    def goal_position(self) -> int:
        return self._get(reg.GOAL_POSITION, 2)

    @property
    def homing_offset(self) -> int:
        return reg.from_sign_magnitude(self._get(reg.HOMING_OFFSET, 2), 11)

    @property
    def return_delay_s(self) -> float:
        return self.regs[reg.RETURN_DELAY] * 2e-6

    @property
    def answers_writes(self) -> bool:
        return self.regs[reg.RESPONSE_LEVEL] == 1

    @property
    def baud_index(self) -> int:
        return self.regs[reg.BAUD_RATE]

    # ---- state ----------------------------------------------------------------------------------------------

    @property
    def position(self) -> float:
        """True shaft position in the servo's reported frame (after the homing offset)."""
        return self._pos - self.homing_offset

    @property
    def velocity(self) -> float:
        return self._vel

    def set_position(self, ticks: float) -> None:
        """Put the shaft somewhere by hand (reported frame)."""
        self._pos = float(ticks) + self.homing_offset
        self._vel = 0.0

    def advance(self, now: float) -> None:
        """Integrate the shaft up to `now` (seconds, same clock as the bus)."""
        dt = now - self._t
        if dt <= 0:
            return
        self._t = now
        if self.torque_enabled and not self.faults.stuck:
            self._track_goal(min(dt, 1.0))
        elif not self.torque_enabled and self.hand is not None:
            new = float(self.hand(now)) + self.homing_offset
            self._vel = (new - self._pos) / dt
            self._pos = new
        else:
            self._vel = 0.0
        self._pos = min(max(self._pos, 0.0), reg.RESOLUTION - 1.0)

    def _goal_physical(self) -> float:
        goal = self.goal_position
        lo, hi = self._get(reg.MIN_ANGLE_LIMIT, 2), self._get(reg.MAX_ANGLE_LIMIT, 2)
        if lo < hi:  # both zero means no limits (wheel/multi-turn modes)
            goal = min(max(goal, lo), hi)
        return goal + self.homing_offset

    def _track_goal(self, dt: float) -> None:
        # Exact solution of a first-order lag with a speed limit: constant speed until within vmax*tau of the
        # goal, exponential approach after.
        speed = self._get(reg.GOAL_SPEED, 2)
        vmax = min(float(speed), MAX_SPEED_TICKS_S) if speed else MAX_SPEED_TICKS_S
        tau = TIME_CONSTANT_S
        error = self._goal_physical() - self._pos
        sign = 1.0 if error >= 0 else -1.0
        reach = vmax * tau
        if abs(error) > reach:
            t_linear = (abs(error) - reach) / vmax
            if dt <= t_linear:
                self._pos += sign * vmax * dt
                self._vel = sign * vmax
                return
            dt -= t_linear
            error = sign * reach
        remaining = error * math.exp(-dt / tau)
        self._pos = self._goal_physical() - remaining
        self._vel = remaining / tau

    # ---- protocol -------------------------------------------------------------------------------------------

    def _refresh_present(self) -> None:
        pos = self.position
        if self.faults.position_noise:
            pos += self._rng.gauss(0.0, self.faults.position_noise)
        self._put(reg.PRESENT_POSITION, 2, int(min(max(round(pos), 0), reg.RESOLUTION - 1)))
        self._put(reg.PRESENT_SPEED, 2, reg.to_sign_magnitude(round(self._vel), 15))
        load = 0
        if self.torque_enabled:
            load = max(-1000, min(1000, round((self._goal_physical() - self._pos) * 2)))
        self._put(reg.PRESENT_LOAD, 2, reg.to_sign_magnitude(load, 10))
        self.regs[reg.PRESENT_VOLTAGE] = 74
        self.regs[reg.PRESENT_TEMPERATURE] = 31 + min(20, abs(load) // 50)
        self.regs[reg.STATUS] = self.faults.error_bits
        self.regs[reg.MOVING] = 1 if abs(self._vel) > 5 else 0
        self._put(reg.PRESENT_CURRENT, 2, abs(load) // 4)

    def read(self, addr: int, size: int, now: float) -> bytes:
        self.advance(now)
        self._refresh_present()
        return bytes(self.regs[addr : addr + size])

    def write(self, addr: int, data: bytes, now: float) -> None:
        self.advance(now)
        for i, value in enumerate(data):
            a = addr + i
            if a in reg.READ_ONLY or a > 0xFF:
                continue
            if a == reg.TORQUE_ENABLE and value == 128:
                self._center_here()
                continue
            self.regs[a] = value
        if addr <= reg.GOAL_POSITION < addr + len(data) and self.torque_enabled:
            self.goal_history.append((now, self.goal_position))

    def reg_write(self, addr: int, data: bytes) -> None:
        self._pending = (addr, bytes(data))

    def action(self, now: float) -> None:
        if self._pending is not None:
            addr, data = self._pending
            self._pending = None
            self.write(addr, data, now)

    def _center_here(self) -> None:
        # Torque-enable 128: the present position becomes 2048 by adjusting the homing offset.
        offset = round(self._pos) - reg.RESOLUTION // 2
        self._put(reg.HOMING_OFFSET, 2, reg.to_sign_magnitude(offset, 11))

    def status_error(self) -> int:
        return self.faults.error_bits
