"""The device's boot setup (images/rootfs/usr/lib/spinal/bootsetup.py) on a temporary file tree: first-boot
identity and setup code, applying and scrubbing a preseed, and what stays on the boot partition."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from spinal.image.layout import ImageLayout, MiB
from spinal.image.preseed import PRESEED_FILENAME, Preseed, WifiNetwork

IMAGES = Path(__file__).resolve().parents[1]
SHIPPED_CONFIG = IMAGES.parent / "edge_os" / "config" / "edge.toml"
CODE = re.compile(r"^[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}$")


@pytest.fixture
def device(tmp_path: Path, bootsetup: ModuleType):  # type: ignore[no-untyped-def]
    """A device's writable tree (state dir, /etc with the shipped edge.toml, /run) and its boot partition dir."""
    etc = tmp_path / "etc"
    (etc / "spinal").mkdir(parents=True)
    (etc / "spinal" / "edge.toml").write_text(SHIPPED_CONFIG.read_text())
    paths = bootsetup.DevicePaths(
        state_dir=tmp_path / "var" / "lib" / "spinal",
        etc=etc,
        run=tmp_path / "run",
        shipped_config=SHIPPED_CONFIG,
        owner=None,
    )
    boot = tmp_path / "boot"
    boot.mkdir()
    return paths, boot


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_boot_makes_identity_setup_code_and_host_keys(device, bootsetup, capsys) -> None:  # type: ignore[no-untyped-def]
    paths, _ = device
    identity = bootsetup.firstboot(paths, live=False)

    assert re.fullmatch(r"[0-9a-f]{32}", identity["device_id"])
    assert identity["hostname"] == f"spinal-{identity['device_id'][:4]}"
    assert json.loads(paths.identity.read_text()) == identity
    code = paths.setup_code.read_text().strip()
    assert CODE.match(code)
    assert _mode(paths.setup_code) == 0o600
    assert (paths.etc / "hostname").read_text() == identity["hostname"] + "\n"
    for kind in ("ed25519", "ecdsa"):
        assert _mode(paths.etc / "ssh" / f"ssh_host_{kind}_key") == 0o600
    assert f"setup code: {code}" in capsys.readouterr().out


def test_first_boot_again_keeps_everything(device, bootsetup) -> None:  # type: ignore[no-untyped-def]
    paths, _ = device
    first = bootsetup.firstboot(paths, live=False)
    code = paths.setup_code.read_text()
    key = (paths.etc / "ssh" / "ssh_host_ed25519_key").read_bytes()

    again = bootsetup.firstboot(paths, live=False)

    assert again == first
    assert paths.setup_code.read_text() == code
    assert (paths.etc / "ssh" / "ssh_host_ed25519_key").read_bytes() == key


def test_two_devices_get_different_codes_and_ids(tmp_path: Path, bootsetup) -> None:  # type: ignore[no-untyped-def]
    made = []
    for name in ("a", "b"):
        paths = bootsetup.DevicePaths(state_dir=tmp_path / name / "state", etc=tmp_path / name / "etc",
                                      run=tmp_path / name / "run", owner=None)  # fmt: skip
        identity = bootsetup.firstboot(paths, live=False)
        made.append((identity["device_id"], paths.setup_code.read_text()))
    assert made[0][0] != made[1][0] and made[0][1] != made[1][1]


def test_setup_codes_use_the_unambiguous_alphabet(bootsetup) -> None:  # type: ignore[no-untyped-def]
    codes = {bootsetup.new_setup_code() for _ in range(200)}
    assert all(CODE.match(c) for c in codes)
    assert len(codes) == 200
    assert not set("".join(codes)) & set("01IO")


