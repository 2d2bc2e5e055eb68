"""The host driver of the servo microcontroller: one serial link, kept up across unplugs and MCU reboots.

The edge daemon's control loop calls `send_targets()` and reads `latest_state` at 30-100 Hz; neither touches
I/O. A supervisor thread connects, handshakes and pushes the configuration; a reader and a writer thread own
the port while it is open.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from enum import Enum

import serial

from spinal_edge.mcu.errors import (
    McuCommandRejected,
    McuLinkError,
    McuNotConnected,
    McuProtocolError,
    McuTimeout,
    McuVersionMismatch,
)
from spinal_edge.mcu.framing import Frame, FrameDecoder, encode_frame
from spinal_edge.mcu.messages import (
    PROTOCOL_VERSION,
    Handshake,
    LeaderState,
    LinkConfig,
    McuState,
    MsgType,
    StateFlag,
    decode_ack,
    decode_error,
    decode_handshake,
    decode_leader,
    decode_log,
    decode_state,
    encode_config,
    encode_hello,
    encode_targets,
    encode_torque,
)
from spinal_edge.mcu.rescan import MissingServoRecovery

log = logging.getLogger(__name__)
firmware_log = logging.getLogger("spinal_edge.mcu.firmware")

StateListener = Callable[[McuState], None]
LeaderListener = Callable[[LeaderState], None]
EventListener = Callable[["LinkEvent", str], None]
SerialFactory = Callable[[str], serial.Serial]


class LinkEvent(Enum):
    """What the driver tells event listeners about, with a sentence of detail."""

    CONNECTED = "connected"
    """Handshake done and configuration accepted; targets are welcome."""
    DISCONNECTED = "disconnected"
    """The port went away or stopped answering; the driver is reconnecting."""
    RESTARTED = "restarted"
    """The MCU rebooted (new boot id); it was configured again."""
    HOLD_ENTERED = "hold_entered"
    """The MCU's link watchdog fired: the arm holds until `acknowledge_hold()`."""
    HOLD_CLEARED = "hold_cleared"
    ESTOP_ENTERED = "estop_entered"
    ESTOP_CLEARED = "estop_cleared"
    CONFIG_REJECTED = "config_rejected"
    """The MCU refused the configuration (detail says why); the driver retries. A servo missing from the
    MCU's boot scan is retried with a bus rescan and reported once per streak, not once per retry."""


@dataclass
class LinkCounters:
    """Running totals since the driver started."""

    frames_rx: int = 0
    frames_tx: int = 0
    crc_errors: int = 0
    """Frames from the MCU dropped for a CRC mismatch."""
    bad_frames: int = 0
    """Frames from the MCU dropped for bad COBS, length or payload."""
    dropped_frames: int = 0
    """Frames the MCU sent that never arrived (gaps in its sequence numbers)."""
    connects: int = 0
    reconnects: int = 0
    restarts: int = 0
    handshakes: int = 0
    targets_sent: int = 0
    targets_superseded: int = 0
    """Targets replaced by newer ones before the writer got to them."""
    heartbeats_sent: int = 0
    mcu_errors: int = 0
    """ERROR replies from the MCU."""
    config_rejections: int = 0
    """CONFIGs the MCU refused (SERVO_MISSING, BAD_CONFIG, ...)."""
    rescans: int = 0
    """HELLOs that asked the MCU to rescan its buses after a servo was missing at CONFIG."""


@dataclass
class _Command:
    msg_type: MsgType
    payload: bytes
    future: Future[None] | None


