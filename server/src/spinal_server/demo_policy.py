"""The built-in demo policy for an SO-101 arm: an ONNX limit-cycle generator steered by the camera image.

`spinal-server --demo` writes it on the spot (nothing downloaded); the simulated cell's arm follows its chunks.

Each chunk starts at the robot's current joints and rotates three joint pairs (pan/lift, elbow/wrist-flex,
roll/gripper) around a centre at fixed angular speeds, relaxing to a radius. Centres and radii come from
image features (colour means, left/right and top/bottom brightness balance), so a camera that sees the arm
moves the cycle: the loop closes through the picture. Targets stay inside -90..90 (gripper 5..95).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from spinal.robots import SO101_FEATURE_NAMES

from spinal_server.onnx_builder import GraphBuilder
from spinal_server.sidecar import PolicySpec, write_sidecar

SO101_ACTIONS = list(SO101_FEATURE_NAMES)
DEMO_MODEL_ID = "spinal-demo-so101"
DEMO_CAMERA = "front"
DEMO_FPS = 30.0
_MEAN = [0.0, 0.0, 0.0, 0.0, 0.0, 50.0]
_STD = [50.0, 50.0, 50.0, 50.0, 50.0, 25.0]
_LIMIT = 1.8  # normalized: +-90 on joints, 5..95 on the gripper
_PERIODS_S = (4.0, 3.0, 2.5)
_RELAX_STEPS = 20.0


def demo_spec(*, chunk_size: int = 40, height: int = 96, width: int = 128, horizon: int = 10) -> PolicySpec:
    stats = {"mode": "mean_std", "mean": _MEAN, "std": _STD}
    return PolicySpec.model_validate(
        {
            "policy_type": "spinal-demo-cycle",
            "revision": "main",
            "state_dim": 6,
            "action_names": SO101_ACTIONS,
            "chunk_size": chunk_size,
            "fps": DEMO_FPS,
            "cameras": {DEMO_CAMERA: {"height": height, "width": width}},
            "image": {"resize": "bilinear", "scale": 1 / 255, "layout": "NCHW"},
            "normalization": {"state": stats, "action": stats},
            "names": {"inference_delay": "inference_delay", "prefix": "prefix"},
            "rtc": {"supported": True, "execution_horizon": horizon},
        }
    )


def build_demo_policy(directory: Path, *, chunk_size: int = 40, height: int = 96, width: int = 128) -> Path:
    """Write `demo_policy.onnx` and its `policy.json` into `directory`; returns the model path."""
    spec = demo_spec(chunk_size=chunk_size, height=height, width=width)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = _graph(spec).save(directory / "demo_policy.onnx")
    write_sidecar(spec, directory)
    return path


def _graph(spec: PolicySpec) -> GraphBuilder:
    H, A = spec.chunk_size, spec.action_dim
    cam = spec.cameras[DEMO_CAMERA]
    horizon = spec.rtc.execution_horizon
    g = GraphBuilder("spinal_demo_cycle")
    state = g.input("observation.state", np.float32, ["batch", A])
    image = g.input(spec.image_input(DEMO_CAMERA), np.float32, ["batch", 3, cam.height, cam.width])
    delay = g.input("inference_delay", np.int64, ["batch"])
    prefix = g.input("prefix", np.float32, ["batch", horizon, A])
    g.output("action", np.float32, ["batch", H, A])

    # Every op below works image by image (Conv loops over the batch) or element-wise, so a batched forward
    # gives each robot exactly the bytes it would get alone (ORT's ReduceMean/MatMul do not promise that).
    # Image features, one whole-image Conv: colour means (centred) and where the brightness sits
    # left/right and top/bottom.
    h, w = cam.height, cam.width
    xs = np.broadcast_to(np.linspace(-1, 1, w, dtype=np.float32)[None, :], (h, w)) * 4
    ys = np.broadcast_to(np.linspace(-1, 1, h, dtype=np.float32)[:, None], (h, w)) * 4
    kernel = np.zeros((5, 3, h, w), np.float32)
    for c in range(3):
        kernel[c, c] = 1.0
        kernel[3, c] = xs / 3
        kernel[4, c] = ys / 3
    kernel /= h * w
    feats = g.op("Conv", image, g.const(kernel), g.const([-0.5, -0.5, -0.5, 0.0, 0.0]))  # [B, 5, 1, 1]

    # Centre (normalized units, |c| <= 0.6) and radius per joint pair (0.25..0.6): both from the image.
    wc = np.array(
        [
            # pan  lift  elbow wflex roll  grip
            [0.0, 0.0, 3.0, 0.0, 0.0, 1.5],  # red
            [0.0, 0.0, 0.0, 3.0, 0.0, 0.0],  # green
            [0.0, 0.0, 0.0, 0.0, 3.0, -1.5],  # blue
            [6.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # left/right balance
            [0.0, 6.0, 0.0, 0.0, 0.0, 0.0],  # top/bottom balance
        ],
        np.float32,
    )
    wr = np.array([[2, 0, 0], [0, 2, 0], [0, 0, 2], [3, 0, -3], [0, 3, 0]], np.float32)
    pre_centre = g.op("Flatten", g.op("Conv", feats, g.const(wc.T[:, :, None, None])))  # [B, 6]
    pre_radius = g.op("Flatten", g.op("Conv", feats, g.const(wr.T[:, :, None, None])))  # [B, 3]
    centre = g.op("Mul", g.op("Tanh", pre_centre), g.const(0.6))
    radius = g.op("Add", g.const(0.25), g.op("Mul", g.const(0.35), g.op("Sigmoid", pre_radius)))

    # Offset from the centre, as three (x, y) pairs; a small nudge keeps a robot sitting on the centre moving.
    offset = g.op("Add", g.op("Sub", state, centre), g.const([0.05, 0.0, 0.05, 0.0, 0.05, 0.0]))
    pairs = g.op("Reshape", offset, g.const([0, 3, 2], np.int64))  # [B, 3, 2]
    x0 = g.op("Gather", pairs, g.const(0, np.int64), axis=2)  # [B, 3]
    y0 = g.op("Gather", pairs, g.const(1, np.int64), axis=2)
    px = g.op("Unsqueeze", x0, g.const([1], np.int64))  # [B, 1, 3]
    py = g.op("Unsqueeze", y0, g.const([1], np.int64))
    rho = g.op(
        "Sqrt", g.op("Add", g.op("Add", g.op("Mul", x0, x0), g.op("Mul", y0, y0)), g.const(1e-6))
    )  # [B, 3]

    steps = np.arange(1, H + 1, dtype=np.float32)[:, None]  # the first action is the next tick, not now
    omega = np.array([2 * math.pi / p / DEMO_FPS for p in _PERIODS_S], np.float32)[None, :]
    decay = np.exp(-steps / _RELAX_STEPS).astype(np.float32)[None]  # [1, H, 1]
    ratio = g.op("Div", radius, rho)  # [B, 3]
    # Far from the cycle the angular speed is scaled down so the joints move at cycle speed, not faster.
    turn = g.op("Unsqueeze", g.op("Min", ratio, g.const(1.0)), g.const([1], np.int64))  # [B, 1, 3]
    angle = g.op("Mul", turn, g.const((steps * omega)[None]))  # [B, H, 3]
    cos_t, sin_t = g.op("Cos", angle), g.op("Sin", angle)
    ratio3 = g.op("Unsqueeze", ratio, g.const([1], np.int64))  # [B, 1, 3]
    gain = g.op("Add", ratio3, g.op("Mul", g.op("Sub", g.const(1.0), ratio3), g.const(decay)))  # [B, H, 3]
    rx = g.op("Sub", g.op("Mul", px, cos_t), g.op("Mul", py, sin_t))
    ry = g.op("Add", g.op("Mul", px, sin_t), g.op("Mul", py, cos_t))
    xy = g.op(
        "Concat",
        g.op("Unsqueeze", g.op("Mul", rx, gain), g.const([3], np.int64)),
        g.op("Unsqueeze", g.op("Mul", ry, gain), g.const([3], np.int64)),
        axis=3,
    )  # [B, H, 3, 2]
    cycle = g.op(
        "Add",
        g.op("Reshape", xy, g.const([0, H, A], np.int64)),
        g.op("Unsqueeze", centre, g.const([1], np.int64)),
    )
    cycle = g.op("Clip", cycle, g.const(-_LIMIT), g.const(_LIMIT))

    # Real-time chunking: the first `delay` steps repeat the client's leftover prefix (per sample).
    pad = max(0, H - horizon)
    padded = g.op("Pad", prefix, g.const([0, 0, 0, 0, pad, 0], np.int64)) if pad else prefix
    if horizon > H:
        padded = g.op("Slice", padded, g.const([0], np.int64), g.const([H], np.int64), g.const([1], np.int64))
    t_index = g.const(np.arange(H)[None, :], np.int64)
    freeze = g.op(
        "Unsqueeze",
        g.op("Less", t_index, g.op("Unsqueeze", delay, g.const([1], np.int64))),
        g.const([2], np.int64),
    )  # [B, H, 1]
    g.op("Where", freeze, padded, cycle, out="action")
    return g
