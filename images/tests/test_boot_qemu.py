"""The built image, booted under qemu-system-aarch64 -M virt: first boot, the setup page, the sandbox and the
firewall seen from outside, a preseed applied and erased, and a second boot that keeps identity and settings.

Runs only when SPINAL_IMAGE names a built .img (`make image-test` sets it); each property is its own test, so
a report shows exactly which hold. Writes the timings to images/out/boot-report.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from spinal.cli import app
from spinal.image.bootfs import BootPartition
from spinal.image.layout import ImageLayout
from spinal.image.partitions import read_partition_table
from typer.testing import CliRunner

IMAGES = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(IMAGES))
from imagebuild.qemu import VirtualPi, booted, extract_boot_files  # noqa: E402

IMAGE = os.environ.get("SPINAL_IMAGE")
pytestmark = [
    pytest.mark.image,
    pytest.mark.skipif(
        not IMAGE, reason="boots the built SD image: run `make image-test` (sets SPINAL_IMAGE)"
    ),
    pytest.mark.skipif(
        shutil.which("qemu-system-aarch64") is None,
        reason="needs qemu-system-aarch64 to boot the image: apt install qemu-system-arm (make image-test does)",
    ),
]

CARD_BYTES = 4 * 1024**3  # the card is bigger than the image, so first boot grows the data partition
BOOT_TIMEOUT = 900  # first boot under emulation on a busy 2-core machine
READY_TIMEOUT = 600
WIFI_PASSPHRASE = "preseed-secret-8c1f"
HOSTNAME = "cell-test"
SERVER = "tls/gpu.example.org:7447"
CODE = r"setup code: ([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})"
FACTS_SCRIPT = (Path(__file__).parent / "guest_facts.py").read_text()
REPORT = IMAGES / "out" / "boot-report.json"
MEASURED: dict[str, Any] = {}


def _card(image: Path, dest: Path) -> Path:
    subprocess.run(["cp", "--sparse=always", str(image), str(dest)], check=True)
    with open(dest, "r+b") as handle:
        handle.truncate(CARD_BYTES)
    return dest


@dataclass
class Ssh:
    port: int
    key: Path
    known_hosts: Path

    def run(
        self, command: str, stdin: str | None = None, strict: bool = False, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        args = [
            "ssh", "-p", str(self.port), "-i", str(self.key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", "ConnectTimeout=10", "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "LogLevel=ERROR",
            # Each boot forwards a different host port; one alias lets the second boot be checked against the
            # host key the first boot presented.
            "-o", "HostKeyAlias=spinal-card-under-test",
            "-o", f"StrictHostKeyChecking={'yes' if strict else 'accept-new'}", "root@127.0.0.1", command,
        ]  # fmt: skip
        return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)

    def facts(self, strict: bool = False) -> dict[str, Any]:
        done = self.run("python3 -", stdin=FACTS_SCRIPT, strict=strict)
        if done.returncode != 0:
            raise RuntimeError(f"guest facts failed: {done.stderr}")
        return json.loads(done.stdout)


@dataclass
class Boot:
    """What one boot of one card showed."""

    console: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    ssh_ok: bool = False
    ssh_strict_ok: bool = False
    ready_seconds: float | None = None
    healthz_wall_seconds: float | None = None
    healthz: tuple[int, bytes] | None = None
    setup_page: tuple[int, bytes] | None = None
    setup_form: tuple[int, bytes] | None = None
    direct_8080: tuple[int, bytes] | None = None
    ssh_banner: bytes = b""
    probe_outside: tuple[int, bytes] | None = None
    probe_inside: str = ""
    clean_shutdown: bool = False


def _wait_for_ssh(vm: VirtualPi, ssh: Ssh, strict: bool) -> bool:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline and vm.running():
        if vm.banner(22, 5).startswith(b"SSH-") and ssh.run("true", strict=strict).returncode == 0:
            return True
        time.sleep(3)
    return False


def _wait_for_edge_ready(ssh: Ssh) -> dict[str, str]:
    """Until systemd says spinal-edge is active (READY=1 received), it fails for good, or the timeout."""
    deadline = time.monotonic() + READY_TIMEOUT
    state: dict[str, str] = {}
    while time.monotonic() < deadline:
        out = ssh.run(
            "systemctl show spinal-edge.service -p ActiveState,SubState,Result,NRestarts,ActiveEnterTimestampMonotonic"
        ).stdout
        state = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        if state.get("ActiveState") == "active":
            break
        if int(state.get("NRestarts", "0") or 0) >= 3:
            break  # it keeps failing to start; waiting longer shows nothing new
        time.sleep(3)
    return state


def _observe_over_ssh(vm: VirtualPi, ssh: Ssh, boot: Boot, strict: bool) -> None:
    boot.ssh_ok = _wait_for_ssh(vm, ssh, strict=strict)
    boot.ssh_strict_ok = strict and boot.ssh_ok
    if not boot.ssh_ok:
        return
    state = _wait_for_edge_ready(ssh)
    if state.get("ActiveState") == "active":
        boot.ready_seconds = int(state["ActiveEnterTimestampMonotonic"]) / 1e6
    boot.healthz = vm.http_get(80, "/healthz")
    boot.setup_page = vm.http_get(80, "/")
    boot.direct_8080 = vm.http_get(8080, "/healthz", timeout=5)
    ssh.run("systemd-run --unit=spinal-probe --property=Type=exec python3 -m http.server 7447")
    boot.probe_inside = ssh.run(
        "python3 -c \"import urllib.request,time;time.sleep(2);print(urllib.request.urlopen('http://127.0.0.1:7447/').status)\""
    ).stdout.strip()
    boot.probe_outside = vm.http_get(7447, "/", timeout=5)
    ssh.run("systemctl stop spinal-probe")
    boot.facts = ssh.facts(strict=strict)


@pytest.fixture(scope="module")
def image() -> Path:
    path = Path(IMAGE or "")
    if not path.is_file():
        pytest.fail(f"SPINAL_IMAGE={IMAGE} is not a file; run `make image` first")
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("boot")


@pytest.fixture(scope="module")
def preseeded(image: Path, workdir: Path) -> Iterator[tuple[Path, Boot, Boot]]:
    """A card preseeded with an SSH key, hostname, Wi-Fi and server, booted twice."""
    card = _card(image, workdir / "preseeded.img")
    key = workdir / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    result = CliRunner().invoke(app, ["image", "configure", str(card), "--ssh-key", f"{key}.pub", "--hostname", HOSTNAME,
                                      "--wifi", f"spinal-lab:{WIFI_PASSPHRASE}", "--server", SERVER])  # fmt: skip
    assert result.exit_code == 0, result.output
    boot_files = extract_boot_files(card, workdir / "bootfiles")
    boots = []
    for run in (1, 2):
        boot = Boot()
        with booted(card, boot_files, workdir / f"preseeded-{run}") as vm:
            ssh = Ssh(port=vm.forwards[22], key=key, known_hosts=workdir / "known_hosts")
            # The second boot must present the host key the first one made: strict checking proves it.
            _observe_over_ssh(vm, ssh, boot, strict=run == 2)
            boot.clean_shutdown = vm.power_off()
            boot.console = vm.console()
        boots.append(boot)
    exposure = re.search(r"Overall exposure level for \S+: ([\d.]+)", boots[0].facts.get("security", ""))
    MEASURED.update(
        first_boot_firstboot_done_seconds_guest=int(
            boots[0].facts.get("firstboot_done", {}).get("ActiveEnterTimestampMonotonic", 0)
        )
        / 1e6
        or None,
        first_boot_edge_started_seconds_guest=_edge_started_seconds(boots[0].facts),
        second_boot_edge_started_seconds_guest=_edge_started_seconds(boots[1].facts),
        first_boot_ready_seconds_guest=boots[0].ready_seconds,
        second_boot_ready_seconds_guest=boots[1].ready_seconds,
        spinal_edge_exposure=float(exposure[1]) if exposure else None,
        edge_state_first_boot=boots[0].facts.get("edge"),
        edge_journal_first_boot=boots[0].facts.get("edge_journal"),
        critical_chain_second_boot=boots[1].facts.get("critical_chain"),
        blame_second_boot=(boots[1].facts.get("blame") or "").splitlines()[:15],
    )
    yield card, boots[0], boots[1]


@pytest.fixture(scope="module")
def plain(image: Path, workdir: Path, preseeded: tuple[Path, Boot, Boot]) -> Iterator[tuple[Path, Boot]]:
    """A card exactly as flashed, booted once, watched only from outside (its console and forwarded ports)."""
    card = _card(image, workdir / "plain.img")
    boot = Boot()
    daemon_seen = preseeded[1].ready_seconds is not None
    with booted(card, extract_boot_files(card, workdir / "bootfiles-plain"), workdir / "plain") as vm:
        vm.wait_for_console(CODE, BOOT_TIMEOUT)
        boot.healthz = vm.wait_for_http(80, "/healthz", READY_TIMEOUT if daemon_seen else 60)
        if boot.healthz:
            boot.healthz_wall_seconds = time.monotonic() - vm.started_at
        boot.setup_page = vm.http_get(80, "/")
        boot.setup_form = vm.http_get(80, "/setup")
        boot.ssh_banner = vm.banner(22, 10)
        boot.direct_8080 = vm.http_get(8080, "/healthz", timeout=5)
        boot.clean_shutdown = vm.power_off()
        boot.console = vm.console()
    MEASURED["plain_first_boot_healthz_wall_seconds"] = boot.healthz_wall_seconds
    yield card, boot


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    """Write what the boots measured to images/out/boot-report.json once the module's tests are done."""
    yield
    if not MEASURED:
        return
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps({"image": IMAGE, **MEASURED}, indent=2) + "\n")
    print(
        "\nboot report:",
        json.dumps(
            {k: v for k, v in MEASURED.items() if k.endswith(("seconds", "guest", "exposure"))}, indent=2
        ),
    )


