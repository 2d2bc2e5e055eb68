#!/usr/bin/env python3
"""`make image`: build images/out/spinal-<version>-arm64.img, its .img.xz and .img.xz.sha256.

Stages: apt sources from this machine, aarch64 wheels, the root filesystem (mmdebstrap under qemu-user), the
disk image, compression. Prints each stage's duration and writes images/out/build-report.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

IMAGES = Path(__file__).resolve().parent
REPO = IMAGES.parent
sys.path.insert(0, str(IMAGES))
sys.path.insert(0, str(REPO / "sdk" / "src"))

from imagebuild import assemble, rootfs, sources, wheels  # noqa: E402
from spinal import __version__  # noqa: E402
from spinal.image.layout import ImageLayout  # noqa: E402

BINFMT = Path("/proc/sys/fs/binfmt_misc")


def ensure_arm64_emulation() -> None:
    """Running arm64 maintainer scripts needs qemu-user registered with binfmt_misc (F flag, as Debian's is)."""
    if not (BINFMT / "status").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], check=False)
    if not (BINFMT / "qemu-aarch64").exists():
        subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], check=False)
    entry = BINFMT / "qemu-aarch64"
    if not entry.exists() or "enabled" not in entry.read_text():
        sys.exit("error: arm64 emulation is not available; install qemu-user-static and binfmt-support, then run "
                 "`update-binfmts --enable qemu-aarch64` as root")  # fmt: skip


class Stages:
    """Times each stage and prints it as it finishes."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, name: str, func, *args):  # type: ignore[no-untyped-def]
        print(f"==> {name}", flush=True)
        start = time.monotonic()
        result = func(*args)
        self.seconds[name] = round(time.monotonic() - start, 1)
        print(f"==> {name}: {self.seconds[name]:.0f} s", flush=True)
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=IMAGES / "out", help="output directory")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("SPINAL_IMAGE_CACHE", IMAGES / "cache")),
        help="downloaded .debs and wheels, reused between builds (SPINAL_IMAGE_CACHE sets it too)",
    )
    parser.add_argument("--reuse-rootfs", action="store_true", help="skip mmdebstrap, reuse out/work/rootfs")
    parser.add_argument(
        "--no-compress", action="store_true", help="skip the .xz (the boot test needs only .img)"
    )
    parser.add_argument(
        "--xz-level",
        type=int,
        default=int(os.environ.get("SPINAL_XZ_LEVEL", "1")),
        help="xz preset, 1 (default, fast) to 9; SPINAL_XZ_LEVEL sets it too",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit(
            "error: building the image needs root (file ownership in the root filesystem); run it as root"
        )
    ensure_arm64_emulation()
    out, cache = args.out.resolve(), args.cache.resolve()
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    name = f"spinal-{__version__}-arm64"
    image = out / f"{name}.img"
    layout = ImageLayout()
    stages = Stages()
    total_start = time.monotonic()

    sources_file = work / "apt.sources"
    found = stages.run("apt sources", sources.host_sources, rootfs.RELEASE)
    sources_file.write_text(sources.render_deb822(found))

    def build_wheels() -> None:
        project = wheels.build_project_wheels(REPO, cache / "wheels" / "project")
        wheels.download_dependencies(project, cache / "wheels" / "aarch64")

    stages.run("wheels", build_wheels)
    tree = work / "rootfs"
    if not (args.reuse_rootfs and tree.is_dir()):
        inputs = rootfs.RootfsInputs(
            repo=REPO, sources_file=sources_file, wheels_dir=cache / "wheels", deb_cache=cache / "debs"
        )
        stages.run("root filesystem", rootfs.build_rootfs, inputs, tree)
    used = assemble.used_bytes(tree)
    if used > layout.root_size * 0.9:
        sys.exit(f"error: the root filesystem holds {used / 2**20:.0f} MiB, too close to the {layout.root_size / 2**20:.0f} "
                 "MiB root partition; raise ImageLayout.root_size")  # fmt: skip
    # The MBR disk id only has to differ between builds; it is not a secret.
    stages.run("disk image", assemble.assemble_image, tree, work, image, layout, random.getrandbits(32) or 1)
    packed = None if args.no_compress else stages.run("compress", assemble.compress, image, args.xz_level)
    report = {
        "image": image.name,
        "version": __version__,
        "root_used_bytes": used,
        "image_bytes": image.stat().st_size,
        "compressed_bytes": packed.stat().st_size if packed else None,
        "stage_seconds": stages.seconds,
        "total_seconds": round(time.monotonic() - total_start, 1),
    }
    (out / "build-report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