def _preseed(pki_dir: Path) -> Preseed:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(pki_dir / "key.pem"), "-out", str(pki_dir / "cert.pem"), "-days", "2", "-subj", "/CN=t"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(pki_dir / "id")], check=True)
    from spinal.image.preseed import TlsFiles

    return Preseed(
        hostname="arm-cell-3",
        wifi=(WifiNetwork(" Lab\\Net", "correct horse battery"),),
        wifi_country="DE",
        servers=("tls/gpu.example.org:7447",),
        tls=TlsFiles(
            ca=(pki_dir / "cert.pem").read_text(),
            cert=(pki_dir / "cert.pem").read_text(),
            key=(pki_dir / "key.pem").read_text(),
        ),  # fmt: skip
        ssh_authorized_keys=((pki_dir / "id.pub").read_text().strip(),),
    )


def test_a_preseed_is_applied_then_erased_from_the_boot_partition(device, bootsetup, tmp_path) -> None:  # type: ignore[no-untyped-def]
    paths, boot = device
    bootsetup.firstboot(paths, live=False)
    preseed = _preseed(tmp_path)
    (boot / PRESEED_FILENAME).write_bytes(preseed.to_json())

    bootsetup.sync_boot_partition(paths, boot, live=False)

    assert not (boot / PRESEED_FILENAME).exists()
    assert (paths.etc / "hostname").read_text() == "arm-cell-3\n"
    assert json.loads(paths.identity.read_text())["hostname"] == "arm-cell-3"
    wifi = next((paths.etc / "NetworkManager" / "system-connections").glob("*.nmconnection"))
    assert _mode(wifi) == 0o600
    text = wifi.read_text()
    assert "ssid=\\sLab\\\\Net\n" in text and "psk=correct horse battery\n" in text
    assert "ieee80211_regdom=DE" in (paths.etc / "modprobe.d" / "spinal-wifi-country.conf").read_text()
    config = tomllib.loads(paths.config.read_text())
    assert config["server"]["endpoints"] == ["tls/gpu.example.org:7447"]
    assert config["server"]["tls"]["key_file"] == str(paths.tls_dir / "key.pem")
    assert config["http"]["port"] == 8080
    assert _mode(paths.tls_dir / "key.pem") == 0o600 and _mode(paths.tls_dir) == 0o700
    assert (paths.tls_dir / "key.pem").read_text() == preseed.tls.key
    assert (
        paths.etc / "ssh" / "authorized_keys" / "root"
    ).read_text().strip() == preseed.ssh_authorized_keys[0]


def test_the_setup_code_is_published_while_the_device_is_unclaimed(device, bootsetup) -> None:  # type: ignore[no-untyped-def]
    paths, boot = device
    identity = bootsetup.firstboot(paths, live=False)
    code = paths.setup_code.read_text().strip()

    bootsetup.sync_boot_partition(paths, boot, live=False)
    published = (boot / bootsetup.SETUP_CODE_FILENAME).read_text()
    assert f"setup code:    {code}" in published and identity["hostname"] in published
    assert code in (paths.run / "issue.d" / "50-spinal.issue").read_text()

    admin = paths.state_dir / "web" / "admin.json"  # what the setup page writes once a person set a password
    admin.parent.mkdir()
    admin.write_text("{}")
    bootsetup.sync_boot_partition(paths, boot, live=False)
    assert not (boot / bootsetup.SETUP_CODE_FILENAME).exists()
    assert not (paths.run / "issue.d" / "50-spinal.issue").exists()

    admin.unlink()  # a factory reset: a new code, unclaimed again
    paths.setup_code.write_text("NEWC-ODEX-YZ23\n")
    bootsetup.sync_boot_partition(paths, boot, live=False)
    assert "NEWC-ODEX-YZ23" in (boot / bootsetup.SETUP_CODE_FILENAME).read_text()


