"""`NmcliNetwork`: `NetworkControl` over NetworkManager's `nmcli`, always with argument lists, never a shell.

Used on the device. Wi-Fi passwords never appear on a command line (other local users could read it there):
they reach NetworkManager through a 0600 `passwd-file` in a private temporary folder, removed right after.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from spinal_edge.network.errors import InvalidNetworkInput, NetworkCommandFailed
from spinal_edge.network.model import (
    ActiveConnection,
    WifiNetwork,
    validate_hostname,
    validate_ssid,
    validate_wifi_password,
)

AP_CONNECTION = "spinal-ap"
WIFI_PREFIX = "spinal-wifi-"
_KINDS = {"802-11-wireless": "wifi", "wifi": "wifi", "802-3-ethernet": "ethernet", "ethernet": "ethernet"}

Runner = Callable[[Sequence[str], float], subprocess.CompletedProcess[str]]


def split_terse(line: str) -> list[str]:
    """Split one line of `nmcli -t -e yes` output on ':' honouring its `\\:` and `\\\\` escapes."""
    fields, current, escaped = [], [], False
    for ch in line:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(ch)
    fields.append("".join(current))
    return fields


def _run_subprocess(argv: Sequence[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env={**os.environ, "LC_ALL": "C"},
    )


class NmcliNetwork:
    """NetworkManager through `nmcli`; `wifi_interface` is the radio used for joining and for the access point."""

    def __init__(
        self,
        *,
        nmcli: str = "nmcli",
        wifi_interface: str = "wlan0",
        ap_address: str = "10.42.0.1/24",
        connect_timeout_s: float = 45.0,
        runner: Runner = _run_subprocess,
    ) -> None:
        self.nmcli = nmcli
        self.wifi_interface = wifi_interface
        self.ap_address = ap_address
        self.connect_timeout_s = connect_timeout_s
        self._run_argv = runner

    # -- reading -------------------------------------------------------------------------------

    def connections(self) -> list[ActiveConnection]:
        out = []
        for line in self._lines(
            ["-t", "-e", "yes", "-f", "NAME,TYPE,DEVICE,STATE", "connection", "show", "--active"]
        ):
            fields = split_terse(line)
            if len(fields) != 4 or fields[1] == "loopback":
                continue
            name, ctype, device, state = fields
            kind = "access-point" if name == AP_CONNECTION else _KINDS.get(ctype, ctype)
            addresses = self._addresses(device) if device else ()
            ssid = self._ssid(name) if kind in ("wifi", "access-point") else ""
            out.append(ActiveConnection(name, kind, device, state, addresses, ssid))
        return out

    def wifi_networks(self, *, rescan: bool = False) -> list[WifiNetwork]:
        argv = ["-t", "-e", "yes", "-f", "IN-USE,SSID,SIGNAL,SECURITY", "device", "wifi", "list"]
        argv += ["ifname", self.wifi_interface, "--rescan", "yes" if rescan else "no"]
        best: dict[str, WifiNetwork] = {}
        for line in self._lines(argv, timeout_s=30.0):
            fields = split_terse(line)
            if len(fields) != 4 or not fields[1]:
                continue  # hidden networks have no name to show
            in_use, ssid, signal, security = fields
            net = WifiNetwork(
                ssid, int(signal) if signal.isdigit() else 0, security.strip(), in_use.strip() == "*"
            )
            if ssid not in best or net.signal > best[ssid].signal or net.in_use:
                best[ssid] = net
        return sorted(best.values(), key=lambda n: (not n.in_use, -n.signal, n.ssid))

    def hostname(self) -> str:
        lines = self._lines(["general", "hostname"])
        return lines[0].strip() if lines else ""

    def is_online(self) -> bool:
        return any(
            c.kind != "access-point" and c.state == "activated" and c.addresses for c in self.connections()
        )

    def access_point_active(self) -> bool:
        return any(c.kind == "access-point" for c in self.connections())

    # -- changing ------------------------------------------------------------------------------

    def join_wifi(self, ssid: str, password: str | None, *, hidden: bool = False) -> ActiveConnection:
        ssid = self._argument_safe(validate_ssid(ssid))
        password = validate_wifi_password(password)
        name = WIFI_PREFIX + ssid
        self._run(["connection", "delete", "id", name], check=False)
        argv = [
            "connection",
            "add",
            "type",
            "wifi",
            "con-name",
            name,
            "ifname",
            self.wifi_interface,
            "ssid",
            ssid,
        ]
        argv += ["connection.autoconnect", "yes", "802-11-wireless.hidden", "yes" if hidden else "no"]
        if password:
            argv += ["wifi-sec.key-mgmt", "wpa-psk", "wifi-sec.psk-flags", "0"]
        self._run(argv)
        try:
            self._activate(name, password)
        except NetworkCommandFailed:
            self._run(["connection", "delete", "id", name], check=False)
            raise
        for conn in self.connections():
            if conn.name == name:
                return conn
        return ActiveConnection(name, "wifi", self.wifi_interface, "activating", (), ssid)

    def set_hostname(self, name: str) -> None:
        self._run(["general", "hostname", validate_hostname(name)])

    def start_access_point(self, ssid: str, password: str | None) -> None:
        ssid = self._argument_safe(validate_ssid(ssid))
        password = validate_wifi_password(password)
        self._run(["connection", "delete", "id", AP_CONNECTION], check=False)
        argv = ["connection", "add", "type", "wifi", "con-name", AP_CONNECTION, "ifname", self.wifi_interface]
        argv += ["ssid", ssid, "connection.autoconnect", "no", "802-11-wireless.mode", "ap"]
        argv += ["802-11-wireless.band", "bg", "ipv4.method", "shared", "ipv4.addresses", self.ap_address]
        argv += ["ipv6.method", "disabled"]
        if password:
            argv += ["wifi-sec.key-mgmt", "wpa-psk", "wifi-sec.psk-flags", "0"]
        self._run(argv)
        self._activate(AP_CONNECTION, password)

    def stop_access_point(self) -> None:
        self._run(["connection", "down", "id", AP_CONNECTION], check=False)

    # -- helpers -------------------------------------------------------------------------------

    def _activate(self, name: str, password: str | None) -> None:
        up = ["--wait", str(int(self.connect_timeout_s)), "connection", "up", "id", name]
        if not password:
            self._run(up, timeout_s=self.connect_timeout_s + 15)
            return
        with tempfile.TemporaryDirectory(prefix="spinal-nm-") as folder:
            secret = Path(folder) / "passwd"
            fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(f"802-11-wireless-security.psk:{password}\n")
            self._run([*up, "passwd-file", str(secret)], timeout_s=self.connect_timeout_s + 15)

    def _addresses(self, device: str) -> tuple[str, ...]:
        lines = self._lines(["-t", "-e", "yes", "-f", "IP4.ADDRESS", "device", "show", device], check=False)
        return tuple(split_terse(line)[-1] for line in lines if line.startswith("IP4.ADDRESS"))

    def _ssid(self, connection: str) -> str:
        lines = self._lines(
            ["-t", "-e", "yes", "-g", "802-11-wireless.ssid", "connection", "show", "id", connection],
            check=False,
        )
        return split_terse(lines[0])[0] if lines else ""

    @staticmethod
    def _argument_safe(ssid: str) -> str:
        # nmcli treats a few `--` words as options wherever they appear; such an SSID cannot be passed safely.
        if ssid.startswith("--"):
            raise InvalidNetworkInput(
                "A network name starting with -- cannot be joined from this page; rename it."
            )
        return ssid

    def _lines(self, argv: list[str], *, timeout_s: float = 15.0, check: bool = True) -> list[str]:
        return [line for line in self._run(argv, timeout_s=timeout_s, check=check).splitlines() if line]

    def _run(self, argv: list[str], *, timeout_s: float = 15.0, check: bool = True) -> str:
        try:
            done = self._run_argv([self.nmcli, *argv], timeout_s)
        except FileNotFoundError as exc:
            raise NetworkCommandFailed("nmcli is not installed; this device needs NetworkManager.") from exc
        except subprocess.TimeoutExpired as exc:
            raise NetworkCommandFailed(
                f"NetworkManager did not answer within {int(timeout_s)} s; try again."
            ) from exc
        if check and done.returncode != 0:
            raise NetworkCommandFailed(_explain(done.stderr or done.stdout))
        return done.stdout


def _explain(stderr: str) -> str:
    """nmcli's own message, trimmed, with the common causes put in words a person can act on."""
    text = " ".join(stderr.split())[:300]
    lowered = text.lower()
    if "secrets were required" in lowered or "802-1x supplicant" in lowered or "(7)" in lowered:
        return "The Wi-Fi password was refused; check it and try again."
    if "no network with ssid" in lowered:
        return "No Wi-Fi network with that name is in range; check the name or move closer."
    if "not running" in lowered:
        return "NetworkManager is not running on this device."
    if "not authorized" in lowered or "insufficient privileges" in lowered:
        return "The daemon may not change the network (polkit rule missing); see docs/setup-page.md."
    return f"NetworkManager refused the change: {text or 'no reason given'}"
