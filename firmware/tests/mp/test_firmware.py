"""Behaviour of the firmware's loop under MicroPython: boot, limits, stepping, watchdog, e-stop, leader."""

import host
from fakes import unhex, vector
from rigs import SIX, Bench, error_code, parse_state
from spinalfw import proto


def test_boot_turns_torque_off_and_discovers_servos():
    b = Bench()
    assert b.hal.bus.broadcast_torque_off == 1
    assert b.fw.found == [[1, 2, 3, 4, 5, 6]]


def test_state_is_sent_before_configuration_with_no_joints():
    b = Bench()
    b.tick()
    state = b.last_state()
    assert state["joints"] == []
    assert not state["flags"] & proto.FLAG_CONFIGURED


def test_hello_reply_reports_versions_board_and_servos_found():
    b = Bench(leader=True, leader_ids=(1, 2, 3))
    b.fw.boot_id = 0xBEEF
    v = vector("hello_reply")
    b.hal.link.feed(unhex(vector("hello")["wire_hex"]))
    b.fw.link.tx_seq = v["seq"]
    b.fw.tick_count = -1000  # keep STATE out of the captured bytes
    b.tick()
    assert b.hal.link.take() == unhex(v["wire_hex"])


def test_config_vector_sets_joints_limits_steps_and_leader():
    b = Bench(leader=True)
    b.hal.link.feed(unhex(vector("config_follower_and_leader")["wire_hex"]))
    b.tick()
    fields = vector("config_follower_and_leader")["fields"]
    fw = b.fw
    assert fw.configured and fw.n == 6
    for i, j in enumerate(fields["joints"]):
        assert (fw.ids[i], fw.lo[i], fw.hi[i], fw.step[i]) == (j["id"], j["min"], j["max"], j["max_step"])
    assert fw.link_timeout_ms == 200 and fw.rate_hz == 200 and fw.state_every == 2
    assert fw.leader_n == 6 and fw.leader_bus == 1
    assert all(b.hal.leader_bus.servos[sid].torque() == 0 for sid in range(1, 7))


def test_targets_vector_is_clamped_to_the_configured_limits():
    b = Bench(leader=True)
    b.hal.link.feed(unhex(vector("config_follower_and_leader")["wire_hex"]))
    b.tick()
    b.torque_on()
    b.hal.link.feed(unhex(vector("targets_six")["wire_hex"]))
    b.tick(2)  # the vector's config sends STATE every second tick
    joints = vector("config_follower_and_leader")["fields"]["joints"]
    wanted = vector("targets_six")["fields"]["positions"]
    for i, j in enumerate(joints):
        assert b.fw.target[i] == min(max(wanted[i], j["min"]), j["max"])
    assert b.fw.last_target_seq == vector("targets_six")["seq"]
    assert b.last_state()["flags"] & proto.FLAG_LIMITED


def test_out_of_range_targets_never_reach_the_servos():
    b = Bench()
    b.configure()
    b.torque_on()
    for _ in range(400):
        b.targets([0, 4095, 5000, 0, 4095, 65535])
        b.tick()
    for sid in range(1, 7):
        goal = b.servo(sid).goal()
        assert 1000 <= goal <= 3000, (sid, goal)
    assert [b.servo(s).goal() for s in range(1, 7)] == [1000, 3000, 3000, 1000, 3000, 3000]


def test_goal_moves_at_most_max_step_per_tick():
    b = Bench()
    b.configure(joints=((1, 0, 4095, 7),), state_every=1)
    b.torque_on()
    start = b.servo(1).goal()
    previous = start
    for _ in range(10):
        b.targets([start + 500])
        b.tick()
        goal = b.servo(1).goal()
        assert goal - previous == 7, (previous, goal)
        previous = goal


def test_torque_on_starts_from_the_present_position():
    b = Bench()
    b.servo(3).set_position(1500)
    b.configure()
    b.torque_on()
    assert b.servo(3).torque() == 1
    assert b.servo(3).goal() == 1500
    assert b.fw.target[2] == 1500


