"""Round trip of one inference request on loopback, model time excluded: spinal (Zenoh + spinal.protocol)
beside the openpi protocol (websocket + msgpack-numpy, driven by the real `openpi-client`).

Payload on both: three 640x480 camera JPEGs (passthrough), joint state, RTC prefixes; back: a 50x6 chunk in
model and robot space. Three servers, each in its own process, measured in alternating blocks: a null
responder per protocol (decode the request, answer a constant chunk) and the real spinal-server, whose
reported inference time is subtracted.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import simplejpeg
from spinal.protocol import DEFAULT_LIMITS, EncodedImage, Observation, decode_observation, encode_observation

from bench.bench_codec import CAMERAS, camera_frame
from bench.harness import Table, percentile

REPO = Path(__file__).resolve().parent.parent
CHUNK = 50
HORIZON = 10
TASK = "pick up the red cube"


def _jpegs() -> dict[str, bytes]:
    return {
        name: simplejpeg.encode_jpeg(camera_frame(i), quality=90, colorspace="RGB")
        for i, name in enumerate(CAMERAS)
    }


# ---- the openpi-protocol side: bench/openpi_peer.py under its own venv (openpi-client pins NumPy < 2) ------


def openpi_python() -> str:
    """The interpreter that has openpi-client: $SPINAL_OPENPI_PYTHON, or `.venv-openpi` made by `make bench`."""
    path = os.environ.get("SPINAL_OPENPI_PYTHON") or str(REPO / ".venv-openpi" / "bin" / "python")
    if not Path(path).exists():
        raise RuntimeError(f"{path} not found: run `make bench` (it creates .venv-openpi with openpi-client)")
    return path


@contextlib.contextmanager
def _process(argv: list[str], **kwargs):  # type: ignore[no-untyped-def]
    proc = subprocess.Popen(argv, cwd=REPO, **kwargs)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def responder(role: str):
    """A null responder in its own process; yields its port; always stopped."""
    from spinal_server.testing import free_tcp_port

    port = free_tcp_port()
    if role == "serve-openpi":
        argv = [openpi_python(), str(REPO / "bench" / "openpi_peer.py"), "serve", str(port)]
    else:
        argv = [sys.executable, "-m", "bench.bench_roundtrip", role, str(port)]
    with _process(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        yield port


class OpenpiDriver:
    """The real `openpi_client.WebsocketClientPolicy`, in the openpi venv, run one block at a time."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self._proc = proc
        hello = json.loads(self._readline())
        self.request_bytes = int(hello["request_bytes"])

    def _readline(self) -> str:
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(
                "the openpi driver exited; run it by hand: python bench/openpi_peer.py drive ..."
            )
        return line

    def block(self, count: int) -> list[float]:
        self._proc.stdin.write(f"block {count}\n")
        self._proc.stdin.flush()
        return [float(v) for v in json.loads(self._readline())]


