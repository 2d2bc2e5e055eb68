"""The preseed format shared by `spinal image configure` and the device: validation, round trip, secrecy."""

from __future__ import annotations

import json
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spinal.image.errors import PreseedError
from spinal.image.preseed import (
    PRESEED_FORMAT,
    Preseed,
    TlsFiles,
    WifiNetwork,
    parse_wifi_argument,
    validate_server_locator,
    validate_ssh_public_key,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A real self-signed certificate, its key, an encrypted key and an SSH public key, made by openssl/ssh-keygen."""
    d = tmp_path_factory.mktemp("pki")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-days", "2", "-subj", "/CN=spinal-test"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "pkcs8", "-topk8", "-in", str(d / "key.pem"), "-out", str(d / "enc.pem"), "-passout", "pass:x"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "id")], check=True)
    return {name: (d / file).read_text() for name, file in
            (("cert", "cert.pem"), ("key", "key.pem"), ("encrypted", "enc.pem"), ("ssh", "id.pub"))}  # fmt: skip


def _full(pki: dict[str, str]) -> Preseed:
    return Preseed(
        hostname="arm-cell-3",
        wifi=(WifiNetwork("Lab Net", "correct horse battery"),),
        wifi_country="DE",
        servers=("tls/gpu.example.org:7447",),
        tls=TlsFiles(ca=pki["cert"], cert=pki["cert"], key=pki["key"]),
        ssh_authorized_keys=(pki["ssh"].strip(),),
    )


def test_a_full_preseed_survives_the_json_round_trip(pki: dict[str, str]) -> None:
    preseed = _full(pki)
    data = preseed.to_json()
    assert json.loads(data)["format"] == PRESEED_FORMAT
    assert Preseed.from_json(data) == preseed


def test_summary_and_repr_never_show_the_passphrase_or_key(pki: dict[str, str]) -> None:
    preseed = _full(pki)
    shown = "\n".join(preseed.summary()) + repr(preseed)
    assert "correct horse battery" not in shown
    assert "PRIVATE KEY" not in shown
    assert "wifi: Lab Net (passphrase set)" in preseed.summary()


def test_newer_settings_replace_older_ones_and_the_rest_stays(pki: dict[str, str]) -> None:
    older = _full(pki)
    newer = Preseed(hostname="arm-cell-4", servers=("tcp/10.0.0.2:7447",))
    merged = older.merged_with(newer)
    assert merged.hostname == "arm-cell-4"
    assert merged.servers == ("tcp/10.0.0.2:7447",)
    assert merged.wifi == older.wifi and merged.tls == older.tls


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hostname": "Bad_Name"}, "hostname"),
        ({"hostname": "-edge"}, "hostname"),
        ({"wifi_country": "Germany"}, "two-letter"),
        ({"servers": ("gpu.example.org:7447",)}, "tls/HOST:PORT"),
        ({"servers": ("tls/gpu.example.org:99999",)}, "between 1 and 65535"),
        ({"servers": ("tls/bad_host!:7447",)}, "must look like|not a DNS name"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(PreseedError, match=message):
        Preseed(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ssid", "psk", "message"),
    [
        ("", "longenough", "SSID"),
        ("x" * 33, "longenough", "SSID"),
        ("lab", "short", "8-63"),
        ("lab", "tab\tinside", "8-63"),
    ],
)
def test_bad_wifi_settings_are_refused(ssid: str, psk: str, message: str) -> None:
    with pytest.raises(PreseedError, match=message):
        WifiNetwork(ssid, psk)


def test_open_networks_and_raw_hex_keys_are_accepted() -> None:
    WifiNetwork("cafe", "")
    WifiNetwork("lab", "ab" * 32)


def test_ipv6_and_ipv4_server_hosts_are_accepted() -> None:
    validate_server_locator("tls/[2001:db8::1]:7447")
    validate_server_locator("quic/192.168.1.20:7447")


@pytest.mark.parametrize("missing", ["ca", "cert", "key"])
def test_tls_needs_ca_certificate_and_key_together(pki: dict[str, str], missing: str) -> None:
    files = {"ca": pki["cert"], "cert": pki["cert"], "key": pki["key"]}
    del files[missing]
    with pytest.raises(PreseedError, match="give --ca, --cert and --key"):
        TlsFiles(**files)


def test_an_encrypted_key_is_refused(pki: dict[str, str]) -> None:
    with pytest.raises(PreseedError, match="encrypted"):
        TlsFiles(ca=pki["cert"], cert=pki["cert"], key=pki["encrypted"])


def test_a_key_given_as_certificate_is_refused(pki: dict[str, str]) -> None:
    with pytest.raises(PreseedError, match="expected CERTIFICATE"):
        TlsFiles(ca=pki["key"], cert=pki["cert"], key=pki["key"])


def test_text_that_is_not_pem_is_refused() -> None:
    with pytest.raises(PreseedError, match="not a PEM file"):
        TlsFiles(ca="hello", cert="hello", key="hello")


def test_an_ssh_private_key_or_a_mislabelled_key_is_refused(pki: dict[str, str]) -> None:
    validate_ssh_public_key(pki["ssh"].strip())
    with pytest.raises(PreseedError, match="public-key line"):
        validate_ssh_public_key(pki["key"])
    body = pki["ssh"].split()[1]
    with pytest.raises(PreseedError, match="body is a ssh-ed25519 key"):
        validate_ssh_public_key(f"ssh-rsa {body}")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"format": "other"}', "not a spinal-preseed/1 file"),
        (b'{"format": "spinal-preseed/1", "hostnme": "x"}', "unknown field"),
        (b'{"format": "spinal-preseed/1", "servers": "tls/a:1"}', "servers must be a list"),
        (b'{"format": "spinal-preseed/1", "wifi": {"networks": [{"ssid": "a", "psk": "b"}]}}', "8-63"),
        (b" " * (300 * 1024), "larger than"),
    ],
)
def test_a_damaged_preseed_file_is_refused_clearly(data: bytes, message: str) -> None:
    with pytest.raises(PreseedError, match=message):
        Preseed.from_json(data)


def test_wifi_argument_splits_at_the_first_unescaped_colon() -> None:
    assert parse_wifi_argument("lab:pass:word") == ("lab", "pass:word")
    assert parse_wifi_argument(r"lab\:5G:secret") == ("lab:5G", "secret")
    assert parse_wifi_argument("lab") == ("lab", None)
    assert parse_wifi_argument("open:") == ("open", "")


@given(
    ssid=st.text(
        st.characters(blacklist_characters=":\\", min_codepoint=32, max_codepoint=0x2FF), min_size=1
    ),
    psk=st.text(st.characters(min_codepoint=32, max_codepoint=126)),
)
def test_any_ssid_without_colons_and_any_passphrase_split_back(ssid: str, psk: str) -> None:
    assert parse_wifi_argument(f"{ssid}:{psk}") == (ssid, psk)


def test_unknown_fields_inside_wifi_networks_are_refused() -> None:
    data = b'{"format": "spinal-preseed/1", "wifi": {"networks": [{"ssid": "lab", "pks": "secret123"}]}}'
    with pytest.raises(PreseedError, match=r"wifi.networks\[\] has unknown field"):
        Preseed.from_json(data)
