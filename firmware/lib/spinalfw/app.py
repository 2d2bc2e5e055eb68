"""The servo firmware: host link handling, the fixed-rate servo loop, the link watchdog, e-stop and leader arm.

Built by main.py over a HAL (hal_rp2 or hal_unix); everything the loop touches is allocated in `configure()`.
"""

import gc
import time
from array import array

import micropython
from micropython import const

from spinalfw import FIRMWARE_VERSION, proto
from spinalfw.link import LinkPort
from spinalfw.sts import (
    BROADCAST_ID,
    FEEDBACK_ADDR,
    FEEDBACK_LEN,
    REG_GOAL_POSITION,
    REG_PRESENT_POSITION,
    REG_TORQUE_ENABLE,
    StsBus,
    SyncRead,
    SyncWrite,
    sign_magnitude,
)

_MAXJ = const(8)
_STATS_WINDOW_S = const(1)
_ALLOC_SAMPLE = const(50)
_TORQUE_READ_ATTEMPTS = const(3)

# Messages for ERROR/LOG frames are constants so reporting a routine rejection allocates nothing.
_M_NOT_CONFIGURED = b"not configured: send CONFIG first"
_M_TARGETS_LEN = b"TARGETS length does not match the configured joint count: resend CONFIG or fix the host"
_M_HEARTBEAT_LEN = b"HEARTBEAT carries no payload"
_M_ESTOP_LATCHED = b"e-stop latched: send ESTOP_CLEAR, then TORQUE on"
_M_HOLD_ACTIVE = b"link watchdog HOLD active: send HOLD_ACK first"
_M_TORQUE_ON = b"torque is on: switch torque off first"
_M_ESTOP_INPUT = b"e-stop input still asserted: release the e-stop button first"
_M_BAD_PAYLOAD = b"payload length is wrong for this message type"
_M_UNKNOWN = b"unknown message type: update the host driver or the firmware"
_M_BUS = b"servo bus did not answer: check power and wiring"
_L_HOLD = b"link silent past link_timeout_ms: HOLD at present position"
_L_ESTOP = b"e-stop: torque off"
_L_BOOT = b"boot: torque off on all buses"


def _put16(buf, off, value):
    buf[off] = value & 0xFF
    buf[off + 1] = (value >> 8) & 0xFF


def _put32(buf, off, value):
    buf[off] = value & 0xFF
    buf[off + 1] = (value >> 8) & 0xFF
    buf[off + 2] = (value >> 16) & 0xFF
    buf[off + 3] = (value >> 24) & 0xFF


def _get16(buf, off):
    return buf[off] | (buf[off + 1] << 8)


