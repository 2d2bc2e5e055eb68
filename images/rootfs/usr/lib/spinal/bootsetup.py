"""The device's boot-time setup, run as root before spinal-edge: first-boot identity and setup code, then the
boot-partition work (apply and scrub a preseed, publish the setup code for a person at a PC).

spinal-firstboot.service runs `bootsetup.py firstboot`, spinal-preseed.service `bootsetup.py preseed`, with the
image's venv python (it uses `spinal.image.preseed`, the same validation `spinal image configure` uses).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import secrets
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from spinal.image.errors import PreseedError
from spinal.image.layout import BOOT_LABEL
from spinal.image.preseed import PRESEED_FILENAME, Preseed, WifiNetwork

SETUP_CODE_FILENAME = "setup-code.txt"  # the name the setup page tells people to look for
PRESEED_ERROR_FILENAME = "spinal-preseed-error.txt"
SERVICE_USER = "spinal"
# The daemon's own alphabet (spinal_edge.web.setup_code): no 0/O or 1/I to misread from a screen or paper.
SETUP_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
# Where the setup page keeps the admin password hash; once it exists the device is claimed.
ADMIN_ACCOUNT = "web/admin.json"


def log(message: str) -> None:
    """One line to stdout, which the unit sends to the journal and the console."""
    print(f"spinal: {message}", flush=True)


@dataclass
class DevicePaths:
    """Where the setup reads and writes; the real device's paths by default, a temporary tree in tests."""

    state_dir: Path = Path("/var/lib/spinal")
    etc: Path = Path("/etc")
    run: Path = Path("/run")
    shipped_config: Path = Path("/usr/share/spinal/edge.toml")
    owner: tuple[int, int] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.owner is None and os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(SERVICE_USER)
                self.owner = (entry.pw_uid, entry.pw_gid)
            except KeyError:
                self.owner = None

    @property
    def identity(self) -> Path:
        return self.state_dir / "identity.json"

    @property
    def setup_code(self) -> Path:
        return self.state_dir / "setup-code"

    @property
    def config(self) -> Path:
        return self.etc / "spinal" / "edge.toml"

    @property
    def tls_dir(self) -> Path:
        return self.state_dir / "tls"


# --- small file helpers ---------------------------------------------------------------------------------------


def write_file(path: Path, data: bytes, mode: int, owner: tuple[int, int] | None = None) -> None:
    """Write atomically (temp file, fsync, rename, fsync the directory) with the mode set before any byte lands."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        if owner is not None:
            os.fchown(fd, *owner)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def ensure_dir(path: Path, mode: int, owner: tuple[int, int] | None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    if owner is not None:
        os.chown(path, *owner)


# --- first boot ----------------------------------------------------------------------------------------------


def new_setup_code() -> str:
    """Twelve characters (60 bits) from an unambiguous alphabet, shown as XXXX-XXXX-XXXX."""
    chars = "".join(secrets.choice(SETUP_CODE_ALPHABET) for _ in range(12))
    return "-".join(chars[i : i + 4] for i in range(0, 12, 4))


def new_identity() -> dict[str, str]:
    device_id = uuid.uuid4().hex
    return {"device_id": device_id, "hostname": f"spinal-{device_id[:4]}"}


def load_identity(paths: DevicePaths) -> dict[str, str] | None:
    try:
        doc = json.loads(paths.identity.read_text())
    except (OSError, ValueError):
        return None
    if (
        isinstance(doc, dict)
        and isinstance(doc.get("device_id"), str)
        and isinstance(doc.get("hostname"), str)
    ):
        return doc
    return None


def save_identity(paths: DevicePaths, identity: dict[str, str]) -> None:
    write_file(paths.identity, (json.dumps(identity, indent=2) + "\n").encode(), 0o644, paths.owner)


def read_setup_code(paths: DevicePaths) -> str | None:
    try:
        code = paths.setup_code.read_text().strip()
    except OSError:
        return None
    return code or None


def ensure_setup_code(paths: DevicePaths) -> str:
    """The device's setup code, made once (the setup page makes a new one on a factory reset)."""
    code = read_setup_code(paths)
    if code is None:
        code = new_setup_code()
        write_file(paths.setup_code, (code + "\n").encode(), 0o600, paths.owner)
    return code


