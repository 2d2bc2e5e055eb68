"""Validation and storage of the TLS files the device uses to reach the inference server over Zenoh TLS.

Used by the Inference page's upload: the PEM must parse, a client key must match its certificate, and the files
land on the data partition (keys 0600) before the settings point at them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from spinal.fsutil import write_bytes_atomic

from spinal_edge.web.errors import TlsBundleError

MAX_PEM_BYTES = 64 * 1024
TLS_DIR = "tls"
_KEY_TYPES = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    """What a person needs to recognise a certificate."""

    subject: str
    issuer: str
    not_before: str
    not_after: str
    sha256: str


@dataclass(slots=True)
class TlsBundleReport:
    """The outcome of a valid upload: facts about each certificate and warnings that do not block it."""

    ca: list[CertificateFacts] = field(default_factory=list)
    certificate: list[CertificateFacts] = field(default_factory=list)
    key_type: str = ""
    warnings: list[str] = field(default_factory=list)


def _pem_text(name: str, data: bytes) -> bytes:
    if len(data) > MAX_PEM_BYTES:
        raise TlsBundleError(f"The {name} file is larger than 64 KiB; upload the PEM file itself.")
    if b"-----BEGIN " not in data:
        raise TlsBundleError(f"The {name} file is not PEM text; upload a file that starts with -----BEGIN.")
    return data


def _certificates(name: str, data: bytes) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(_pem_text(name, data))
    except ValueError as exc:
        raise TlsBundleError(
            f"The {name} file does not hold a readable PEM certificate; check the file."
        ) from exc
    if not certs:
        raise TlsBundleError(f"The {name} file holds no certificate; upload a PEM certificate.")
    return certs


def _facts(cert: x509.Certificate) -> CertificateFacts:
    return CertificateFacts(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=cert.not_valid_after_utc.isoformat(),
        sha256=hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
    )


def _time_warnings(name: str, certs: list[x509.Certificate], now: datetime) -> list[str]:
    # Only warnings: a Pi without a real-time clock may not know the date yet when the file is uploaded.
    out = []
    for cert in certs:
        if cert.not_valid_after_utc < now:
            out.append(
                f"The {name} {cert.subject.rfc4514_string()} expired on {cert.not_valid_after_utc:%Y-%m-%d}."
            )
        elif cert.not_valid_before_utc > now:
            out.append(
                f"The {name} {cert.subject.rfc4514_string()} is not valid before {cert.not_valid_before_utc:%Y-%m-%d}; check the device clock."
            )
    return out


def _key_name(key: object) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"EC {key.curve.name}"
    return "Ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else "Ed448"


def _spki(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def validate_tls_bundle(
    *, ca_pem: bytes | None, cert_pem: bytes | None, key_pem: bytes | None, now: datetime | None = None
) -> TlsBundleReport:
    """Check an upload; raises TlsBundleError naming the file and the fix. A certificate needs its key and back."""
    now = now or datetime.now(UTC)
    if not (ca_pem or cert_pem or key_pem):
        raise TlsBundleError("No file was uploaded; choose a CA certificate, or a certificate with its key.")
    if bool(cert_pem) != bool(key_pem):
        raise TlsBundleError("A client certificate and its private key go together; upload both or neither.")
    report = TlsBundleReport()
    if ca_pem:
        cas = _certificates("CA certificate", ca_pem)
        report.ca.extend(_facts(c) for c in cas)
        report.warnings.extend(_time_warnings("CA certificate", cas, now))
    if cert_pem and key_pem:
        certs = _certificates("certificate", cert_pem)
        try:
            key = serialization.load_pem_private_key(_pem_text("private key", key_pem), password=None)
        except TypeError as exc:
            raise TlsBundleError(
                "The private key is encrypted; export it without a passphrase (e.g. openssl pkey -in k -out k2)."
            ) from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise TlsBundleError(
                "The private key file does not hold a readable PEM private key; check the file."
            ) from exc
        if not isinstance(key, _KEY_TYPES):
            raise TlsBundleError(
                "The private key is of a type TLS cannot use; use an RSA, EC or Ed25519 key."
            )
        if _spki(key.public_key()) != _spki(certs[0].public_key()):
            raise TlsBundleError(
                "The private key does not belong to the certificate; upload the key the certificate was made for."
            )
        report.certificate.extend(_facts(c) for c in certs)
        report.warnings.extend(_time_warnings("certificate", certs, now))
        report.key_type = _key_name(key)
    return report


def store_tls_bundle(
    tls_dir: Path, *, ca_pem: bytes | None, cert_pem: bytes | None, key_pem: bytes | None
) -> dict[str, str]:
    """Write the validated files (all 0600) and return the `inference.tls_*` settings that point at them."""
    paths: dict[str, str] = {}
    for setting, name, data in (
        ("tls_ca", "ca.pem", ca_pem),
        ("tls_cert", "cert.pem", cert_pem),
        ("tls_key", "key.pem", key_pem),
    ):
        if data:
            write_bytes_atomic(tls_dir / name, data, mode=0o600, make_parents=True)
            paths[setting] = str(tls_dir / name)
    return paths
