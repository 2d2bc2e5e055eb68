"""The HIL rig: the firmware in MicroPython wired to simulated servo buses, or a real Pico on a serial port.

`SimulatedRig` is what tests, benchmarks and the demo use; `HardwareRig` gives the same `host_port` for a Pico
with real servos. Either way the host opens `rig.host_port` like /dev/ttyACM0 (e.g. with spinal_edge's McuLink).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from spinal_hil.bus_simulator import ServoBusSimulator
from spinal_hil.errors import NeedsSimulation, RigError
from spinal_hil.firmware_process import FirmwareProcess
from spinal_hil.pty_link import EstopLine, LinkRelay
from spinal_hil.servo_model import ServoFaults

SO101_IDS = (1, 2, 3, 4, 5, 6)


class SimulatedRig:
    """A whole simulated cell below the Pi: follower arm, optional leader arm, e-stop button, firmware, USB link.

    ```
    with SimulatedRig(leader=True) as rig:
        link = McuLink(rig.host_port, config).start()
        rig.drive_leader(lambda t: [2048 + 300 * math.sin(t)] * 6)
        rig.true_positions()       # follower shafts, in ticks
    ```
    """

    def __init__(
        self,
        *,
        follower_ids: Iterable[int] = SO101_IDS,
        leader: bool = False,
        leader_ids: Iterable[int] = SO101_IDS,
        leader_on_follower_bus: bool = False,
        positions: Mapping[int, float] | float = 2048,
        leader_positions: Mapping[int, float] | float = 2048,
        rate_hz: int = 200,
        firmware_args: Sequence[str] = (),
        seed: int = 0,
        workdir: Path | None = None,
        emulate_wire_time: bool = False,
        follower_faults: Mapping[int, ServoFaults] | None = None,
    ) -> None:
        self.follower_ids = tuple(follower_ids)
        self.leader_ids = tuple(leader_ids) if leader else ()
        self.leader_on_follower_bus = leader_on_follower_bus
        if leader_on_follower_bus and set(self.leader_ids) & set(self.follower_ids):
            raise RigError("leader ids must differ from follower ids when both arms share one bus")
        self.rate_hz = rate_hz
        self._positions = positions
        self._leader_positions = leader_positions
        self._firmware_args = tuple(firmware_args)
        self._seed = seed
        self._emulate_wire_time = emulate_wire_time
        self._follower_faults = dict(follower_faults or {})
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="spinal-rig-"))
        self.follower: ServoBusSimulator | None = None
        self.leader: ServoBusSimulator | None = None
        self.relay: LinkRelay | None = None
        self.estop_line: EstopLine | None = None
        self.firmware: FirmwareProcess | None = None

    is_simulated = True

    # ---- lifecycle --------------------------------------------------------------------------------------------

    def start(self) -> SimulatedRig:
        """Servo buses, link, e-stop line, then the firmware (whose boot scan sees `follower_faults` already)."""
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            ids = self.follower_ids + (self.leader_ids if self.leader_on_follower_bus else ())
            positions = _merge(self._positions, self._leader_positions, self.leader_ids, ids)
            self.follower = ServoBusSimulator(
                ids,
                positions=positions,
                seed=self._seed,
                emulate_wire_time=self._emulate_wire_time,
                name="follower",
            )
            for sid, faults in self._follower_faults.items():
                self.follower.servo(sid).faults = faults
            self.follower.start()
            leader_path = None
            if self.leader_ids and not self.leader_on_follower_bus:
                self.leader = ServoBusSimulator(
                    self.leader_ids,
                    positions=self._leader_positions,
                    seed=self._seed + 1,
                    emulate_wire_time=self._emulate_wire_time,
                    name="leader",
                ).start()
                leader_path = self.leader.path
            elif self.leader_ids:
                self.leader = self.follower
            self.relay = LinkRelay(self.workdir / "ttyACM0", seed=self._seed + 2).start()
            self.estop_line = EstopLine()
            self.estop_line.set(False)
            self.firmware = FirmwareProcess(
                bus=self.follower.path,
                link=self.relay.firmware_path,
                leader_bus=leader_path,
                estop=self.estop_line.path,
                rate_hz=self.rate_hz,
                extra_args=self._firmware_args,
                log_path=self.workdir / "firmware.log",
            ).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.firmware is not None:
            self.firmware.stop()
        if self.relay is not None:
            self.relay.stop()
        if self.estop_line is not None:
            self.estop_line.close()
        for bus in {id(b): b for b in (self.follower, self.leader) if b is not None}.values():
            bus.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SimulatedRig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what the host sees ------------------------------------------------------------------------------------

    @property
    def host_port(self) -> str:
        """The path to open like /dev/ttyACM0."""
        return str(self.workdir / "ttyACM0")

    @property
    def leader_bus_index(self) -> int:
        """The `leader_bus` value for the MCU configuration: 0 shared bus, 1 second bus."""
        return 0 if self.leader_on_follower_bus else 1

    # ---- the simulated world ----------------------------------------------------------------------------------

    def true_positions(self) -> dict[int, float]:
        """Follower shaft positions in ticks, integrated up to now."""
        return {sid: p for sid, p in self._follower().positions().items() if sid in self.follower_ids}

    def torques(self) -> dict[int, bool]:
        return {sid: on for sid, on in self._follower().torques().items() if sid in self.follower_ids}

    def goal_history(self, servo_id: int) -> list[tuple[float, int]]:
        """Every goal the firmware wrote to a follower servo while its torque was on, as (time, ticks)."""
        bus = self._follower()
        with bus.lock:
            return list(bus.servo(servo_id).goal_history)

    def drive_leader(self, trajectory: Callable[[float], Sequence[float]]) -> None:
        """Move the leader arm by hand: `trajectory(t)` gives positions (leader id order) at t seconds from now."""
        if self.leader is None:
            raise RigError("this rig has no leader arm: build it with SimulatedRig(leader=True)")
        bus = self.leader
        t0 = bus.now()
        with bus.lock:
            for i, sid in enumerate(self.leader_ids):
                bus.servo(sid).hand = lambda now, i=i: trajectory(now - t0)[i]

    def release_leader(self) -> None:
        if self.leader is not None:
            with self.leader.lock:
                for sid in self.leader_ids:
                    self.leader.servo(sid).hand = None

    def leader_true_positions(self) -> dict[int, float]:
        if self.leader is None:
            raise RigError("this rig has no leader arm")
        return {sid: p for sid, p in self.leader.positions().items() if sid in self.leader_ids}

    # ---- faults -----------------------------------------------------------------------------------------------

    def press_estop(self) -> None:
        assert self.estop_line is not None
        self.estop_line.set(True)

    def release_estop(self) -> None:
        assert self.estop_line is not None
        self.estop_line.set(False)

    def unplug_link(self) -> None:
        self._relay().unplug()

    def replug_link(self) -> None:
        self._relay().replug()

    def set_link_bit_flip_rate(self, rate: float, direction: str = "both") -> None:
        self._relay().set_bit_flip_rate(rate, direction)

    def restart_firmware(self) -> None:
        """Power-cycle the simulated Pico: the firmware process is killed and started again."""
        assert self.firmware is not None
        self.firmware.restart()

    # ---- helpers ----------------------------------------------------------------------------------------------

    def _follower(self) -> ServoBusSimulator:
        if self.follower is None:
            raise RigError("the rig is not started")
        return self.follower

    def _relay(self) -> LinkRelay:
        if self.relay is None:
            raise RigError("the rig is not started")
        return self.relay


class HardwareRig:
    """A real Pico running the spinal firmware, with real servos, on a serial port."""

    is_simulated = False

    def __init__(self, port: str, *, leader: bool = False, leader_bus_index: int = 1) -> None:
        self.port = port
        self.follower_ids = SO101_IDS
        self.leader_ids = SO101_IDS if leader else ()
        self.leader_bus_index = leader_bus_index

    @property
    def host_port(self) -> str:
        return self.port

    def start(self) -> HardwareRig:
        if not Path(self.port).exists():
            raise RigError(f"{self.port} does not exist: plug the Pico in, or pass its port with --port")
        return self

    def stop(self) -> None:
        pass

    def __enter__(self) -> HardwareRig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __getattr__(self, name: str) -> object:
        if name in {"true_positions", "drive_leader", "press_estop", "unplug_link", "restart_firmware"}:
            raise NeedsSimulation(
                f"{name}() needs the simulated rig; on hardware use the MCU's reported state"
            )
        raise AttributeError(name)


def _merge(
    follower: Mapping[int, float] | float,
    leader: Mapping[int, float] | float,
    leader_ids: Sequence[int],
    ids: Sequence[int],
) -> dict[int, float]:
    out: dict[int, float] = {}
    for sid in ids:
        source = leader if sid in leader_ids else follower
        out[sid] = source[sid] if isinstance(source, Mapping) else float(source)
    return out


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Poll `predicate` until it holds or `timeout` passes (for rig-side conditions without an event)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
