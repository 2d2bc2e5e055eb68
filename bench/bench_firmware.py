"""Firmware benchmarks: servo-loop time per tick under the MicroPython unix port, and link throughput between
the host driver (McuLink) and the firmware, each against a peer measured in the same run.

Peers: the 5000 us budget of a 200 Hz loop, and raw pseudo-terminal throughput/round trip (the transport's floor).
"""

from __future__ import annotations

import json
import logging
import os
import select
import statistics
import subprocess
import threading
import time
import tty

from spinal_edge.mcu import ArmCalibration, McuLink, McuState
from spinal_hil.firmware_process import find_firmware_dir, find_micropython
from spinal_hil.rig import SimulatedRig

from bench.harness import Table, percentile

BUDGET_US = 5000  # one period at 200 Hz
STATE_FRAME_BYTES = 3 + 35 + 6 * 9 + 2 + 2  # header, fixed part, 6 joints, CRC, COBS byte + delimiter
TARGETS_FRAME_BYTES = 3 + 1 + 6 * 2 + 2 + 2


def _tick_microbench(ticks: int, leader: bool) -> dict[str, float]:
    script = find_firmware_dir() / "tests" / "mp" / "bench_tick.py"
    args = [find_micropython(), str(script), str(ticks)] + (["--leader"] if leader else [])
    out = subprocess.run(args, capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


class _StateStats:
    """Collects the MCU's own loop statistics (one window per second) and frame counts from STATE messages."""

    def __init__(self) -> None:
        self.windows: list[tuple[int, int, int, int]] = []
        self.frames = 0
        self.rx_frames_total = 0
        self._last_window: tuple[int, int, int, int] | None = None
        self._last_rx: int | None = None
        self.last: McuState | None = None

    def __call__(self, s: McuState) -> None:
        self.frames += 1
        self.last = s
        window = (s.period_mean_us, s.period_max_us, s.work_mean_us, s.work_max_us)
        if window != self._last_window and s.period_mean_us:
            self.windows.append(window)
            self._last_window = window
        if self._last_rx is not None:
            self.rx_frames_total += (s.rx_frames - self._last_rx) & 0xFFFF
        self._last_rx = s.rx_frames


def _rig_loop(seconds: float) -> tuple[_StateStats, McuState]:
    cal = ArmCalibration.so101_default()
    with SimulatedRig(leader=True) as rig:
        stats = _StateStats()
        with McuLink(rig.host_port, cal.link_config(leader=cal)) as link:
            link.wait_ready(15)
            link.add_state_listener(stats)
            link.set_torque(True).result(3)
            t0 = time.monotonic()
            k = 0
            while time.monotonic() - t0 < seconds:
                link.send_targets([2048 + (k % 200)] * 6)
                k += 1
                time.sleep(0.01)
            state = link.wait_for_state(lambda s: s.configured, 3)
    return stats, state


def _idle_state_rate(seconds: float) -> tuple[float, McuState]:
    """STATE frames/s from a 1000 Hz firmware with no servos on its bus: link and framing only, no bus work."""
    cal = ArmCalibration.so101_default()
    driver_log = logging.getLogger("spinal_edge.mcu.driver")
    level = driver_log.level
    driver_log.setLevel(logging.ERROR)  # the rejected CONFIG below is on purpose
    try:
        with SimulatedRig(rate_hz=1000, follower_ids=()) as rig:
            stats = _StateStats()
            # The configuration names servos this rig lacks: the MCU rejects it and streams unconfigured STATE.
            with McuLink(rig.host_port, cal.link_config()) as link:
                link.add_state_listener(stats)
                link.wait_for_state(lambda s: True, 15)
                time.sleep(1.2)  # one full statistics window
                f0, t0 = stats.frames, time.monotonic()
                time.sleep(seconds)
                rate = (stats.frames - f0) / (time.monotonic() - t0)
                return rate, link.wait_for_state(lambda s: True, 2)
    finally:
        driver_log.setLevel(level)


def _throughput(seconds: float) -> dict[str, float]:
    """STATE frames/s delivered by a 1000 Hz loop, TARGETS frames/s accepted flat out, command round trips."""
    cal = ArmCalibration.so101_default()
    idle_rate, idle = _idle_state_rate(seconds)
    out: dict[str, float] = {
        "idle_state_fps": idle_rate,
        "idle_work_us": idle.work_mean_us,
        "idle_period_us": idle.period_mean_us,
        "idle_period_max_us": idle.period_max_us,
    }
    with SimulatedRig(rate_hz=1000) as rig:
        stats = _StateStats()
        with McuLink(rig.host_port, cal.link_config()) as link:
            link.wait_ready(15)
            link.add_state_listener(stats)
            time.sleep(0.5)
            f0, t0 = stats.frames, time.monotonic()
            time.sleep(seconds)
            out["state_fps"] = (stats.frames - f0) / (time.monotonic() - t0)

            link.set_torque(True).result(3)
            stop = threading.Event()

            def flood() -> None:
                # As fast as a control loop could go: a 100 us pause per target lets the driver's writer
                # thread take the GIL (a busy loop would hold it for the 5 ms switch interval).
                k = 0
                while not stop.is_set():
                    link.send_targets([2000 + (k % 100)] * 6)
                    k += 1
                    time.sleep(0.0001)

            rx0, t0 = stats.rx_frames_total, time.monotonic()
            flooder = threading.Thread(target=flood, daemon=True)
            flooder.start()
            time.sleep(seconds)
            stop.set()
            flooder.join(2)
            elapsed = time.monotonic() - t0
            link.wait_for_state(lambda s: True, 2)
            out["targets_fps"] = (stats.rx_frames_total - rx0) / elapsed
            out["targets_sent_fps"] = link.counters().targets_sent / elapsed

            rtts = []
            for _ in range(int(40 * seconds)):
                t = time.perf_counter()
                link.heartbeat()  # keep the watchdog fed while torque is on
                link.set_torque(True).result(3)
                rtts.append((time.perf_counter() - t) * 1000)
            out["cmd_p50_ms"] = percentile(rtts, 50)
            out["cmd_p99_ms"] = percentile(rtts, 99)
    return out


def _pty_peer(seconds: float, frame_bytes: int) -> dict[str, float]:
    """Raw pty: bytes/s pushed through a pty pair by one writer and one reader thread, and echo round trips."""
    master, slave = os.openpty()
    tty.setraw(slave)
    chunk = bytes(frame_bytes)
    stop = threading.Event()
    received = [0]

    def reader() -> None:
        while not stop.is_set():
            if select.select([slave], [], [], 0.05)[0]:
                received[0] += len(os.read(slave, 65536))

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        os.write(master, chunk)
    elapsed = time.monotonic() - t0
    stop.set()
    th.join(2)
    fps = received[0] / frame_bytes / elapsed
    os.close(master)
    os.close(slave)

    master, slave = os.openpty()  # a fresh pair: no backlog from the throughput run
    tty.setraw(slave)
    stop.clear()

    def echo() -> None:
        while not stop.is_set():
            if select.select([slave], [], [], 0.05)[0]:
                os.write(slave, os.read(slave, 64))

    th = threading.Thread(target=echo, daemon=True)
    th.start()
    rtts = []
    for _ in range(int(200 * seconds)):
        t = time.perf_counter()
        os.write(master, b"x" * 16)
        got = b""
        while len(got) < 16 and select.select([master], [], [], 1)[0]:
            got += os.read(master, 64)
        rtts.append((time.perf_counter() - t) * 1000)
    stop.set()
    th.join(2)
    os.close(master)
    os.close(slave)
    return {"fps": fps, "rtt_p50_ms": percentile(rtts, 50), "rtt_p99_ms": percentile(rtts, 99)}


def run(quick: bool) -> list[Table]:
    ticks = 1000 if quick else 5000
    seconds = 1.5 if quick else 5.0

    loop = Table(
        "Firmware servo loop per tick, MicroPython unix port (this PC)",
        ["case", "ticks", "p50 us", "mean us", "p99 us", "max us", "budget us (200 Hz)", "mean / budget"],
    )
    for leader in (False, True):
        r = _tick_microbench(ticks, leader)
        name = "tick, in-memory buses, 6 joints" + (" + 6 leader" if leader else "")
        loop.add(
            name,
            ticks,
            r["p50_us"],
            r["mean_us"],
            r["p99_us"],
            r["max_us"],
            BUDGET_US,
            r["mean_us"] / BUDGET_US,
        )
        if r["alloc_ticks"]:
            loop.notes.append(f"{name}: {r['alloc_ticks']} ticks grew the heap")
    stats, state = _rig_loop(seconds)
    if stats.windows:
        work_mean = statistics.fmean(w[2] for w in stats.windows)
        work_max = max(w[3] for w in stats.windows)
        period_mean = statistics.fmean(w[0] for w in stats.windows)
        period_max = max(w[1] for w in stats.windows)
        n = int(seconds * 200)
        loop.add("tick on the simulated rig (work: 3 bus round trips)", n, "-", work_mean, "-", work_max, BUDGET_US,
                 work_mean / BUDGET_US)  # fmt: skip
        loop.add("period on the simulated rig at 200 Hz", n, "-", period_mean, "-", period_max, BUDGET_US,
                 period_mean / BUDGET_US)  # fmt: skip
        loop.notes.append(
            f"simulated rig: {state.overruns} overruns, {state.alloc_ticks} ticks that grew the heap; the rig's "
            "bus simulator and relay are Python threads on the same 2 shared cores"
        )
    wire_us = (
        26 + 14 + 6 * 17 + 14 + 6 * 8
    ) * 10  # sync write, follower sync read, leader sync read at 1 Mbps
    loop.notes += [
        "in-memory rows time Firmware.tick() with MicroPython fakes for the buses (their packet handling "
        "included); the rig rows are the MCU's own 1-s window statistics from STATE messages",
        "means and maxima include preemption by other processes on this shared machine; p50 is the tick's cost; "
        "the MCU's u16 statistics saturate at 65535 us",
        f"on a Pico the bus adds ~{wire_us} us of UART time per tick (6+6 servos at 1 Mbps); measure the real "
        "loop with the HIL scenarios on hardware (SPINAL_HIL_PORT, hil/README.md)",
    ]

    link = _throughput(seconds)
    peer_state = _pty_peer(seconds / 2, STATE_FRAME_BYTES)
    peer_targets = _pty_peer(seconds / 2, TARGETS_FRAME_BYTES)
    thr = Table(
        "Link throughput, McuLink <-> firmware (simulated rig; pty + relay thread)",
        ["measure", "spinal", "peer: raw pty", "spinal / peer"],
    )
    thr.add("STATE frames/s to host, 1000 Hz loop without servos", link["idle_state_fps"], peer_state["fps"],
            link["idle_state_fps"] / peer_state["fps"])  # fmt: skip
    thr.add("STATE frames/s to host, 1000 Hz loop with 6 servos", link["state_fps"], peer_state["fps"],
            link["state_fps"] / peer_state["fps"])  # fmt: skip
    thr.add("TARGETS frames/s accepted by the MCU, flat out", link["targets_fps"], peer_targets["fps"],
            link["targets_fps"] / peer_targets["fps"])  # fmt: skip
    thr.add("command round trip p50 ms (TORQUE -> ACK)", link["cmd_p50_ms"], peer_state["rtt_p50_ms"],
            link["cmd_p50_ms"] / peer_state["rtt_p50_ms"])  # fmt: skip
    thr.add("command round trip p99 ms", link["cmd_p99_ms"], peer_state["rtt_p99_ms"],
            link["cmd_p99_ms"] / peer_state["rtt_p99_ms"])  # fmt: skip
    thr.notes += [
        f"peer: bytes/s through a bare pty pair from Python, expressed in frames of the same size "
        f"({STATE_FRAME_BYTES} B STATE, {TARGETS_FRAME_BYTES} B TARGETS); round trip = 16-byte echo by a thread",
        f"host wrote {link['targets_sent_fps']:.0f} TARGETS frames/s (newest-wins: the writer skips superseded ones)",
        "the MCU answers commands at its next loop tick, so a round trip includes up to one loop period (1 ms here)",
        "with servos, each tick waits on 2 sync round trips to the Python bus simulator: that, not the link, caps "
        "the STATE rate; the row without servos shows what the link and framing carry",
        f"without servos the firmware's own work was {link['idle_work_us']:.0f} us per tick, yet its period "
        f"averaged {link['idle_period_us']:.0f} us (max {link['idle_period_max_us']:.0f}): the OS did not run it "
        f"every millisecond on this shared machine (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)",
    ]
    return [loop, thr]


if __name__ == "__main__":
    for table in run(quick=True):
        print(table.to_markdown())
