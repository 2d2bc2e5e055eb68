"""Real-time set-up of the daemon: the GIL hand-off around the loop's sleep, SCHED_FIFO and locked memory where
Linux allows them (and one clear sentence where it does not), loop settings and their restart rule.

Scheduling changes run in child Python processes, under limits and capabilities the test sets, so the test
process itself keeps its own scheduling.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from spinal_edge.config_file import validate_config
from spinal_edge.control.gil import GilHandoff
from spinal_edge.control.loop import ControlLoop
from spinal_edge.daemon import EdgeDaemon
from spinal_edge.demo import free_port
from spinal_edge.errors import ConfigError
from spinal_edge.settings import EdgeConfig
from spinal_edge.settings_store import SettingsStore
from spinal_edge.testing import KinematicArm, ServedDaemon, data_dir_config, wait_for
from spinal_server.testing import stop_process

# Capabilities that would let root skip the limits under test.
_DROPPED = "-sys_nice,-ipc_lock"


def _run_child(
    script: str, *, rtprio: int, memlock_bytes: int | None, privileged: bool = False
) -> dict[str, Any]:
    """Run `script` (it prints one JSON line) in a child Python under these RLIMIT_RTPRIO / RLIMIT_MEMLOCK limits
    (None: unlimited). Unless `privileged`, a root parent also drops CAP_SYS_NICE and CAP_IPC_LOCK for it, so
    only the limits decide, as for a systemd service with no capabilities."""
    argv: list[str] = []
    if not privileged:
        for name, value in (("RTPRIO", rtprio), ("MEMLOCK", memlock_bytes)):
            if not _limit_settable(name, value):
                pytest.skip(
                    f"RLIMIT_{name} cannot be raised to {value} here (hard limit, no CAP_SYS_RESOURCE)"
                )
        memlock = "unlimited" if memlock_bytes is None else f"{memlock_bytes}:{memlock_bytes}"
        argv += ["prlimit", f"--rtprio={rtprio}:{rtprio}", f"--memlock={memlock}", "--"]
        if os.geteuid() == 0:
            argv += ["setpriv", f"--bounding-set={_DROPPED}", f"--inh-caps={_DROPPED}", "--"]
    elif os.geteuid() != 0:
        pytest.skip("needs root (CAP_SYS_NICE, CAP_IPC_LOCK)")
    argv += [sys.executable, "-c", textwrap.dedent(script)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _limit_settable(name: str, wanted: int | None) -> bool:
    """Lowering a limit is always allowed; raising it only up to the hard limit (or with CAP_SYS_RESOURCE)."""
    _soft, hard = resource.getrlimit(getattr(resource, f"RLIMIT_{name}"))
    if hard == resource.RLIM_INFINITY:
        return True
    return wanted is not None and wanted <= hard


needs_tools = pytest.mark.skipif(
    shutil.which("prlimit") is None or (os.geteuid() == 0 and shutil.which("setpriv") is None),
    reason="prlimit/setpriv (util-linux) are not installed",
)

_SCHEDULING = """
    import json, os, threading
    from spinal_edge.control.scheduling import lock_memory, promote_threads, realtime_priority_of, set_realtime_priority

    stop = threading.Event()
    tids = {}
    def worker(name, priority=0):
        tids[name] = threading.get_native_id()
        if priority:
            tids[name + "_error"] = set_realtime_priority(priority)
        stop.wait()
    threads = [threading.Thread(target=worker, args=("loop", 40)), threading.Thread(target=worker, args=("other",))]
    for t in threads: t.start()
    while len(tids) < 3: pass
    promotion = promote_threads(20)
    late = threading.Thread(target=worker, args=("late",))
    late.start()
    while "late" not in tids: pass
    out = {
        "loop_error": tids["loop_error"],
        "promotion_error": promotion.error,
        "promoted": promotion.promoted,
        "kept": promotion.kept,
        "priorities": {name: realtime_priority_of(tids[name]) for name in ("loop", "other", "late")},
        "main": realtime_priority_of(),
        "lock_error": lock_memory(),
        "locked_kb": [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmLck")][0],
    }
    stop.set()
    print(json.dumps(out))
"""


@needs_tools
def test_where_permitted_every_thread_gets_fifo_and_memory_is_locked() -> None:
    result = _run_child(_SCHEDULING, rtprio=40, memlock_bytes=None, privileged=True)
    assert result["loop_error"] == "" and result["promotion_error"] == ""
    # The loop keeps its higher priority; the other threads (and one started afterwards) run at 20.
    assert result["priorities"] == {"loop": 40, "other": 20, "late": 20}
    assert result["main"] == 20 and result["kept"] == 1 and result["promoted"] >= 2
    assert result["lock_error"] == "" and result["locked_kb"] > 0


@needs_tools
def test_without_permission_each_refusal_is_one_sentence_naming_the_unit_setting() -> None:
    result = _run_child(_SCHEDULING, rtprio=0, memlock_bytes=64 * 1024)
    assert "LimitRTPRIO=40" in result["loop_error"] and "RestrictRealtime=no" in result["loop_error"]
    assert "LimitRTPRIO=20" in result["promotion_error"]
    assert result["priorities"] == {"loop": 0, "other": 0, "late": 0} and result["main"] == 0
    assert "LimitMEMLOCK=infinity" in result["lock_error"] and result["locked_kb"] == 0


@needs_tools
def test_limit_rtprio_grants_priorities_up_to_it_without_any_capability() -> None:
    script = """
        import json, threading
        from spinal_edge.control.scheduling import set_realtime_priority, realtime_priority_of
        out = {}
        def body(p):
            out[p] = (set_realtime_priority(p), realtime_priority_of())
        for p in (10, 60):
            t = threading.Thread(target=body, args=(p,)); t.start(); t.join()
        print(json.dumps(out))
    """
    result = _run_child(script, rtprio=50, memlock_bytes=None)
    assert result["10"] == ["", 10]
    assert "LimitRTPRIO=60" in result["60"][0] and result["60"][1] == 0


def test_the_loop_hands_the_gil_over_quickly_while_it_sleeps_and_works_with_a_long_interval() -> None:
    previous = sys.getswitchinterval()
    seen_in_tick: list[float] = []

    class RecordingArm(KinematicArm):
        def keepalive(self) -> None:
            seen_in_tick.append(sys.getswitchinterval())
            super().keepalive()

    arm = RecordingArm()
    arm.start()
    loop = ControlLoop(arm, {}, rate_hz=20, gil_handoff=GilHandoff(wake_s=300e-6, work_s=4e-3))
    loop.start()
    try:
        wait_for(lambda: len(seen_in_tick) >= 5)
        # Between ticks (nearly all the time at 20 Hz) any thread sees the short interval.
        wait_for(lambda: abs(sys.getswitchinterval() - 300e-6) < 1e-6, timeout=10)
    finally:
        loop.stop()
    assert all(abs(v - 4e-3) < 1e-6 for v in seen_in_tick), seen_in_tick
    assert sys.getswitchinterval() == previous, "the interval found at start is restored at stop"


def test_a_gil_handoff_needs_a_wake_interval_no_longer_than_the_work_interval() -> None:
    with pytest.raises(ValueError, match="at most the work interval"):
        GilHandoff(wake_s=0.01, work_s=0.001)


@pytest.mark.parametrize(
    ("loop", "fragment"),
    [
        ({"realtime_priority": 0, "daemon_realtime_priority": 2}, "must be below realtime_priority"),
        ({"realtime_priority": 10, "daemon_realtime_priority": 10}, "must be below realtime_priority"),
        ({"wake_switch_interval_us": 5}, "wake_switch_interval_us"),
        ({"cpus": [1, 1]}, "distinct CPU numbers"),
        ({"cpus": [-1]}, "distinct CPU numbers"),
    ],
)
def test_bad_loop_scheduling_settings_are_refused_with_the_fix(loop: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as refused:
        validate_config({"loop": loop}, source="edge.toml")
    assert str(refused.value).startswith("edge.toml: [loop]")


def test_real_time_is_on_by_default_and_normal_scheduling_needs_one_setting() -> None:
    default = EdgeConfig.model_validate({}).loop
    assert (default.realtime_priority, default.daemon_priority, default.lock_memory) == (50, 1, True)
    assert not default.realtime_explicit, "a refused default is reported in the status, not as a warning"
    off = EdgeConfig.model_validate({"loop": {"realtime_priority": 0}}).loop
    assert off.daemon_priority == 0 and off.realtime_explicit


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedDaemon]:
    store = SettingsStore(data_dir_config(tmp_path, loop={"rate_hz": 50}, web={"enabled": False}))
    daemon = EdgeDaemon(store, arm=KinematicArm(), cameras={})
    with ServedDaemon(daemon) as s:
        yield s


def test_status_reports_the_scheduling_and_a_loop_change_needs_a_restart(served: ServedDaemon) -> None:
    wait_for(lambda: served.daemon.loop.stats.ticks > 3)
    loop = served.client.get("/api/status").json()["loop"]
    assert loop["realtime_priority"] == served.daemon.loop.thread_priority
    assert (
        loop["daemon_realtime_priority"] == 0 and loop["memory_locked"] is False
    )  # set by `spinal-edge run`
    assert served.client.patch("/api/settings", json={"loop": {"rate_hz": 40}}).status_code == 200
    codes = {w["code"] for w in served.client.get("/api/status").json()["warnings"]}
    assert "restart_required" not in codes, "the rate applies at once"
    assert served.client.patch("/api/settings", json={"loop": {"realtime_priority": 20}}).status_code == 200
    warnings = served.client.get("/api/status").json()["warnings"]
    assert any(w["code"] == "restart_required" and "loop" in w["message"] for w in warnings)


def test_the_loop_thread_reports_its_own_id_and_priority() -> None:
    arm = KinematicArm()
    arm.start()
    loop = ControlLoop(arm, {}, rate_hz=50)
    loop.start()
    try:
        wait_for(lambda: loop.native_id is not None)
        assert loop.native_id in {t.native_id for t in threading.enumerate()}
        time.sleep(0.05)
        assert loop.thread_priority == 0 and loop.realtime_error == ""
    finally:
        loop.stop()


def _daemon_status(port: int, token: str) -> dict[str, Any] | None:
    """The daemon's status once its loop ticks, or None while it is still starting."""
    try:
        response = httpx.get(
            f"http://127.0.0.1:{port}/api/status", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
    except httpx.HTTPError:
        return None
    if response.status_code != 200 or response.json()["loop"]["ticks"] < 5:
        return None
    return response.json()


@needs_tools
@pytest.mark.slow
@pytest.mark.parametrize("explicit", [False, True], ids=["default-config", "asked-for-in-config"])
def test_spinal_edge_run_without_real_time_permission_runs_and_says_what_it_got(
    tmp_path: Path, explicit: bool
) -> None:
    """As a service without LimitRTPRIO / LimitMEMLOCK: the loop runs under normal scheduling, the status names
    both unit settings, and a refusal is a warning only where the config asked for real-time."""
    for name, value in (("RTPRIO", 0), ("MEMLOCK", 64 * 1024)):
        if not _limit_settable(name, value):
            pytest.skip(f"RLIMIT_{name} cannot be set to {value} here")
    port = free_port()
    config = tmp_path / "edge.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[http]\nhost = "127.0.0.1"\nport = {port}\n'
        f'[robot]\nmcu_port = "{tmp_path / "no-mcu-here"}"\n'
        + ("[loop]\nrealtime_priority = 50\n" if explicit else "")
    )
    argv = ["prlimit", "--rtprio=0:0", f"--memlock={64 * 1024}:{64 * 1024}", "--"]
    if os.geteuid() == 0:
        argv += ["setpriv", f"--bounding-set={_DROPPED}", f"--inh-caps={_DROPPED}", "--"]
    argv += [sys.executable, "-c", "from spinal_edge.cli import main; main()", "run", "--config", str(config)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        token_path = tmp_path / "data" / "api-token"
        wait_for(lambda: proc.poll() is not None or token_path.exists(), timeout=120, interval=0.1)
        assert proc.poll() is None, "the daemon must not exit when real-time is refused"
        token = token_path.read_text().strip()

        def set_up() -> dict | None:
            # The HTTP server answers before the daemon's threads and memory are set up (they include its
            # threads): wait for the memory lock's outcome, which comes last.
            status = proc.poll() is None and _daemon_status(port, token)
            return status if status and "memory" in status["loop"]["realtime_error"] else None

        status = wait_for(set_up, timeout=120, interval=0.2)
    finally:
        stop_process(proc, timeout=60)
    loop = status["loop"]
    assert loop["running"] is True
    assert (loop["realtime_priority"], loop["daemon_realtime_priority"], loop["memory_locked"]) == (
        0,
        0,
        False,
    )
    assert "LimitRTPRIO=50" in loop["realtime_error"] and "LimitMEMLOCK=infinity" in loop["realtime_error"]
    refused = [w["message"] for w in status["warnings"] if w["code"] == "realtime_refused"]
    if explicit:
        # Every refusal in one warning (the loop's, the daemon threads', the memory lock's).
        assert any("LimitRTPRIO=50" in m and "LimitMEMLOCK=infinity" in m for m in refused), refused
    else:
        assert refused == [], "real-time on by default is not a warning on a machine that does not allow it"
