"""The image codec: JPEG in RGB order (simplejpeg / libjpeg-turbo), raw HWC, and camera-JPEG passthrough.

The edge ships native camera frames; a camera that already delivers JPEG is forwarded byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import simplejpeg

from spinal.protocol.constants import DEFAULT_JPEG_QUALITY, IMAGE_CODEC_JPEG, IMAGE_CODEC_RAW
from spinal.protocol.errors import LimitExceeded, MalformedMessage
from spinal.protocol.limits import DecodeLimits

_JPEG_SOI = b"\xff\xd8"


@dataclass(frozen=True, slots=True)
class EncodedImage:
    """An image in its wire form: JPEG bytes, or raw RGB bytes with their (h, w, 3) shape."""

    codec: str
    data: bytes
    shape: tuple[int, int, int] | None = None

    @classmethod
    def jpeg(cls, data: bytes) -> EncodedImage:
        """Wrap a camera's own JPEG bytes for passthrough (no decode, no re-encode)."""
        if not isinstance(data, bytes | bytearray | memoryview) or bytes(data[:2]) != _JPEG_SOI:
            raise MalformedMessage("passthrough image is not JPEG data (missing the FF D8 start marker)")
        return cls(IMAGE_CODEC_JPEG, bytes(data))

    def to_wire(self) -> dict[str, Any]:
        if self.codec == IMAGE_CODEC_RAW:
            return {"codec": IMAGE_CODEC_RAW, "shape": list(self.shape or ()), "data": self.data}
        return {"codec": self.codec, "data": self.data}

    def decode(self, limits: DecodeLimits, *, field: str = "image") -> np.ndarray:
        """The pixels as a uint8 HWC RGB array; dimensions are checked before decoding."""
        if self.codec == IMAGE_CODEC_RAW:
            h, w, c = _check_raw_shape(self.shape, self.data, limits, field)
            return np.frombuffer(self.data, dtype=np.uint8).reshape(h, w, c).copy()
        height, width = jpeg_size(self.data, limits, field=field)
        try:
            return simplejpeg.decode_jpeg(self.data, colorspace="RGB")
        except (ValueError, RuntimeError) as exc:
            raise MalformedMessage(f"{field} ({width}x{height} JPEG) could not be decoded: {exc}") from None


def encode_image(image: np.ndarray | EncodedImage, quality: int = DEFAULT_JPEG_QUALITY) -> EncodedImage:
    """Encode a uint8 HWC RGB array as JPEG (quality > 0) or raw (quality <= 0); EncodedImage passes through."""
    if isinstance(image, EncodedImage):
        return image
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise MalformedMessage(f"expected a uint8 HWC RGB image, got dtype {arr.dtype} and shape {arr.shape}")
    arr = np.ascontiguousarray(arr)
    if quality <= 0:
        return EncodedImage(IMAGE_CODEC_RAW, arr.tobytes(), (arr.shape[0], arr.shape[1], 3))
    data = simplejpeg.encode_jpeg(
        arr, quality=min(int(quality), 100), colorspace="RGB", colorsubsampling="420"
    )
    return EncodedImage(IMAGE_CODEC_JPEG, data)


def image_from_wire(obj: Any, limits: DecodeLimits, *, field: str) -> EncodedImage:
    """Validate an image map from a decoded body without decoding its pixels."""
    if not isinstance(obj, dict):
        raise MalformedMessage(f"{field} must be an image map {{codec, data}}, got {type(obj).__name__}")
    codec, data = obj.get("codec"), obj.get("data")
    if not isinstance(data, bytes):
        raise MalformedMessage(f"{field}.data must be bytes, got {type(data).__name__}")
    if codec == IMAGE_CODEC_JPEG:
        jpeg_size(data, limits, field=field)
        return EncodedImage(IMAGE_CODEC_JPEG, data)
    if codec == IMAGE_CODEC_RAW:
        shape = obj.get("shape")
        if not isinstance(shape, list) or len(shape) != 3 or not all(type(d) is int for d in shape):
            raise MalformedMessage(
                f"{field}.shape must be [height, width, 3] for a raw image, got {shape!r:.60}"
            )
        _check_raw_shape(tuple(shape), data, limits, field)
        return EncodedImage(IMAGE_CODEC_RAW, data, (shape[0], shape[1], shape[2]))
    raise MalformedMessage(f"{field}.codec {codec!r:.40} is unknown; expected 'jpeg' or 'raw'")


def jpeg_size(data: bytes, limits: DecodeLimits, *, field: str) -> tuple[int, int]:
    """(height, width) from a JPEG header, refusing images over the limits before any pixel is decoded."""
    if data[:2] != _JPEG_SOI:
        raise MalformedMessage(f"{field} is not JPEG data (missing the FF D8 start marker)")
    try:
        height, width, _colorspace, _subsampling = simplejpeg.decode_jpeg_header(data)
    except (ValueError, RuntimeError) as exc:
        raise MalformedMessage(f"{field} has an unreadable JPEG header: {exc}") from None
    _check_dims(height, width, limits, field)
    return height, width


def _check_raw_shape(
    shape: tuple[int, ...] | None, data: bytes, limits: DecodeLimits, field: str
) -> tuple[int, int, int]:
    if shape is None or len(shape) != 3 or shape[2] != 3:
        raise MalformedMessage(f"{field} raw shape must be (height, width, 3), got {shape}")
    h, w, c = shape
    if h <= 0 or w <= 0:
        raise MalformedMessage(f"{field} raw shape {shape} has an empty dimension")
    _check_dims(h, w, limits, field)
    if len(data) != h * w * c:
        raise MalformedMessage(f"{field} raw data is {len(data)} bytes but shape {shape} needs {h * w * c}")
    return h, w, c


def _check_dims(height: int, width: int, limits: DecodeLimits, field: str) -> None:
    if height > limits.max_image_height or width > limits.max_image_width:
        raise LimitExceeded(
            f"{field} is {width}x{height}, over the limit of {limits.max_image_width}x{limits.max_image_height}"
        )
