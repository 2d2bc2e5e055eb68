"""The checked-in golden vectors: today's encoder must produce them byte for byte, and decode them back."""

import hashlib
import json

import pytest
from spinal.protocol.golden import VECTORS_DIR, golden_vectors, same_message, write_vectors

VECTORS = golden_vectors()
INDEX = json.loads((VECTORS_DIR / "index.json").read_text())


def test_every_message_type_has_a_vector():
    kinds = {type(v.message).__name__ for v in VECTORS.values()}
    assert kinds == {
        "MsgHeader",
        "Observation",
        "ActionChunk",
        "Status",
        "SessionOpen",
        "SessionAck",
        "SessionClose",
        "Reset",
        "ResetAck",
        "Event",
        "Telemetry",
    }
    assert set(INDEX["sha256"]) == set(VECTORS)


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_encoding_gives_the_checked_in_bytes(name):
    vector = VECTORS[name]
    expected = (VECTORS_DIR / f"{name}.bin").read_bytes()
    assert hashlib.sha256(expected).hexdigest() == INDEX["sha256"][name]
    assert vector.encode(vector.message) == expected


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_decoding_the_checked_in_bytes_gives_the_message(name):
    vector = VECTORS[name]
    decoded = vector.decode((VECTORS_DIR / f"{name}.bin").read_bytes())
    assert same_message(decoded, vector.message)


def test_generator_is_deterministic(tmp_path):
    (tmp_path / "passthrough.jpg").write_bytes((VECTORS_DIR / "passthrough.jpg").read_bytes())
    assert write_vectors(tmp_path) == INDEX["sha256"]
