"""McuLink against a scripted fake MCU on a pty: handshake, commands, reconnects, reboots, counters."""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from spinal_edge.mcu import (
    ErrorCode,
    JointLimits,
    LinkConfig,
    LinkEvent,
    McuCommandRejected,
    McuLink,
    McuNotConnected,
    McuProtocolError,
    McuTimeout,
    MsgType,
    StateFlag,
)
from spinal_edge.mcu.messages import encode_config, encode_hello

CONFIG = LinkConfig(joints=tuple(JointLimits(i, 1000, 3000, 20) for i in range(1, 7)), link_timeout_ms=200)


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[LinkEvent, str]] = []
        self.cond = threading.Condition()

    def __call__(self, event: LinkEvent, detail: str) -> None:
        with self.cond:
            self.seen.append((event, detail))
            self.cond.notify_all()

    def wait_for(self, event: LinkEvent, count: int = 1, timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: [e for e, _ in self.seen].count(event) >= count, timeout)


@pytest.fixture
def link(fake_mcu) -> Iterator[McuLink]:
    mcu_link = McuLink(fake_mcu.path, CONFIG, reconnect_interval_s=0.05, handshake_timeout_s=0.5)
    try:
        yield mcu_link
    finally:
        mcu_link.close()


def test_ready_after_handshake_with_configuration_pushed(fake_mcu, link: McuLink) -> None:
    handshake = link.start().wait_ready(5)
    assert (
        handshake.boot_id == 0x1111 and handshake.board == "fake" and handshake.buses == ((1, 2, 3, 4, 5, 6),)
    )
    assert fake_mcu.payloads(MsgType.CONFIG) == [encode_config(CONFIG)]
    state = link.wait_for_state(lambda s: s.configured, 5)
    assert len(state.joints) == 6


def test_targets_given_before_the_link_is_up_deliver_only_the_newest(fake_mcu, link: McuLink) -> None:
    link.send_targets([1500] * 6)
    link.send_targets([1600] * 6)
    assert link.counters().targets_superseded == 1
    link.start().wait_ready(5)
    assert wait_until(lambda: fake_mcu.payloads(MsgType.TARGETS))
    assert fake_mcu.payloads(MsgType.TARGETS)[0] == bytes([6]) + struct.pack("<6H", *[1600] * 6)


def test_targets_of_wrong_length_are_refused_at_once(link: McuLink) -> None:
    with pytest.raises(McuProtocolError, match="5 targets for 6 configured joints"):
        link.send_targets([2000] * 5)


def test_rejected_command_raises_with_the_mcu_sentence(fake_mcu, link: McuLink) -> None:
    link.start().wait_ready(5)
    fake_mcu.reject[MsgType.TORQUE] = (ErrorCode.ESTOP_LATCHED, b"e-stop latched: send ESTOP_CLEAR")
    with pytest.raises(McuCommandRejected, match="e-stop latched") as info:
        link.set_torque(True).result(2)
    assert info.value.code_name == "ESTOP_LATCHED"
    assert link.counters().mcu_errors == 1


def test_rejected_configuration_keeps_the_link_unready_and_says_why(fake_mcu, link: McuLink) -> None:
    events = Events()
    link.add_event_listener(events)
    fake_mcu.reject[MsgType.CONFIG] = (ErrorCode.SERVO_MISSING, b"servo id 7 not found on the follower bus")
    link.start()
    assert events.wait_for(LinkEvent.CONFIG_REJECTED)
    with pytest.raises(McuTimeout, match="servo id 7 not found"):
        link.wait_ready(0.5)
    del fake_mcu.reject[MsgType.CONFIG]
    link.wait_ready(5)  # retried, and accepted once the wiring is fixed


