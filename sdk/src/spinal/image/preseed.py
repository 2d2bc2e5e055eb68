"""The preseed file: settings a person puts on the card's boot partition before the first boot.

`spinal image configure` writes it (as JSON, never code); the device's boot setup reads, validates, applies
and then scrubs it. Both sides use this module, so the format is checked the same way on the PC and the Pi.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from dataclasses import dataclass, field, replace

from spinal.image.errors import PreseedError

PRESEED_FILENAME = "spinal-preseed.json"
PRESEED_FORMAT = "spinal-preseed/1"
MAX_PRESEED_BYTES = 256 * 1024

_HOSTNAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_IPV4 = re.compile(r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$")
_IPV6 = re.compile(r"^\[[0-9A-Fa-f:.]{2,45}\]$")
_LOCATOR = re.compile(r"^(?P<proto>tcp|tls|quic|udp)/(?P<host>\[[^\]]+\]|[^:/\[\]]+):(?P<port>\d{1,5})$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_PEM_BLOCK = re.compile(
    r"-----BEGIN (?P<label>[A-Z0-9 ]+)-----\r?\n(?P<body>[A-Za-z0-9+/=\r\n]+?)-----END (?P=label)-----"
)
_KEY_LABELS = {"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"}
_SSH_KEY_TYPES = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
}
_MAX_PEM_CHARS = 64 * 1024


@dataclass(frozen=True)
class WifiNetwork:
    """A Wi-Fi network to join: its SSID and WPA passphrase (empty for an open network)."""

    ssid: str
    psk: str = field(repr=False)

    def __post_init__(self) -> None:
        validate_ssid(self.ssid)
        validate_psk(self.psk)


@dataclass(frozen=True)
class TlsFiles:
    """PEM texts for mutual TLS to the inference server: the CA that signed it, this device's cert and key."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.ca is not None:
            validate_pem(self.ca, "CA certificate (--ca)", {"CERTIFICATE"})
        if self.cert is not None:
            validate_pem(self.cert, "certificate (--cert)", {"CERTIFICATE"})
        if self.key is not None:
            validate_pem(self.key, "private key (--key)", _KEY_LABELS)
        given = [self.ca is not None, self.cert is not None, self.key is not None]
        if any(given) and not all(given):
            # spinal-edge speaks mutual TLS to the server's router: the CA, its own certificate and key together.
            raise PreseedError(
                "TLS needs the server's CA, this device's certificate and its key together: give --ca, --cert and --key"
            )