def apply_hostname(paths: DevicePaths, hostname: str, set_live: bool) -> None:
    write_file(paths.etc / "hostname", (hostname + "\n").encode(), 0o644)
    if set_live:
        socket.sethostname(hostname)


def ensure_ssh_host_keys(etc: Path, hostname: str) -> list[str]:
    """Generate this device's own SSH host keys (the image ships none); return the types made."""
    made = []
    for kind in ("ed25519", "ecdsa"):
        key = etc / "ssh" / f"ssh_host_{kind}_key"
        if key.exists():
            continue
        key.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"root@{hostname}", "-f", str(key)],
            check=True,
            stdin=subprocess.DEVNULL,
        )
        made.append(kind)
    return made


def setup_code_banner(identity: dict[str, str], code: str) -> str:
    return "\n".join(
        [
            "",
            "=" * 60,
            f"  spinal device {identity['hostname']}",
            f"  setup code: {code}",
            "  Open http://<this device's address>/ in a browser on the same network and enter it.",
            "=" * 60,
            "",
        ]
    )


def firstboot(paths: DevicePaths, live: bool = True) -> dict[str, str]:
    """Make what a fresh card lacks; each step is skipped when done, identity.json is written last."""
    if live:
        try:
            grow_data_partition()
        except (OSError, subprocess.CalledProcessError, ValueError) as exc:
            # A card that cannot grow still works with the data partition it has.
            log(f"could not grow the data partition ({exc}); the device keeps running with its current size")
    ensure_dir(paths.state_dir, 0o750, paths.owner)
    identity = load_identity(paths) or new_identity()
    made = ensure_ssh_host_keys(paths.etc, identity["hostname"])
    if made:
        log(f"generated SSH host keys: {', '.join(made)}")
    code = ensure_setup_code(paths)
    apply_hostname(paths, identity["hostname"], set_live=live)
    save_identity(paths, identity)
    log(f"device {identity['device_id']} named {identity['hostname']}")
    print(setup_code_banner(identity, code), flush=True)
    return identity


# --- growing the data partition ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Growth:
    """How to grow the data partition: the disk, its partition number, and the new size in sectors."""

    disk: str
    number: int
    new_sectors: int


def plan_growth(sfdisk_json: str, disk_sectors: int, partition_node: str) -> Growth | None:
    """From `sfdisk --json DISK` output, how far the data partition can grow (None when it is already at the end,
    not the last partition, or within 16 MiB of the end)."""
    table = json.loads(sfdisk_json)["partitiontable"]
    if table.get("label") != "dos":
        raise ValueError("the card's partition table is not MBR")
    parts = sorted(table["partitions"], key=lambda p: p["start"])
    index = next((i for i, p in enumerate(parts) if p["node"] == partition_node), None)
    if index is None or index != len(parts) - 1:
        return None
    part = parts[index]
    # MBR stores sizes in 32 bits of 512-byte sectors: at most 2 TiB.
    available = min(disk_sectors, 2**32 - 1) - part["start"]
    available -= available % 2048  # end on a MiB boundary
    if available - part["size"] < 16 * 2048:
        return None
    number = int(re.search(r"(\d+)$", partition_node).group(1))  # type: ignore[union-attr]
    return Growth(disk=table["device"], number=number, new_sectors=available)


def grow_data_partition(mountpoint: str = "/data") -> None:
    source = _run(["findmnt", "--noheadings", "--output", "SOURCE", "--mountpoint", mountpoint]).strip()
    if not source.startswith("/dev/"):
        log(f"{mountpoint} is not on a disk partition ({source or 'not mounted'}); not growing it")
        return
    disk = "/dev/" + _run(["lsblk", "--noheadings", "--nodeps", "--output", "PKNAME", source]).strip()
    disk_sectors = int(_run(["blockdev", "--getsz", disk]).strip())
    growth = plan_growth(_run(["sfdisk", "--json", disk]), disk_sectors, source)
    if growth is None:
        return
    log(f"growing the data partition {source} to {growth.new_sectors * 512 / 1e9:.1f} GB")
    # --no-reread: the disk is in use (root and data are mounted); partx then tells the kernel the new size.
    subprocess.run(
        ["sfdisk", "--no-reread", "--no-tell-kernel", "-N", str(growth.number), disk],
        input=f",{growth.new_sectors}\n",
        text=True,
        check=True,
        capture_output=True,
    )
    _run(["partx", "--update", "--nr", str(growth.number), disk])
    _run(["resize2fs", source])