def test_servo_missing_at_config_rescans_the_buses_with_backoff_and_reports_once(
    fake_mcu, link: McuLink, caplog: pytest.LogCaptureFixture
) -> None:
    events = Events()
    link.add_event_listener(events)
    fake_mcu.reject[MsgType.CONFIG] = (ErrorCode.SERVO_MISSING, b"servo id 1 not found on the follower bus")
    with caplog.at_level(logging.DEBUG, logger="spinal_edge.mcu"):
        link.start()
        assert wait_until(lambda: link.counters().config_rejections >= 3, 10)
        del fake_mcu.reject[MsgType.CONFIG]  # the servo answers the next scan
        link.wait_ready(10)
    hellos = fake_mcu.payloads(MsgType.HELLO)
    assert hellos[0] == encode_hello(rescan=False)
    # Every handshake after a SERVO_MISSING rejection asks the MCU to rescan before CONFIG is sent again;
    # once CONFIG is accepted a plain HELLO refreshes the servo list the handshake reports.
    assert all(h == encode_hello(rescan=True) for h in hellos[1:-1])
    assert hellos[-1] == encode_hello(rescan=False)
    counters = link.counters()
    assert counters.rescans == len(hellos) - 2 >= 3
    assert counters.config_rejections == counters.rescans
    assert [e for e, _ in events.seen].count(LinkEvent.CONFIG_REJECTED) == 1
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "servo id 1" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert not link.last_error


def test_a_configured_servo_the_boot_scan_did_not_list_is_listed_once_config_found_it(
    fake_mcu, link: McuLink
) -> None:
    fake_mcu.found = [2, 3, 4, 5, 6]  # the boot scan missed id 1; the MCU pings it at CONFIG and finds it
    link.start()
    link.wait_ready(10)
    assert link.handshake is not None and link.handshake.buses[0] == (1, 2, 3, 4, 5, 6)
    assert fake_mcu.payloads(MsgType.HELLO) == [encode_hello(rescan=False)] * 2
    assert link.counters().rescans == 0 and link.counters().config_rejections == 0


def test_a_handshake_listing_every_configured_servo_is_not_asked_again(fake_mcu, link: McuLink) -> None:
    link.start()
    link.wait_ready(10)
    assert fake_mcu.payloads(MsgType.HELLO) == [encode_hello(rescan=False)]


def test_other_config_rejections_are_retried_without_a_rescan(fake_mcu, link: McuLink) -> None:
    fake_mcu.reject[MsgType.CONFIG] = (ErrorCode.BAD_CONFIG, b"link_timeout_ms must be 10..60000")
    link.start()
    assert wait_until(lambda: link.counters().config_rejections >= 2, 10)
    assert all(h == encode_hello(rescan=False) for h in fake_mcu.payloads(MsgType.HELLO))
    assert link.counters().rescans == 0


def test_servo_missing_with_torque_on_asks_for_no_rescan(fake_mcu, link: McuLink) -> None:
    fake_mcu.torque = True  # the MCU refuses to rescan with torque on: asking would only stall its loop
    fake_mcu.reject[MsgType.CONFIG] = (ErrorCode.SERVO_MISSING, b"servo id 1 not found on the follower bus")
    link.start()
    link.wait_for_state(lambda s: s.torque_on, 5)
    rejections = link.counters().config_rejections
    assert wait_until(lambda: link.counters().config_rejections >= rejections + 2, 10)
    # A rejection that came before the first STATE may have asked once; none since the torque was known.
    assert fake_mcu.payloads(MsgType.HELLO)[-1] == encode_hello(rescan=False)
    assert link.counters().rescans <= 1


def test_protocol_version_mismatch_asks_for_matching_firmware(fake_mcu, link: McuLink) -> None:
    fake_mcu.protocol_version = 9
    link.start()
    with pytest.raises(McuTimeout, match="speaks link protocol 9.*flash matching firmware"):
        link.wait_ready(1.5)


def test_missing_port_is_named_in_the_timeout(tmp_path: Path) -> None:
    with (
        McuLink(str(tmp_path / "ttyACM9"), CONFIG, reconnect_interval_s=0.05) as link,
        pytest.raises(McuTimeout, match="cannot open .*ttyACM9"),
    ):
        link.wait_ready(0.5)


