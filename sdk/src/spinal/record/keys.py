"""Keys for the interactive session: arrows and Escape read from the terminal without blocking the loop.

`TerminalKeys` puts the TTY in cbreak mode (no line buffering, no echo; Ctrl-C still raises SIGINT) and
always restores it; `KeyDecoder` turns the bytes into key names. `NoKeys` stands in when there is no TTY.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import termios
import time
from typing import Protocol

RIGHT = "right"
LEFT = "left"
ESCAPE = "escape"
ENTER = "enter"

ESC = 0x1B
ESCAPE_WAIT_S = 0.05  # an ESC with nothing after it for this long is the Escape key, not a sequence

_SEQUENCES = {
    b"\x1b[C": RIGHT,
    b"\x1bOC": RIGHT,  # application cursor mode
    b"\x1b[D": LEFT,
    b"\x1bOD": LEFT,
    b"\x1b[A": "up",
    b"\x1bOA": "up",
    b"\x1b[B": "down",
    b"\x1bOB": "down",
}


class KeySource(Protocol):
    def read(self, timeout_s: float) -> list[str]:
        """Keys pressed since the last call, waiting up to `timeout_s` for the first one."""
        ...


class KeyDecoder:
    """Bytes from a terminal → key names ("right", "left", "escape", "enter", or a lower-case character).

    Escape sequences may arrive split over reads; an unknown sequence is dropped whole.
    """

    def __init__(self) -> None:
        self._pending = b""

    @property
    def pending_escape(self) -> bool:
        return bool(self._pending)

    def feed(self, data: bytes) -> list[str]:
        keys: list[str] = []
        buf = self._pending + data
        self._pending = b""
        i = 0
        while i < len(buf):
            byte = buf[i]
            if byte == ESC:
                rest = buf[i:]
                if len(rest) == 1:
                    self._pending = rest  # maybe the start of a sequence: wait for more or the timeout
                    break
                if rest[1] == ESC:
                    keys.append(ESCAPE)  # ESC ESC: the first one was the key
                    i += 1
                    continue
                if rest[1] not in b"[O":
                    keys.append(ESCAPE)  # Alt+key or a lone ESC followed by typing
                    i += 1
                    continue
                end = _sequence_end(rest)
                if end is None:
                    self._pending = rest
                    break
                key = _SEQUENCES.get(rest[:end])
                if key is not None:
                    keys.append(key)
                i += end
                continue
            if byte in (0x0D, 0x0A):
                keys.append(ENTER)
            elif 0x20 <= byte < 0x7F:
                keys.append(chr(byte).lower())
            i += 1
        return keys

    def flush(self) -> list[str]:
        """The timeout passed: a pending lone ESC is the Escape key; a partial sequence is dropped."""
        pending, self._pending = self._pending, b""
        return [ESCAPE] if pending == b"\x1b" else []


def _sequence_end(seq: bytes) -> int | None:
    """Length of the CSI/SS3 sequence at the start of `seq`, or None when it is not complete yet."""
    if seq[1:2] == b"O":
        return 3 if len(seq) >= 3 else None
    for j in range(2, min(len(seq), 32)):
        if 0x40 <= seq[j] <= 0x7E:  # the final byte of a CSI sequence
            return j + 1
    return None if len(seq) < 32 else 32


class TerminalKeys:
    """Keys from a TTY file descriptor in cbreak mode; the previous settings return on every exit path."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.decoder = KeyDecoder()
        self._saved: list | None = None
        self._closed = False

    def __enter__(self) -> TerminalKeys:
        self._saved = termios.tcgetattr(self.fd)
        atexit.register(self.restore)  # even if the interpreter exits without unwinding this context
        mode = termios.tcgetattr(self.fd)
        mode[3] &= ~(termios.ICANON | termios.ECHO)  # lflag: keys arrive one by one, unechoed; ISIG stays
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        termios.tcsetattr(self.fd, termios.TCSANOW, mode)
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def restore(self) -> None:
        saved, self._saved = self._saved, None
        if saved is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)
            atexit.unregister(self.restore)

    def read(self, timeout_s: float) -> list[str]:
        if self._closed:
            time.sleep(timeout_s)
            return []
        keys: list[str] = []
        deadline = time.monotonic() + timeout_s
        wait = timeout_s
        while True:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, wait))
            if not ready:
                if self.decoder.pending_escape:
                    keys.extend(self.decoder.flush())
                return keys
            data = os.read(self.fd, 1024)
            if not data:  # the terminal went away (hang-up): no more keys, ever
                self._closed = True
                return keys + self.decoder.flush()
            keys.extend(self.decoder.feed(data))
            if self.decoder.pending_escape:
                wait = ESCAPE_WAIT_S  # wait briefly for the rest of a sequence
                continue
            if keys:
                return keys
            wait = deadline - time.monotonic()
            if wait <= 0:
                return keys


class NoKeys:
    """No terminal: nothing is ever pressed; `read` just paces the loop."""

    def read(self, timeout_s: float) -> list[str]:
        time.sleep(timeout_s)
        return []
