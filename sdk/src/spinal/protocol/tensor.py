"""The tensor codec: `{dtype, shape, data}` with little-endian bytes; numeric dtypes only.

Used for state, RTC prefixes and action chunks by both the edge client and the server.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from spinal.protocol.errors import LimitExceeded, MalformedMessage
from spinal.protocol.limits import DecodeLimits

# The dtype strings the wire carries (numpy `dtype.str` of little-endian or byte-order-free types).
WIRE_DTYPES = frozenset({"|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f2", "<f4", "<f8"})


def encode_tensor(array: Any) -> dict[str, Any]:
    """A numeric array as `{"dtype", "shape", "data"}`; big-endian input is converted, object dtypes refused."""
    arr = np.asarray(array)
    if arr.dtype.hasobject or arr.dtype.kind not in "biuf":
        raise MalformedMessage(
            f"refusing to encode a tensor of dtype {arr.dtype}: only bool, int, uint, float"
        )
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and np.little_endian is False):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    if not arr.flags.c_contiguous:  # (np.ascontiguousarray would turn a 0-d array into 1-d)
        arr = arr.copy(order="C")
    return {"dtype": arr.dtype.str, "shape": list(arr.shape), "data": arr.tobytes()}


def decode_tensor(obj: Any, limits: DecodeLimits, *, field: str) -> np.ndarray:
    """A writable, contiguous array from its wire form; every bound is checked before allocation."""
    if not isinstance(obj, dict):
        raise MalformedMessage(
            f"{field} must be a tensor map {{dtype, shape, data}}, got {type(obj).__name__}"
        )
    dtype, shape, data = obj.get("dtype"), obj.get("shape"), obj.get("data")
    if not isinstance(dtype, str) or dtype not in WIRE_DTYPES:
        raise MalformedMessage(f"{field}.dtype {dtype!r} is not a wire dtype (one of {sorted(WIRE_DTYPES)})")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise MalformedMessage(f"{field}.shape must be a list of integers, got {shape!r:.80}")
    if len(shape) > limits.max_tensor_dims:
        raise LimitExceeded(
            f"{field} has {len(shape)} dimensions, over the limit of {limits.max_tensor_dims}"
        )
    if any(d < 0 for d in shape):
        raise MalformedMessage(f"{field}.shape {shape} has a negative dimension")
    elements = math.prod(shape)
    if elements > limits.max_tensor_elements:
        raise LimitExceeded(
            f"{field} has {elements} elements, over the limit of {limits.max_tensor_elements} (max_tensor_elements)"
        )
    if not isinstance(data, bytes):
        raise MalformedMessage(f"{field}.data must be bytes, got {type(data).__name__}")
    np_dtype = np.dtype(dtype)
    if len(data) != elements * np_dtype.itemsize:
        raise MalformedMessage(
            f"{field}.data is {len(data)} bytes but shape {shape} of {dtype} needs {elements * np_dtype.itemsize}"
        )
    return np.frombuffer(data, dtype=np_dtype).reshape(shape).copy()


def decode_optional_tensor(obj: Any, limits: DecodeLimits, *, field: str) -> np.ndarray | None:
    return None if obj is None else decode_tensor(obj, limits, field=field)