def test_commands_while_disconnected_fail_fast_and_estop_is_reasserted_on_connect(
    fake_mcu, tmp_path: Path
) -> None:
    fake_mcu.unplug()
    with McuLink(fake_mcu.path, CONFIG, reconnect_interval_s=0.05) as link:
        future = link.estop()
        with pytest.raises(McuNotConnected):
            future.result(1)
        fake_mcu.plug()
        link.wait_ready(5)
        assert MsgType.ESTOP in fake_mcu.types_received()
        assert link.wait_for_state(lambda s: s.estopped, 5)


def test_unplug_and_replug_reconnects(fake_mcu, link: McuLink) -> None:
    events = Events()
    link.add_event_listener(events)
    link.start().wait_ready(5)
    fake_mcu.unplug()
    assert events.wait_for(LinkEvent.DISCONNECTED)
    assert not link.ready
    time.sleep(0.2)
    fake_mcu.plug()
    assert events.wait_for(LinkEvent.CONNECTED, count=2)
    assert link.counters().reconnects == 1
    assert fake_mcu.types_received().count(MsgType.CONFIG) == 2


def test_mcu_reboot_is_detected_and_torque_restored(fake_mcu, link: McuLink) -> None:
    events = Events()
    link.add_event_listener(events)
    link.start().wait_ready(5)
    link.set_torque(True).result(2)
    fake_mcu.reboot(boot_id=0x2222)
    assert events.wait_for(LinkEvent.RESTARTED)
    assert link.wait_for_state(lambda s: s.boot_id == 0x2222 and s.torque_on and s.configured, 5)
    assert link.counters().restarts == 1
    assert link.handshake is not None and link.handshake.boot_id == 0x2222


def test_corrupted_frames_are_counted_not_delivered(fake_mcu, link: McuLink) -> None:
    link.start().wait_ready(5)
    seen: list[int] = []
    link.add_state_listener(lambda s: seen.append(s.seq))
    fake_mcu.corrupt_next = 3
    assert wait_until(lambda: link.counters().crc_errors + link.counters().bad_frames == 3)
    assert wait_until(lambda: len(seen) > 3)


def test_gaps_in_mcu_sequence_numbers_count_as_dropped_frames(fake_mcu, link: McuLink) -> None:
    link.start().wait_ready(5)
    fake_mcu.skip_seq_next = 5
    assert wait_until(lambda: link.counters().dropped_frames == 5)


def test_driver_keeps_the_link_alive_only_while_torque_is_off(fake_mcu, link: McuLink) -> None:
    link.start().wait_ready(5)
    assert wait_until(lambda: fake_mcu.types_received().count(MsgType.HEARTBEAT) >= 3)
    link.set_torque(True).result(2)
    link.wait_for_state(lambda s: s.torque_on, 5)
    before = fake_mcu.types_received().count(MsgType.HEARTBEAT)
    time.sleep(0.3)  # 6 keepalive periods: a stalled control loop must not be masked by the driver
    assert fake_mcu.types_received().count(MsgType.HEARTBEAT) == before
    link.heartbeat()
    assert wait_until(lambda: fake_mcu.types_received().count(MsgType.HEARTBEAT) == before + 1)


def test_hold_is_reported_and_acknowledged(fake_mcu, link: McuLink) -> None:
    events = Events()
    link.add_event_listener(events)
    link.start().wait_ready(5)
    fake_mcu.hold = True
    assert events.wait_for(LinkEvent.HOLD_ENTERED)
    link.acknowledge_hold().result(2)
    assert events.wait_for(LinkEvent.HOLD_CLEARED)
    assert not link.latest_state.flags & StateFlag.HOLD


def test_a_failing_listener_does_not_stop_the_reader(fake_mcu, link: McuLink) -> None:
    def broken(_state) -> None:
        raise RuntimeError("listener bug")

    link.add_state_listener(broken)
    link.start().wait_ready(5)
    first = link.counters().frames_rx
    assert wait_until(lambda: link.counters().frames_rx > first + 5)
