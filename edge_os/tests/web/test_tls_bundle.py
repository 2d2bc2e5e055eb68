"""Validation and storage of uploaded TLS files."""

from __future__ import annotations

import stat

import pytest
from spinal_edge.web.errors import TlsBundleError
from spinal_edge.web.tls_bundle import store_tls_bundle, validate_tls_bundle


def test_matching_certificate_and_key_with_a_ca_are_accepted(pem_factory):
    pems = pem_factory()
    report = validate_tls_bundle(ca_pem=pems.ca, cert_pem=pems.cert, key_pem=pems.key)
    assert report.ca[0].subject == "CN=spinal test CA"
    assert report.certificate[0].subject == "CN=robot-1"
    assert report.certificate[0].issuer == "CN=spinal test CA"
    assert report.key_type == "EC secp256r1"
    assert report.warnings == []


def test_ca_alone_is_accepted(pem_factory):
    report = validate_tls_bundle(ca_pem=pem_factory().ca, cert_pem=None, key_pem=None)
    assert len(report.ca) == 1 and report.certificate == []


def test_key_of_another_certificate_is_refused(pem_factory):
    pems = pem_factory()
    with pytest.raises(TlsBundleError, match="does not belong to the certificate"):
        validate_tls_bundle(ca_pem=None, cert_pem=pems.cert, key_pem=pems.other_key)


@pytest.mark.parametrize(
    ("ca", "cert", "key", "fragment"),
    [
        (None, None, None, "No file"),
        (None, "cert", None, "go together"),
        (b"hello", None, None, "not PEM"),
        (
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            None,
            None,
            "readable PEM certificate",
        ),
        (b"-----BEGIN " + b"A" * 70000, None, None, "64 KiB"),
        (
            None,
            "cert",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "readable PEM private key",
        ),
        (None, "cert", "encrypted", "encrypted"),
    ],
)
def test_bad_uploads_name_the_file_and_the_fix(ca, cert, key, fragment, pem_factory, encrypted_key):
    pems = pem_factory()
    cert = pems.cert if cert == "cert" else cert
    key = encrypted_key if key == "encrypted" else key
    with pytest.raises(TlsBundleError, match=fragment):
        validate_tls_bundle(ca_pem=ca, cert_pem=cert, key_pem=key)


def test_expired_certificate_is_a_warning_not_a_refusal(pem_factory):
    pems = pem_factory(days=2, start_offset_days=-10)
    report = validate_tls_bundle(ca_pem=None, cert_pem=pems.cert, key_pem=pems.key)
    assert any("expired" in w for w in report.warnings)


def test_stored_files_are_private_and_named_for_the_settings(tmp_path, pem_factory):
    pems = pem_factory()
    paths = store_tls_bundle(tmp_path / "tls", ca_pem=pems.ca, cert_pem=pems.cert, key_pem=pems.key)
    assert set(paths) == {"tls_ca", "tls_cert", "tls_key"}
    for path in paths.values():
        assert stat.S_IMODE((tmp_path / "tls" / path.rsplit("/", 1)[1]).stat().st_mode) == 0o600
    assert (tmp_path / "tls" / "key.pem").read_bytes() == pems.key
