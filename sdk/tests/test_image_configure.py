"""`spinal image configure`: the preseed lands on the image's FAT boot partition (through mtools at the
partition's offset), merges with earlier settings, and no secret reaches the terminal."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from spinal.cli import app
from spinal.image.bootfs import BootPartition
from spinal.image.layout import BOOT_LABEL, ImageLayout, MiB
from spinal.image.preseed import PRESEED_FILENAME, Preseed
from typer.testing import CliRunner

LAYOUT = ImageLayout(first_offset=1 * MiB, boot_size=40 * MiB, root_size=1 * MiB, data_size=1 * MiB)
runner = CliRunner()


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A small disk image with the spinal partition table and a real FAT boot partition holding config.txt."""
    disk = tmp_path / "spinal.img"
    with open(disk, "wb") as handle:
        handle.truncate(LAYOUT.total_size)
    subprocess.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(disk)],
                   input=LAYOUT.sfdisk_script(0xABCD).encode(), check=True)  # fmt: skip
    fat = tmp_path / "boot.vfat"
    subprocess.run(["mkfs.vfat", "-n", BOOT_LABEL, "-C", str(fat), str(LAYOUT.boot_size // 1024)],
                   check=True, capture_output=True)  # fmt: skip
    (tmp_path / "config.txt").write_text("arm_64bit=1\n")
    subprocess.run(["mcopy", "-i", str(fat), str(tmp_path / "config.txt"), "::/"], check=True,
                   env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})  # fmt: skip
    with open(disk, "r+b") as handle:
        handle.seek(LAYOUT.boot.start)
        handle.write(fat.read_bytes())
    return disk


@pytest.fixture
def ssh_pub(tmp_path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True)
    return tmp_path / "id.pub"


def test_configure_writes_a_preseed_the_device_can_read(image: Path, ssh_pub: Path) -> None:
    result = runner.invoke(app, ["image", "configure", str(image), "--wifi", "Lab Net:correct horse battery",
                                 "--server", "tls/gpu.example.org:7447", "--hostname", "arm-cell-3",
                                 "--ssh-key", str(ssh_pub)])  # fmt: skip

    assert result.exit_code == 0, result.output
    boot = BootPartition(image)
    preseed = Preseed.from_json(boot.read(PRESEED_FILENAME) or b"")
    assert preseed.hostname == "arm-cell-3"
    assert preseed.wifi[0].ssid == "Lab Net" and preseed.wifi[0].psk == "correct horse battery"
    assert preseed.servers == ("tls/gpu.example.org:7447",)
    assert preseed.ssh_authorized_keys == (ssh_pub.read_text().strip(),)
    assert boot.read("config.txt") == b"arm_64bit=1\n"


def test_the_passphrase_never_appears_in_the_output(image: Path) -> None:
    result = runner.invoke(app, ["image", "configure", str(image), "--wifi", "lab:supersecretpass"])
    assert result.exit_code == 0
    assert "supersecretpass" not in result.output
    assert "wifi: lab (passphrase set)" in result.output


def test_a_second_configure_adds_to_the_first_and_reset_starts_over(image: Path) -> None:
    runner.invoke(app, ["image", "configure", str(image), "--wifi", "lab:supersecretpass"])
    runner.invoke(app, ["image", "configure", str(image), "--hostname", "cell-2"])
    merged = Preseed.from_json(BootPartition(image).read(PRESEED_FILENAME) or b"")
    assert merged.hostname == "cell-2" and merged.wifi[0].ssid == "lab"

    runner.invoke(app, ["image", "configure", str(image), "--reset", "--hostname", "cell-9"])
    fresh = Preseed.from_json(BootPartition(image).read(PRESEED_FILENAME) or b"")
    assert fresh.hostname == "cell-9" and fresh.wifi == ()


def test_tls_files_are_checked_before_anything_is_written(image: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    result = runner.invoke(app, ["image", "configure", str(image), "--ca", str(bogus)])
    assert result.exit_code == 2
    assert "CA certificate (--ca) is not a PEM file" in result.output
    assert BootPartition(image).read(PRESEED_FILENAME) is None


def test_wifi_without_passphrase_is_refused_when_nobody_can_type_it(image: Path) -> None:
    result = runner.invoke(app, ["image", "configure", str(image), "--wifi", "lab"])
    assert result.exit_code == 2
    assert "no passphrase for Wi-Fi 'lab'" in result.output


def test_a_file_that_is_not_a_disk_image_gets_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "photo.jpg"
    junk.write_bytes(b"\xff\xd8" + b"\0" * 1024)
    result = runner.invoke(app, ["image", "configure", str(junk), "--hostname", "cell"])
    assert result.exit_code == 2
    assert "no MBR signature" in result.output


def test_a_damaged_preseed_on_the_image_asks_for_reset(image: Path) -> None:
    BootPartition(image).write(PRESEED_FILENAME, b"{broken")
    result = runner.invoke(app, ["image", "configure", str(image), "--hostname", "cell"])
    assert result.exit_code == 2
    assert "--reset" in result.output
