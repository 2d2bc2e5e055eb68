"""Fixtures for the image's tests: the device-side boot setup module loaded from the image's file tree."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

IMAGES = Path(__file__).resolve().parents[1]
BOOTSETUP = IMAGES / "rootfs" / "usr" / "lib" / "spinal" / "bootsetup.py"

# The boot test needs a built image (minutes to build, minutes to boot): `make image-test` sets SPINAL_IMAGE;
# `make test` leaves it out entirely rather than listing two dozen skips.
collect_ignore = [] if os.environ.get("SPINAL_IMAGE") else ["test_boot_qemu.py"]


@pytest.fixture(scope="session")
def bootsetup() -> ModuleType:
    """images/rootfs/usr/lib/spinal/bootsetup.py, imported the way the device runs it (a script, not a package)."""
    spec = importlib.util.spec_from_file_location("spinal_bootsetup", BOOTSETUP)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