def _edge_started_seconds(facts: dict[str, Any]) -> float | None:
    """Seconds after kernel start at which systemd first started spinal-edge (from the journal)."""
    found = re.search(r"^\[\s*([\d.]+)\]", facts.get("edge_first_start", ""), re.M)
    return float(found[1]) if found else None


def _code(console: str) -> str | None:
    found = re.search(CODE, console)
    return found[1] if found else None


# --- first boot of a card as flashed -------------------------------------------------------------------------


def test_first_boot_shows_a_setup_code_on_the_console(plain: tuple[Path, Boot]) -> None:
    assert _code(plain[1].console), plain[1].console[-3000:]


def test_the_setup_code_file_on_the_boot_partition_matches_the_console(plain: tuple[Path, Boot]) -> None:
    card, boot = plain
    text = (BootPartition(card).read("setup-code.txt") or b"").decode()
    assert _code(boot.console) and f"setup code:    {_code(boot.console)}" in text


def test_each_card_makes_its_own_setup_code_and_identity(
    plain: tuple[Path, Boot], preseeded: tuple[Path, Boot, Boot]
) -> None:
    first = preseeded[1]
    assert _code(plain[1].console) and first.facts["setup_code"]
    assert _code(plain[1].console) != first.facts["setup_code"]


def test_the_setup_page_answers_through_port_80(plain: tuple[Path, Boot]) -> None:
    assert plain[1].healthz and plain[1].healthz[0] == 200, "no answer from /healthz on port 80"


