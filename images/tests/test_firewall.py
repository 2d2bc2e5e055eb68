"""The image's nftables ruleset, loaded into a network namespace made for the test and probed from a second one:
port 80 reaches the setup page (redirected to 8080), everything else inbound is dropped, SSH opens only when
its port is added to @ssh_ports (what ssh.service does)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.netns

RULESET = Path(__file__).resolve().parents[1] / "rootfs" / "etc" / "nftables.conf"
DEVICE_IP = "10.77.0.1"
# The device's address on its own setup access point (NetworkManager shared mode).
ACCESS_POINT_IP = "10.42.0.1"

PROBE = r"""
import json, socket, sys
host, timeout, ports = sys.argv[1], float(sys.argv[2]), [int(p) for p in sys.argv[3:]]
result = {}
for port in ports:
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            conn.settimeout(10)
            result[port] = conn.recv(64).decode(errors="replace").split("\r\n")[0] or "connected"
    except OSError as exc:
        result[port] = type(exc).__name__
print(json.dumps(result))
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def namespaces() -> Iterator[tuple[str, str]]:
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"):
        pytest.skip("needs root, nft and ip to build network namespaces")
    tag = uuid.uuid4().hex[:6]
    dev, cli = f"spinal-dev-{tag}", f"spinal-cli-{tag}"
    try:
        _ip("netns", "add", dev)
        _ip("netns", "add", cli)
        _ip("link", "add", f"vd{tag}", "netns", dev, "type", "veth", "peer", "name", f"vc{tag}", "netns", cli)
        _ip("-n", dev, "addr", "add", f"{DEVICE_IP}/24", "dev", f"vd{tag}")
        _ip("-n", cli, "addr", "add", "10.77.0.2/24", "dev", f"vc{tag}")
        # The same link also carries the access-point subnet, as wlan0 does while the setup access point is up.
        _ip("-n", dev, "addr", "add", f"{ACCESS_POINT_IP}/24", "dev", f"vd{tag}")
        _ip("-n", cli, "addr", "add", "10.42.0.2/24", "dev", f"vc{tag}")
        for ns, link in ((dev, f"vd{tag}"), (cli, f"vc{tag}")):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", link, "up")
        subprocess.run(["ip", "netns", "exec", dev, "nft", "-f", str(RULESET)], check=True)
        yield dev, cli
    finally:
        for ns in (dev, cli):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


@pytest.fixture
def listeners(namespaces: tuple[str, str]) -> Iterator[tuple[str, str]]:
    """HTTP servers in the device namespace on 8080 (the daemon's port), 22 and 7447 (an unexpected one)."""
    dev, _ = namespaces
    procs = [
        subprocess.Popen(
            ["ip", "netns", "exec", dev, sys.executable, "-m", "http.server", str(port), "--bind", "0.0.0.0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for port in (8080, 22, 7447)
    ]
    try:
        ready = _probe(dev, "127.0.0.1", 10.0, [8080, 22, 7447], attempts=50)
        assert all(v.startswith("HTTP/") for v in ready.values()), ready
        yield namespaces
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _probe(ns: str, host: str, timeout: float, ports: list[int], attempts: int = 1) -> dict[int, str]:
    for _ in range(attempts):
        out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", PROBE, host, str(timeout), *map(str, ports)],
                             check=True, capture_output=True, text=True).stdout  # fmt: skip
        result = {int(k): v for k, v in json.loads(out).items()}
        if all(v.startswith("HTTP/") for v in result.values()):
            break
    return result


def test_port_80_reaches_the_setup_page_and_nothing_else_answers(listeners: tuple[str, str]) -> None:
    _, cli = listeners
    assert _probe(cli, DEVICE_IP, 10.0, [80])[80].startswith("HTTP/1.0 200")
    # Dropped, not refused: the connection attempt simply times out.
    assert _probe(cli, DEVICE_IP, 1.0, [8080, 22, 7447]) == {
        8080: "TimeoutError",
        22: "TimeoutError",
        7447: "TimeoutError",
    }


def test_a_phone_on_the_access_point_reaches_the_captive_portal_port_and_nothing_else(
    listeners: tuple[str, str],
) -> None:
    """The captive portal redirects to http://10.42.0.1:8080/setup: that port answers on the access point only."""
    _, cli = listeners
    assert _probe(cli, ACCESS_POINT_IP, 10.0, [8080])[8080].startswith("HTTP/1.0 200")
    assert _probe(cli, ACCESS_POINT_IP, 10.0, [80])[80].startswith("HTTP/1.0 200")
    assert _probe(cli, ACCESS_POINT_IP, 1.0, [22, 7447]) == {22: "TimeoutError", 7447: "TimeoutError"}
    assert _probe(cli, DEVICE_IP, 1.0, [8080]) == {8080: "TimeoutError"}


def test_ssh_opens_only_while_its_port_is_in_the_set(listeners: tuple[str, str]) -> None:
    dev, cli = listeners
    add = [
        "ip",
        "netns",
        "exec",
        dev,
        "nft",
        "add",
        "element",
        "inet",
        "spinal_filter",
        "ssh_ports",
        "{ 22 }",
    ]
    subprocess.run(add, check=True)
    assert _probe(cli, DEVICE_IP, 10.0, [22])[22].startswith("HTTP/")
    subprocess.run([*add[:5], "delete", *add[6:]], check=True)
    assert _probe(cli, DEVICE_IP, 1.0, [22]) == {22: "TimeoutError"}


def test_the_device_reaches_its_own_setup_page_on_port_80(listeners: tuple[str, str]) -> None:
    dev, _ = listeners
    assert _probe(dev, "127.0.0.1", 10.0, [80])[80].startswith("HTTP/1.0 200")
