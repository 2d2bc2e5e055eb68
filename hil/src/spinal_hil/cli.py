"""The `spinal-hil` command line: a standalone simulated servo bus, and the rig (simulated or real hardware)."""

from __future__ import annotations

import signal
import sys
import threading
import time
from types import FrameType

import typer

from spinal_hil import __version__

app = typer.Typer(
    name="spinal-hil", help="The spinal hardware-in-the-loop rig.", no_args_is_help=True, add_completion=False
)


@app.callback()
def _root() -> None:
    """Keep sub-commands as sub-commands even while there is only one."""


@app.command()
def version() -> None:
    """Print the rig version."""
    typer.echo(__version__)


def _parse_ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of servo ids, e.g. 1,2,3") from None
    if not ids or any(not 0 <= i <= 253 for i in ids) or len(set(ids)) != len(ids):
        raise typer.BadParameter(f"{text!r}: give distinct servo ids between 0 and 253")
    return ids


def _wait_for_signal() -> None:
    stop = threading.Event()

    def _handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    while not stop.wait(0.5):
        pass


@app.command()
def bus(
    ids: str = typer.Option("1,2,3,4,5,6", help="Servo ids on the bus, comma-separated."),
    position: float = typer.Option(2048, help="Initial shaft position of every servo, in ticks."),
    noise: float = typer.Option(0.0, help="Std-dev of reported positions, in ticks."),
    return_delay_us: int = typer.Option(
        0, help="Return delay every servo waits before answering (0..508 us)."
    ),
    wire_time: bool = typer.Option(False, help="Delay answers by their transmission time at 1 Mbps."),
    seed: int = typer.Option(0, help="Seed of the noise generator."),
) -> None:
    """Serve simulated STS3215 servos on a pty: prints its path on the first line, runs until interrupted."""
    from spinal_hil.bus_simulator import ServoBusSimulator
    from spinal_hil.sts3215 import RETURN_DELAY

    servo_ids = _parse_ids(ids)
    if not 0 <= return_delay_us <= 508:
        raise typer.BadParameter("--return-delay-us must be 0..508 (the register counts 2 us steps)")
    sim = ServoBusSimulator(servo_ids, positions=position, seed=seed, emulate_wire_time=wire_time, name="cli")
    for sid in servo_ids:
        servo = sim.servo(sid)
        servo.faults.position_noise = noise
        servo.regs[RETURN_DELAY] = return_delay_us // 2
    with sim:
        typer.echo(sim.path)
        sys.stdout.flush()
        _wait_for_signal()
        typer.echo(f"served {sim.packets} packets ({sim.bad_packets} bad)", err=True)


@app.command()
def rig(
    leader: bool = typer.Option(False, help="Add a leader arm on a second bus."),
    port: str | None = typer.Option(None, help="Check a real Pico on this port instead of simulating one."),
    rate: int = typer.Option(200, help="Servo loop rate of the simulated firmware, Hz."),
    seconds: float = typer.Option(0.0, help="With --port: also stream state for this many seconds."),
    timeout: float = typer.Option(5.0, help="With --port: how long to wait for the handshake, seconds."),
) -> None:
    """Simulated: start firmware + servo buses, print the host port on the first line, run until interrupted.

    With --port: handshake with the real firmware on that port and report what it found (a smoke check).
    """
    if port is not None:
        raise typer.Exit(_check_hardware(port, leader, seconds, timeout))
    from spinal_hil.rig import SimulatedRig

    with SimulatedRig(leader=leader, rate_hz=rate) as sim:
        typer.echo(sim.host_port)
        sys.stdout.flush()
        typer.echo(
            f"firmware pid {sim.firmware.pid if sim.firmware else '?'}; follower bus "
            f"{sim.follower.path if sim.follower else '?'}; log {sim.workdir / 'firmware.log'}",
            err=True,
        )
        _wait_for_signal()


def _check_hardware(port: str, leader: bool, seconds: float, timeout: float) -> int:
    from spinal_edge.mcu import ArmCalibration, McuLink, McuLinkError

    cal = ArmCalibration.so101_default()
    config = cal.link_config(leader=cal if leader else None)
    try:
        with McuLink(port, config) as link:
            hs = link.wait_ready(timeout)
            typer.echo(
                f"{hs.board}: firmware {'.'.join(map(str, hs.firmware_version))}, protocol {hs.protocol_version}, "
                f"loop {hs.rate_hz} Hz, servos found {[list(b) for b in hs.buses]}"
            )
            state = link.wait_for_state(lambda s: s.configured, 2)
            typer.echo(f"positions {list(state.positions)}; flags {state.flags!r}")
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                time.sleep(0.5)
                s = link.latest_state
                if s is not None:
                    typer.echo(
                        f"positions {list(s.positions)} loop {s.period_mean_us}/{s.period_max_us} us "
                        f"overruns {s.overruns}"
                    )
    except McuLinkError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 1
    return 0


def main() -> None:
    app()
