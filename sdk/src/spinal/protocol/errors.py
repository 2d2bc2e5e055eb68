"""The one error tree of the wire protocol; every decoder raises only these.

Callers catch `ProtocolError`; the subclasses say which rule a message broke.
"""

from __future__ import annotations


class ProtocolError(ValueError):
    """A message, header or key expression broke the wire protocol."""


class HeaderError(ProtocolError):
    """The 27-byte attachment header is missing, the wrong length, or holds an out-of-range field."""


class MalformedMessage(ProtocolError):
    """A body is not valid msgpack, or a field has the wrong type or shape."""


class LimitExceeded(ProtocolError):
    """A message exceeds a decode limit (bytes, images, image size, tensor elements, string length)."""


class UnsupportedSchema(ProtocolError):
    """A peer speaks a schema version outside the supported range."""


class KeyExpressionError(ProtocolError):
    """A key-expression segment is empty, reserved, or cannot be made safe."""
