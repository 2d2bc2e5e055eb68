"""Pseudo-terminal helpers shared by the simulator, the link relay and the e-stop line."""

from __future__ import annotations

import contextlib
import os
import tty


def open_raw_pty() -> tuple[int, int, str]:
    """A pty pair in raw mode: (master fd, slave fd, slave path). Keep the slave open: while it is, reads on
    the master do not fail when the program under test closes and reopens the path."""
    master, slave = os.openpty()
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


def close_fds(*fds: int | None) -> None:
    for fd in fds:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
