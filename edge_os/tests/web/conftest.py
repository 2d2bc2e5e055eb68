"""Fixtures for the setup-page tests: TLS files made fresh per run (a small CA, a client certificate, keys)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Pems:
    ca: bytes
    cert: bytes
    key: bytes
    other_key: bytes


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_pem(key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def make_pems(*, days: int = 30, start_offset_days: int = -1) -> Pems:
    now = datetime.now(UTC)
    ca_key, key, other = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("spinal test CA"))
        .issuer_name(_name("spinal test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("robot-1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + timedelta(days=start_offset_days))
        .not_valid_after(now + timedelta(days=start_offset_days + days))
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return Pems(ca.public_bytes(pem), cert.public_bytes(pem), _key_pem(key), _key_pem(other))


def encrypted_key_pem() -> bytes:
    return _key_pem(ec.generate_private_key(ec.SECP256R1()), b"secret-pass")


@pytest.fixture
def pem_factory():
    """`pem_factory(days=..., start_offset_days=...)` -> Pems."""
    return make_pems


@pytest.fixture
def encrypted_key() -> bytes:
    return encrypted_key_pem()


# -- a served daemon with the setup page (real HTTP on 127.0.0.1) ----------------------------------------


@pytest.fixture
def served_device(tmp_path):
    """A started daemon (simulated arm, synthetic camera, recorder, no inference) with its app on 127.0.0.1."""
    from spinal_edge.assembly import build_daemon
    from spinal_edge.settings_store import SettingsStore
    from spinal_edge.testing import KinematicArm, ServedDaemon, data_dir_config
    from spinal_edge.web.admin_account import AdminAccount
    from spinal_edge.web.passwords import PasswordHasher

    raw = data_dir_config(
        tmp_path / "data",
        inference={"engine": "none"},
        cameras={"front": {"kind": "synthetic", "width": 160, "height": 120, "fps": 10}},
        web={"power": "fake"},
        network={"backend": "fake"},
    )
    (tmp_path / "data").mkdir()
    store = SettingsStore(raw)
    daemon = build_daemon(store, arm=KinematicArm(speed=2000.0))
    with ServedDaemon(daemon) as served:
        web = served.app.state.web
        web.account = AdminAccount(web.account.path, hasher=PasswordHasher(log2_n=10))
        yield served


CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)"')


def csrf_of(html: str) -> str:
    match = CSRF_FIELD.search(html) or CSRF_META.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)
