"""sd_notify over a real AF_UNIX datagram socket, as systemd provides it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from spinal_edge.sdnotify import SystemdNotifier


def _listener(tmp_path: Path) -> tuple[socket.socket, str]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    return sock, path


def test_ready_and_watchdog_reach_the_notify_socket(tmp_path: Path) -> None:
    sock, path = _listener(tmp_path)
    with sock:
        notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
        assert notifier.ready("listening")
        assert sock.recv(4096) == b"READY=1\nSTATUS=listening"
        assert notifier.watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"
        assert notifier.stopping()
        assert sock.recv(4096) == b"STOPPING=1"


def test_abstract_namespace_sockets_are_addressed_with_a_nul(tmp_path: Path) -> None:
    name = f"spinal-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert SystemdNotifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(64) == b"READY=1"


def test_without_systemd_notify_is_a_quiet_no_op() -> None:
    notifier = SystemdNotifier({})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog_interval_s is None


def test_a_vanished_socket_is_counted_not_raised(tmp_path: Path) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.watchdog() is False
    assert notifier.failed == 1


def test_watchdog_interval_is_half_the_systemd_timeout_for_this_pid() -> None:
    env = {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}
    assert SystemdNotifier(env).watchdog_interval_s == 2.0
    env["WATCHDOG_PID"] = "1"
    assert SystemdNotifier(env).watchdog_interval_s is None
