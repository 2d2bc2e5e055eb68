"""The host link of the simulated rig: two pseudo-terminals joined by a relay thread that can inject faults.

The firmware opens `firmware_path`; the host opens `host_port`, a stable symlink that behaves like
/dev/ttyACM0: `unplug()` makes it vanish (open fails, an open port errors), `replug()` brings it back.
Used by spinal_hil.rig.
"""

from __future__ import annotations

import errno
import os
import random
import select
import threading
from pathlib import Path

from spinal_hil.ptys import close_fds, open_raw_pty


class LinkRelay:
    """Copies bytes between the firmware's pty and the host's pty; flips bits at a set rate on request."""

    def __init__(self, host_port: Path, *, seed: int = 0) -> None:
        self.host_port = str(host_port)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._fw_master, self._fw_slave, self.firmware_path = open_raw_pty()
        self._host_master: int | None = None
        self._host_slave: int | None = None
        self.flip_rate_to_mcu = 0.0
        self.flip_rate_to_host = 0.0
        self.bits_flipped_to_mcu = 0
        self.bits_flipped_to_host = 0
        self.bytes_to_mcu = 0
        self.bytes_to_host = 0
        self.bytes_dropped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._plug()

    # ---- control --------------------------------------------------------------------------------------------

    def start(self) -> LinkRelay:
        self._thread = threading.Thread(target=self._relay, name="hil-link-relay", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:
            self._unplug_locked()
        close_fds(self._fw_master, self._fw_slave)

    @property
    def plugged(self) -> bool:
        return self._host_master is not None

    def set_bit_flip_rate(self, rate: float, direction: str = "both") -> None:
        """Probability per bit of flipping it in transit; direction is "both", "to_mcu" or "to_host"."""
        if not 0.0 <= rate <= 0.5:
            raise ValueError(f"bit flip rate {rate} must be within 0..0.5")
        if direction not in ("both", "to_mcu", "to_host"):
            raise ValueError(f"direction {direction!r}: use both, to_mcu or to_host")
        if direction in ("both", "to_mcu"):
            self.flip_rate_to_mcu = rate
        if direction in ("both", "to_host"):
            self.flip_rate_to_host = rate

    def unplug(self) -> None:
        """Pull the USB cable: the host's port errors and its path disappears."""
        with self._lock:
            self._unplug_locked()

    def replug(self) -> None:
        """Plug it back: a fresh port appears at the same path."""
        with self._lock:
            if self._host_master is None:
                self._plug()

    # ---- internals ------------------------------------------------------------------------------------------

    def _plug(self) -> None:
        master, slave, path = open_raw_pty()
        os.set_blocking(master, False)
        tmp = f"{self.host_port}.new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(path, tmp)
        os.replace(tmp, self.host_port)
        # Keeping our own slave fd open keeps the master readable while the host has the port closed.
        self._host_master, self._host_slave = master, slave

    def _unplug_locked(self) -> None:
        if self._host_master is None:
            return
        if os.path.lexists(self.host_port):
            os.unlink(self.host_port)
        close_fds(self._host_master, self._host_slave)
        self._host_master = self._host_slave = None

    def _flip(self, data: bytes, rate: float) -> tuple[bytes, int]:
        if rate <= 0.0:
            return data, 0
        out = bytearray(data)
        flips = 0
        nbits = len(out) * 8
        # Geometric skipping: the distance to the next flipped bit, instead of one draw per bit.
        pos = int(self._rng.expovariate(rate))
        while pos < nbits:
            out[pos // 8] ^= 1 << (pos % 8)
            flips += 1
            pos += 1 + int(self._rng.expovariate(rate))
        return bytes(out), flips

    def _relay(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                host = self._host_master
            fds = [self._fw_master] + ([host] if host is not None else [])
            try:
                ready, _, _ = select.select(fds, [], [], 0.05)
            except (OSError, ValueError):
                continue  # the host end was unplugged while we waited
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                if not data:
                    continue
                if fd == self._fw_master:
                    self._to_host(data)
                else:
                    self._to_mcu(data)

    def _to_host(self, data: bytes) -> None:
        with self._lock:
            host = self._host_master
            data, flips = self._flip(data, self.flip_rate_to_host)
            self.bits_flipped_to_host += flips
            if host is None:
                self.bytes_dropped += len(data)  # unplugged: what the MCU sends goes nowhere
                return
            try:
                os.write(host, data)
                self.bytes_to_host += len(data)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EIO):
                    raise
                self.bytes_dropped += len(data)

    def _to_mcu(self, data: bytes) -> None:
        with self._lock:
            data, flips = self._flip(data, self.flip_rate_to_mcu)
            self.bits_flipped_to_mcu += flips
        os.write(self._fw_master, data)
        self.bytes_to_mcu += len(data)


class EstopLine:
    """The e-stop input of the simulated board: a pty on which b'1' asserts and b'0' releases."""

    def __init__(self) -> None:
        self._master, self._slave, self.path = open_raw_pty()
        self.asserted = False

    def set(self, asserted: bool) -> None:
        os.write(self._master, b"1" if asserted else b"0")
        self.asserted = asserted

    def close(self) -> None:
        close_fds(self._master, self._slave)
