"""The Python side of the image: wheels of the project (sdk, edge_os) and every dependency, for aarch64 and
CPython 3.11 (Debian bookworm's), fetched on this machine and installed offline inside the root filesystem.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_PACKAGES = ("sdk", "edge_os")
PYTHON_VERSION = "3.11"
# Build outputs and caches in a source folder; never part of a wheel.
_NOT_SOURCE = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", ".pytest_cache")
# Bookworm has glibc 2.36: every manylinux tag up to that runs on it.
PLATFORMS = ("manylinux2014_aarch64", *(f"manylinux_2_{minor}_aarch64" for minor in range(17, 37)))


def build_project_wheels(repo: Path, dest: Path) -> list[Path]:
    """Build sdk and edge_os wheels (no dependencies) into `dest`, replacing older builds.

    Each is built from a clean copy of its source folder: setuptools reuses a `build/` folder it finds there,
    and files left in it by an older build (a module since deleted or renamed) would ship in the wheel."""
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="spinal-wheel-src-") as tmp:
        copies = []
        for pkg in PROJECT_PACKAGES:
            copy = Path(tmp) / pkg
            shutil.copytree(repo / pkg, copy, ignore=_NOT_SOURCE)
            copies.append(str(copy))
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dest), *copies],
            check=True,
        )
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != len(PROJECT_PACKAGES):
        raise RuntimeError(f"expected {len(PROJECT_PACKAGES)} project wheels in {dest}, found {len(wheels)}")
    return wheels


def download_dependencies(project_wheels: list[Path], dest: Path) -> None:
    """Fetch aarch64 binary wheels for everything the project wheels need into an emptied `dest` (so no stale
    version lingers there; pip's own HTTP cache keeps repeated builds from downloading again)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    platform_args = [arg for tag in PLATFORMS for arg in ("--platform", tag)]
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--quiet",
            "--dest", str(dest),
            "--only-binary=:all:",
            "--python-version", PYTHON_VERSION,
            "--implementation", "cp",
            "--abi", "cp311", "--abi", "abi3", "--abi", "none",
            *platform_args,
            *[str(w) for w in project_wheels],
        ],
        check=True,
    )  # fmt: skip
    # pip copies the project wheels there too; they are rebuilt each time, so keep only dependencies.
    for wheel in project_wheels:
        (dest / wheel.name).unlink(missing_ok=True)
