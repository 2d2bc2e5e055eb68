"""What the firmware sends (STATE, LEADER, LOG, ACK) is byte-for-byte the shared vectors."""

from array import array

from fakes import unhex, vector
from rigs import Bench
from spinalfw import proto


def _capture(b, build):
    b.hal.link.take()
    build()
    return b.hal.link.take()


def test_state_frame_matches_vector():
    v = vector("state_three_joints")
    f = v["fields"]
    b = Bench()
    fw = b.fw
    fw.boot_id = f["boot_id"]
    fw.configured = True
    fw.torque = True
    fw.leader_read = object()  # FLAG_LEADER
    fw.sticky = f["flags"] & ~(proto.FLAG_TORQUE | proto.FLAG_CONFIGURED | proto.FLAG_LEADER)
    fw.last_target_seq = f["last_target_seq"]
    fw.period_mean, fw.period_max = f["period_mean_us"], f["period_max_us"]
    fw.work_mean, fw.work_max = f["work_mean_us"], f["work_max_us"]
    fw.overruns = f["overruns"]
    fw.link.rx_frames, fw.link.rx_crc_errors = f["rx_frames"], f["rx_crc_errors"]
    fw.link.rx_bad_frames, fw.link.tx_dropped = f["rx_bad_frames"], f["tx_dropped"]
    fw.buses[0].timeouts, fw.buses[0].checksum_errors = f["bus_errors"], 0
    fw.alloc_ticks, fw.hold_after_ms = f["alloc_ticks"], f["hold_after_ms"]
    fw.n = len(f["joints"])
    for i, j in enumerate(f["joints"]):
        fw.pos[i], fw.vel[i], fw.load[i] = j["position"], j["velocity"], j["load"]
        fw.volt[i], fw.temp[i], fw.jstatus[i] = j["voltage_dv"], j["temperature"], j["status"]
    fw.link.tx_seq = v["seq"]
    assert _capture(b, lambda: fw.send_state(f["uptime_ms"])) == unhex(v["wire_hex"])


def test_unconfigured_state_frame_matches_vector():
    v = vector("state_unconfigured")
    f = v["fields"]
    b = Bench()
    fw = b.fw
    fw.boot_id = f["boot_id"]
    fw.period_mean, fw.period_max = f["period_mean_us"], f["period_max_us"]
    fw.work_mean, fw.work_max = f["work_mean_us"], f["work_max_us"]
    fw.link.tx_dropped = f["tx_dropped"]
    fw.link.rx_frames = 0
    fw.link.tx_seq = v["seq"]
    assert _capture(b, lambda: fw.send_state(f["uptime_ms"])) == unhex(v["wire_hex"])


def test_leader_frame_matches_vector():
    v = vector("leader_two_joints")
    f = v["fields"]
    b = Bench()
    fw = b.fw
    fw.leader_n = 2
    fw.leader_pos = array("i", f["positions"] + [0] * 6)
    fw.leader_status = bytearray(f["status"] + [0] * 6)
    fw.link.tx_seq = v["seq"]
    assert _capture(b, lambda: fw.send_leader(f["uptime_ms"])) == unhex(v["wire_hex"])


def test_ack_and_log_frames_match_vectors():
    b = Bench()
    fw = b.fw
    v = vector("ack_config")
    fw.link.tx_seq = v["seq"]
    assert _capture(b, lambda: fw.ack(v["fields"]["ref_seq"], v["fields"]["ref_type"])) == unhex(v["wire_hex"])
    v = vector("log_hold")
    fw.link.tx_seq = v["seq"]
    text = v["fields"]["text"].encode()
    assert _capture(b, lambda: fw.log(v["fields"]["level"], text)) == unhex(v["wire_hex"])
