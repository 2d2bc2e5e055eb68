"""Small generated models for tests and benchmarks: ONNX graphs (and their sidecars) written on the spot.

Used by `spinal_server.testing`, the server's own tests and `bench/bench_server.py`; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spinal_server.demo_policy import SO101_ACTIONS
from spinal_server.onnx_builder import GraphBuilder
from spinal_server.sidecar import PolicySpec, write_sidecar


def tiny_spec(
    *,
    state_dim: int = 6,
    action_names: list[str] | None = None,
    chunk_size: int = 10,
    cameras: dict[str, tuple[int, int]] | None = None,
    relative: bool = False,
    rtc: bool = False,
    fps: float = 30.0,
    revision: str | None = None,
    chunk_stateless: bool = True,
) -> PolicySpec:
    names = action_names or (
        SO101_ACTIONS if state_dim == 6 else [f"joint_{i}.pos" for i in range(state_dim)]
    )
    cams = {"front": (48, 64)} if cameras is None else cameras
    stats = {"mode": "mean_std", "mean": [0.0] * len(names), "std": [10.0] * len(names)}
    state_stats = {"mode": "mean_std", "mean": [0.0] * state_dim, "std": [10.0] * state_dim}
    raw: dict = {
        "policy_type": "tiny-linear",
        "state_dim": state_dim,
        "action_names": names,
        "chunk_size": chunk_size,
        "fps": fps,
        "cameras": {name: {"height": h, "width": w} for name, (h, w) in cams.items()},
        "normalization": {"state": state_stats, "action": stats},
        "action_mode": "relative" if relative else "absolute",
        "chunk_stateless": chunk_stateless,
    }
    if revision:
        raw["revision"] = revision
    if rtc:
        raw["names"] = {"inference_delay": "inference_delay", "prefix": "prefix"}
        raw["rtc"] = {"supported": True, "execution_horizon": min(5, chunk_size)}
    return PolicySpec.model_validate(raw)


def build_tiny_policy(
    directory: Path, *, fixed_batch: bool = False, name: str = "tiny_policy.onnx", **spec_kwargs: object
) -> Path:
    """A linear ONNX policy: `chunk[t, j] = state_norm[j] + 0.01 t + 0.1 * mean(image)` in model space.

    Shapes and options come from `tiny_spec`; `fixed_batch` pins the batch axis to 1 (not batchable).
    With `rtc`, the first `inference_delay` steps copy the prefix.
    """
    spec = tiny_spec(**spec_kwargs)  # type: ignore[arg-type]
    batch: int | str = 1 if fixed_batch else "batch"
    H, A = spec.chunk_size, spec.action_dim
    g = GraphBuilder("tiny_linear")
    base = g.const(np.zeros((1, H, A), np.float32) + (0.01 * np.arange(H, dtype=np.float32))[None, :, None])
    if spec.state_dim:
        state = g.input("observation.state", np.float32, [batch, spec.state_dim])
        proj = np.zeros((spec.state_dim, A), np.float32)
        np.fill_diagonal(proj, 1.0)
        base = g.op(
            "Add", base, g.op("Unsqueeze", g.op("MatMul", state, g.const(proj)), g.const([1], np.int64))
        )
    for cam_name, cam in spec.cameras.items():
        image = g.input(spec.image_input(cam_name), np.float32, [batch, 3, cam.height, cam.width])
        mean = g.op("ReduceMean", image, axes=[1, 2, 3], keepdims=0)  # [B]
        shaped = g.op("Unsqueeze", g.op("Mul", mean, g.const(0.1)), g.const([1, 2], np.int64))  # [B, 1, 1]
        base = g.op("Add", base, shaped)
    if spec.rtc.supported:
        horizon = spec.rtc.execution_horizon
        delay = g.input("inference_delay", np.int64, [batch])
        prefix = g.input("prefix", np.float32, [batch, horizon, A])
        padded = (
            g.op("Pad", prefix, g.const([0, 0, 0, 0, H - horizon, 0], np.int64)) if horizon < H else prefix
        )
        freeze = g.op(
            "Unsqueeze",
            g.op(
                "Less",
                g.const(np.arange(H)[None, :], np.int64),
                g.op("Unsqueeze", delay, g.const([1], np.int64)),
            ),
            g.const([2], np.int64),
        )
        base = g.op("Where", freeze, padded, base)
    g.op("Identity", base, out="action")
    g.output("action", np.float32, [batch, H, A])
    directory = Path(directory)
    path = g.save(directory / name)
    write_sidecar(spec, directory)
    return path


def build_mlp_policy(
    directory: Path,
    *,
    hidden: int = 2048,
    layers: int = 2,
    chunk_size: int = 50,
    image_hw: tuple[int, int] = (48, 64),
    seed: int = 0,
) -> Path:
    """A batch-friendly ONNX policy for benchmarks: a strided conv on the image, then a `hidden`-wide MLP.

    At batch 1 the forward is bound by reading the weights; a batch reuses them, which is what batching buys.
    """
    rng = np.random.default_rng(seed)
    spec = tiny_spec(chunk_size=chunk_size, cameras={"front": image_hw})
    H, A = spec.chunk_size, spec.action_dim
    g = GraphBuilder("bench_mlp")
    state = g.input("observation.state", np.float32, ["batch", 6])
    image = g.input(spec.image_input("front"), np.float32, ["batch", 3, *image_hw])
    conv = g.op("Relu", g.op("Conv", image, g.const(rng.normal(0, 0.1, (16, 3, 4, 4))), strides=[4, 4]))
    pooled = g.op("Flatten", g.op("GlobalAveragePool", conv))  # [B, 16]
    x = g.op("Concat", state, pooled, axis=1)  # [B, 22]
    width = 22
    for _ in range(layers):
        w = g.const(rng.normal(0, 1 / np.sqrt(width), (width, hidden)))
        x = g.op("Tanh", g.op("MatMul", x, w))
        width = hidden
    out = g.op("MatMul", x, g.const(rng.normal(0, 0.1 / np.sqrt(width), (width, H * A))))
    g.op("Reshape", out, g.const([0, H, A], np.int64), out="action")
    g.output("action", np.float32, ["batch", H, A])
    directory = Path(directory)
    path = g.save(directory / "bench_mlp.onnx")
    write_sidecar(spec, directory)
    return path