def test_torque_on_rides_over_a_lost_feedback_answer():
    b = Bench()
    b.configure()
    b.servo(2).silent_reads = 2
    b.torque_on()  # the read is tried again: ACK
    assert b.fw.torque and b.servo(2).torque() == 1


def test_torque_on_is_refused_when_a_servo_stays_silent():
    b = Bench()
    b.configure()
    b.servo(2).silent = True
    seq = b.send(proto.MSG_TORQUE, b"\x01")
    b.tick()
    errors = [f for f in b.replies(proto.MSG_ERROR) if f[2][:2] == host.u16(seq)]
    assert errors and error_code(errors[-1]) == proto.ERR_BUS
    assert not b.fw.torque and b.servo(1).torque() == 0


def test_targets_are_ignored_while_torque_is_off():
    b = Bench()
    b.configure()
    b.targets([2500] * 6)
    b.tick()
    assert b.fw.target[0] == 2048
    assert b.last_state()["flags"] & proto.FLAG_TARGETS_IGNORED


def test_link_silence_enters_hold_within_timeout_plus_one_tick():
    b = Bench()
    b.configure(timeout_ms=200)
    b.torque_on()
    b.targets([2300] * 6)
    b.tick()
    sent_at = b.clock.now
    while not b.fw.hold:
        b.tick(ms=5)
        assert b.clock.now - sent_at <= 200 + 5, "no HOLD within link_timeout + one period"
    state = b.last_state()
    assert state["flags"] & proto.FLAG_HOLD
    assert 200 < state["hold_after_ms"] <= 205
    held = [b.servo(s).goal() for s in range(1, 7)]
    b.targets([2900] * 6)  # ignored until the host acknowledges the HOLD
    b.tick(5)
    assert [b.servo(s).goal() for s in range(1, 7)] == held


def test_hold_ack_resumes_control_from_the_held_position():
    b = Bench()
    b.configure()
    b.torque_on()
    b.tick(50)
    assert b.fw.hold
    held = b.servo(1).goal()
    b.send(proto.MSG_HOLD_ACK)
    b.tick()
    assert not b.fw.hold
    assert b.fw.target[0] == held
    b.targets([held + 100] * 6)
    b.tick()
    assert b.servo(1).goal() == held + 20


def test_heartbeat_keeps_the_watchdog_quiet():
    b = Bench()
    b.configure()
    b.torque_on()
    for _ in range(100):
        b.send(proto.MSG_HEARTBEAT)
        b.tick(ms=10)
    assert not b.fw.hold


def test_estop_message_turns_torque_off_and_blocks_torque_until_cleared():
    b = Bench()
    b.configure()
    b.torque_on()
    b.send(proto.MSG_ESTOP)
    b.tick()
    assert all(b.servo(s).torque() == 0 for s in range(1, 7))
    seq = b.send(proto.MSG_TORQUE, b"\x01")
    b.tick()
    errors = b.replies(proto.MSG_ERROR)
    assert errors and error_code(errors[-1]) == proto.ERR_ESTOP_LATCHED and errors[-1][2][:2] == host.u16(seq)
    b.send(proto.MSG_ESTOP_CLEAR)
    b.tick()
    assert not b.fw.estop
    assert b.servo(1).torque() == 0, "clearing the e-stop must not switch torque back on"
    b.torque_on()
    assert b.servo(1).torque() == 1


def test_estop_error_frame_matches_the_vector():
    b = Bench()
    b.configure()
    b.send(proto.MSG_ESTOP)
    b.tick()
    b.frames()
    v = vector("error_estop_latched")
    b.fw.link.tx_seq = v["seq"]
    b.fw.tick_count = -1000
    b.hal.link.feed(host.frame(proto.MSG_TORQUE, 5, b"\x01"))
    b.tick()
    assert b.hal.link.take() == unhex(v["wire_hex"])


