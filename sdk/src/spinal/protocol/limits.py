"""Decode limits: the bounds every decoder enforces before it allocates.

Servers and clients pass their own `DecodeLimits`; the defaults fit three 1080p cameras with room to spare.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Upper bounds for one decoded message; exceeding any raises `LimitExceeded` naming it."""

    max_message_bytes: int = 32 * 1024 * 1024
    max_images: int = 8
    max_image_width: int = 4096
    max_image_height: int = 4096
    max_tensor_elements: int = 1 << 20
    max_tensor_dims: int = 6
    max_string_bytes: int = 4096
    max_list_items: int = 1024
    max_map_items: int = 256


DEFAULT_LIMITS = DecodeLimits()