def test_an_unclaimed_card_asks_for_the_setup_code_on_port_80(plain: tuple[Path, Boot]) -> None:
    boot = plain[1]
    # / → /status → /setup for a visitor without a session.
    assert boot.setup_page and boot.setup_page[0] == 303
    assert boot.setup_form and boot.setup_form[0] == 200, boot.setup_form
    assert b'name="setup_code"' in boot.setup_form[1] and b"setup-code.txt" in boot.setup_form[1]


def test_ssh_is_closed_on_a_card_without_preseed(plain: tuple[Path, Boot]) -> None:
    assert not plain[1].ssh_banner.startswith(b"SSH-")


def test_the_daemon_port_is_closed_to_the_network(plain: tuple[Path, Boot]) -> None:
    assert plain[1].direct_8080 is None


def test_the_device_shuts_down_cleanly(plain: tuple[Path, Boot], preseeded: tuple[Path, Boot, Boot]) -> None:
    assert plain[1].clean_shutdown and preseeded[1].clean_shutdown and preseeded[2].clean_shutdown


# --- a preseeded card, observed over SSH ---------------------------------------------------------------------


def test_the_preseeded_ssh_key_lets_root_in(preseeded: tuple[Path, Boot, Boot]) -> None:
    assert preseeded[1].ssh_ok, preseeded[1].console[-3000:]


def test_systemd_reports_spinal_edge_ready(preseeded: tuple[Path, Boot, Boot]) -> None:
    first = preseeded[1]
    assert first.ready_seconds is not None, (
        f"spinal-edge: {first.facts.get('edge')}\n{first.facts.get('edge_journal')}"
    )


def test_the_setup_page_answers_on_the_preseeded_card(preseeded: tuple[Path, Boot, Boot]) -> None:
    first = preseeded[1]
    assert first.healthz and first.healthz[0] == 200
    assert first.setup_page and first.setup_page[0] in (200, 302, 303, 307)


def test_the_root_file_system_is_read_only(preseeded: tuple[Path, Boot, Boot]) -> None:
    facts = preseeded[1].facts
    assert facts["root_options"].split(",")[0] == "ro"
    assert facts["usr_write"] == "Read-only file system"
    assert facts["opt_write"] == "Read-only file system"


