"""The Zenoh side of the manifest: session config (mode, endpoints, TLS, lease, extra JSON5) and QoS profiles.

Used by the server and by `spinal_server.testing`; the extra config is real JSON5, deep-merged over ours.
"""

from __future__ import annotations

import json
from typing import Any

import zenoh

from spinal_server.errors import ManifestError
from spinal_server.manifest import ZenohSpec, deep_merge


def zenoh_config_dict(spec: ZenohSpec) -> dict[str, Any]:
    """The config as a nested dict: our fields first, then `extra_config` merged key by key on top."""
    transport: dict[str, Any] = {
        "link": {
            "tx": {
                "lease": spec.lease_ms,
                # Chunks go out express (one message per batch) at interactive-high priority; Zenoh's default
                # queue of 2 batches drops most of a micro-batch's burst when many robots share one transport
                # (a zenohd uplink). 16 is Zenoh's maximum; DROP still bounds the wait for a dead link.
                "queue": {
                    "size": {"interactive_high": 16, "data": 16},
                    "congestion_control": {"drop": {"wait_before_drop": spec.drop_wait_us}},
                },
            }
        }
    }
    tls = {key: str(path) for key, path in spec.tls.files().items()}
    if spec.tls.enable_mtls:
        tls["enable_mtls"] = True
    if tls:
        transport["link"]["tls"] = tls
    config: dict[str, Any] = {
        "mode": spec.mode,
        "scouting": {"multicast": {"enabled": spec.multicast_scouting}},
        "transport": transport,
    }
    if spec.listen:
        config["listen"] = {"endpoints": list(spec.listen)}
    if spec.connect:
        config["connect"] = {"endpoints": list(spec.connect)}
    return deep_merge(config, spec.extra_config or {})


def build_zenoh_config(spec: ZenohSpec) -> zenoh.Config:
    """A `zenoh.Config`; a key Zenoh refuses is reported as a manifest error naming zenoh.extra_config."""
    text = json.dumps(zenoh_config_dict(spec))
    try:
        return zenoh.Config.from_json5(text)
    except zenoh.ZError as exc:
        raise ManifestError(
            f"zenoh config is refused by Zenoh ({exc}); check zenoh.extra_config and the endpoints"
        ) from None


# QoS of the design: chunks RELIABLE + DROP (never BLOCK: a dead robot uplink must not stall the worker),
# express, interactive-high priority; observations DROP at data priority.
ACTION_QOS: dict[str, Any] = {
    "congestion_control": zenoh.CongestionControl.DROP,
    "priority": zenoh.Priority.INTERACTIVE_HIGH,
    "express": True,
    "reliability": zenoh.Reliability.RELIABLE,
}
OBSERVATION_QOS: dict[str, Any] = {
    "congestion_control": zenoh.CongestionControl.DROP,
    "priority": zenoh.Priority.DATA,
    "express": False,
}
