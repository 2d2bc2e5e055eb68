"""Recovery from a boot scan that missed a servo: rescan the MCU's buses, with backoff, until CONFIG is accepted.

Used by spinal_edge.mcu.driver when the MCU rejects CONFIG with SERVO_MISSING while torque is off.
"""

from __future__ import annotations

import logging

from spinal_edge.mcu.errors import McuCommandRejected
from spinal_edge.mcu.messages import ErrorCode

log = logging.getLogger("spinal_edge.mcu.driver")


class MissingServoRecovery:
    """Decides when the next HELLO asks for a rescan, how long to wait before it, and logs a streak once.

    The MCU scans its buses once at boot; a servo that answered late then (a starved simulator, a servo still
    powering up, a loose plug pushed back in) stays unknown and every CONFIG naming it is refused. The MCU
    only rescans on request, and only with torque off, so the host asks: HELLO with the rescan flag, then
    CONFIG again, waiting `initial_s`, doubling up to `max_s`, for as long as the servo is missing.
    """

    def __init__(self, initial_s: float, max_s: float) -> None:
        self.initial_s = initial_s
        self.max_s = max(initial_s, max_s)
        self.rescan_due = False
        """The next handshake asks the MCU to rescan its buses."""
        self.streak = 0
        """SERVO_MISSING rejections since CONFIG was last accepted."""
        self.repeat = False
        """The last rejection repeated the streak's previous one: neither logged nor reported again."""
        self._wait = 0.0
        self._last_message = ""

    def rejected(self, exc: McuCommandRejected, *, torque_on: bool) -> float | None:
        """A CONFIG rejection: the seconds to wait before a rescan, or None when a rescan would not help."""
        if exc.code != ErrorCode.SERVO_MISSING or torque_on:
            self.rescan_due = self.repeat = False
            return None
        self.streak += 1
        self._wait = min(self.max_s, self._wait * 2 or self.initial_s)
        self.rescan_due = True
        self.repeat = self.streak > 1 and exc.message == self._last_message
        if not self.repeat:
            log.warning(
                "MCU rejected CONFIG: %s (SERVO_MISSING); rescanning its buses every %.1f..%.1f s until the "
                "servo answers (further rejections are counted, not logged)",
                exc.message,
                self.initial_s,
                self.max_s,
            )
        else:
            log.debug("CONFIG rejected again (%d in a row): %s", self.streak, exc.message)
        self._last_message = exc.message
        return self._wait

    def accepted(self, rescans: int) -> None:
        """CONFIG went through: end the streak (and say so, if there was one)."""
        if self.streak:
            log.info(
                "MCU accepted CONFIG after %d SERVO_MISSING rejection(s); %d rescan(s) in total",
                self.streak,
                rescans,
            )
        self.streak = 0
        self._wait = 0.0
        self._last_message = ""
        self.rescan_due = self.repeat = False
