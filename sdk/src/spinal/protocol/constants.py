"""Wire constants shared by edge and server: schema versions, message types, image codecs.

Wire-compatible with the LeRobot remote-inference schema (version 1).
"""

from __future__ import annotations

from enum import IntEnum

SCHEMA_VERSION = 1
MIN_SUPPORTED_SCHEMA_VERSION = 1
MAX_SUPPORTED_SCHEMA_VERSION = 1

DEFAULT_KEY_ROOT = "@lerobot"


class MsgType(IntEnum):
    """The `msg_type` byte of the attachment header."""

    OBS = 1
    CHUNK = 2
    EVENT = 3
    TELEMETRY = 4


IMAGE_CODEC_JPEG = "jpeg"
IMAGE_CODEC_RAW = "raw"
IMAGE_CODECS = (IMAGE_CODEC_JPEG, IMAGE_CODEC_RAW)

DEFAULT_JPEG_QUALITY = 90