def _run(args: list[str]) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


# --- the boot partition: preseed and setup-code file ---------------------------------------------------------


@contextlib.contextmanager
def mounted_boot_partition(paths: DevicePaths) -> Iterator[Path]:
    """Mount the FAT boot partition read-write for the duration (it is not mounted otherwise)."""
    device = Path("/dev/disk/by-label") / BOOT_LABEL
    deadline = time.monotonic() + 30
    while not device.exists():
        if time.monotonic() > deadline:
            raise FileNotFoundError(f"{device} did not appear")
        time.sleep(0.2)
    target = paths.run / "spinal-boot"
    target.mkdir(mode=0o700, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "vfat", "-o", "rw,nosuid,nodev,noexec,umask=0077,quiet", str(device), str(target)],
        check=True,
    )
    try:
        yield target
    finally:
        os.sync()
        subprocess.run(["umount", str(target)], check=False)


def scrub_file(path: Path) -> None:
    """Overwrite a file's bytes in place with zeros, flush, then delete it: FAT keeps a deleted file's clusters,
    so secrets must be gone from them before the name goes."""
    size = path.stat().st_size
    with open(path, "r+b", buffering=0) as handle:
        handle.write(b"\0" * size)
        os.fsync(handle.fileno())
    path.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def setup_code_text(identity: dict[str, str], code: str) -> str:
    return (
        f"spinal device: {identity['hostname']}\r\n"
        f"setup code:    {code}\r\n"
        "\r\n"
        "Put the card in the Raspberry Pi, power it, and open http://<its address>/ in a browser on the same\r\n"
        "network (the address is shown on its screen and in your router). Enter this code, then choose a password.\r\n"
        "This file disappears after the device has been set up.\r\n"
    )


def sync_boot_partition(paths: DevicePaths, boot: Path, live: bool = True) -> None:
    """Apply and scrub a preseed if present; keep the setup-code file there (and on the login screen) while the
    device is unclaimed: it has a setup code and the setup page has no admin password yet."""
    preseed_file = next((p for p in boot.iterdir() if p.name.lower() == PRESEED_FILENAME), None)
    if preseed_file is not None:
        try:
            preseed = Preseed.from_json(preseed_file.read_bytes())
        except PreseedError as exc:
            log(f"ignored the preseed: {exc}")
            write_file(
                boot / PRESEED_ERROR_FILENAME, f"The preseed was not applied: {exc}\r\n".encode(), 0o600
            )
        else:
            apply_preseed(paths, preseed, live=live)
            (boot / PRESEED_ERROR_FILENAME).unlink(missing_ok=True)
        scrub_file(preseed_file)
        log("removed the preseed file from the boot partition")
    identity = load_identity(paths)
    code = read_setup_code(paths)
    code_file = boot / SETUP_CODE_FILENAME
    issue = paths.run / "issue.d" / "50-spinal.issue"
    if identity and code and not (paths.state_dir / ADMIN_ACCOUNT).exists():
        text = setup_code_text(identity, code).encode()
        if not code_file.exists() or code_file.read_bytes() != text:
            write_file(code_file, text, 0o600)
        write_file(issue, setup_code_banner(identity, code).encode() + b"\n", 0o644)
    else:
        issue.unlink(missing_ok=True)
        if code_file.exists():
            code_file.unlink()
            log("the device is set up; removed the setup code from the boot partition")


# --- applying a preseed --------------------------------------------------------------------------------------


def apply_preseed(paths: DevicePaths, preseed: Preseed, live: bool = True) -> None:
    for line in preseed.summary():
        log(f"preseed: {line}")
    if preseed.hostname:
        apply_hostname(paths, preseed.hostname, set_live=live)
        identity = load_identity(paths)
        if identity is not None:
            identity["hostname"] = preseed.hostname
            save_identity(paths, identity)
    for network in preseed.wifi:
        write_wifi_connection(paths.etc, network)
    if preseed.wifi_country:
        write_file(
            paths.etc / "modprobe.d" / "spinal-wifi-country.conf",
            f"options cfg80211 ieee80211_regdom={preseed.wifi_country}\n".encode(),
            0o644,
        )
    if preseed.servers or preseed.tls:
        apply_server_settings(paths, preseed)
    if preseed.ssh_authorized_keys:
        keys = "".join(line + "\n" for line in preseed.ssh_authorized_keys).encode()
        write_file(paths.etc / "ssh" / "authorized_keys" / "root", keys, 0o644)
        if live:
            subprocess.run(
                ["systemctl", "enable", "--no-reload", "ssh.service"], check=False, capture_output=True
            )
            subprocess.run(["systemctl", "start", "--no-block", "ssh.service"], check=False)


