"""Codec benchmark: encode + decode of a 3-camera 640x480 observation and a 50x6 action chunk.

The floor is msgpack's own pack/unpack of the very same body (already-encoded images and tensors).
"""

from __future__ import annotations

import msgpack
import numpy as np
import simplejpeg
from spinal.protocol import (
    ActionChunk,
    EncodedImage,
    Observation,
    decode_action_chunk,
    decode_observation,
    encode_action_chunk,
    encode_observation,
)

from bench.harness import Table, summarize_us, time_calls

CAMERAS = ("front", "wrist", "top")


def camera_frame(seed: int, h: int = 480, w: int = 640) -> np.ndarray:
    """A camera-like frame: smooth gradients, a few shapes and sensor noise (JPEG sizes like a real scene)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w * 200, y / h * 180, (x + y) / (w + h) * 160], axis=-1)
    for _ in range(6):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(20, 90)
        img[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.integers(0, 255, 3)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _observation(images: dict) -> Observation:
    return Observation(
        state=np.linspace(-50, 50, 6, dtype=np.float32),
        images=images,
        task="pick up the red cube",
        inference_delay_steps=4,
        prefix_model=np.zeros((10, 6), np.float32),
        prefix_robot=np.zeros((10, 6), np.float32),
    )


def run(quick: bool = False) -> list[Table]:
    n = 30 if quick else 200
    frames = {name: camera_frame(i) for i, name in enumerate(CAMERAS)}
    camera_jpegs = {
        name: EncodedImage.jpeg(simplejpeg.encode_jpeg(f, quality=90, colorspace="RGB"))
        for name, f in frames.items()
    }
    chunk = ActionChunk(
        seq_id_echo=1,
        chunk_model=np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32),
        chunk_robot=np.random.default_rng(1).normal(size=(50, 6)).astype(np.float32),
    )

    cases = [
        (
            "observation, 3x640x480, JPEG from raw pixels",
            _observation(frames),
            encode_observation,
            lambda b: decode_observation(b, decode_images=True),
            n // 2,
        ),
        (
            "observation, 3x640x480, camera JPEG passthrough",
            _observation(camera_jpegs),
            encode_observation,
            decode_observation,
            n * 5,
        ),
        (
            "observation, 3x640x480, passthrough + server pixel decode",
            _observation(camera_jpegs),
            encode_observation,
            lambda b: decode_observation(b, decode_images=True),
            n // 2,
        ),
        ("action chunk 50x6 (model + robot)", chunk, encode_action_chunk, decode_action_chunk, n * 20),
    ]
    table = Table(
        "Codec: encode + decode per message (CPU, one thread)",
        [
            "message",
            "bytes",
            "encode p50 us",
            "encode p99 us",
            "decode p50 us",
            "decode p99 us",
            "msgpack floor p50 us",
            "ours / floor",
        ],
    )
    for title, msg, enc, dec, iters in cases:
        body = enc(msg)
        e = summarize_us(time_calls(lambda m=msg, f=enc: f(m), iterations=iters))
        d = summarize_us(time_calls(lambda b=body, f=dec: f(b), iterations=iters))
        tree = msgpack.unpackb(body, raw=False)
        floor = summarize_us(
            time_calls(
                lambda t=tree: msgpack.unpackb(msgpack.packb(t, use_bin_type=True), raw=False),
                iterations=iters,
            )
        )
        ours = e["p50_us"] + d["p50_us"]
        table.add(
            title,
            len(body),
            e["p50_us"],
            e["p99_us"],
            d["p50_us"],
            d["p99_us"],
            floor["p50_us"],
            f"{ours / floor['p50_us']:.1f}x",
        )
    table.notes.append(
        "Floor: msgpack packb + unpackb of the identical body tree (images and tensors already bytes): the cost "
        "of framing alone. The passthrough rows are what the edge pays for a camera that delivers MJPEG."
    )
    table.notes.append(
        "JPEG from raw pixels includes libjpeg-turbo encode (edge) and decode (server) of three 640x480 frames."
    )
    return [table]