def test_state_lives_on_the_data_partition(preseeded: tuple[Path, Boot, Boot]) -> None:
    facts = preseeded[1].facts
    assert facts["etc_fstype"] == "overlay" and facts["var_fstype"] == "overlay"
    assert facts["tmp_fstype"] == "tmpfs"
    assert facts["data_source"].endswith("3")


def test_first_boot_grew_the_data_partition_to_fill_the_card(preseeded: tuple[Path, Boot, Boot]) -> None:
    layout = ImageLayout()
    assert preseeded[1].facts["data_bytes"] > (CARD_BYTES - layout.data.start) * 0.9
    table = read_partition_table(preseeded[0])
    assert table.get(3).end > CARD_BYTES - 2 * 1024**2


def test_only_the_expected_ports_listen(preseeded: tuple[Path, Boot, Boot]) -> None:
    exposed = {
        p["port"] for p in preseeded[1].facts["listening"] if not p["host"].startswith(("127.", "[::1]"))
    }
    assert exposed <= {22, 8080}, preseeded[1].facts["listening"]


def test_the_firewall_drops_a_port_nothing_expected_listens_on(preseeded: tuple[Path, Boot, Boot]) -> None:
    first = preseeded[1]
    assert first.probe_inside == "200"  # the probe server really ran
    assert first.probe_outside is None


def test_the_daemon_port_is_closed_on_the_preseeded_card(preseeded: tuple[Path, Boot, Boot]) -> None:
    assert preseeded[1].direct_8080 is None


def test_the_preseed_was_applied(preseeded: tuple[Path, Boot, Boot]) -> None:
    facts = preseeded[1].facts
    assert facts["hostname"] == HOSTNAME
    assert json.loads(facts["identity"])["hostname"] == HOSTNAME
    assert any(name.startswith("spinal-spinal-lab") for name in facts["wifi_profiles"])
    assert SERVER in facts["edge_toml"]


def test_the_preseed_was_erased_from_the_boot_partition(preseeded: tuple[Path, Boot, Boot]) -> None:
    card = preseeded[0]
    assert BootPartition(card).read("spinal-preseed.json") is None
    boot = read_partition_table(card).boot_partition()
    with open(card, "rb") as handle:
        handle.seek(boot.start)
        raw = handle.read(boot.size)
    assert WIFI_PASSPHRASE.encode() not in raw


def test_no_account_has_a_password(preseeded: tuple[Path, Boot, Boot]) -> None:
    assert preseeded[1].facts["passwords"] == []


def test_the_setup_code_file_is_private_to_the_daemon(preseeded: tuple[Path, Boot, Boot]) -> None:
    assert preseeded[1].facts["setup_code_stat"] == {"mode": "0o600", "owner": "spinal"}


def test_spinal_edge_sandbox_exposure_is_low(preseeded: tuple[Path, Boot, Boot]) -> None:
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", preseeded[1].facts["security"])
    assert found, preseeded[1].facts["security"][-2000:]
    assert float(found[1]) <= 3.0


def test_the_daemons_user_may_manage_the_network_restart_itself_and_reboot_only(
    preseeded: tuple[Path, Boot, Boot],
) -> None:
    assert preseeded[1].facts["polkit"] == {
        "network": True,
        "restart_edge": True,
        "restart_ssh": False,
        "reboot": True,
    }


def test_the_image_units_verify_cleanly(preseeded: tuple[Path, Boot, Boot]) -> None:
    assert preseeded[1].facts["verify_units"] == ""


def test_no_system_unit_failed(preseeded: tuple[Path, Boot, Boot]) -> None:
    failed = [line for line in preseeded[1].facts["failed_units"].splitlines() if "spinal-edge" not in line]
    assert failed == []


# --- the second boot -----------------------------------------------------------------------------------------


def test_second_boot_presents_the_same_ssh_host_key(preseeded: tuple[Path, Boot, Boot]) -> None:
    assert preseeded[2].ssh_strict_ok


def test_second_boot_keeps_identity_and_settings(preseeded: tuple[Path, Boot, Boot]) -> None:
    first, second = preseeded[1].facts, preseeded[2].facts
    for key in ("machine_id", "identity", "setup_code", "host_key", "hostname", "wifi_profiles", "edge_toml"):
        assert second[key] == first[key], key
    assert len(first["machine_id"]) == 32


def test_second_boot_does_not_run_first_boot_setup_again(preseeded: tuple[Path, Boot, Boot]) -> None:
    assert preseeded[2].facts["firstboot"]["ConditionResult"] == "no"
    assert preseeded[1].facts["firstboot"]["Result"] == "success"


def test_spinal_edge_is_ready_again_on_second_boot(preseeded: tuple[Path, Boot, Boot]) -> None:
    assert preseeded[2].ready_seconds is not None