class Firmware:
    """One MCU: a follower bus, an optional second (leader) bus, the host link, an e-stop input and a LED.

    `hal` provides `link`, `bus`, `leader_bus` (or None), `estop` (or None; `.asserted()`), `led` (`.set(on)`)
    and `sleep_us(us)`.
    """

    def __init__(self, hal, board="unix", rate_hz=200, scan_first=1, scan_last=12, bus_timeout_us=3000):
        self.hal = hal
        self.board = board
        self.ticks_ms = time.ticks_ms  # the watchdog's clock; tests substitute a fake one
        self.link = LinkPort(hal.link)
        self.buses = [StsBus(hal.bus, bus_timeout_us)]
        if hal.leader_bus is not None:
            self.buses.append(StsBus(hal.leader_bus, bus_timeout_us))
        self.scan_first = scan_first
        self.scan_last = scan_last
        self.found = [[] for _ in self.buses]
        self.boot_id = 0
        self.set_rate(rate_hz)
        # Follower joints, in the order the host configured them.
        self.n = 0
        self.ids = bytearray(_MAXJ)
        self.lo = array("i", [0] * _MAXJ)
        self.hi = array("i", [4095] * _MAXJ)
        self.step = array("i", [1] * _MAXJ)
        self.target = array("i", [0] * _MAXJ)
        self.goal = array("i", [0] * _MAXJ)
        self.pos = array("i", [0] * _MAXJ)
        self.vel = array("i", [0] * _MAXJ)
        self.load = array("i", [0] * _MAXJ)
        self.volt = bytearray(_MAXJ)
        self.temp = bytearray(_MAXJ)
        self.jstatus = bytearray(_MAXJ)
        self.goal_write = None
        self.torque_write = None
        self.feedback = None
        # Leader arm (read only, torque off).
        self.leader_n = 0
        self.leader_bus = 0
        self.leader_read = None
        self.leader_pos = array("i", [0] * _MAXJ)
        self.leader_status = bytearray(_MAXJ)
        # Safety state.
        self.configured = False
        self.config_bytes = None
        self.torque = False
        self.hold = False
        self.estop = False
        self.estop_input = False
        self.link_timeout_ms = 200
        self.last_rx_ms = self.ticks_ms()
        self.hold_after_ms = 0
        self.sticky = 0
        self.last_target_seq = 0
        self.state_every = 1
        self.tick_count = 0
        # Loop statistics: the last complete window is reported.
        self.overruns = 0
        self.win_n = 0
        self.win_period_sum = 0
        self.win_period_max = 0
        self.win_work_sum = 0
        self.win_work_max = 0
        self.period_mean = 0
        self.period_max = 0
        self.work_mean = 0
        self.work_max = 0
        self.alloc_ticks = 0
        # Allocation accounting counts ticks after which more heap is in use than before (garbage in the
        # making). mem_current is O(1) where the port keeps memory statistics (unix); elsewhere gc.mem_alloc
        # scans the heap (~ms), so only one tick in _ALLOC_SAMPLE is measured. Call frames too big for the C
        # stack come from the heap and go back on return: they are not garbage and do not count.
        self._mem_counter = getattr(micropython, "mem_current", None)
        self._alloc_every = 1 if self._mem_counter is not None else _ALLOC_SAMPLE
        if self._mem_counter is None:
            self._mem_counter = gc.mem_alloc
        self._alloc_n = 0
        self.cold = False
        self.exit_requested = False

    def set_rate(self, rate_hz):
        self.rate_hz = rate_hz
        self.period_us = 1000000 // rate_hz
        self.window_ticks = rate_hz * _STATS_WINDOW_S

    # ---- boot -------------------------------------------------------------------------------------------

    def boot(self):
        """Torque off on every bus (a servo keeps torque across an MCU reset), then discover the servos."""
        import os

        self.boot_id = (os.urandom(2)[0] << 8) | os.urandom(2)[1]
        for bus in self.buses:
            bus.write_u8(BROADCAST_ID, REG_TORQUE_ENABLE, 0)
        self.scan()
        # Whatever the host sent while we were booting was meant for the previous run: drop it unread.
        while self.link.port.readinto(self.link.chunk, len(self.link.chunk)):
            pass
        self.log(proto.LOG_INFO, _L_BOOT)

    def scan(self):
        """Ping ids scan_first..scan_last on every bus; at boot and on a HELLO asking for a rescan."""
        for i in range(len(self.buses)):
            self.found[i] = _discover(self.buses[i], self.scan_first, self.scan_last)

    # ---- the loop -----------------------------------------------------------------------------------------

    def run(self):
        ticks_us = time.ticks_us
        ticks_diff = time.ticks_diff
        ticks_add = time.ticks_add
        next_t = ticks_us()
        last_start = next_t
        while not self.exit_requested:
            now = ticks_us()
            wait = ticks_diff(next_t, now)
            if wait > 0:
                self.hal.sleep_us(wait)
                now = ticks_us()
            start = now
            self.tick()
            end = ticks_us()
            next_t = ticks_add(next_t, self.period_us)
            if ticks_diff(end, next_t) > 0:
                # Late for the next slot already: skip ahead instead of bursting to catch up.
                self.overruns += 1
                self.sticky |= proto.FLAG_OVERRUN
                next_t = end
            self._record(ticks_diff(start, last_start), ticks_diff(end, start))
            last_start = start

    def _record(self, period, work):
        self.win_n += 1
        self.win_period_sum += period
        self.win_work_sum += work
        if period > self.win_period_max:
            self.win_period_max = period
        if work > self.win_work_max:
            self.win_work_max = work
        if self.win_n >= self.window_ticks:
            self.period_mean = self.win_period_sum // self.win_n
            self.period_max = self.win_period_max
            self.work_mean = self.win_work_sum // self.win_n
            self.work_max = self.win_work_max
            self.win_n = 0
            self.win_period_sum = 0
            self.win_period_max = 0
            self.win_work_sum = 0
            self.win_work_max = 0

    def tick(self):
        """One servo-loop iteration: link, e-stop, watchdog, goals, feedback, leader, state."""
        self.cold = False
        self._alloc_n += 1
        measure = self._alloc_n >= self._alloc_every
        if measure:
            self._alloc_n = 0
            mem_before = self._mem_counter()
        now_ms = self.ticks_ms()
        link = self.link
        while link.poll():
            self.handle_frame(now_ms)
        self._check_estop_input()
        if (
            self.configured
            and not self.hold
            and time.ticks_diff(now_ms, self.last_rx_ms) > self.link_timeout_ms
        ):
            self._enter_hold(now_ms)
        if self.torque:
            self._write_goals()
        if self.configured:
            self._read_feedback()
            if self.leader_read is not None:
                self._read_leader()
        self._led(now_ms)
        self.tick_count += 1
        if self.tick_count >= self.state_every:
            self.tick_count = 0
            self.send_state(now_ms)
            if self.leader_read is not None:
                self.send_leader(now_ms)
        if measure and not self.cold and self._mem_counter() > mem_before:
            self.alloc_ticks += 1

    def _check_estop_input(self):
        estop = self.hal.estop
        if estop is None:
            return
        self.estop_input = estop.asserted()
        if self.estop_input and not self.estop:
            self._enter_estop()

    def _write_goals(self):
        goal = self.goal
        target = self.target
        step = self.step
        gw = self.goal_write
        hold = self.hold
        for i in range(self.n):
            g = goal[i]
            if not hold:
                d = target[i] - g
                s = step[i]
                if d > s:
                    d = s
                elif d < -s:
                    d = -s
                g += d
                goal[i] = g
            gw.set_u16(i, g)
        gw.send()

    def _read_feedback(self):
        """Sync-read the follower block; returns how many servos answered."""
        fb = self.feedback
        answered = fb.transact()
        ok = fb.ok
        errors = fb.errors
        for i in range(self.n):
            if ok[i]:
                self.pos[i] = fb.u16(i, 0)
                self.vel[i] = sign_magnitude(fb.u16(i, 2), 15)
                self.load[i] = sign_magnitude(fb.u16(i, 4), 10)
                self.volt[i] = fb.u8(i, 6)
                self.temp[i] = fb.u8(i, 7)
                st = errors[i] & 0x3F
                if st:
                    self.sticky |= proto.FLAG_SERVO_ERROR
                if fb.u8(i, 10):
                    st |= proto.JOINT_MOVING
                self.jstatus[i] = st
            else:
                self.jstatus[i] = (self.jstatus[i] & 0x3F) | proto.JOINT_NO_RESPONSE
                self.sticky |= proto.FLAG_BUS_TIMEOUT
        return answered

    def _read_leader(self):
        lr = self.leader_read
        lr.transact()
        for i in range(self.leader_n):
            if lr.ok[i]:
                self.leader_pos[i] = lr.u16(i, 0)
                self.leader_status[i] = lr.errors[i] & 0x3F
            else:
                self.leader_status[i] = (self.leader_status[i] & 0x3F) | proto.JOINT_NO_RESPONSE
                self.sticky |= proto.FLAG_BUS_TIMEOUT

    def _led(self, now_ms):
        led = self.hal.led
        if led is None:
            return
        if self.estop or self.hold:
            led.set((now_ms >> 6) & 1)  # fast blink: needs attention
        elif self.torque:
            led.set(1)
        else:
            led.set((now_ms >> 9) & 1)  # slow blink: alive, idle

    # ---- outgoing frames ----------------------------------------------------------------------------------

    def flags(self):
        f = self.sticky
        if self.torque:
            f |= proto.FLAG_TORQUE
        if self.hold:
            f |= proto.FLAG_HOLD
        if self.estop:
            f |= proto.FLAG_ESTOP
        if self.estop_input:
            f |= proto.FLAG_ESTOP_INPUT
        if self.configured:
            f |= proto.FLAG_CONFIGURED
        if self.leader_read is not None:
            f |= proto.FLAG_LEADER
        return f

    def bus_errors(self):
        total = 0
        for bus in self.buses:
            total += bus.timeouts + bus.checksum_errors
        return total

    def send_state(self, now_ms):
        out = self.link.out
        link = self.link
        p = proto.HEADER_LEN
        _put16(out, p + 0, self.boot_id)
        _put32(out, p + 2, now_ms)
        _put16(out, p + 6, self.flags())
        _put16(out, p + 8, self.last_target_seq)
        _put16(out, p + 10, _clip16(self.period_mean))
        _put16(out, p + 12, _clip16(self.period_max))
        _put16(out, p + 14, _clip16(self.work_mean))
        _put16(out, p + 16, _clip16(self.work_max))
        _put16(out, p + 18, self.overruns)
        _put16(out, p + 20, link.rx_frames)
        _put16(out, p + 22, link.rx_crc_errors)
        _put16(out, p + 24, link.rx_bad_frames)
        _put16(out, p + 26, link.tx_dropped)
        _put16(out, p + 28, self.bus_errors())
        _put16(out, p + 30, self.alloc_ticks)
        _put16(out, p + 32, _clip16(self.hold_after_ms))
        n = self.n
        out[p + 34] = n
        o = p + proto.STATE_FIXED
        for i in range(n):
            _put16(out, o, self.pos[i])
            _put16(out, o + 2, self.vel[i])
            _put16(out, o + 4, self.load[i])
            out[o + 6] = self.volt[i]
            out[o + 7] = self.temp[i]
            out[o + 8] = self.jstatus[i]
            o += proto.STATE_PER_JOINT
        self.sticky = 0
        link.send(proto.MSG_STATE, proto.STATE_FIXED + n * proto.STATE_PER_JOINT)

    def send_leader(self, now_ms):
        out = self.link.out
        p = proto.HEADER_LEN
        _put32(out, p, now_ms)
        n = self.leader_n
        out[p + 4] = n
        o = p + proto.LEADER_FIXED
        for i in range(n):
            _put16(out, o, self.leader_pos[i])
            out[o + 2] = self.leader_status[i]
            o += proto.LEADER_PER_JOINT
        self.link.send(proto.MSG_LEADER, proto.LEADER_FIXED + n * proto.LEADER_PER_JOINT)

    def ack(self, seq, msg_type):
        out = self.link.out
        p = proto.HEADER_LEN
        _put16(out, p, seq)
        out[p + 2] = msg_type
        self.link.send(proto.MSG_ACK, 3)

    def error(self, seq, msg_type, code, text):
        self.cold = True
        out = self.link.out
        p = proto.HEADER_LEN
        _put16(out, p, seq)
        out[p + 2] = msg_type
        out[p + 3] = code
        n = min(len(text), proto.MAX_PAYLOAD - 4)
        for i in range(n):
            out[p + 4 + i] = text[i]
        self.link.send(proto.MSG_ERROR, 4 + n)

    def log(self, level, text):
        self.cold = True
        out = self.link.out
        p = proto.HEADER_LEN
        out[p] = level
        n = min(len(text), proto.MAX_PAYLOAD - 1)
        for i in range(n):
            out[p + 1 + i] = text[i]
        self.link.send(proto.MSG_LOG, 1 + n)

    # ---- incoming frames ----------------------------------------------------------------------------------

    def handle_frame(self, now_ms):
        link = self.link
        t = link.frame_type()
        seq = link.frame_seq()
        plen = link.payload_len()
        if t == proto.MSG_TARGETS:
            self._on_targets(seq, plen, now_ms)
        elif t == proto.MSG_HEARTBEAT:
            if plen != 0:
                self.error(seq, t, proto.ERR_BAD_PAYLOAD, _M_HEARTBEAT_LEN)
            else:
                self.last_rx_ms = now_ms
        else:
            self.cold = True
            if t == proto.MSG_HELLO:
                self._on_hello(seq, plen)
            elif t == proto.MSG_CONFIG:
                self._on_config(seq, plen, now_ms)
            elif t == proto.MSG_TORQUE:
                self._on_torque(seq, plen, now_ms)
            elif t == proto.MSG_ESTOP:
                self._enter_estop()
                self.ack(seq, t)
            elif t == proto.MSG_ESTOP_CLEAR:
                self._on_estop_clear(seq)
            elif t == proto.MSG_HOLD_ACK:
                self._on_hold_ack(seq, now_ms)
            elif t == proto.MSG_EXIT_TO_REPL:
                if self.torque:
                    self.error(seq, t, proto.ERR_TORQUE_ON, _M_TORQUE_ON)
                else:
                    self.ack(seq, t)
                    self.exit_requested = True
            else:
                self.error(seq, t, proto.ERR_UNKNOWN_TYPE, _M_UNKNOWN)

    def _on_targets(self, seq, plen, now_ms):
        t = proto.MSG_TARGETS
        if not self.configured:
            self.error(seq, t, proto.ERR_NOT_CONFIGURED, _M_NOT_CONFIGURED)
            return
        f = self.link.frame
        n = self.n
        if plen != 1 + 2 * n or f[3] != n:
            self.error(seq, t, proto.ERR_BAD_PAYLOAD, _M_TARGETS_LEN)
            return
        self.last_rx_ms = now_ms
        self.last_target_seq = seq
        if self.hold or self.estop or not self.torque:
            self.sticky |= proto.FLAG_TARGETS_IGNORED
            return
        lo = self.lo
        hi = self.hi
        target = self.target
        o = 4
        for i in range(n):
            v = f[o] | (f[o + 1] << 8)
            o += 2
            if v < lo[i]:
                v = lo[i]
                self.sticky |= proto.FLAG_LIMITED
            elif v > hi[i]:
                v = hi[i]
                self.sticky |= proto.FLAG_LIMITED
            target[i] = v

    def _on_hello(self, seq, plen):
        f = self.link.frame
        if plen >= 2 and (f[4] & 1) and not self.torque:
            self.scan()
        out = self.link.out
        p = proto.HEADER_LEN
        out[p] = proto.PROTOCOL_VERSION
        out[p + 1] = FIRMWARE_VERSION[0]
        out[p + 2] = FIRMWARE_VERSION[1]
        out[p + 3] = FIRMWARE_VERSION[2]
        _put16(out, p + 4, self.boot_id)
        _put16(out, p + 6, self.rate_hz)
        out[p + 8] = _MAXJ
        out[p + 9] = len(self.buses)
        o = p + 10
        for ids in self.found:
            ids = ids[:32]
            out[o] = len(ids)
            o += 1
            for sid in ids:
                out[o] = sid
                o += 1
        board = self.board.encode()[:32]
        out[o] = len(board)
        o += 1
        for b in board:
            out[o] = b
            o += 1
        self.link.send(proto.MSG_HELLO_REPLY, o - p)

    def _on_config(self, seq, plen, now_ms):
        t = proto.MSG_CONFIG
        f = self.link.frame
        p = proto.HEADER_LEN
        if self.torque:
            # A host that reconnects re-sends its configuration; the active one is acknowledged as it stands.
            if self.config_bytes is not None and bytes(f[p : p + plen]) == self.config_bytes:
                self.last_rx_ms = now_ms
                self.ack(seq, t)
            else:
                self.error(seq, t, proto.ERR_TORQUE_ON, _M_TORQUE_ON)
            return
        if plen < 6:
            self.error(seq, t, proto.ERR_BAD_PAYLOAD, _M_BAD_PAYLOAD)
            return
        timeout_ms = _get16(f, p)
        rate = _get16(f, p + 2)
        state_every = f[p + 4]
        n = f[p + 5]
        o = p + 6
        joints = []
        for _ in range(n):
            if o + 7 > p + plen:
                self.error(seq, t, proto.ERR_BAD_PAYLOAD, _M_BAD_PAYLOAD)
                return
            joints.append((f[o], _get16(f, o + 1), _get16(f, o + 3), _get16(f, o + 5)))
            o += 7
        if o + 2 > p + plen:
            self.error(seq, t, proto.ERR_BAD_PAYLOAD, _M_BAD_PAYLOAD)
            return
        leader_bus = f[o]
        leader_n = f[o + 1]
        o += 2
        if o + leader_n != p + plen:
            self.error(seq, t, proto.ERR_BAD_PAYLOAD, _M_BAD_PAYLOAD)
            return
        leader_ids = [f[o + i] for i in range(leader_n)]
        problem = self._config_problem(timeout_ms, rate, state_every, joints, leader_bus, leader_ids)
        if problem is not None:
            self.error(seq, t, problem[0], problem[1])
            return
        self._apply_config(timeout_ms, rate, state_every, joints, leader_bus, leader_ids, now_ms)
        self.config_bytes = bytes(f[p : p + plen])
        self.ack(seq, t)

    def _config_problem(self, timeout_ms, rate, state_every, joints, leader_bus, leader_ids):
        bad = proto.ERR_BAD_CONFIG
        if not 10 <= timeout_ms <= 60000:
            return bad, b"link_timeout_ms must be 10..60000"
        if rate != 0 and not 10 <= rate <= 1000:
            return bad, b"rate_hz must be 0 (keep) or 10..1000"
        if state_every < 1:
            return bad, b"state_every must be at least 1"
        if not 1 <= len(joints) <= _MAXJ:
            return bad, b"joint count must be 1..8"
        if not 0 <= len(leader_ids) <= _MAXJ:
            return bad, b"leader joint count must be 0..8"
        seen = []
        for sid, lo, hi, step in joints:
            if sid in seen or sid >= BROADCAST_ID:
                return bad, b"joint ids must be unique and below 254"
            seen.append(sid)
            if not lo <= hi <= 4095:
                return bad, b"joint limits need min <= max <= 4095"
            if step < 1:
                return bad, b"max_step must be at least 1 tick"
            if not self._present(0, sid):
                return proto.ERR_SERVO_MISSING, b"servo id %d not found on the follower bus: check wiring and id" % sid
        if leader_ids:
            if leader_bus >= len(self.buses):
                return bad, b"leader bus %d does not exist on this board" % leader_bus
            for sid in leader_ids:
                if leader_ids.count(sid) > 1 or (leader_bus == 0 and sid in seen):
                    return bad, b"leader ids must be unique and distinct from follower ids on a shared bus"
                if not self._present(leader_bus, sid):
                    return proto.ERR_SERVO_MISSING, b"leader servo id %d not found: check wiring and id" % sid
        return None

    def _present(self, bus, sid):
        """Found by the boot scan, or answers a ping now (ids beyond the scan range)."""
        if sid in self.found[bus]:
            return True
        if _discover(self.buses[bus], sid, sid, 1):
            # Kept in id order, as a scan lists them (once per CONFIG, outside the loop: sorting may allocate).
            self.found[bus].append(sid)
            self.found[bus].sort()
            return True
        return False

    def _apply_config(self, timeout_ms, rate, state_every, joints, leader_bus, leader_ids, now_ms):
        self.configured = False
        n = len(joints)
        ids = []
        for i in range(n):
            sid, lo, hi, step = joints[i]
            ids.append(sid)
            self.ids[i] = sid
            self.lo[i] = lo
            self.hi[i] = hi
            self.step[i] = step
        self.n = n
        follower = self.buses[0]
        self.goal_write = SyncWrite(follower, ids, REG_GOAL_POSITION, 2)
        self.torque_write = SyncWrite(follower, ids, REG_TORQUE_ENABLE, 1)
        self.feedback = SyncRead(follower, ids, FEEDBACK_ADDR, FEEDBACK_LEN)
        self.leader_n = len(leader_ids)
        self.leader_bus = leader_bus
        self.leader_read = None
        if leader_ids:
            lbus = self.buses[leader_bus]
            for sid in leader_ids:
                lbus.write_u8(sid, REG_TORQUE_ENABLE, 0)
            self.leader_read = SyncRead(lbus, leader_ids, REG_PRESENT_POSITION, 2)
        self.link_timeout_ms = timeout_ms
        if rate:
            self.set_rate(rate)
        self.state_every = state_every
        self.tick_count = 0
        self._read_feedback()
        for i in range(n):
            self.target[i] = self.pos[i]
            self.goal[i] = self.pos[i]
        self.hold = False
        self.hold_after_ms = 0
        self.last_rx_ms = now_ms
        self.configured = True
        gc.collect()

    def _on_torque(self, seq, plen, now_ms):
        t = proto.MSG_TORQUE
        if plen != 1:
            self.error(seq, t, proto.ERR_BAD_PAYLOAD, _M_BAD_PAYLOAD)
            return
        if not self.configured:
            self.error(seq, t, proto.ERR_NOT_CONFIGURED, _M_NOT_CONFIGURED)
            return
        self.last_rx_ms = now_ms
        if self.link.frame[proto.HEADER_LEN]:
            if self.estop:
                self.error(seq, t, proto.ERR_ESTOP_LATCHED, _M_ESTOP_LATCHED)
                return
            if self.hold:
                self.error(seq, t, proto.ERR_HOLD_ACTIVE, _M_HOLD_ACTIVE)
                return
            # Start from where the arm is, so enabling torque never jumps to a stale goal. One lost answer (bus
            # noise, a late reply) is no reason to refuse: the read is tried again before giving up.
            answered = 0
            for _ in range(_TORQUE_READ_ATTEMPTS):
                answered = self._read_feedback()
                if answered >= self.n:
                    break
            if answered < self.n:
                self.error(seq, t, proto.ERR_BUS, _M_BUS)
                return
            for i in range(self.n):
                self.target[i] = self.pos[i]
                self.goal[i] = self.pos[i]
                self.goal_write.set_u16(i, self.pos[i])
            self.goal_write.send()
            self._torque_all(1)
            self.torque = True
        else:
            self._torque_all(0)
            self.torque = False
        self.ack(seq, t)

    def _torque_all(self, value):
        tw = self.torque_write
        for i in range(self.n):
            tw.set_u8(i, value)
        tw.send()

    def _enter_estop(self):
        self.cold = True
        # Broadcast, so servos the host never configured lose torque too.
        self.buses[0].write_u8(BROADCAST_ID, REG_TORQUE_ENABLE, 0)
        self.torque = False
        self.estop = True
        self.log(proto.LOG_WARNING, _L_ESTOP)

    def _on_estop_clear(self, seq):
        t = proto.MSG_ESTOP_CLEAR
        if self.hal.estop is not None:
            self.estop_input = self.hal.estop.asserted()  # now, not as of the last tick
        if self.estop_input:
            self.error(seq, t, proto.ERR_ESTOP_INPUT, _M_ESTOP_INPUT)
            return
        self.estop = False
        self.ack(seq, t)

    def _enter_hold(self, now_ms):
        self.cold = True
        self.hold = True
        self.hold_after_ms = time.ticks_diff(now_ms, self.last_rx_ms)
        for i in range(self.n):
            self.goal[i] = self.pos[i]
            self.target[i] = self.pos[i]
        self.log(proto.LOG_WARNING, _L_HOLD)

    def _on_hold_ack(self, seq, now_ms):
        if self.hold:
            self.hold = False
            for i in range(self.n):
                self.target[i] = self.goal[i]
        self.last_rx_ms = now_ms
        self.ack(seq, proto.MSG_HOLD_ACK)

    def safe_stop(self):
        """Best-effort torque off on every bus, for shutdown and crashes."""
        for bus in self.buses:
            try:  # noqa: SIM105 - MicroPython has no contextlib
                bus.write_u8(BROADCAST_ID, REG_TORQUE_ENABLE, 0)
            except Exception:  # shutting down: try every bus, whatever the first one did
                pass
        self.torque = False


def _discover(bus, first, last, attempts=2):
    """The ids in first..last that answer a ping. Pings to absent ids time out by design: not bus faults."""
    timeouts = bus.timeouts
    checksum_errors = bus.checksum_errors
    found = bus.scan(first, last, attempts)
    bus.timeouts = timeouts
    bus.checksum_errors = checksum_errors
    return found


def _clip16(value):
    if value > 0xFFFF:
        return 0xFFFF
    if value < 0:
        return 0
    return value
