"""Key expressions: the verbatim root, sanitized segments, single-depth wildcards."""

import pytest
from spinal.protocol import (
    KeyExpressionError,
    ServiceKeys,
    client_uuid_from_key,
    sanitize_key_segment,
    validate_root,
)


@pytest.mark.parametrize(
    "raw,clean",
    [
        ("lerobot/pi0_towels", "lerobot-pi0_towels"),
        ("fold the towel", "fold-the-towel"),
        ("  padded  ", "padded"),
        ("a**b$$c??d##e", "a-b-c-d-e"),
        ("..hidden..", "hidden"),
        ("--x--", "x"),
        ("v1.2_rc-3", "v1.2_rc-3"),
        ("héllo wörld", "h-llo-w-rld"),
        ("a//b", "a-b"),
    ],
)
def test_sanitizer_makes_safe_chunks(raw, clean):
    assert sanitize_key_segment(raw) == clean


@pytest.mark.parametrize("raw", ["", "   ", "***", "/", "..", "-.-"])
def test_segments_that_sanitize_to_nothing_are_refused(raw):
    with pytest.raises(KeyExpressionError, match="empty key chunk"):
        sanitize_key_segment(raw)


@pytest.mark.parametrize(
    "raw", ["status", "session", "server", "obs", "action", "reset", "alive", "telemetry", " obs "]
)
def test_reserved_chunks_are_refused(raw):
    with pytest.raises(KeyExpressionError, match="reserved"):
        sanitize_key_segment(raw)


def test_service_prefix_matches_the_lerobot_layout():
    keys = ServiceKeys.for_service("lerobot/pi0_towels", "main", "fold the towel")
    assert keys.prefix == "@lerobot/lerobot-pi0_towels/main/fold-the-towel"
    assert keys.obs("robot 7") == "@lerobot/lerobot-pi0_towels/main/fold-the-towel/robot-7/obs"
    assert keys.action("r") == keys.prefix + "/r/action"
    assert keys.reset("r") == keys.prefix + "/r/reset"
    assert keys.alive("r") == keys.prefix + "/r/alive"
    assert keys.telemetry("r") == keys.prefix + "/r/telemetry"
    assert keys.status == keys.prefix + "/status"
    assert keys.session == keys.prefix + "/session"
    assert keys.server_alive == keys.prefix + "/server/alive"


def test_missing_revision_and_task_take_defaults():
    assert ServiceKeys.for_service("m", None, None).prefix == "@lerobot/m/main/default"
    assert ServiceKeys.for_service("m", "", "").prefix == "@lerobot/m/main/default"


def test_wildcards_are_single_depth_only():
    keys = ServiceKeys.for_service("m")
    for wildcard in (keys.all_obs, keys.all_reset, keys.all_alive, keys.all_telemetry):
        assert "**" not in wildcard and wildcard.count("*") == 1 and wildcard.startswith(keys.prefix + "/*/")


def test_root_is_configurable_but_must_be_verbatim():
    assert ServiceKeys.for_service("m", root="@spinal").prefix.startswith("@spinal/m/")
    for bad in ("lerobot", "@a/b", "@", "@*", "**"):
        with pytest.raises(KeyExpressionError, match="verbatim"):
            validate_root(bad)


def test_a_client_uuid_cannot_escape_its_chunk():
    keys = ServiceKeys.for_service("m")
    with pytest.raises(KeyExpressionError, match="reserved"):
        keys.obs("../../status")  # would otherwise address the service's own status queryable
    key = keys.obs("a/b/**")
    assert key == keys.prefix + "/a-b/obs"
    with pytest.raises(KeyExpressionError):
        keys.obs("alive")


def test_client_uuid_is_read_back_from_keys():
    keys = ServiceKeys.for_service("m")
    assert keys.client_uuid_from_key(keys.obs("robot-3")) == "robot-3"
    assert client_uuid_from_key(keys.alive("robot-3")) == "robot-3"
    for bad in (keys.status, keys.server_alive, "@other/x/obs", keys.prefix + "/a/b/obs"):
        with pytest.raises(KeyExpressionError):
            keys.client_uuid_from_key(bad)