class _Session:
    """One open port: a reader and a writer thread; ends on the first I/O error."""

    def __init__(self, link: McuLink, port: serial.Serial) -> None:
        self.link = link
        self.port = port
        self.ended = threading.Event()
        self.decoder = FrameDecoder()
        self.last_write = 0.0
        self.reader = threading.Thread(target=self._read_loop, name="mcu-link-reader", daemon=True)
        self.writer = threading.Thread(target=self._write_loop, name="mcu-link-writer", daemon=True)

    def start(self) -> None:
        self.reader.start()
        self.writer.start()

    def end(self, why: str) -> None:
        if not self.ended.is_set():
            log.info("mcu link session ends: %s", why)
            self.ended.set()
            with self.link._cond:
                self.link._cond.notify_all()
            self.link._wake.set()

    def close(self) -> None:
        self.end("closed")
        with contextlib.suppress(OSError, serial.SerialException):
            self.port.close()
        for t in (self.reader, self.writer):
            if t is not threading.current_thread() and t.is_alive():
                t.join(timeout=2)

    def write(self, data: bytes) -> None:
        try:
            self.port.write(data)
        except (OSError, serial.SerialException, TypeError, AttributeError) as exc:
            # pyserial raises TypeError/AttributeError when the port is closed under a blocked write.
            self.end(f"write failed: {exc}")
            raise McuNotConnected(f"MCU port write failed: {exc}") from exc
        self.last_write = time.monotonic()

    def _read_loop(self) -> None:
        link = self.link
        while not self.ended.is_set():
            try:
                data = self.port.read(max(1, self.port.in_waiting))
            except (OSError, serial.SerialException, TypeError, AttributeError) as exc:
                # pyserial raises TypeError/AttributeError when the port is closed under a blocked read.
                self.end(f"read failed: {exc}")
                return
            if not data:
                continue
            frames = self.decoder.feed(data)
            with link._lock:
                link._counters.crc_errors = link._crc_base + self.decoder.crc_errors
                link._counters.bad_frames = link._bad_base + self.decoder.bad_frames + link._payload_errors
            for frame in frames:
                link._dispatch(frame)

    def _write_loop(self) -> None:
        link = self.link
        while not self.ended.is_set():
            with link._cond:
                link._cond.wait_for(
                    lambda: self.ended.is_set() or link._has_output(), timeout=link._keepalive_s / 2
                )
                if self.ended.is_set():
                    return
                commands = list(link._commands)
                link._commands.clear()
                # Targets wait while the MCU is not configured (start-up, reboot): it would only reject them.
                targets = link._targets if link._targets_pending and link._ready.is_set() else None
                if targets is not None:
                    link._targets_pending = False
                heartbeat = link._heartbeat_pending
                link._heartbeat_pending = False
            try:
                for cmd in commands:
                    seq = link._next_seq()
                    if cmd.future is not None:
                        with link._lock:
                            link._pending[seq] = cmd
                    self.write(encode_frame(cmd.msg_type, seq, cmd.payload))
                    link._count_tx()
                if targets is not None:
                    self.write(encode_frame(MsgType.TARGETS, link._next_seq(), encode_targets(targets)))
                    link._count_tx(targets=True)
                elif heartbeat or link._idle_keepalive_due(self.last_write):
                    self.write(encode_frame(MsgType.HEARTBEAT, link._next_seq()))
                    link._count_tx(heartbeat=True)
            except McuNotConnected:
                for cmd in commands:
                    if cmd.future is not None and not cmd.future.done():
                        cmd.future.set_exception(
                            McuNotConnected("the link dropped before the command was sent")
                        )
                return