@dataclass(frozen=True)
class Preseed:
    """Everything a preseed may set; a field left None/empty leaves the device's default alone."""

    hostname: str | None = None
    wifi: tuple[WifiNetwork, ...] = ()
    wifi_country: str | None = None
    servers: tuple[str, ...] = ()
    tls: TlsFiles | None = None
    ssh_authorized_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.hostname is not None:
            validate_hostname(self.hostname)
        if self.wifi_country is not None:
            validate_country(self.wifi_country)
        for locator in self.servers:
            validate_server_locator(locator)
        for line in self.ssh_authorized_keys:
            validate_ssh_public_key(line)

    def merged_with(self, newer: Preseed) -> Preseed:
        """This preseed with every field that `newer` sets replaced by newer's value."""
        changes: dict[str, object] = {}
        for name in ("hostname", "wifi_country", "tls"):
            if getattr(newer, name) is not None:
                changes[name] = getattr(newer, name)
        for name in ("wifi", "servers", "ssh_authorized_keys"):
            if getattr(newer, name):
                changes[name] = getattr(newer, name)
        return replace(self, **changes)

    def is_empty(self) -> bool:
        return self == Preseed()

    def summary(self) -> list[str]:
        """Lines describing the preseed for a person, without any secret (no passphrase, no key)."""
        lines = []
        if self.hostname:
            lines.append(f"hostname: {self.hostname}")
        for net in self.wifi:
            lines.append(f"wifi: {net.ssid} ({'passphrase set' if net.psk else 'open network'})")
        if self.wifi_country:
            lines.append(f"wifi country: {self.wifi_country}")
        for locator in self.servers:
            lines.append(f"server: {locator}")
        if self.tls:
            parts = [name for name in ("ca", "cert", "key") if getattr(self.tls, name)]
            lines.append(f"tls: {', '.join(parts)}")
        if self.ssh_authorized_keys:
            lines.append(f"ssh: {len(self.ssh_authorized_keys)} authorized key(s); SSH will be enabled")
        return lines

    def to_json(self) -> bytes:
        doc: dict[str, object] = {"format": PRESEED_FORMAT}
        if self.hostname:
            doc["hostname"] = self.hostname
        if self.wifi or self.wifi_country:
            doc["wifi"] = {
                "country": self.wifi_country,
                "networks": [{"ssid": n.ssid, "psk": n.psk} for n in self.wifi],
            }
        if self.servers:
            doc["servers"] = list(self.servers)
        if self.tls:
            doc["tls"] = {
                k: v for k, v in (("ca", self.tls.ca), ("cert", self.tls.cert), ("key", self.tls.key)) if v
            }
        if self.ssh_authorized_keys:
            doc["ssh_authorized_keys"] = list(self.ssh_authorized_keys)
        return json.dumps(doc, indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> Preseed:
        """Parse and validate a preseed file; raise PreseedError naming the bad field."""
        if len(data) > MAX_PRESEED_BYTES:
            raise PreseedError(
                f"{PRESEED_FILENAME} is larger than {MAX_PRESEED_BYTES} bytes; write it again with spinal image configure"
            )
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PreseedError(
                f"{PRESEED_FILENAME} is not valid JSON ({exc}); write it again with spinal image configure"
            ) from None
        if not isinstance(doc, dict) or doc.get("format") != PRESEED_FORMAT:
            raise PreseedError(
                f"{PRESEED_FILENAME} is not a {PRESEED_FORMAT} file; write it again with spinal image configure"
            )
        unknown = set(doc) - {"format", "hostname", "wifi", "servers", "tls", "ssh_authorized_keys"}
        if unknown:
            raise PreseedError(f"{PRESEED_FILENAME} has unknown field(s) {sorted(unknown)}; remove them")
        wifi = doc.get("wifi") or {}
        _expect(wifi, dict, "wifi")
        networks = wifi.get("networks") or []
        _expect(networks, list, "wifi.networks")
        _only(wifi, {"country", "networks"}, "wifi")
        for net in networks:
            _expect(net, dict, "wifi.networks[]")
            _only(net, {"ssid", "psk"}, "wifi.networks[]")
        tls_doc = doc.get("tls")
        if tls_doc is not None:
            _expect(tls_doc, dict, "tls")
            _only(tls_doc, {"ca", "cert", "key"}, "tls")
        servers = doc.get("servers") or []
        keys = doc.get("ssh_authorized_keys") or []
        _expect(servers, list, "servers")
        _expect(keys, list, "ssh_authorized_keys")
        try:
            return cls(
                hostname=_optional_str(doc.get("hostname"), "hostname"),
                wifi=tuple(
                    WifiNetwork(ssid=_str(n.get("ssid"), "wifi ssid"), psk=_str(n.get("psk", ""), "wifi psk"))
                    for n in networks
                ),
                wifi_country=_optional_str(wifi.get("country"), "wifi.country"),
                servers=tuple(_str(s, "servers[]") for s in servers),
                tls=None
                if tls_doc is None
                else TlsFiles(
                    ca=_optional_str(tls_doc.get("ca"), "tls.ca"),
                    cert=_optional_str(tls_doc.get("cert"), "tls.cert"),
                    key=_optional_str(tls_doc.get("key"), "tls.key"),
                ),
                ssh_authorized_keys=tuple(_str(k, "ssh_authorized_keys[]") for k in keys),
            )
        except PreseedError as exc:
            raise PreseedError(f"{PRESEED_FILENAME}: {exc}") from None


def _expect(value: object, kind: type, name: str) -> bool:
    if not isinstance(value, kind):
        raise PreseedError(f"{PRESEED_FILENAME} field {name} must be a {kind.__name__}")
    return True


def _only(doc: dict[str, object], allowed: set[str], name: str) -> None:
    extra = set(doc) - allowed
    if extra:
        raise PreseedError(
            f"{PRESEED_FILENAME} {name} has unknown field(s) {sorted(extra)}; use {', '.join(sorted(allowed))}"
        )


def _str(value: object, name: str) -> str:
    _expect(value, str, name)
    return value  # type: ignore[return-value]


def _optional_str(value: object, name: str) -> str | None:
    return None if value is None else _str(value, name)


def validate_hostname(name: str) -> None:
    if not _HOSTNAME.match(name):
        raise PreseedError(
            f"hostname {name!r} is not valid: use 1-63 lowercase letters, digits and '-', not starting or ending with '-'"
        )


def validate_ssid(ssid: str) -> None:
    size = len(ssid.encode("utf-8"))
    if not 1 <= size <= 32 or any(ord(c) < 32 or ord(c) == 127 for c in ssid):
        raise PreseedError("Wi-Fi SSID must be 1-32 bytes of printable text")


def validate_psk(psk: str) -> None:
    if psk == "":
        return
    if len(psk) == 64 and all(c in "0123456789abcdefABCDEF" for c in psk):
        return
    if not 8 <= len(psk) <= 63 or any(not 32 <= ord(c) <= 126 for c in psk):
        raise PreseedError("Wi-Fi passphrase must be 8-63 printable ASCII characters (or 64 hex digits)")


def validate_country(code: str) -> None:
    if not _COUNTRY.match(code):
        raise PreseedError(f"Wi-Fi country {code!r} must be a two-letter ISO 3166 code such as DE or US")


def validate_server_locator(locator: str) -> None:
    match = _LOCATOR.match(locator)
    if not match:
        raise PreseedError(
            f"server {locator!r} must look like tls/HOST:PORT (or tcp/, quic/, udp/), e.g. tls/gpu.example.org:7447"
        )
    host, port = match["host"], int(match["port"])
    if not (_DNS_NAME.match(host) or _IPV4.match(host) or _IPV6.match(host)):
        raise PreseedError(f"server host {host!r} is not a DNS name or an IP address")
    if not 1 <= port <= 65535:
        raise PreseedError(f"server port {port} must be between 1 and 65535")


def validate_pem(text: str, what: str, labels: set[str]) -> None:
    if len(text) > _MAX_PEM_CHARS or not text.isascii():
        raise PreseedError(f"the {what} must be an ASCII PEM file under {_MAX_PEM_CHARS // 1024} KiB")
    blocks = list(_PEM_BLOCK.finditer(text))
    if not blocks:
        raise PreseedError(f"the {what} is not a PEM file (no -----BEGIN ...----- block)")
    for block in blocks:
        if block["label"] == "ENCRYPTED PRIVATE KEY":
            raise PreseedError(
                f"the {what} is encrypted; the device cannot ask for its passphrase, give it unencrypted"
            )
        if block["label"] not in labels:
            raise PreseedError(
                f"the {what} holds a {block['label']} block; expected {' or '.join(sorted(labels))}"
            )
        try:
            base64.b64decode("".join(block["body"].split()), validate=True)
        except binascii.Error:
            raise PreseedError(f"the {what} has a damaged base64 body") from None


def validate_ssh_public_key(line: str) -> None:
    fields = line.strip().split(maxsplit=2)
    if "\n" in line or len(fields) < 2 or fields[0] not in _SSH_KEY_TYPES:
        raise PreseedError(
            "an SSH key must be one public-key line like 'ssh-ed25519 AAAA... comment' (the .pub file, not the private key)"
        )
    try:
        blob = base64.b64decode(fields[1], validate=True)
        (size,) = struct.unpack_from(">I", blob)
        embedded = blob[4 : 4 + size].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError):
        raise PreseedError(f"the {fields[0]} SSH key has a damaged base64 body") from None
    if embedded != fields[0]:
        raise PreseedError(f"the SSH key says {fields[0]} but its body is a {embedded} key")


def parse_wifi_argument(text: str) -> tuple[str, str | None]:
    r"""Split `SSID:PASSPHRASE` at the first colon not escaped as `\:`; no colon means no passphrase given."""
    ssid, psk, escaped = [], None, False
    for index, char in enumerate(text):
        if escaped:
            ssid.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            psk = text[index + 1 :]
            break
        else:
            ssid.append(char)
    return "".join(ssid), psk
