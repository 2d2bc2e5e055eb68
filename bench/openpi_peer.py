"""The openpi-protocol peer of the round-trip benchmark, run under its own venv (`.venv-openpi`).

openpi-client pins NumPy < 2, so it lives apart from spinal's environment; this file imports nothing of
spinal. `serve PORT` runs a websocket server speaking openpi's wire format (metadata first, then
msgpack-numpy request/response) with no model time; `drive PORT JPEG_DIR` runs the real
`WebsocketClientPolicy` and answers each `block N` line on stdin with a JSON list of round trips in ms.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np

CHUNK = 50
HORIZON = 10
TASK = "pick up the red cube"


def serve(port: int) -> None:
    from openpi_client import msgpack_numpy
    from websockets.asyncio.server import serve as ws_serve

    packer = msgpack_numpy.Packer()
    chunk_model = np.linspace(-1, 1, CHUNK * 6, dtype=np.float32).reshape(CHUNK, 6)
    chunk_robot = chunk_model * 50

    async def handler(ws) -> None:  # type: ignore[no-untyped-def]
        await ws.send(packer.pack({"policy": "null", "action_horizon": CHUNK}))
        async for message in ws:
            obs = msgpack_numpy.unpackb(message)
            t0 = time.perf_counter()
            result = {"chunk_model": chunk_model, "chunk_robot": chunk_robot, "state_echo": obs["state"]}
            result["server_timing"] = {"infer_ms": (time.perf_counter() - t0) * 1000}
            await ws.send(packer.pack(result))

    async def main() -> None:
        async with ws_serve(handler, "127.0.0.1", port, compression=None, max_size=None) as server:
            await server.serve_forever()

    asyncio.run(main())


def observation(jpeg_dir: Path) -> dict:
    """The same payload the spinal side sends: state, three camera JPEGs, task, RTC delay and prefixes."""
    state = np.linspace(-40, 40, 6, dtype=np.float32)
    prefix = np.zeros((HORIZON, 6), np.float32)
    images = {
        f"images/{p.stem}": np.frombuffer(p.read_bytes(), np.uint8) for p in sorted(jpeg_dir.glob("*.jpg"))
    }
    return {
        "state": state,
        **images,
        "prompt": TASK,
        "inference_delay_steps": 4,
        "prefix_model": prefix,
        "prefix_robot": prefix,
    }


def drive(port: int, jpeg_dir: Path) -> None:
    from openpi_client import msgpack_numpy
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    obs = observation(jpeg_dir)
    deadline = time.monotonic() + 60
    while True:
        try:
            policy = WebsocketClientPolicy(host="127.0.0.1", port=port)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    print(json.dumps({"ready": True, "request_bytes": len(msgpack_numpy.packb(obs))}), flush=True)
    for line in sys.stdin:
        count = int(line.split()[1])
        samples = []
        for _ in range(count):
            t0 = time.perf_counter()
            result = policy.infer(obs)
            samples.append((time.perf_counter() - t0) * 1000 - float(result["server_timing"]["infer_ms"]))
        print(json.dumps(samples), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif sys.argv[1] == "drive":
        drive(int(sys.argv[2]), Path(sys.argv[3]))
    else:
        raise SystemExit(f"usage: {sys.argv[0]} serve PORT | drive PORT JPEG_DIR")