class McuLink:
    """The servo MCU behind a serial port (`/dev/ttyACM0`, or a HIL rig's pty).

    Call `start()`, then `wait_ready()`; afterwards `send_targets()` every control tick. Commands that the MCU
    acknowledges return a `concurrent.futures.Future` (result None, or McuCommandRejected / McuNotConnected).
    Listeners run on the reader thread: they should only hand the value on and return.
    """

    def __init__(
        self,
        port: str,
        config: LinkConfig,
        *,
        baudrate: int = 1_000_000,
        reconnect_interval_s: float = 0.2,
        handshake_timeout_s: float = 1.0,
        command_timeout_s: float = 1.0,
        rescan_timeout_s: float = 3.0,
        max_rescan_interval_s: float = 5.0,
        restore_torque: bool = True,
        idle_keepalive: bool = True,
        serial_factory: SerialFactory | None = None,
    ) -> None:
        self.port = port
        self.config = config
        self.baudrate = baudrate
        self.reconnect_interval_s = reconnect_interval_s
        self.handshake_timeout_s = handshake_timeout_s
        self.command_timeout_s = command_timeout_s
        # A rescan pings every id of every bus (absent ones time out), so its HELLO_REPLY may take a while.
        self.rescan_timeout_s = max(rescan_timeout_s, handshake_timeout_s)
        self._missing = MissingServoRecovery(reconnect_interval_s, max_rescan_interval_s)
        self._rescan_in: float | None = None
        self.restore_torque = restore_torque
        self.idle_keepalive = idle_keepalive
        self._serial_factory = serial_factory or self._open_serial
        self._keepalive_s = max(0.005, config.link_timeout_ms / 1000 / 4)
        self._lock = threading.Lock()
        self._cond = threading.Condition(threading.Lock())
        self._state_cond = threading.Condition(threading.Lock())
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._ready = threading.Event()
        self._resync = False
        self._commands: deque[_Command] = deque()
        self._targets: tuple[int, ...] | None = None
        self._targets_pending = False
        self._heartbeat_pending = False
        self._pending: dict[int, _Command] = {}
        self._seq = 0
        self._counters = LinkCounters()
        self._crc_base = 0
        self._bad_base = 0
        self._payload_errors = 0
        self._rx_seq: int | None = None
        self._hello: Future[Handshake] | None = None
        self._handshake: Handshake | None = None
        self._latest_state: McuState | None = None
        self._latest_leader: LeaderState | None = None
        self._torque_wanted = False
        self._estop_wanted = False
        self._last_error = ""
        self._last_warning = 0.0
        self._suppressed_warnings = 0
        self._state_listeners: list[StateListener] = []
        self._leader_listeners: list[LeaderListener] = []
        self._event_listeners: list[EventListener] = []
        self._session: _Session | None = None
        self._supervisor: threading.Thread | None = None
        self.recent_logs: deque[tuple[int, str]] = deque(maxlen=100)
        """The last log lines the firmware sent, as (level, text)."""

    # ---- lifecycle --------------------------------------------------------------------------------------------

    def start(self) -> McuLink:
        if self._supervisor is None:
            self._supervisor = threading.Thread(target=self._supervise, name="mcu-link", daemon=True)
            self._supervisor.start()
        return self

    def close(self) -> None:
        """Stop all threads and close the port. Torque stays as it is: the MCU's watchdog takes over."""
        self._closed.set()
        self._wake.set()
        with self._cond:
            self._cond.notify_all()
        hello = self._hello
        if hello is not None and not hello.done():
            hello.set_exception(McuNotConnected("the driver was closed"))
        with self._lock:
            pending = list(self._pending.values())
        for cmd in pending:
            if cmd.future is not None and not cmd.future.done():
                cmd.future.set_exception(McuNotConnected("the driver was closed"))
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)

    def __enter__(self) -> McuLink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self, timeout: float = 5.0) -> Handshake:
        """Block until handshaken and configured; raises McuTimeout naming the last problem seen."""
        if not self._ready.wait(timeout):
            why = self._last_error or "no answer to HELLO"
            raise McuTimeout(f"MCU on {self.port} not ready after {timeout:.1f} s: {why}")
        assert self._handshake is not None
        return self._handshake

    # ---- the control loop's calls (never block on I/O) --------------------------------------------------------

    def send_targets(self, positions: Sequence[int]) -> None:
        """Hand raw goal positions (joint order of the config) to the writer; the newest one wins."""
        if len(positions) != len(self.config.joints):
            raise McuProtocolError(
                f"{len(positions)} targets for {len(self.config.joints)} configured joints: send one per joint"
            )
        values = tuple(int(p) for p in positions)
        with self._cond:
            if self._targets_pending:
                self._counters.targets_superseded += 1
            self._targets = values
            self._targets_pending = True
            self._cond.notify()

    def heartbeat(self) -> None:
        """Feed the MCU watchdog without moving (a control loop that is alive but has no new target)."""
        with self._cond:
            self._heartbeat_pending = True
            self._cond.notify()

    @property
    def latest_state(self) -> McuState | None:
        return self._latest_state

    @property
    def latest_leader(self) -> LeaderState | None:
        return self._latest_leader

    @property
    def handshake(self) -> Handshake | None:
        return self._handshake

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def last_error(self) -> str:
        return self._last_error

    def counters(self) -> LinkCounters:
        with self._lock:
            return dataclasses.replace(self._counters)

    # ---- commands ---------------------------------------------------------------------------------------------

    def set_torque(self, enabled: bool) -> Future[None]:
        """Torque on (from the present position) or off; remembered and restored after an MCU reboot."""
        self._torque_wanted = enabled
        return self._command(MsgType.TORQUE, encode_torque(enabled))

    def estop(self) -> Future[None]:
        """Latch the MCU's e-stop (torque off); re-asserted after every reconnect until `clear_estop()`."""
        self._estop_wanted = True
        self._torque_wanted = False
        return self._command(MsgType.ESTOP, b"")

    def clear_estop(self) -> Future[None]:
        """Unlatch the e-stop; torque stays off until `set_torque(True)`."""
        self._estop_wanted = False
        return self._command(MsgType.ESTOP_CLEAR, b"")

    def acknowledge_hold(self) -> Future[None]:
        """Leave the watchdog HOLD: the arm stays where it held until new targets arrive."""
        return self._command(MsgType.HOLD_ACK, b"")

    def exit_to_repl(self) -> Future[None]:
        """Ask the firmware to stop its loop and give the USB port back to the REPL (for flashing)."""
        return self._command(MsgType.EXIT_TO_REPL, b"")

    # ---- listeners --------------------------------------------------------------------------------------------

    def add_state_listener(self, listener: StateListener) -> None:
        self._state_listeners.append(listener)

    def add_leader_listener(self, listener: LeaderListener) -> None:
        self._leader_listeners.append(listener)

    def add_event_listener(self, listener: EventListener) -> None:
        self._event_listeners.append(listener)

    def wait_for_state(self, predicate: Callable[[McuState], bool], timeout: float) -> McuState:
        """Block until a STATE satisfies `predicate` (for start-up and tests, not for the control loop)."""
        deadline = time.monotonic() + timeout
        with self._state_cond:
            while True:
                state = self._latest_state
                if state is not None and predicate(state):
                    return state
                left = deadline - time.monotonic()
                if left <= 0:
                    raise McuTimeout(f"no matching MCU state within {timeout:.1f} s (last: {state})")
                self._state_cond.wait(left)

    # ---- internals: threads -----------------------------------------------------------------------------------

    def _open_serial(self, port: str) -> serial.Serial:
        return serial.Serial(
            port=port, baudrate=self.baudrate, timeout=0.05, write_timeout=1.0, exclusive=True
        )

    def _supervise(self) -> None:
        while not self._closed.is_set():
            try:
                port = self._serial_factory(self.port)
            except (OSError, serial.SerialException, ValueError) as exc:
                self._last_error = f"cannot open {self.port}: {exc}"
                self._closed.wait(self.reconnect_interval_s)
                continue
            session = _Session(self, port)
            self._begin_session(session)
            try:
                self._run_session(session)
            finally:
                self._end_session(session)
            if not self._closed.is_set():
                self._closed.wait(self.reconnect_interval_s)

    def _begin_session(self, session: _Session) -> None:
        with self._lock:
            self._crc_base = self._counters.crc_errors
            self._bad_base = self._counters.bad_frames - self._payload_errors
            self._rx_seq = None
            if self._counters.connects:
                self._counters.reconnects += 1
            self._counters.connects += 1
        self._session = session
        session.start()
        with contextlib.suppress(McuNotConnected):
            session.write(b"\x00")  # a lone delimiter ends whatever half frame the MCU had buffered

    def _run_session(self, session: _Session) -> None:
        backoff = 0.0
        while not session.ended.is_set() and not self._closed.is_set():
            if not self._ready.is_set() or self._resync:
                self._resync = False
                try:
                    self._bring_up()
                    backoff = 0.0
                except McuLinkError as exc:
                    self._last_error = str(exc)
                    rescan_in, self._rescan_in = self._rescan_in, None
                    if rescan_in is not None:
                        self._closed.wait(rescan_in)  # MissingServoRecovery logged it
                        continue
                    log.warning("mcu bring-up failed: %s", exc)
                    backoff = min(2.0, backoff * 2 or self.reconnect_interval_s)
                    self._closed.wait(backoff)
                    continue
            self._wake.wait(0.2)
            self._wake.clear()

    def _end_session(self, session: _Session) -> None:
        was_ready = self._ready.is_set()
        self._ready.clear()
        self._session = None
        session.close()
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
        for cmd in pending:
            if cmd.future is not None and not cmd.future.done():
                cmd.future.set_exception(McuNotConnected("the link dropped before the MCU answered"))
        with self._cond:
            stale = list(self._commands)
            self._commands.clear()
        for cmd in stale:
            if cmd.future is not None and not cmd.future.done():
                cmd.future.set_exception(McuNotConnected("the link dropped before the command was sent"))
        if was_ready and not self._closed.is_set():
            self._emit(LinkEvent.DISCONNECTED, f"{self.port}: link lost, reconnecting")

    def _bring_up(self) -> None:
        self._rescan_in = None
        handshake = self._request_handshake(rescan=self._missing.rescan_due)
        if handshake.protocol_version != PROTOCOL_VERSION:
            raise McuVersionMismatch(
                f"firmware {handshake.firmware_version} speaks link protocol {handshake.protocol_version}, this "
                f"driver speaks {PROTOCOL_VERSION}: flash matching firmware (`spinal firmware flash`)"
            )
        previous = self._handshake
        self._handshake = handshake
        with self._lock:
            self._counters.handshakes += 1
        restarted = previous is not None and previous.boot_id != handshake.boot_id
        if restarted:
            with self._lock:
                self._counters.restarts += 1
            self._emit(
                LinkEvent.RESTARTED, f"MCU rebooted (boot id {previous.boot_id} -> {handshake.boot_id})"
            )
        try:
            self._await(self._command(MsgType.CONFIG, encode_config(self.config)), "CONFIG")
        except McuCommandRejected as exc:
            with self._lock:
                self._counters.config_rejections += 1
            state = self._latest_state
            # SERVO_MISSING with torque off: rescan before the next CONFIG (None: the ordinary retry).
            self._rescan_in = self._missing.rejected(exc, torque_on=state is not None and state.torque_on)
            if not self._missing.repeat:
                self._emit(LinkEvent.CONFIG_REJECTED, exc.message)
            raise
        if self._missing.streak or not _lists_configured_servos(handshake, self.config):
            # The MCU pinged the configured servos its scan had not listed (missed by it, or beyond its id
            # range) at CONFIG and found them: refresh the servo list the handshake reports.
            with contextlib.suppress(McuTimeout):
                refreshed = self._request_handshake()
                if refreshed.boot_id == handshake.boot_id:
                    self._handshake = handshake = refreshed
        self._missing.accepted(self._counters.rescans)
        if self._estop_wanted:
            self._await(self._command(MsgType.ESTOP, b""), "ESTOP")
        elif self._torque_wanted and self.restore_torque:
            state = self._latest_state
            if state is None or not state.torque_on or state.boot_id != handshake.boot_id:
                try:
                    self._await(self._command(MsgType.TORQUE, encode_torque(True)), "TORQUE")
                except McuCommandRejected as exc:
                    # A HOLD or e-stop on the MCU outranks our wish; the application acknowledges it first.
                    log.warning("torque not restored: %s", exc)
        self._last_error = ""
        self._ready.set()
        self._emit(
            LinkEvent.CONNECTED, f"{handshake.board} firmware {handshake.firmware_version} on {self.port}"
        )

    def _request_handshake(self, *, rescan: bool = False) -> Handshake:
        for attempt in range(3):
            future: Future[Handshake] = Future()
            self._hello = future
            # Only the first attempt rescans: a slow scan's late reply must not queue up a second scan.
            scan = rescan and attempt == 0
            self._command(MsgType.HELLO, encode_hello(rescan=scan), track=False)
            if scan:
                with self._lock:
                    self._counters.rescans += 1
            try:
                return future.result(self.rescan_timeout_s if scan else self.handshake_timeout_s)
            except TimeoutError:
                if self._closed.is_set() or self._session is None or self._session.ended.is_set():
                    break
        raise McuTimeout(f"no HELLO_REPLY from {self.port}: is the spinal firmware running on it?")

    def _await(self, future: Future[None], what: str) -> None:
        try:
            future.result(self.command_timeout_s)
        except TimeoutError:
            raise McuTimeout(
                f"MCU did not acknowledge {what} within {self.command_timeout_s:.1f} s"
            ) from None

    def _command(self, msg_type: MsgType, payload: bytes, *, track: bool = True) -> Future[None]:
        future: Future[None] = Future()
        session = self._session
        if session is None or session.ended.is_set():
            future.set_exception(
                McuNotConnected(f"MCU link on {self.port} is down; the driver is reconnecting")
            )
            return future
        with self._cond:
            self._commands.append(_Command(msg_type, payload, future if track else None))
            self._cond.notify()
        if not track:
            future.set_result(None)
        return future

    def _has_output(self) -> bool:
        return (
            bool(self._commands)
            or (self._targets_pending and self._ready.is_set())
            or self._heartbeat_pending
        )

    def _idle_keepalive_due(self, last_write: float) -> bool:
        # Only while the MCU's torque is off does the driver feed the watchdog by itself: with torque on,
        # liveness must come from the control loop (targets or heartbeat()), so a stalled loop makes the arm
        # HOLD. With torque off it keeps an idle link quiet, and it covers its own re-handshake after a reboot,
        # when it holds the application's targets back (torque is restored from the present position after).
        if not self.idle_keepalive:
            return False
        state = self._latest_state
        if state is None or state.torque_on:
            return False
        if self._ready.is_set() and self._torque_wanted:
            return False  # torque is about to come on at the application's request: its targets count now
        return time.monotonic() - last_write >= self._keepalive_s

    def _next_seq(self) -> int:
        with self._lock:
            self._seq = (self._seq + 1) & 0xFFFF
            return self._seq

    def _count_tx(self, *, targets: bool = False, heartbeat: bool = False) -> None:
        with self._lock:
            self._counters.frames_tx += 1
            if targets:
                self._counters.targets_sent += 1
            if heartbeat:
                self._counters.heartbeats_sent += 1

    # ---- internals: incoming frames ---------------------------------------------------------------------------

    def _dispatch(self, frame: Frame) -> None:
        now = time.monotonic()
        with self._lock:
            self._counters.frames_rx += 1
            if self._rx_seq is not None:
                gap = (frame.seq - self._rx_seq - 1) & 0xFFFF
                if 0 < gap < 1000:  # larger jumps are a reboot, reported as such
                    self._counters.dropped_frames += gap
            self._rx_seq = frame.seq
        try:
            if frame.msg_type == MsgType.STATE:
                self._on_state(decode_state(frame.payload, frame.seq, now))
            elif frame.msg_type == MsgType.LEADER:
                self._on_leader(decode_leader(frame.payload, frame.seq, now))
            elif frame.msg_type == MsgType.ACK:
                ack = decode_ack(frame.payload)
                self._resolve(ack.ref_seq, None)
            elif frame.msg_type == MsgType.ERROR:
                err = decode_error(frame.payload)
                with self._lock:
                    self._counters.mcu_errors += 1
                name = _type_name(err.ref_type)
                rejected = McuCommandRejected(err.code, err.code_name, err.message, name)
                if not self._resolve(err.ref_seq, rejected):
                    self._warn_rate_limited(f"MCU rejected {name}: {err.message} ({err.code_name})")
            elif frame.msg_type == MsgType.HELLO_REPLY:
                handshake = decode_handshake(frame.payload)
                hello = self._hello
                if hello is not None and not hello.done():
                    hello.set_result(handshake)
            elif frame.msg_type == MsgType.LOG:
                line = decode_log(frame.payload)
                self.recent_logs.append((line.level, line.text))
                firmware_log.log(line.level, "%s", line.text)
            else:
                raise McuProtocolError(f"unknown message type 0x{frame.msg_type:02x} from the MCU")
        except McuProtocolError as exc:
            with self._lock:
                self._payload_errors += 1
                self._counters.bad_frames += 1
            log.warning("dropped a frame from the MCU: %s", exc)

    def _warn_rate_limited(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_warning >= 1.0:
            suppressed = self._suppressed_warnings
            self._last_warning, self._suppressed_warnings = now, 0
            log.warning(
                "%s%s", message, f" (and {suppressed} more since the last report)" if suppressed else ""
            )
        else:
            self._suppressed_warnings += 1

    def _resolve(self, seq: int, error: Exception | None) -> bool:
        with self._lock:
            cmd = self._pending.pop(seq, None)
        if cmd is None or cmd.future is None or cmd.future.done():
            return False
        if error is None:
            cmd.future.set_result(None)
        else:
            cmd.future.set_exception(error)
        return True

    def _on_state(self, state: McuState) -> None:
        previous = self._latest_state
        handshake = self._handshake
        lost = handshake is not None and (state.boot_id != handshake.boot_id or not state.configured)
        if lost and self._ready.is_set():
            # The MCU rebooted or lost its configuration: hold targets back, handshake and configure again.
            self._ready.clear()
            self._resync = True
            self._wake.set()
        with self._state_cond:
            self._latest_state = state
            self._state_cond.notify_all()
        # With no earlier state the baseline is "no flags": a HOLD or e-stop already on is still reported.
        self._transitions(previous.flags if previous is not None else StateFlag.NONE, state.flags)
        for listener in self._state_listeners:
            _call(listener, state)

    def _transitions(self, before: StateFlag, after: StateFlag) -> None:
        changed = before ^ after
        if changed & StateFlag.HOLD:
            if after & StateFlag.HOLD:
                self._emit(LinkEvent.HOLD_ENTERED, "link watchdog fired on the MCU: holding position")
            else:
                self._emit(LinkEvent.HOLD_CLEARED, "hold acknowledged")
        if changed & StateFlag.ESTOP:
            if after & StateFlag.ESTOP:
                self._emit(LinkEvent.ESTOP_ENTERED, "e-stop latched: torque off")
            else:
                self._emit(LinkEvent.ESTOP_CLEARED, "e-stop cleared")

    def _on_leader(self, leader: LeaderState) -> None:
        self._latest_leader = leader
        for listener in self._leader_listeners:
            _call(listener, leader)

    def _emit(self, event: LinkEvent, detail: str) -> None:
        log.info("mcu link %s: %s", event.value, detail)
        for listener in self._event_listeners:
            _call(listener, event, detail)


def _call(listener: Callable[..., None], *args: object) -> None:
    try:
        listener(*args)
    except Exception:  # a listener's bug must not stop the reader thread
        log.exception("mcu link listener %r failed", listener)


def _type_name(msg_type: int) -> str:
    try:
        return MsgType(msg_type).name
    except ValueError:
        return f"type 0x{msg_type:02x}"


def _lists_configured_servos(handshake: Handshake, config: LinkConfig) -> bool:
    """Whether the handshake's bus lists hold every follower and leader id the configuration names."""
    buses = handshake.buses

    def listed(bus: int, ids: Iterable[int]) -> bool:
        return bus < len(buses) and set(ids) <= set(buses[bus])

    return listed(0, (j.servo_id for j in config.joints)) and (
        not config.leader_ids or listed(config.leader_bus, config.leader_ids)
    )