def test_estop_input_turns_torque_off_and_clear_is_refused_while_pressed():
    b = Bench()
    b.configure()
    b.torque_on()
    b.hal.estop.pressed = True
    b.tick()
    assert b.fw.estop and all(b.servo(s).torque() == 0 for s in range(1, 7))
    b.send(proto.MSG_ESTOP_CLEAR)
    b.tick()
    errors = b.replies(proto.MSG_ERROR)
    assert errors and error_code(errors[-1]) == proto.ERR_ESTOP_INPUT
    b.hal.estop.pressed = False
    b.send(proto.MSG_ESTOP_CLEAR)
    b.tick()
    assert not b.fw.estop


def test_corrupted_target_frame_is_counted_and_not_acted_on():
    b = Bench()
    b.configure()
    b.torque_on()
    wire = bytearray(host.frame(proto.MSG_TARGETS, 9, host.targets_payload([2900] * 6)))
    wire[5] ^= 0x04
    b.hal.link.feed(wire)
    b.tick(3)
    assert b.fw.target[0] == 2048
    assert b.last_state()["rx_crc_errors"] == 1


def test_config_is_refused_while_torque_is_on_unless_identical():
    b = Bench()
    b.configure()
    b.torque_on()
    seq = b.send(proto.MSG_CONFIG, host.config_payload(SIX))
    b.tick()
    assert any(f[0] == proto.MSG_ACK and f[2][:2] == host.u16(seq) for f in b.frames())
    changed = ((1, 0, 4095, 5),) + SIX[1:]
    b.send(proto.MSG_CONFIG, host.config_payload(changed))
    b.tick()
    errors = b.replies(proto.MSG_ERROR)
    assert errors and error_code(errors[-1]) == proto.ERR_TORQUE_ON


def test_config_naming_a_missing_servo_is_rejected_with_its_id():
    b = Bench(ids=(1, 2, 3))
    b.send(proto.MSG_CONFIG, host.config_payload(((1, 0, 4095, 5), (7, 0, 4095, 5))))
    b.tick()
    frames = b.frames()
    errors = [f for f in frames if f[0] == proto.MSG_ERROR]
    assert errors and error_code(errors[-1]) == proto.ERR_SERVO_MISSING
    assert b"servo id 7" in errors[-1][2]
    assert not b.fw.configured
    states = [f for f in frames if f[0] == proto.MSG_STATE]
    assert parse_state(states[-1][2])["bus_errors"] == 0, "the ping looking for servo 7 is no bus fault"


def hello_reply_buses(payload):
    """The servo ids per bus listed in a HELLO_REPLY payload."""
    buses = []
    o = 10
    for _ in range(payload[9]):
        count = payload[o]
        buses.append(list(payload[o + 1 : o + 1 + count]))
        o += 1 + count
    return buses


def test_hello_with_rescan_finds_a_servo_missed_at_boot_without_counting_bus_errors():
    b = Bench()
    b.servo(1).silent = True  # answers late at boot: the scan misses it
    b.fw.boot()
    b.hal.link.take()
    assert b.fw.found == [[2, 3, 4, 5, 6]]
    b.servo(1).silent = False
    b.send(proto.MSG_HELLO, bytes((proto.PROTOCOL_VERSION, 1)))
    b.tick()
    frames = b.frames()
    replies = [f for f in frames if f[0] == proto.MSG_HELLO_REPLY]
    assert replies and hello_reply_buses(replies[-1][2]) == [[1, 2, 3, 4, 5, 6]]
    states = [f for f in frames if f[0] == proto.MSG_STATE]
    assert states and parse_state(states[-1][2])["bus_errors"] == 0, "discovery pings counted as bus errors"
    b.configure()  # the servo the boot scan missed is accepted now


def test_a_servo_the_boot_scan_missed_but_config_found_is_listed_in_id_order():
    b = Bench()
    b.servo(3).silent = True  # answers late at boot: the scan misses it
    b.fw.boot()
    b.hal.link.take()
    b.servo(3).silent = False
    b.configure()  # pinged again at CONFIG, and found
    b.send(proto.MSG_HELLO, bytes((proto.PROTOCOL_VERSION, 0)))
    b.tick()
    replies = b.replies(proto.MSG_HELLO_REPLY)
    assert replies and hello_reply_buses(replies[-1][2]) == [[1, 2, 3, 4, 5, 6]]


