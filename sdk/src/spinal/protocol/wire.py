"""msgpack framing with limits: the only place bodies are packed and unpacked.

`use_bin_type=True`, `raw=False`, no ext types, no pickle; unpacking is bounded before allocation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack

from spinal.protocol.errors import LimitExceeded, MalformedMessage
from spinal.protocol.limits import DecodeLimits


def pack(obj: Any) -> bytes:
    """msgpack bytes of a body made of dicts, lists, str, bytes, numbers, bools and None."""
    return msgpack.packb(obj, use_bin_type=True)


def _refuse_ext(code: int, data: bytes) -> Any:
    raise MalformedMessage(f"msgpack extension type {code} is not part of the protocol")


def unpack(data: bytes | bytearray | memoryview, limits: DecodeLimits, *, what: str = "message") -> Any:
    """Decode one msgpack object, refusing oversize input, ext types and trailing bytes."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedMessage(f"{what} body must be bytes, got {type(data).__name__}")
    size = len(data)
    if size > limits.max_message_bytes:
        raise LimitExceeded(
            f"{what} is {size} bytes, over the limit of {limits.max_message_bytes} (max_message_bytes)"
        )
    if size == 0:
        raise MalformedMessage(f"{what} body is empty")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            ext_hook=_refuse_ext,
            max_str_len=limits.max_string_bytes,
            max_bin_len=limits.max_message_bytes,
            max_array_len=limits.max_list_items,
            max_map_len=limits.max_map_items,
            max_ext_len=limits.max_message_bytes,
        )
    except MalformedMessage:
        raise
    except msgpack.ExtraData as exc:
        raise MalformedMessage(f"{what} has {len(exc.extra)} trailing bytes after its msgpack body") from None
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError, msgpack.UnpackException) as exc:
        raise MalformedMessage(f"{what} is not valid msgpack within the protocol limits: {exc}") from None
    except RecursionError:
        raise MalformedMessage(f"{what} nests too deeply") from None


def unpack_map(data: bytes | bytearray | memoryview, limits: DecodeLimits, *, what: str) -> dict[str, Any]:
    """Decode a body that must be a msgpack map with string keys."""
    obj = unpack(data, limits, what=what)
    if not isinstance(obj, dict):
        raise MalformedMessage(f"{what} body must be a msgpack map, got {type(obj).__name__}")
    for key in obj:
        if not isinstance(key, str):
            raise MalformedMessage(f"{what} has a non-string key {key!r}")
    return obj


def get_field(
    body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], default: Any, *, what: str
) -> Any:
    """A field of a decoded map, type-checked; missing or None takes `default` (additive evolution)."""
    value = body.get(name)
    if value is None:
        return default
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool):
        raise MalformedMessage(f"{what}.{name} must be an integer, got a bool")
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise MalformedMessage(f"{what}.{name} must be {expected}, got {type(value).__name__}")
    return value
