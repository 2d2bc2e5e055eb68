"""A userspace TCP proxy that impairs a link on purpose: added delay, loss (as TCP sees it: a stall), cuts.

For tests and the HIL rig where the kernel has no `netem`; binds 127.0.0.1 and stops with `close()`.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass

log = logging.getLogger("spinal_edge.inference.impairment")

_READ = 256 * 1024


@dataclass(frozen=True, slots=True)
class Impairment:
    """What the link does to every chunk of bytes, each direction.

    `delay_s`: one-way latency added. `loss`: probability that a chunk is "lost" and, like a TCP
    retransmission, arrives `loss_penalty_s` late (order kept, so everything behind it waits too).
    """

    delay_s: float = 0.0
    loss: float = 0.0
    loss_penalty_s: float = 0.2


class TcpImpairmentProxy:
    """Forwards 127.0.0.1:`port` to `target`; impairments change at any time, for all connections.

    `stall()` holds every byte until `resume()` (a black-holed link); `cut()` resets the connections and
    refuses new ones until `restore()`.
    """

    def __init__(self, target: tuple[str, int], *, listen_port: int = 0, seed: int | None = None) -> None:
        self._target = target
        self._impairment = Impairment()
        self._rand = random.Random(seed)
        self._lock = threading.Lock()
        self._flow = threading.Condition(self._lock)
        self._stalled = False
        self._cut = False
        self._closed = False
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.bytes_forwarded = 0
        self.connections = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", listen_port))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._spawn(self._accept_loop, "impairment-accept")

    @property
    def endpoint(self) -> str:
        """The Zenoh locator of the proxy's listening side."""
        return f"tcp/127.0.0.1:{self.port}"

    # ---- controls --------------------------------------------------------------------------------

    def set(self, impairment: Impairment) -> None:
        with self._flow:
            self._impairment = impairment
            self._flow.notify_all()

    def stall(self) -> None:
        with self._flow:
            self._stalled = True

    def resume(self) -> None:
        with self._flow:
            self._stalled = False
            self._flow.notify_all()

    def cut(self) -> None:
        """Reset every open connection (RST) and refuse new ones until `restore()`."""
        with self._flow:
            self._cut = True
            conns, self._conns = self._conns, []
            self._flow.notify_all()
        for conn in conns:
            _reset(conn)

    def restore(self) -> None:
        with self._flow:
            self._cut = False

    def close(self) -> None:
        with self._flow:
            self._closed = True
            conns, self._conns = self._conns, []
            self._flow.notify_all()
        for conn in conns:
            _reset(conn)
        self._listener.close()
        for t in self._threads:
            t.join(5)

    def __enter__(self) -> TcpImpairmentProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- plumbing --------------------------------------------------------------------------------

    def _spawn(self, target, name: str, *args: object) -> None:  # type: ignore[no-untyped-def]
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._cut or self._closed:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=2.0)
            except OSError:
                _reset(client)
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.settimeout(None)
            with self._flow:
                self._conns += [client, upstream]
                self.connections += 1
            self._pipe(client, upstream, "up")
            self._pipe(upstream, client, "down")

    def _pipe(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        pending: deque[tuple[float, bytes]] = deque()
        self._spawn(self._reader, f"impairment-{direction}-read", src, dst, pending)
        self._spawn(self._writer, f"impairment-{direction}-write", src, dst, pending)

    def _reader(self, src: socket.socket, dst: socket.socket, pending: deque[tuple[float, bytes]]) -> None:
        last_due = 0.0
        while True:
            try:
                data = src.recv(_READ)
            except OSError:
                data = b""
            with self._flow:
                if not data:
                    pending.append((0.0, b""))  # end of stream marker
                    self._flow.notify_all()
                    return
                imp = self._impairment
                due = time.monotonic() + imp.delay_s
                if imp.loss > 0 and self._rand.random() < imp.loss:
                    due += imp.loss_penalty_s
                last_due = max(last_due, due)  # a byte stream keeps its order
                pending.append((last_due, data))
                self._flow.notify_all()

    def _writer(self, src: socket.socket, dst: socket.socket, pending: deque[tuple[float, bytes]]) -> None:
        while True:
            with self._flow:
                while True:
                    if self._closed:
                        return
                    if pending and not self._stalled:
                        due, data = pending[0]
                        wait = due - time.monotonic()
                        if wait <= 0 or not data:
                            pending.popleft()
                            break
                        self._flow.wait(min(wait, 0.05))
                    else:
                        self._flow.wait(0.05)
            if not data:
                _reset(dst)
                _reset(src)
                return
            try:
                dst.sendall(data)
            except OSError:
                _reset(src)
                return
            with self._flow:
                self.bytes_forwarded += len(data)


def _reset(sock: socket.socket) -> None:
    """Close with RST (linger 0): the peer sees the link die at once, as on a pulled cable + reboot."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)  # wakes a thread blocked in recv(); close() alone would not
    with contextlib.suppress(OSError):
        sock.close()
