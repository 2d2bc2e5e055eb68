"""The edge's Zenoh session configuration and the QoS of what it publishes.

Used by `ZenohChunkSource`; multicast scouting is off: robots dial configured endpoints only.
"""

from __future__ import annotations

import json
from typing import Any

import zenoh

from spinal_edge.inference.config import InferenceConfig
from spinal_edge.inference.errors import InferenceConfigError

# Observations: the one-slot holder already dropped what was superseded; if the uplink stalls, drop more
# rather than block the worker. Express: one observation per request, nothing to batch with.
OBSERVATION_QOS: dict[str, Any] = {
    "congestion_control": zenoh.CongestionControl.DROP,
    "priority": zenoh.Priority.DATA,
    "express": True,
}
TELEMETRY_QOS: dict[str, Any] = {
    "congestion_control": zenoh.CongestionControl.DROP,
    "priority": zenoh.Priority.BACKGROUND,
}


def zenoh_config_dict(config: InferenceConfig) -> dict[str, Any]:
    """The session config: mode, endpoints (re-dialled quickly after a loss), lease, TLS."""
    link: dict[str, Any] = {
        "tx": {
            "lease": config.lease_ms,
            # One observation (three camera JPEGs, ~350 KB) must fit the data queue whole, and a busy CPU
            # must not turn a few milliseconds of scheduling delay into a dropped request.
            "queue": {
                "size": {"data": 16},
                "congestion_control": {
                    "drop": {"wait_before_drop": 50_000, "max_wait_before_drop_fragments": 250_000}
                },
            },
        }
    }
    if config.tls is not None:
        link["tls"] = {
            "root_ca_certificate": str(config.tls.root_ca_certificate),
            "connect_certificate": str(config.tls.connect_certificate),
            "connect_private_key": str(config.tls.connect_private_key),
        }
    return {
        "mode": config.mode,
        "scouting": {"multicast": {"enabled": False}},
        "connect": {
            "endpoints": list(config.endpoints),
            "timeout_ms": int(config.handshake_timeout_s * 1000),
            "exit_on_failure": {"client": True, "peer": False},
            "retry": {"period_init_ms": 250, "period_max_ms": 2000, "period_increase_factor": 2},
        },
        "listen": {"endpoints": []},
        # Robots never share memory with their GPU server; measure and run the real (network) path.
        "transport": {"link": link, "shared_memory": {"enabled": False}},
    }


def zenoh_config(config: InferenceConfig) -> zenoh.Config:
    try:
        return zenoh.Config.from_json5(json.dumps(zenoh_config_dict(config)))
    except zenoh.ZError as exc:
        raise InferenceConfigError(
            f"Zenoh refuses the inference endpoints/TLS settings ({exc}); check endpoints and tls"
        ) from None
