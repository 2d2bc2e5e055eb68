"""Offline replay of a capture ring: re-run every captured request through the same runtime, compare bytes.

`spinal-server replay DIR` drives it; a mismatch means the model, its sidecar or the pipeline changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from spinal.protocol import MsgHeader, ProtocolError, decode_observation

from spinal_server.capture import capture_files, load_record
from spinal_server.errors import CaptureError, ServerError
from spinal_server.runtime import PolicyRuntime

log = logging.getLogger("spinal_server.replay")


@dataclass
class ReplayResult:
    """One captured request re-run: identical bytes or not, and by how much the chunks differ."""

    path: Path
    client_uuid: str
    seq_id: int
    identical: bool
    max_abs_diff: float
    error: str = ""


def replay_directory(directory: Path, runtime: PolicyRuntime | None = None) -> list[ReplayResult]:
    """Replay every capture in `directory` (oldest first) through `runtime`, or the model the capture names."""
    files = capture_files(Path(directory))
    if not files:
        raise CaptureError(
            f"{directory} holds no capture-*.safetensors files; set debug.capture_dir when serving"
        )
    records = [(path, load_record(path)) for path in files]
    if runtime is None:
        model = records[0][1].metadata.get("model_path", "")
        if not model or not Path(model).exists():
            raise CaptureError(
                f"the captured model {model!r} is not on this machine; pass --model or --manifest to replay"
            )
        runtime = PolicyRuntime.from_model_path(model)
    results = []
    for path, record in records:
        meta = record.metadata
        expected_print = meta.get("model_fingerprint", "")
        try:
            header = MsgHeader.unpack(record.header)
            if expected_print and expected_print != runtime.fingerprint:
                raise CaptureError(
                    f"captured with model {expected_print}, replaying with {runtime.fingerprint}"
                )
            obs = decode_observation(record.body, runtime.preprocess.limits)
            chunk_model, chunk_robot = runtime.infer(
                obs, runtime.new_session_state(), rtc=meta.get("rtc") == "true", task=meta.get("task") or None
            )
        except (ServerError, ProtocolError) as exc:
            results.append(
                ReplayResult(
                    path,
                    meta.get("client_uuid", ""),
                    int(meta.get("seq_id", 0)),
                    False,
                    float("nan"),
                    str(exc),
                )
            )
            continue
        same = _same_bytes(chunk_model, record.chunk_model) and _same_bytes(chunk_robot, record.chunk_robot)
        diff = max(_max_diff(chunk_model, record.chunk_model), _max_diff(chunk_robot, record.chunk_robot))
        results.append(ReplayResult(path, meta.get("client_uuid", ""), header.seq_id, same, diff))
    return results


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.astype(np.float32).tobytes() == b.astype(np.float32).tobytes()


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
