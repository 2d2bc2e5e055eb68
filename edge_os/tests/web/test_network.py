"""The network interface: validators, the fake, the nmcli implementation (against a stand-in nmcli executable),
the access-point fallback and the captive-portal redirect."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest
from spinal_edge.network import (
    AccessPointFallback,
    AccessPointSettings,
    CaptivePortal,
    FakeNetwork,
    InvalidNetworkInput,
    NetworkCommandFailed,
    NmcliNetwork,
    device_suffix,
)
from spinal_edge.network.model import validate_hostname, validate_ssid, validate_wifi_password
from spinal_edge.network.nmcli import split_terse
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

# -- validators -----------------------------------------------------------------------------------


@pytest.mark.parametrize("ssid", ["", "x" * 33, "caf\u00e9" * 9, "bad\nname"])
def test_bad_ssids_are_refused(ssid):
    with pytest.raises(InvalidNetworkInput):
        validate_ssid(ssid)


def test_ssids_with_spaces_quotes_and_unicode_are_user_data_and_accepted():
    for ssid in ["My Home; rm -rf /", 'caf\u00e9 "wifi"', "$(reboot)", "a"]:
        assert validate_ssid(ssid) == ssid


@pytest.mark.parametrize("password", ["short", "x" * 64, "p\u00e4sswort-long", "tab\there-pass"])
def test_bad_wifi_passwords_are_refused(password):
    with pytest.raises(InvalidNetworkInput):
        validate_wifi_password(password)


def test_open_network_and_hex_keys_are_accepted():
    assert validate_wifi_password("") is None
    assert validate_wifi_password("a" * 64) == "a" * 64
    assert validate_wifi_password("pass word 8") == "pass word 8"


@pytest.mark.parametrize("name", ["-robot", "robot-", "ro bot", "r" * 64, "robot.local", ""])
def test_bad_hostnames_are_refused(name):
    with pytest.raises(InvalidNetworkInput):
        validate_hostname(name)


def test_hostnames_are_lowered():
    assert validate_hostname("Robot-7") == "robot-7"


# -- the fake -------------------------------------------------------------------------------------


def test_fake_joins_with_the_right_password_only_and_ends_the_access_point():
    net = FakeNetwork(in_range={"home": "password123", "cafe": None})
    net.start_access_point("spinal-AB12", None)
    assert net.access_point_active() and not net.is_online()
    with pytest.raises(NetworkCommandFailed, match="refused"):
        net.join_wifi("home", "password999")
    with pytest.raises(NetworkCommandFailed, match="in range"):
        net.join_wifi("elsewhere", None)
    conn = net.join_wifi("home", "password123")
    assert conn.ssid == "home" and net.is_online() and not net.access_point_active()
    assert [n.ssid for n in net.wifi_networks() if n.in_use] == ["home"]


# -- nmcli --------------------------------------------------------------------------------------


def test_terse_lines_are_split_with_escapes():
    assert split_terse(r"home\:net:80:WPA2") == ["home:net", "80", "WPA2"]
    assert split_terse(r"a\\:b") == ["a\\", "b"]
    assert split_terse("::") == ["", "", ""]


@pytest.fixture
def nmcli(tmp_path, monkeypatch):
    state_path, log_path = tmp_path / "state.json", tmp_path / "log.jsonl"
    wrapper = tmp_path / "nmcli"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {Path(__file__).with_name("fake_nmcli.py")} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("FAKE_NMCLI_STATE", str(state_path))
    monkeypatch.setenv("FAKE_NMCLI_LOG", str(log_path))

    def make(state: dict) -> tuple[NmcliNetwork, Path]:
        state_path.write_text(json.dumps(state))
        return NmcliNetwork(nmcli=str(wrapper), connect_timeout_s=5), log_path

    return make


def _calls(log_path: Path) -> list[dict]:
    return [json.loads(line) for line in log_path.read_text().splitlines()]


def test_nmcli_reads_connections_addresses_and_ssids(nmcli):
    net, _ = nmcli(
        {
            "active": [
                "lo:loopback:lo:activated",
                r"spinal-wifi-home\:net:802-11-wireless:wlan0:activated",
                "Wired connection 1:802-3-ethernet:eth0:activating",
            ],
            "addresses": {"wlan0": ["IP4.ADDRESS[1]:192.168.1.7/24"], "eth0": []},
            "ssids": {"spinal-wifi-home:net": "home:net"},
        }
    )
    conns = net.connections()
    assert [(c.name, c.kind, c.addresses, c.ssid) for c in conns] == [
        ("spinal-wifi-home:net", "wifi", ("192.168.1.7/24",), "home:net"),
        ("Wired connection 1", "ethernet", (), ""),
    ]
    assert net.is_online()
    assert not net.access_point_active()


def test_nmcli_lists_wifi_by_strength_deduplicating_access_points(nmcli):
    net, log = nmcli({"wifi": [" :home:40:WPA2", " :home:70:WPA2", "*:office:55:WPA1 WPA2", " ::90:WPA2"]})
    nets = net.wifi_networks(rescan=True)
    assert [(n.ssid, n.signal, n.in_use) for n in nets] == [("office", 55, True), ("home", 70, False)]
    assert _calls(log)[-1]["argv"][-2:] == ["--rescan", "yes"]


def test_nmcli_join_keeps_the_password_off_the_command_line(nmcli):
    net, log = nmcli({"active": []})
    ssid, password = "My Home; $(reboot)", "s3cret pass:word"
    net.join_wifi(ssid, password)
    calls = _calls(log)
    assert all(password not in " ".join(c["argv"]) for c in calls)
    add = next(c["argv"] for c in calls if "add" in c["argv"])
    assert add[add.index("ssid") + 1] == ssid  # one argument, untouched by any shell
    up = next(c for c in calls if "up" in c["argv"])
    assert up["passwd_file"] == f"802-11-wireless-security.psk:{password}\n"
    assert up["passwd_mode"] == "0o600"
    secret_path = up["argv"][up["argv"].index("passwd-file") + 1]
    assert not Path(secret_path).exists()


def test_nmcli_refused_password_is_explained_and_the_profile_removed(nmcli):
    net, log = nmcli({"refuse_psk": "wrongpassword"})
    with pytest.raises(NetworkCommandFailed, match="password was refused"):
        net.join_wifi("home", "wrongpassword")
    assert _calls(log)[-1]["argv"][-3:] == ["delete", "id", "spinal-wifi-home"]


def test_nmcli_refuses_option_like_ssids(nmcli):
    net, _ = nmcli({})
    with pytest.raises(InvalidNetworkInput):
        net.join_wifi("--ask", "password123")


def test_nmcli_access_point_is_shared_mode_on_the_radio(nmcli):
    net, log = nmcli({})
    net.start_access_point("spinal-AB12", None)
    add = next(c["argv"] for c in _calls(log) if "add" in c["argv"])
    for pair in (["802-11-wireless.mode", "ap"], ["ipv4.method", "shared"], ["con-name", "spinal-ap"]):
        i = add.index(pair[0])
        assert add[i : i + 2] == pair
    assert "wifi-sec.key-mgmt" not in add
    net.set_hostname("Robot-2")
    assert _calls(log)[-1]["argv"][-3:] == ["general", "hostname", "robot-2"]
    assert net.hostname() == "spinal"


def test_missing_nmcli_is_a_clear_error(tmp_path):
    net = NmcliNetwork(nmcli=str(tmp_path / "nope"))
    with pytest.raises(NetworkCommandFailed, match="not installed"):
        net.connections()


# -- access-point fallback ---------------------------------------------------------------------


class StepClock:
    def __init__(self, stop: threading.Event, step: float) -> None:
        self.now, self.stop, self.step = 0.0, stop, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_no_network_at_boot_opens_the_access_point():
    net, stop = FakeNetwork(), threading.Event()
    fallback = AccessPointFallback(
        net, AccessPointSettings(enabled=True, wait_for_network_s=5), "AB12", clock=StepClock(stop, 10)
    )
    assert fallback.check_at_boot(stop)
    assert net.ap == "spinal-AB12" and fallback.active()


def test_network_at_boot_keeps_the_access_point_closed():
    net, stop = FakeNetwork(ethernet=True), threading.Event()
    fallback = AccessPointFallback(net, AccessPointSettings(enabled=True), "AB12")
    assert not fallback.check_at_boot(stop)
    assert net.ap is None


def test_disabled_fallback_never_opens():
    net = FakeNetwork()
    fallback = AccessPointFallback(net, AccessPointSettings(enabled=False), "AB12")
    assert not fallback.check_at_boot(threading.Event())
    assert net.ap is None


def test_failed_join_from_the_access_point_reopens_it():
    net = FakeNetwork(in_range={"home": "password123"})
    fallback = AccessPointFallback(net, AccessPointSettings(enabled=True), "AB12")
    fallback.open()
    assert fallback.switch_to_wifi("home", "wrong-password") is None
    assert "refused" in fallback.last_error
    assert net.ap == "spinal-AB12"
    conn = fallback.switch_to_wifi("home", "password123")
    assert conn is not None and conn.ssid == "home" and net.ap is None and fallback.last_error == ""


def test_device_suffix_is_stable_and_short(tmp_path):
    mid = tmp_path / "machine-id"
    mid.write_text("0123456789abcdef0123456789abcdef\n")
    assert device_suffix(mid) == device_suffix(mid)
    assert len(device_suffix(mid)) == 4 and device_suffix(mid).isupper() or device_suffix(mid).isdigit()
    assert len(device_suffix(tmp_path / "missing")) == 4


def test_access_point_settings_validate_the_password():
    with pytest.raises(ValueError):
        AccessPointSettings(password="short")


# -- captive portal ------------------------------------------------------------------------------


def test_captive_portal_redirects_foreign_hosts_only_while_active():
    active = {"on": True}
    inner = Starlette(routes=[Route("/", lambda r: PlainTextResponse("setup page"))])
    app = CaptivePortal(
        inner,
        active=lambda: active["on"],
        portal_url=lambda: "http://10.42.0.1:8080/",
        own_hosts=lambda: {"10.42.0.1", "spinal.local"},
    )
    client = TestClient(app, follow_redirects=False)
    probe = client.get("/generate_204", headers={"host": "connectivitycheck.gstatic.com"})
    assert probe.status_code == 302 and probe.headers["location"] == "http://10.42.0.1:8080/"
    assert client.get("/", headers={"host": "10.42.0.1:8080"}).text == "setup page"
    active["on"] = False
    assert client.get("/", headers={"host": "example.com"}).text == "setup page"