@contextlib.contextmanager
def openpi_driver(port: int, jpegs: dict[str, bytes]):
    with tempfile.TemporaryDirectory(prefix="bench-openpi-") as tmp:
        for name, data in jpegs.items():
            (Path(tmp) / f"{name}.jpg").write_bytes(data)
        argv = [openpi_python(), str(REPO / "bench" / "openpi_peer.py"), "drive", str(port), tmp]
        with _process(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
            yield OpenpiDriver(proc)


# ---- the spinal side: a null responder speaking our protocol, and the real server ----------------------


def serve_spinal_null(port: int) -> None:
    """Our protocol with no model: status/session queryables, obs -> decode -> constant chunk -> publish."""
    import json
    import threading

    import zenoh
    from spinal.protocol import (
        ActionChunk,
        MsgHeader,
        MsgType,
        ServiceKeys,
        SessionAck,
        Status,
        decode_session_open,
        encode_action_chunk,
        encode_message,
    )

    keys = ServiceKeys.for_service("bench-null", "main", "default")
    conf = {"mode": "router", "listen": {"endpoints": [f"tcp/127.0.0.1:{port}"]}}
    conf["scouting"] = {"multicast": {"enabled": False}}
    z = zenoh.open(zenoh.Config.from_json5(json.dumps(conf)))
    names = ["shoulder_pan.pos", "shoulder_lift.pos", "elbow_flex.pos", "wrist_flex.pos", "wrist_roll.pos"]
    names.append("gripper.pos")
    status = Status(
        model_repo="bench-null", action_names=names, expected_cameras=list(CAMERAS), state_dim=6,
        chunk_size=CHUNK, trained_fps=30.0, supports_rtc=True, rtc_execution_horizon=HORIZON, warmed_up=True,
        max_sessions=8, model_fingerprint="sha256:null",
    )  # fmt: skip
    chunk_model = np.linspace(-1, 1, CHUNK * 6, dtype=np.float32).reshape(CHUNK, 6)
    publishers: dict[str, object] = {}

    def on_session(query) -> None:  # type: ignore[no-untyped-def]
        msg = decode_session_open(query.payload.to_bytes())
        publishers[msg.client_uuid] = z.declare_publisher(
            keys.action(msg.client_uuid), congestion_control=zenoh.CongestionControl.DROP,
            priority=zenoh.Priority.INTERACTIVE_HIGH, express=True,
        )  # fmt: skip
        ack = SessionAck(
            accepted=True, session_id="null-" + msg.client_uuid, model_repo="bench-null", action_names=names,
            expected_cameras=list(CAMERAS), state_dim=6, chunk_size=CHUNK, trained_fps=30.0, supports_rtc=True,
            rtc_execution_horizon=HORIZON, warmed_up=True, model_fingerprint="sha256:null",
        )  # fmt: skip
        query.reply(keys.session, encode_message(ack))

    def on_obs(sample) -> None:  # type: ignore[no-untyped-def]
        header = MsgHeader.unpack(sample.attachment.to_bytes())
        decode_observation(sample.payload.to_bytes(), DEFAULT_LIMITS)  # what any server must do
        client = str(sample.key_expr).split("/")[-2]
        reply = ActionChunk(
            seq_id_echo=header.seq_id, client_mono_ns_echo=header.client_mono_ns,
            episode_id_echo=header.episode_id, chunk_model=chunk_model, chunk_robot=chunk_model * 50,
            session_id="null-" + client,
        )  # fmt: skip
        out = MsgHeader(
            msg_type=MsgType.CHUNK, seq_id=header.seq_id, episode_id=header.episode_id,
            client_mono_ns=header.client_mono_ns, session_epoch=header.session_epoch,
        )  # fmt: skip
        publishers[client].put(encode_action_chunk(reply), attachment=out.pack())  # type: ignore[attr-defined]

    entities = [
        z.declare_queryable(keys.status, lambda q: q.reply(keys.status, encode_message(status))),
        z.declare_queryable(keys.session, on_session),
        z.declare_subscriber(keys.all_obs, on_obs),
        z.liveliness().declare_token(keys.server_alive),
    ]
    threading.Event().wait()  # until terminated
    del entities


@contextlib.contextmanager
def spinal_server(workdir: Path):
    from spinal_server.generated_models import build_tiny_policy
    from spinal_server.testing import server_subprocess

    model = build_tiny_policy(
        workdir / "model", chunk_size=CHUNK, rtc=True, cameras={name: (48, 64) for name in CAMERAS}
    )
    for attempt in range(5):
        try:
            context = server_subprocess(model, model_id="bench-null", start_timeout_s=120)
            srv = context.__enter__()
        except Exception:  # its start-up probe gives a loaded machine one 5 s connect; try again
            if attempt == 4:
                raise
            continue
        try:
            yield srv
        finally:
            context.__exit__(None, None, None)
        return


def spinal_source(endpoint: str):  # type: ignore[no-untyped-def]
    """Our real client side (the engine's chunk source), with a handshake retried while the server starts."""
    from spinal_edge.inference import InferenceConfig, InferenceError, RobotSpec
    from spinal_edge.inference.zenoh_source import ZenohChunkSource

    cfg = InferenceConfig(
        model_id="bench-null", service="default", endpoints=[endpoint], handshake_timeout_s=5.0
    )
    deadline = time.monotonic() + 120
    while True:
        source = ZenohChunkSource(cfg)
        try:
            source.open_session(1, RobotSpec(cameras=CAMERAS, fps=30.0))
            return source
        except InferenceError:
            source.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def run(quick: bool = False) -> list[Table]:
    from spinal_edge.inference.source import ChunkRequest

    blocks, per_block = (4, 25) if quick else (20, 50)
    jpegs = _jpegs()
    state = np.linspace(-40, 40, 6, dtype=np.float32)
    prefix = np.zeros((HORIZON, 6), np.float32)
    spinal_obs = Observation(
        state=state,
        images={name: EncodedImage.jpeg(data) for name, data in jpegs.items()},
        task=TASK,
        inference_delay_steps=4,
        prefix_model=prefix,
        prefix_robot=prefix,
    )
    body = encode_observation(spinal_obs)
    decode_us = _decode_cost_us(body)
    samples: dict[str, list[float]] = {"null": [], "openpi": [], "server": [], "server_raw": [], "infer": []}
    seq = iter(range(1, 10**9))

    def spinal_block(source, key: str, record: bool) -> None:  # type: ignore[no-untyped-def]
        for _ in range(per_block):
            request = ChunkRequest(next(seq), 0, 1, spinal_obs)
            t0 = time.perf_counter()
            reply = source.request(request, 30.0, lambda: False)
            rtt = (time.perf_counter() - t0) * 1000
            if not record:
                continue
            if key == "null":
                samples["null"].append(rtt)
            else:  # inference_ms includes the server's msgpack decode: add that back (see the notes)
                samples["server"].append(rtt - reply.inference_ms + decode_us / 1000)
                samples["server_raw"].append(rtt)
                samples["infer"].append(reply.inference_ms)

    def openpi_block(driver: OpenpiDriver, record: bool) -> None:
        block = driver.block(per_block)
        if record:
            samples["openpi"].extend(block)

    # Phase 1, the comparison: the two protocols' null responders in alternating blocks.
    with contextlib.ExitStack() as stack:
        null_endpoint = f"tcp/127.0.0.1:{stack.enter_context(responder('serve-spinal-null'))}"
        port = stack.enter_context(responder("serve-openpi"))
        null_source = spinal_source(null_endpoint)
        stack.callback(null_source.close)
        policy = stack.enter_context(openpi_driver(port, jpegs))
        openpi_bytes = policy.request_bytes
        for block in range(blocks + 1):  # block 0 warms both paths up and is not counted
            spinal_block(null_source, "null", block > 0)
            openpi_block(policy, block > 0)
    # Phase 2, the real server on its own (its preprocessing burns CPU the other paths would feel).
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-roundtrip-")))
        srv = stack.enter_context(spinal_server(tmp))
        server_source = spinal_source(srv.endpoint)
        stack.callback(server_source.close)
        for block in range(blocks + 1):
            spinal_block(server_source, "server", block > 0)

    def stats(v: list[float]) -> tuple[float, float, float, float]:
        return percentile(v, 50), percentile(v, 99), float(np.mean(v)), max(v)

    p = {k: stats(v) for k, v in samples.items() if k != "infer"}
    table = Table(
        "Round trip of one request on loopback, model time excluded (3 x 640x480 camera JPEG, 50x6 chunk)",
        ["path", "request bytes", "p50 ms", "p99 ms", "mean ms", "max ms"],
    )
    table.add("spinal: Zenoh + spinal.protocol, null responder", len(body), *p["null"])
    table.add("openpi protocol: websocket + msgpack-numpy, null responder", openpi_bytes, *p["openpi"])
    table.add("spinal: real spinal-server, minus its inference_ms", len(body), *p["server"])
    table.add("spinal: real spinal-server, raw round trip", len(body), *p["server_raw"])
    n = len(samples["null"])
    table.notes += [
        f"{n} requests per path. The null responders are measured in {blocks} alternating blocks of"
        f" {per_block}; the real server afterwards, on its own. Every server runs in its own"
        " process on 127.0.0.1; the clients are the real ones (spinal_edge's ZenohChunkSource, openpi-client's"
        " WebsocketClientPolicy, in its own venv because openpi-client pins NumPy < 2, driven block by block). Zenoh shared memory is off (a robot never shares memory"
        " with its GPU server).",
        "Null responders decode the request (msgpack; JPEG headers checked, pixels not decoded) and answer a"
        " constant chunk in both spaces: the protocol and transport cost alone, same work on both sides.",
        "Real spinal-server: round trip - its reported inference_ms (JPEG decode, resize, normalize, model,"
        f" postprocess) + its msgpack decode of the body measured here ({decode_us:.0f} us); server inference_ms"
        f" p50 {percentile(samples['infer'], 50):.1f} ms. What remains also carries the server's mailbox,"
        " worker hand-off, audit and metrics, and the CPU it leaves to the other processes.",
        f"Machine load during the run (1-min load average): {_load():.1f} on {_cpus()} CPUs.",
    ]
    ratio = Table(
        "spinal vs the openpi protocol (same payload, same run)",
        ["comparison", "p50 openpi / spinal", "p99 openpi / spinal"],
    )
    ratio.add(
        "null responders (protocol + transport)", p["openpi"][0] / p["null"][0], p["openpi"][1] / p["null"][1]
    )
    ratio.add(
        "real spinal-server vs null openpi", p["openpi"][0] / p["server"][0], p["openpi"][1] / p["server"][1]
    )
    budget = Table(
        "Budget: transport + codec per request (null responder)",
        ["quantile", "spinal ms", "budget ms", "within"],
    )
    budget.add("p50", p["null"][0], 1.0, "yes" if p["null"][0] < 1.0 else "NO")
    budget.add("p99", p["null"][1], 3.0, "yes" if p["null"][1] < 3.0 else "NO")
    return [table, ratio, budget]


def _load() -> float:
    import os

    return os.getloadavg()[0]


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def _decode_cost_us(body: bytes, n: int = 200) -> float:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        decode_observation(body, DEFAULT_LIMITS)
        samples.append((time.perf_counter_ns() - t0) / 1000)
    return percentile(samples, 50)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve-spinal-null":
        serve_spinal_null(int(sys.argv[2]))
    else:
        print("usage: python -m bench.bench_roundtrip serve-spinal-null PORT", file=sys.stderr)
        sys.exit(2)
