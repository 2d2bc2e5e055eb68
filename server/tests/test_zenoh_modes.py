"""The server joining a router (client and peer modes) and serving over TLS, on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zenoh
from spinal_server.testing import PolicyClient, free_tcp_port, observation, running_server

SMALL = {"front": (48, 64)}


@pytest.fixture
def router() -> Iterator[str]:
    """A Zenoh router on 127.0.0.1 (the same Rust router zenohd runs), standing in for the lab's zenohd."""
    endpoint = f"tcp/127.0.0.1:{free_tcp_port()}"
    config = {
        "mode": "router",
        "listen": {"endpoints": [endpoint]},
        "scouting": {"multicast": {"enabled": False}},
    }
    session = zenoh.open(zenoh.Config.from_json5(json.dumps(config)))
    try:
        yield endpoint
    finally:
        session.close()


@pytest.mark.parametrize("mode", ["client", "peer"])
def test_server_joins_a_router_and_robots_reach_it_through_the_router(
    router: str, tiny_model: Path, mode: str
) -> None:
    overrides = [f"zenoh.mode={mode}", f"zenoh.connect=[{router}]"]
    overrides.append(
        f"zenoh.listen=[tcp/127.0.0.1:{free_tcp_port()}]" if mode == "peer" else "zenoh.listen=[]"
    )
    # the robot dials the router, not the server
    with (
        running_server(tiny_model, overrides=overrides) as rs,
        PolicyClient(router, rs.keys, "via-router") as client,
    ):
        status = _status_when_routed(client)
        assert status.model_repo == "test-policy"
        assert client.open_session().accepted
        chunk = client.request(observation(np.ones(6), cameras=SMALL))
        assert chunk.chunk_robot.shape == (10, 6)


def _status_when_routed(client: PolicyClient):
    for _ in range(50):  # the server's declarations reach the router asynchronously
        try:
            return client.status(timeout=0.5)
        except TimeoutError:
            continue
    raise AssertionError("status never became reachable through the router")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away CA and a server certificate for localhost / 127.0.0.1."""
    d = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "1", "-subj", "/CN=spinal-test-ca", cwd=d)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "1", "-extfile", "san.ext", cwd=d)  # fmt: skip
    return d


def test_server_serves_over_tls_with_the_manifests_certificates(certificates: Path, tiny_model: Path) -> None:
    port = free_tcp_port()
    overrides = [
        f"zenoh.listen=[tls/localhost:{port}]",
        f"zenoh.tls.listen_certificate={certificates / 'server.pem'}",
        f"zenoh.tls.listen_private_key={certificates / 'server.key'}",
    ]
    with running_server(tiny_model, overrides=overrides) as rs:
        tls = {"transport": {"link": {"tls": {"root_ca_certificate": str(certificates / "ca.pem")}}}}
        with PolicyClient(f"tls/localhost:{port}", rs.keys, "tls-robot", extra_config=tls) as client:
            assert client.open_session().accepted
            assert client.request(observation(np.ones(6), cameras=SMALL)).chunk_robot.shape == (10, 6)
