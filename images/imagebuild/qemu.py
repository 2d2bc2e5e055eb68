"""Boot a built image under qemu-system-aarch64 (-M virt) with the kernel, initrd and command line taken from
its own boot partition, user-mode networking with host port forwards, and a serial console log.

Used by the boot test (images/tests/test_boot_qemu.py) and by anyone who wants to try the image on a PC.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from spinal.image.bootfs import BootPartition


@dataclass(frozen=True)
class BootFiles:
    kernel: Path
    initrd: Path
    cmdline: str


def extract_boot_files(image: Path, dest: Path) -> BootFiles:
    """The kernel and initrd config.txt names, and cmdline.txt with the Pi's consoles swapped for qemu's UART."""
    boot = BootPartition(image)
    config = (boot.read("config.txt") or b"").decode()
    kernel_name = re.search(r"^kernel=(\S+)", config, re.M)
    initrd_name = re.search(r"^initramfs\s+(\S+)", config, re.M)
    if not kernel_name or not initrd_name:
        raise RuntimeError("config.txt on the boot partition names no kernel= or initramfs")
    dest.mkdir(parents=True, exist_ok=True)
    files = BootFiles(kernel=dest / kernel_name[1], initrd=dest / initrd_name[1], cmdline="")
    files.kernel.write_bytes(boot.read(kernel_name[1]) or b"")
    files.initrd.write_bytes(boot.read(initrd_name[1]) or b"")
    cmdline = (boot.read("cmdline.txt") or b"").decode().split()
    cmdline = [arg for arg in cmdline if not arg.startswith("console=")] + ["console=ttyAMA0"]
    return BootFiles(kernel=files.kernel, initrd=files.initrd, cmdline=" ".join(cmdline))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class VirtualPi:
    """One qemu run of a disk image; `forwards` maps guest TCP ports to host ports on 127.0.0.1."""

    disk: Path
    boot: BootFiles
    workdir: Path
    guest_ports: tuple[int, ...] = (22, 80, 8080, 7447)
    memory_mib: int = 1024
    forwards: dict[int, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    @property
    def console_log(self) -> Path:
        return self.workdir / "console.log"

    @property
    def _qmp_path(self) -> Path:
        return self.workdir / "qmp.sock"

    def start(self) -> None:
        if shutil.which("qemu-system-aarch64") is None:
            raise RuntimeError("qemu-system-aarch64 is missing; apt install qemu-system-arm")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.forwards = {port: free_port() for port in self.guest_ports}
        hostfwd = ",".join(f"hostfwd=tcp:127.0.0.1:{host}-:{guest}" for guest, host in self.forwards.items())
        self._qmp_path.unlink(missing_ok=True)
        args = [
            "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-smp", "2", "-m", str(self.memory_mib),
            "-accel", "tcg,thread=multi",
            "-kernel", str(self.boot.kernel), "-initrd", str(self.boot.initrd), "-append", self.boot.cmdline,
            "-drive", f"file={self.disk},if=none,format=raw,id=card,cache=writeback",
            "-device", "virtio-blk-pci,drive=card",
            "-netdev", f"user,id=net0,{hostfwd}", "-device", "virtio-net-pci,netdev=net0,romfile=",
            "-object", "rng-random,filename=/dev/urandom,id=rng0", "-device", "virtio-rng-pci,rng=rng0",
            "-display", "none", "-monitor", "none", "-no-reboot",
            "-serial", f"file:{self.console_log}",
            "-qmp", f"unix:{self._qmp_path},server=on,wait=off",
        ]  # fmt: skip
        self.started_at = time.monotonic()
        with open(self.workdir / "qemu.stderr", "wb") as stderr:
            self.process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
            )

    def console(self) -> str:
        return self.console_log.read_text(errors="replace") if self.console_log.exists() else ""

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_for_console(self, pattern: str, timeout: float) -> re.Match[str] | None:
        """Wait until the console log matches `pattern` (or qemu exits, or the timeout passes)."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            found = regex.search(self.console())
            if found or not self.running():
                return found
            time.sleep(1)
        return None

    def http_get(self, guest_port: int, path: str, timeout: float = 10) -> tuple[int, bytes] | None:
        """(status, body) of a GET through the forward, or None when nothing answered."""
        try:
            with socket.create_connection(("127.0.0.1", self.forwards[guest_port]), timeout=timeout) as conn:
                conn.settimeout(timeout)
                conn.sendall(f"GET {path} HTTP/1.0\r\nHost: spinal\r\n\r\n".encode())
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
        except OSError:
            return None
        head, _, body = data.partition(b"\r\n\r\n")
        match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
        return (int(match[1]), body) if match else None

    def banner(self, guest_port: int, timeout: float) -> bytes:
        """What a TCP service sends first through the forward within `timeout` (b'' when nothing)."""
        try:
            with socket.create_connection(("127.0.0.1", self.forwards[guest_port]), timeout=timeout) as conn:
                conn.settimeout(timeout)
                return conn.recv(256)
        except OSError:
            return b""

    def wait_for_http(self, guest_port: int, path: str, timeout: float) -> tuple[int, bytes] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running():
            answer = self.http_get(guest_port, path, timeout=5)
            if answer and answer[0] == 200:
                return answer
            time.sleep(2)
        return None

    def _qmp(self, command: str) -> None:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(self._qmp_path))
            sock.recv(4096)
            for cmd in ("qmp_capabilities", command):
                sock.sendall(json.dumps({"execute": cmd}).encode() + b"\n")
                sock.recv(4096)

    def power_off(self, timeout: float = 180) -> bool:
        """Press the virtual power button and wait for a clean shutdown; kill qemu if it does not come.
        True when the guest shut down by itself."""
        if not self.running():
            return True
        with contextlib.suppress(OSError):
            self._qmp("system_powerdown")
        try:
            assert self.process is not None
            self.process.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            self.kill()
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def booted(disk: Path, boot: BootFiles, workdir: Path) -> Iterator[VirtualPi]:
    """A running VirtualPi that is always stopped (cleanly if it can be) when the block ends."""
    vm = VirtualPi(disk=disk, boot=boot, workdir=workdir)
    vm.start()
    try:
        yield vm
    finally:
        try:
            vm.power_off()
        finally:
            vm.kill()
