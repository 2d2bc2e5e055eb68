"""`make demo`: a whole simulated robot cell on 127.0.0.1 — `spinal-server --demo`, the HIL rig (the firmware
in MicroPython driving simulated servos) and `spinal-edge` in policy mode with a synthetic camera.

`DemoCell` is also what the end-to-end tests start. Children run in their own sessions and die with this
process (PR_SET_PDEATHSIG); Ctrl-C stops them in order: the daemon (arm holds, episode kept), the server, the rig.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import httpx

_PR_SET_PDEATHSIG = 1
DEMO_MODEL_ID = "spinal-demo-so101"
DEMO_TASK = "follow the demo cycle"
PLAIN_STATUS_EVERY_S = 5.0  # without a terminal, a status line this often (and at every change of state)


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if the demo dies (even by SIGKILL), the kernel kills the child.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _script(name: str) -> list[str]:
    path = Path(sys.executable).parent / name
    return [str(path)] if path.exists() else [sys.executable, "-m", name.replace("-", "_")]


class ChildProcess:
    """One child in its own session, its output in a log file, stopped by SIGTERM then SIGKILL."""

    def __init__(
        self, name: str, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ChildProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
                env={**os.environ, **(self.env or {})},
            )
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the child's process group, wait, then SIGKILL; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        # Anything the child left in its group goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the child (a crash), leaving whatever it was writing as it was."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class DemoCell:
    """Server + rig + edge daemon on 127.0.0.1 with free ports; `edge` talks to the daemon's API."""

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        leader: bool = False,
        start_mode: str = "policy",
        camera_size: tuple[int, int] = (256, 192),
        rate_hz: float = 30.0,
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="spinal-demo-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.leader = leader
        self.start_mode = start_mode
        self.camera_size = camera_size
        self.rate_hz = rate_hz
        self.extra_config = extra_config or {}
        self.zenoh_port = free_port()
        self.server_health_port = free_port()
        self.http_port = free_port()
        self.token = secrets.token_urlsafe(24)
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.config_path = self.workdir / "edge.toml"
        self.rig: Any = None
        self.server: ChildProcess | None = None
        self.daemon: ChildProcess | None = None
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30.0
        )

    # -- life cycle ----------------------------------------------------------------------------------

    def start(self, *, timeout: float = 120.0) -> DemoCell:
        try:
            self.start_rig()
            self.start_server()
            self.write_config()
            self.start_daemon(timeout=timeout)
            self.wait_arm(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def start_rig(self) -> None:
        from spinal_hil.rig import SimulatedRig

        rig_dir = self.workdir / "rig"
        rig_dir.mkdir(parents=True, exist_ok=True)
        self.rig = SimulatedRig(leader=self.leader, workdir=rig_dir).start()

    def start_server(self) -> None:
        argv = [
            *_script("spinal-server"),
            "--demo",
            "--listen",
            f"tcp/127.0.0.1:{self.zenoh_port}",
            "--health-port",
            str(self.server_health_port),
        ]
        self.server = ChildProcess("spinal-server", argv, self.workdir / "server.log").start()

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.stop()

    def kill_server(self) -> None:
        if self.server is not None:
            self.server.kill()

    def write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.install_calibration()
        token_file = self.data_dir / "api-token"
        token_file.write_text(self.token + "\n")
        token_file.chmod(0o600)
        width, height = self.camera_size
        leader_line = "leader = true\nleader_bus = 1\n" if self.leader else ""
        text = f"""# written by spinal_edge.demo for one run
data_dir = "{self.data_dir}"
device_name = "demo"
start_mode = "{self.start_mode}"

[http]
host = "127.0.0.1"
port = {self.http_port}
public_metrics = true

[robot]
mcu_port = "{self.rig.host_port}"
# Generous for a busy PC (the firmware runs in an interpreter next to everything else): the MCU holds
# the arm after this much link silence, and the daemon goes idle when the MCU's state is this old.
link_timeout_ms = 1000
state_stale_ms = 1500
{leader_line}
[loop]
rate_hz = {self.rate_hz}

[cameras.front]
kind = "synthetic"
width = {width}
height = {height}
fps = 30

[inference]
engine = "remote"
task = "{DEMO_TASK}"
endpoints = ["tcp/127.0.0.1:{self.zenoh_port}"]
model_id = "{DEMO_MODEL_ID}"
service = "default"

[recording]
min_free_mb = 64

[log]
level = "info"
json_lines = true
"""
        self.config_path.write_text(text + _toml_tables(self.extra_config))

    def install_calibration(self) -> None:
        """The simulated arms' calibrations (a nominal SO-101: the simulated servos are exactly that) in the
        data dir, where a calibrated device keeps its own; so the demo runs without `calibration_missing`."""
        from spinal_edge.mcu import ArmCalibration

        follower = ArmCalibration.so101_default()
        path = self.data_dir / "calibration.json"
        if not path.exists():
            follower.save(path)
        leader_path = self.data_dir / "leader_calibration.json"
        if self.leader and not leader_path.exists():
            ids = self.rig.leader_ids
            ArmCalibration(
                tuple(dataclasses.replace(j, id=sid) for j, sid in zip(follower.joints, ids, strict=True))
            ).save(leader_path)

    def start_daemon(self, *, timeout: float = 120.0) -> None:
        argv = [*_script("spinal-edge"), "run", "--config", str(self.config_path)]
        self.daemon = ChildProcess("spinal-edge", argv, self.workdir / "edge.log").start()
        self.wait_healthy(timeout)

    def kill_daemon(self) -> None:
        if self.daemon is not None:
            self.daemon.kill()

    def stop_daemon(self) -> int | None:
        return self.daemon.stop() if self.daemon is not None else None

    def wait_arm(self, timeout: float = 120.0) -> None:
        """Wait until the daemon drives the configured arm. (A servo the MCU's boot scan missed is found by the
        driver's rescan: no power cycle needed.)"""
        deadline = time.monotonic() + timeout
        while True:
            mcu = self.status()["mcu"]
            if mcu["connected"] and mcu["positions"] is not None:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the arm did not come up within {timeout} s: {mcu['link']}")
            time.sleep(0.1)

    def wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.daemon is not None and not self.daemon.alive():
                raise RuntimeError(f"spinal-edge exited during start-up:\n{self.daemon.log_tail()}")
            try:
                if self.client.get("/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"spinal-edge not healthy within {timeout} s:\n{self.daemon.log_tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Daemon first (it holds the arm and closes an episode), then the server, then the rig."""
        for step in (self.stop_daemon, self.stop_server, self._stop_rig):
            try:
                step()
            except Exception as exc:  # keep stopping the rest
                print(f"spinal demo: stopping failed: {exc!r}", file=sys.stderr)
        self.client.close()

    def _stop_rig(self) -> None:
        if self.rig is not None:
            self.rig.stop()
            self.rig = None

    def cleanup(self) -> None:
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> DemoCell:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.cleanup()

    # -- helpers for people and tests ------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return self.client.get("/api/status").json()

    def wait_status(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if predicate(status):
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"status condition not met within {timeout} s; last status: {status}")
            time.sleep(0.1)


def _toml_tables(tables: dict[str, Any]) -> str:
    out = []
    for section, values in tables.items():
        out.append(f"\n[{section}]")
        for key, value in values.items():
            out.append(f"{key} = {_toml_value(value)}")
    return "\n".join(out) + "\n" if out else ""


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def status_key(status: dict[str, Any]) -> tuple[str, ...]:
    """The parts of the status whose change is worth a plain line at once (mode, inference, recorder, warnings)."""
    recorder = status.get("recorder") or {}
    return (
        str(status.get("mode")),
        str((status.get("inference") or {}).get("state")),
        str(recorder.get("state")),
        str(len(status.get("warnings") or ())),
    )


class StatusPrinter:
    """The demo's live status: redrawn in place on a terminal; anywhere else (a pipe, a log file) one plain
    line every `every_s` seconds and whenever the state changes, with no terminal control codes."""

    def __init__(
        self,
        out: TextIO,
        *,
        interactive: bool,
        every_s: float = PLAIN_STATUS_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out
        self.interactive = interactive
        self.every_s = every_s
        self.clock = clock
        self._drawn = False  # a redrawn line is on the terminal (interactive only)
        self._last_at: float | None = None
        self._last_key: tuple[str, ...] | None = None

    def status(self, line: str, key: tuple[str, ...] = ()) -> None:
        if self.interactive:
            self.out.write("\r\x1b[K" + line[:200])
            self.out.flush()
            self._drawn = True
            return
        now = self.clock()
        if self._last_at is None or now - self._last_at >= self.every_s or key != self._last_key:
            self.out.write(line + "\n")
            self.out.flush()
            self._last_at, self._last_key = now, key

    def message(self, text: str) -> None:
        """A line of its own (an event), above the redrawn status on a terminal."""
        self.out.write(("\r\x1b[K" if self._drawn else "") + text + "\n")
        self.out.flush()
        self._drawn = False

    def end(self) -> None:
        if self._drawn:
            self.out.write("\n")
            self.out.flush()
            self._drawn = False


def status_line(status: dict[str, Any]) -> str:
    """The live one-line status the demo prints."""
    inference = status["inference"]
    loop = status["loop"]
    jitter = loop.get("jitter_us") or {}
    cams = " ".join(f"{n}:{c['fps']:.0f}fps" for n, c in status["cameras"].items())
    mcu = status["mcu"]
    positions = mcu.get("positions") or []
    joints = " ".join(f"{p:+5.1f}" for p in positions[:6]) if positions else "no state"
    recorder = status.get("recorder") or {}
    episode = recorder.get("episode")
    rec = f"REC {episode['frames']}f" if episode else recorder.get("state", "off")
    warn = (
        f" | {len(status['warnings'])} warning(s): {status['warnings'][0]['code']}"
        if status["warnings"]
        else ""
    )
    return (
        f"{status['mode']:<6} | inference {inference.get('state', '?')} q={inference.get('queue_depth', 0)}"
        f" | loop {loop['rate_hz']:.0f} Hz jitter p99 {jitter.get('p99', math.nan):.0f} us"
        f" | {cams} | arm {joints} | {rec}{warn}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (0: Ctrl-C)"
    )
    parser.add_argument(
        "--record",
        type=float,
        nargs="?",
        const=10.0,
        default=None,
        metavar="SECONDS",
        help="record an episode of SECONDS (default 10) at the start, then keep running so it can be pulled",
    )
    parser.add_argument(
        "--teleop", action="store_true", help="add a simulated leader arm and start in teleop"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs and data here (default: temp)")
    args = parser.parse_args(argv)

    stop = {"now": False}

    def on_signal(signum: int, _frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    print(
        "spinal demo: starting the server, the rig (firmware in MicroPython) and spinal-edge ...", flush=True
    )
    cell = DemoCell(args.workdir, leader=args.teleop, start_mode="teleop" if args.teleop else "policy")
    try:
        cell.start()
    except Exception as exc:
        print(f"spinal demo: the cell did not start: {exc}", file=sys.stderr)
        cell.stop()
        return 1
    code = 0
    try:
        if args.teleop:
            cell.rig.drive_leader(lambda t: [2048 + 500 * math.sin(0.8 * t + i) for i in range(6)])
        print(f"  device page: {cell.url}")
        print(f"  API token:   {cell.token}")
        setup_code = cell.data_dir / "setup-code"
        if setup_code.exists():
            print(
                f"  setup code:  {setup_code.read_text().strip()}  (the page asks for it once, then for a password)"
            )
        print(f"  try:         curl -H 'Authorization: Bearer {cell.token}' {cell.url}/api/status")
        print(f"  logs:        {cell.workdir}")
        recording = None
        if args.record is not None:
            recording = cell.client.post("/api/episode/start", json={"task": DEMO_TASK}).json()
            print(f"  recording:   episode {recording.get('episode_id')} for {args.record:g} s")
        print("  Ctrl-C stops everything.\n", flush=True)
        printer = StatusPrinter(sys.stdout, interactive=sys.stdout.isatty())
        started = time.monotonic()
        while not stop["now"]:
            elapsed = time.monotonic() - started
            if args.duration and elapsed >= args.duration:
                break
            if recording is not None and elapsed >= args.record:
                episode = cell.client.post("/api/episode/stop").json()
                printer.message(
                    f"spinal demo: episode {episode.get('episode_id')} kept: {episode.get('frames')} "
                    f"frames, {_seconds(episode.get('duration_s'))}; pull it with: "
                    f"spinal device pull {cell.url} ./recordings --token {cell.token}"
                )
                recording = None
            if cell.daemon is None or not cell.daemon.alive():
                printer.message(
                    "spinal demo: spinal-edge exited:\n" + (cell.daemon.log_tail() if cell.daemon else "")
                )
                code = 1
                break
            try:
                status = cell.status()
                line, key = status_line(status), status_key(status)
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                line, key = f"(status unavailable: {exc})", ("unavailable",)
            printer.status(line, key)
            time.sleep(0.5)
        printer.end()
    finally:
        print("spinal demo: stopping ...", flush=True)
        cell.stop()
        if args.workdir is None and args.record is None:
            cell.cleanup()
        else:
            print(f"spinal demo: episodes are in {cell.data_dir / 'episodes'}")
        print("spinal demo: stopped.")
    return code


def _seconds(value: Any) -> str:
    return f"{value:.2f} s" if isinstance(value, int | float) else "? s"


if __name__ == "__main__":
    sys.exit(main())
