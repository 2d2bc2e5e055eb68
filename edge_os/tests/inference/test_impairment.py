"""Network impairment between the edge and a real server: the userspace TCP proxy (delay, loss as TCP
sees it, stalls, cuts), and a `tc netem` variant in a network namespace where the kernel has netem."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest
from spinal_edge.inference import ClientState, InferenceConfig, RobotSpec
from spinal_edge.inference.impairment import Impairment, TcpImpairmentProxy
from spinal_edge.inference.remote import RemoteEngine

S = ClientState
ROBOT = RobotSpec(cameras=("front",), fps=30.0)


# ---- the proxy itself ----------------------------------------------------------------------------


@pytest.fixture
def echo_server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := _recv(conn):
                conn.sendall(data)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()
    stop.set()
    t.join(5)
    srv.close()


def _recv(conn: socket.socket) -> bytes:
    try:
        return conn.recv(65536)
    except OSError:
        return b""


def _connection_refused(port: int) -> bool:
    try:
        conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return True  # reset during the handshake
    with conn:
        return _recv(conn) == b""


def round_trip(conn: socket.socket, payload: bytes) -> tuple[bytes, float]:
    t0 = time.monotonic()
    conn.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = conn.recv(65536)
        if not chunk:
            break
        got += chunk
    return got, time.monotonic() - t0


def test_proxy_forwards_delays_stalls_and_cuts(echo_server):
    with TcpImpairmentProxy(echo_server) as proxy:
        conn = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        assert round_trip(conn, b"plain")[0] == b"plain"
        proxy.set(Impairment(delay_s=0.05))
        data, rtt = round_trip(conn, b"delayed")
        assert data == b"delayed" and rtt >= 0.1  # 50 ms each way is a floor, whatever the machine load
        proxy.set(Impairment())
        proxy.stall()
        conn.sendall(b"held")
        conn.settimeout(0.3)
        with pytest.raises(TimeoutError):
            conn.recv(10)
        proxy.resume()
        conn.settimeout(5)
        assert conn.recv(10) == b"held"
        proxy.cut()
        assert _recv(conn) == b""  # reset by the proxy
        assert _connection_refused(proxy.port)  # new connections are reset at once while cut
        proxy.restore()
        again = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        again.settimeout(5)
        assert round_trip(again, b"back")[0] == b"back"


def test_loss_delays_the_lost_chunk_and_keeps_the_byte_order(echo_server):
    with TcpImpairmentProxy(echo_server, seed=1) as proxy:
        proxy.set(Impairment(loss=0.5, loss_penalty_s=0.02))
        conn = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        payload = bytes(range(256)) * 64
        for _ in range(20):
            assert round_trip(conn, payload)[0] == payload


# ---- a real server behind the proxy --------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    testing = pytest.importorskip("spinal_server.testing", reason="needs spinal-server (the `local` extra)")
    # A long lease: a stalled proxy must not make Zenoh itself declare the link dead.
    with testing.running_server(overrides=["zenoh.lease_ms=5000"]) as srv:
        yield srv


@pytest.fixture
def proxied(server):
    port = int(server.endpoint.rsplit(":", 1)[1])
    with TcpImpairmentProxy(("127.0.0.1", port), seed=7) as proxy:
        yield proxy


def engine_through(proxy: TcpImpairmentProxy, server, engines, **overrides) -> RemoteEngine:
    base = dict(
        model_id=server.manifest.service.model_id,
        service="default",
        endpoints=[proxy.endpoint],
        lease_ms=5000,
        buffer_time_s=0.5,
        degraded_after_s=0.5,
        request_timeout_s=10.0,
        reconnect_after_s=10.0,
        max_action_age_s=30.0,
        heartbeat_s=0.2,
        latency_window=5,
        backoff={"initial_s": 0.1, "max_s": 0.5},
    )
    base.update(overrides)
    e = RemoteEngine(InferenceConfig(**base), ROBOT)
    engines.append(e)
    e.start()
    assert e.wait_ready(20)
    return e


def test_added_delay_raises_the_inference_delay_and_it_decays_after(
    server, proxied, engines, robot_loop_cls, waiter
):
    e = engine_through(proxied, server, engines, buffer_time_s=1.2)  # ask often: more samples per second
    with robot_loop_cls(e) as loop:
        waiter(lambda: e.stats.chunks_merged >= 2)
        proxied.set(Impairment(delay_s=0.25))  # +500 ms round trip: at least 15 control steps at 30 Hz
        merged = e.stats.chunks_merged
        waiter(lambda: e.stats.chunks_merged >= merged + 6, timeout=60, what="chunks over the slow link")
        slow = e.stats.delay_steps
        assert slow >= 15 and e.stats.latency_p50_ms >= 500.0
        proxied.set(Impairment())
        merged = e.stats.chunks_merged
        waiter(lambda: e.stats.chunks_merged >= merged + 6, timeout=60, what="chunks over the fast link")
        assert e.stats.delay_steps < slow  # the window forgot the slow link (a running max would not)
    assert loop.errors == [] and e.stats.request_failures == 0 and e.stats.reconnects == 0


def test_a_loss_burst_costs_a_request_not_the_session(server, proxied, engines, robot_loop_cls, waiter):
    e = engine_through(proxied, server, engines, request_timeout_s=0.25)
    with robot_loop_cls(e) as loop:
        waiter(lambda: e.stats.chunks_merged >= 2)
        session = e.stats.session_id
        requests = e.stats.requests
        waiter(lambda: e.stats.requests > requests, what="a request in flight")
        proxied.stall()  # every segment lost until the burst ends: TCP holds the bytes
        waiter(lambda: e.stats.request_failures >= 1, what="the request timing out")
        proxied.resume()
        merged = e.stats.chunks_merged
        waiter(lambda: e.stats.chunks_merged > merged + 1, what="chunks after the burst")
    assert loop.errors == [] and e.stats.reconnects == 0 and e.stats.session_id == session


def test_random_loss_slows_chunks_but_they_keep_merging(server, proxied, engines, robot_loop_cls, waiter):
    e = engine_through(proxied, server, engines, buffer_time_s=1.2)
    proxied.set(Impairment(loss=0.3, loss_penalty_s=0.05))
    with robot_loop_cls(e) as loop:
        waiter(lambda: e.stats.chunks_merged >= 8, timeout=30, what="chunks over a lossy link")
    assert loop.errors == [] and e.stats.bad_messages == 0 and not e.failed


def test_a_cut_link_falls_back_reconnects_and_streams_again(server, proxied, engines, robot_loop_cls, waiter):
    e = engine_through(proxied, server, engines, reconnect_after_s=1.5)
    with robot_loop_cls(e) as loop:
        waiter(lambda: e.stats.chunks_merged >= 2)
        proxied.cut()
        waiter(lambda: e.state is S.RECONNECTING, what="RECONNECTING after the cut")
        waiter(lambda: loop.actions[-1].is_fallback, what="the fallback")
        proxied.restore()
        waiter(lambda: e.stats.reconnects >= 1, timeout=30, what="a re-handshake")
        waiter(lambda: e.state is S.STREAMING, timeout=30, what="STREAMING again")
    assert loop.errors == [] and not e.failed


# ---- kernel netem, when this machine has it --------------------------------------------------------


def _netem_unavailable() -> str | None:
    if sys.platform != "linux" or shutil.which("ip") is None or shutil.which("tc") is None:
        return "needs Linux with iproute2 (ip, tc)"
    ns = f"spinal-probe-{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True, timeout=10)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], capture_output=True, timeout=10)
        probe = subprocess.run(
            ["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if probe.returncode != 0:
            return (
                f"the kernel has no netem qdisc ({probe.stderr.strip()}); the userspace proxy tests cover it"
            )
        return None
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


@pytest.mark.netns
def test_netem_delay_in_a_network_namespace(tmp_path, engines, robot_loop_cls, waiter):
    reason = _netem_unavailable()
    if reason:
        pytest.skip(reason)
    testing = pytest.importorskip("spinal_server.testing", reason="needs spinal-server (the `local` extra)")
    demo = pytest.importorskip("spinal_server.demo_policy")
    import yaml

    ns = f"spinal-{uuid.uuid4().hex[:6]}"
    host, inner = f"sp{uuid.uuid4().hex[:6]}h", f"sp{uuid.uuid4().hex[:6]}n"
    cmds = [
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", host, "type", "veth", "peer", "name", inner],
        ["ip", "link", "set", inner, "netns", ns],
        ["ip", "addr", "add", "10.231.7.1/30", "dev", host],
        ["ip", "link", "set", host, "up"],
        ["ip", "-n", ns, "addr", "add", "10.231.7.2/30", "dev", inner],
        ["ip", "-n", ns, "link", "set", inner, "up"],
        ["ip", "-n", ns, "link", "set", "lo", "up"],
        ["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", inner, "root", "netem", "delay", "100ms"],
    ]
    process = None
    try:
        for cmd in cmds:
            subprocess.run(cmd, check=True, capture_output=True, timeout=10)
        endpoint = "tcp/10.231.7.2:7447"
        model = demo.build_demo_policy(tmp_path / "model")
        manifest = testing.make_test_manifest(
            model, model_id="netem", overrides=[f"zenoh.listen=[{endpoint}]"]
        )
        path = tmp_path / "server.yaml"
        path.write_text(yaml.safe_dump(manifest.model_dump(mode="json")))
        log = (tmp_path / "server.log").open("wb")
        process = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns,
                sys.executable,
                "-m",
                "spinal_server",
                "serve",
                "--manifest",
                str(path),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        cfg = InferenceConfig(
            model_id="netem", service="default", endpoints=[endpoint], lease_ms=2000, max_action_age_s=30.0,
            handshake_timeout_s=5.0, backoff={"initial_s": 0.2, "max_s": 1.0},
        )  # fmt: skip
        e = RemoteEngine(cfg, ROBOT)
        engines.append(e)
        e.start()
        assert e.wait_ready(60)
        with robot_loop_cls(e) as loop:
            waiter(lambda: e.stats.chunks_merged >= 4, timeout=30)
        assert loop.errors == [] and e.stats.latency_p50_ms >= 100.0 and e.stats.delay_steps >= 3
    finally:
        if process is not None:
            testing.stop_process(process)
        subprocess.run(["ip", "link", "del", host], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