def _keyfile_value(text: str) -> str:
    # GKeyFile string escapes: a backslash, and a leading space that would otherwise be trimmed.
    text = text.replace("\\", "\\\\")
    return "\\s" + text[1:] if text.startswith(" ") else text


def wifi_connection_text(network: WifiNetwork) -> str:
    con_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"spinal-wifi:{network.ssid}")
    lines = [
        "[connection]",
        f"id={_keyfile_value(network.ssid)}",
        f"uuid={con_uuid}",
        "type=wifi",
        "autoconnect=true",
        "",
        "[wifi]",
        "mode=infrastructure",
        f"ssid={_keyfile_value(network.ssid)}",
        "",
    ]
    if network.psk:
        lines += ["[wifi-security]", "key-mgmt=wpa-psk", f"psk={_keyfile_value(network.psk)}", ""]
    lines += ["[ipv4]", "method=auto", "", "[ipv6]", "method=auto", "addr-gen-mode=stable-privacy", ""]
    return "\n".join(lines)


def write_wifi_connection(etc: Path, network: WifiNetwork) -> Path:
    """A NetworkManager keyfile (root-only, as NetworkManager requires) that NetworkManager loads when it starts."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", network.ssid).strip("_") or "network"
    path = etc / "NetworkManager" / "system-connections" / f"spinal-{slug}.nmconnection"
    write_file(path, wifi_connection_text(network).encode(), 0o600)
    return path


def set_toml_value(text: str, table: str, key: str, value: str) -> str:
    """Set `key = value` (value already TOML) in `[table]` of a TOML text we ship, keeping comments and order."""
    lines = text.splitlines()
    header = f"[{table}]"
    start = next((i for i, line in enumerate(lines) if line.strip() == header), None)
    if start is None:
        return text.rstrip("\n") + f"\n\n{header}\n{key} = {value}\n"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for i in range(start + 1, end):
        if pattern.match(lines[i]):
            lines[i] = f"{key} = {value}"
            break
    else:
        insert = end
        while insert > start + 1 and not lines[insert - 1].strip():
            insert -= 1
        lines.insert(insert, f"{key} = {value}")
    return "\n".join(lines) + "\n"


def apply_server_settings(paths: DevicePaths, preseed: Preseed) -> None:
    """Point the daemon's config at the preseeded servers and TLS files (stored on the data partition)."""
    config = paths.config if paths.config.exists() else paths.shipped_config
    text = config.read_text()
    if preseed.servers:
        text = set_toml_value(text, "server", "endpoints", json.dumps(list(preseed.servers)))
    if preseed.tls:
        ensure_dir(paths.tls_dir, 0o700, paths.owner)
        for name, pem, mode in (
            ("ca", preseed.tls.ca, 0o644),
            ("cert", preseed.tls.cert, 0o644),
            ("key", preseed.tls.key, 0o600),
        ):
            if pem:
                target = paths.tls_dir / f"{name}.pem"
                write_file(target, pem.encode("ascii"), mode, paths.owner)
                text = set_toml_value(text, "server.tls", f"{name}_file", json.dumps(str(target)))
    tomllib.loads(text)  # never leave a config the daemon cannot read
    write_file(paths.config, text.encode(), 0o644)


# --- entry point ---------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in ("firstboot", "preseed"):
        print("usage: bootsetup.py firstboot|preseed", file=sys.stderr)
        return 2
    paths = DevicePaths()
    if argv[1] == "firstboot":
        firstboot(paths)
        return 0
    try:
        with mounted_boot_partition(paths) as boot:
            sync_boot_partition(paths, boot)
    except (OSError, subprocess.CalledProcessError) as exc:
        # The boot partition is a convenience; the device must still come up without it.
        log(f"could not use the boot partition ({exc}); preseed and setup-code file skipped this boot")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