def test_hello_without_the_rescan_flag_or_with_torque_on_keeps_the_servos_found():
    b = Bench(ids=(1, 2, 3, 4, 5, 6, 7))
    b.configure()
    b.torque_on()
    b.hal.bus.servos[7].silent = True
    b.send(proto.MSG_HELLO, bytes((proto.PROTOCOL_VERSION, 1)))  # rescan refused: torque is on
    b.send(proto.MSG_HELLO, bytes((proto.PROTOCOL_VERSION, 0)))
    b.tick()
    replies = b.replies(proto.MSG_HELLO_REPLY)
    assert len(replies) == 2
    assert all(hello_reply_buses(r[2]) == [[1, 2, 3, 4, 5, 6, 7]] for r in replies)


def test_malformed_payloads_are_rejected_not_applied():
    b = Bench()
    b.configure()
    b.torque_on()
    b.send(proto.MSG_TARGETS, host.targets_payload([2500] * 5))
    b.send(proto.MSG_TORQUE, b"\x01\x01")
    b.send(proto.MSG_CONFIG, b"\x01\x02")
    b.send(0x3E, b"")
    b.tick()
    codes = [error_code(f) for f in b.replies(proto.MSG_ERROR)]
    assert codes == [proto.ERR_BAD_PAYLOAD, proto.ERR_BAD_PAYLOAD, proto.ERR_TORQUE_ON, proto.ERR_UNKNOWN_TYPE]
    assert b.fw.target[0] == 2048


def test_leader_positions_are_streamed_each_state():
    b = Bench(leader=True)
    b.configure(leader_bus=1, leader_ids=(1, 2, 3, 4, 5, 6))
    b.hal.leader_bus.servos[4].set_position(3333)
    b.tick()
    leaders = b.replies(proto.MSG_LEADER)
    assert leaders
    p = leaders[-1][2]
    assert p[4] == 6
    assert p[5 + 3 * 3] | (p[6 + 3 * 3] << 8) == 3333


def test_silent_servo_is_flagged_and_keeps_its_last_position():
    b = Bench()
    b.configure()
    b.servo(2).silent = True
    b.tick()
    state = b.last_state()
    assert state["flags"] & proto.FLAG_BUS_TIMEOUT
    assert state["joints"][1]["status"] & proto.JOINT_NO_RESPONSE
    assert state["joints"][1]["pos"] == 2048


def test_exit_to_repl_is_refused_with_torque_on_and_accepted_with_torque_off():
    b = Bench()
    b.configure()
    b.torque_on()
    b.send(proto.MSG_EXIT_TO_REPL)
    b.tick()
    assert not b.fw.exit_requested
    b.send(proto.MSG_TORQUE, b"\x00")
    b.send(proto.MSG_EXIT_TO_REPL)
    b.tick()
    assert b.fw.exit_requested


def test_leader_on_the_follower_bus_uses_other_ids_with_torque_off():
    b = Bench(ids=(1, 2, 3, 11, 12, 13))
    b.configure(joints=SIX[:3], leader_bus=0, leader_ids=(11, 12, 13))
    assert [b.servo(s).torque() for s in (11, 12, 13)] == [0, 0, 0]
    b.servo(12).set_position(3210)
    b.torque_on()
    b.tick()
    assert b.servo(12).torque() == 0, "enabling the follower must leave the leader limp"
    p = b.replies(proto.MSG_LEADER)[-1][2]
    assert p[4] == 3 and p[5 + 3] | (p[6 + 3] << 8) == 3210


def test_leader_ids_that_collide_with_follower_ids_on_one_bus_are_refused():
    b = Bench(ids=(1, 2, 3))
    b.send(proto.MSG_CONFIG, host.config_payload(SIX[:2], leader_bus=0, leader_ids=(2, 3)))
    b.tick()
    errors = b.replies(proto.MSG_ERROR)
    assert errors and error_code(errors[-1]) == proto.ERR_BAD_CONFIG
