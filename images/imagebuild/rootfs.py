"""The image's root filesystem: mmdebstrap with arm64 Debian packages (run under qemu-user), the files under
images/rootfs/, the daemon's unit and config from edge_os/, the wheels, and images/customize.sh.

Downloaded .debs are kept in images/cache/debs and reused; the initramfs is generated once, at the end.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

RELEASE = "bookworm"


@dataclass(frozen=True)
class RootfsInputs:
    """Everything the root filesystem is made from."""

    repo: Path
    sources_file: Path
    wheels_dir: Path
    deb_cache: Path

    @property
    def images(self) -> Path:
        return self.repo / "images"


def package_list(path: Path) -> list[str]:
    """Package names from a list file: one or more per line, '#' starts a comment."""
    names = []
    for line in path.read_text().splitlines():
        names += line.split("#", 1)[0].split()
    return names


def _q(path: Path | str) -> str:
    return shlex.quote(str(path))


def mmdebstrap_command(inputs: RootfsInputs, target: Path) -> list[str]:
    images = inputs.images
    cache = inputs.deb_cache
    edge = inputs.repo / "edge_os"
    firmware = inputs.repo / "firmware"
    packages = ",".join(package_list(images / "packages.txt"))
    setup = [
        f'mkdir -p {_q(cache)} "$1"/var/cache/apt/archives "$1"/etc/initramfs-tools',
        f"sync-in {_q(cache)} /var/cache/apt/archives/",
        # The kernel package builds the initramfs once, already with our modules, hook and boot script (and
        # our fstab, which tells its fsck hook the root type); every later package would otherwise rebuild it.
        f"sync-in {_q(images / 'rootfs' / 'etc' / 'initramfs-tools')} /etc/initramfs-tools",
        f'cp {_q(images / "rootfs" / "etc" / "fstab")} "$1"/etc/fstab',
        'printf "update_initramfs=no\\nbackup_initramfs=no\\n" > "$1"/etc/initramfs-tools/update-initramfs.conf',
    ]
    customize = [
        f"sync-out /var/cache/apt/archives {_q(cache)}",
        'rm -f "$1"/var/cache/apt/archives/*.deb "$1"/var/cache/apt/*.bin',
        f"sync-in {_q(images / 'rootfs')} /",
        f'install -D -m 0644 {_q(edge / "systemd" / "spinal-edge.service")} "$1"/usr/lib/systemd/system/spinal-edge.service',
        f'install -D -m 0644 {_q(edge / "config" / "edge.toml")} "$1"/etc/spinal/edge.toml',
        f'install -D -m 0644 {_q(edge / "config" / "edge.toml")} "$1"/usr/share/spinal/edge.toml',
        'mkdir -p "$1"/tmp/spinal-wheels "$1"/opt/spinal/firmware',
        f"sync-in {_q(inputs.wheels_dir)} /tmp/spinal-wheels",
    ]
    if firmware.is_dir():
        customize.append(
            f'tar -C {_q(firmware)} --exclude=tests --exclude=__pycache__ -cf - . | tar -C "$1"/opt/spinal/firmware -xf -'
        )
    customize += [
        f"copy-in {_q(images / 'customize.sh')} /tmp",
        'chroot "$1" /bin/sh /tmp/customize.sh',
        'rm -rf "$1"/tmp/* "$1"/var/lib/apt/lists/* "$1"/var/log/*.log "$1"/var/cache/debconf/*-old',
    ]
    cmd = [
        "mmdebstrap",
        "--architectures=arm64",
        "--variant=minbase",
        f"--include={packages}",
        "--dpkgopt=force-confold",
        "--dpkgopt=force-confdef",
        "--skip=essential/unlink",
    ]
    cmd += [f"--setup-hook={hook}" for hook in setup]
    cmd += [f"--customize-hook={hook}" for hook in customize]
    cmd += [RELEASE, str(target), str(inputs.sources_file)]
    return cmd


def build_rootfs(inputs: RootfsInputs, target: Path) -> None:
    if shutil.which("mmdebstrap") is None:
        raise RuntimeError(
            "mmdebstrap is missing; run `make image` (it installs the build tools) or apt install mmdebstrap"
        )
    if target.exists():
        shutil.rmtree(target)
    subprocess.run(mmdebstrap_command(inputs, target), check=True)