def test_a_bad_preseed_is_reported_on_the_boot_partition_and_still_erased(device, bootsetup) -> None:  # type: ignore[no-untyped-def]
    paths, boot = device
    bootsetup.firstboot(paths, live=False)
    bad = b'{"format": "spinal-preseed/1", "wifi": {"networks": [{"ssid": "lab", "psk": "secret12345"}]}, "hostname": "Bad!"}'
    (boot / PRESEED_FILENAME).write_bytes(bad)

    bootsetup.sync_boot_partition(paths, boot, live=False)

    assert not (boot / PRESEED_FILENAME).exists()
    error = (boot / bootsetup.PRESEED_ERROR_FILENAME).read_text()
    assert "not applied" in error and "hostname" in error
    assert "secret12345" not in error
    assert not (paths.etc / "NetworkManager").exists()


def test_scrubbing_zeroes_the_bytes_before_the_name_goes(tmp_path: Path, bootsetup) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "preseed.json"
    secret.write_bytes(b"psk=hunter2hunter2")
    witness = tmp_path / "same-inode"
    os.link(secret, witness)  # a second name for the same bytes shows what was left behind

    bootsetup.scrub_file(secret)

    assert not secret.exists()
    assert witness.read_bytes() == b"\0" * len(b"psk=hunter2hunter2")


def test_toml_values_are_replaced_inserted_or_added_with_their_table(bootsetup) -> None:  # type: ignore[no-untyped-def]
    text = SHIPPED_CONFIG.read_text()
    text = bootsetup.set_toml_value(text, "server", "endpoints", '["tls/a.example:7447"]')
    text = bootsetup.set_toml_value(text, "server.tls", "ca_file", '"/var/lib/spinal/tls/ca.pem"')
    text = bootsetup.set_toml_value(text, "http", "host", '"::"')
    text = bootsetup.set_toml_value(text, "cameras", "front", '"/dev/video0"')
    doc = tomllib.loads(text)
    assert doc["server"]["endpoints"] == ["tls/a.example:7447"]
    assert doc["server"]["tls"]["ca_file"] == "/var/lib/spinal/tls/ca.pem"
    assert doc["http"] == {"host": "::", "port": 8080}
    assert doc["cameras"] == {"front": "/dev/video0"}
    assert "# Zenoh endpoints" in text  # comments stay


def _sfdisk_json(image: Path) -> str:
    return subprocess.run(["sfdisk", "--json", str(image)], check=True, capture_output=True, text=True).stdout


def _disk(path: Path, layout: ImageLayout, size: int) -> Path:
    with open(path, "wb") as handle:
        handle.truncate(size)
    subprocess.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(path)],
                   input=layout.sfdisk_script(1).encode(), check=True)  # fmt: skip
    return path


LAYOUT = ImageLayout(first_offset=1 * MiB, boot_size=2 * MiB, root_size=2 * MiB, data_size=1 * MiB)


def test_growth_fills_the_card_to_a_mib_boundary(tmp_path: Path, bootsetup) -> None:  # type: ignore[no-untyped-def]
    image = _disk(tmp_path / "card.img", LAYOUT, 200 * MiB + 4096)
    growth = bootsetup.plan_growth(_sfdisk_json(image), (200 * MiB + 4096) // 512, f"{image}3")
    assert growth.disk == str(image) and growth.number == 3
    assert (LAYOUT.data.start + growth.new_sectors * 512) == 200 * MiB


def test_a_data_partition_already_at_the_end_is_left_alone(tmp_path: Path, bootsetup) -> None:  # type: ignore[no-untyped-def]
    image = _disk(tmp_path / "card.img", LAYOUT, LAYOUT.total_size + 4 * MiB)
    assert (
        bootsetup.plan_growth(_sfdisk_json(image), (LAYOUT.total_size + 4 * MiB) // 512, f"{image}3") is None
    )


def test_only_the_last_partition_grows(tmp_path: Path, bootsetup) -> None:  # type: ignore[no-untyped-def]
    image = _disk(tmp_path / "card.img", LAYOUT, 200 * MiB)
    assert bootsetup.plan_growth(_sfdisk_json(image), 200 * MiB // 512, f"{image}2") is None
