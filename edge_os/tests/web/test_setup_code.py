"""The first-boot setup code."""

from __future__ import annotations

import stat

import pytest
from spinal_edge.web.errors import SetupCodeError
from spinal_edge.web.setup_code import CODE_ALPHABET, SetupCode, generate_setup_code, normalize_setup_code


def test_generated_codes_are_grouped_unambiguous_and_distinct():
    codes = {generate_setup_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4]
        assert set("".join(groups)) <= set(CODE_ALPHABET)
        assert not set("".join(groups)) & set("01IO")


def test_ensure_creates_a_private_code_once_and_mirrors_it(tmp_path):
    mirror = tmp_path / "boot" / "setup-code.txt"
    store = SetupCode(tmp_path / "data" / "setup-code", mirror_paths=[mirror])
    code, created = store.ensure()
    assert created
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert mirror.read_text().strip() == code
    assert store.ensure() == (code, False)


def test_typed_code_is_accepted_in_any_case_and_spacing(tmp_path):
    store = SetupCode(tmp_path / "setup-code")
    store.path.write_text("K7QM-2XHD-RT9C\n")
    store.check("k7qm 2xhd rt9c")
    store.check("K7QM2XHDRT9C")
    with pytest.raises(SetupCodeError, match="wrong"):
        store.check("K7QM-2XHD-RT9D")
    with pytest.raises(SetupCodeError, match="wrong"):
        store.check("")


def test_missing_or_malformed_code_file_refuses_every_code(tmp_path):
    store = SetupCode(tmp_path / "setup-code")
    with pytest.raises(SetupCodeError, match="no setup code"):
        store.check("ANYTHING1")
    store.path.write_text("abc\n")  # too short to be a code
    assert store.read() is None
    with pytest.raises(SetupCodeError):
        store.check("abc")


def test_regenerate_replaces_the_code(tmp_path):
    store = SetupCode(tmp_path / "setup-code", mirror_paths=[tmp_path / "no-such-dir-file" / "x" / "y"])
    first, _ = store.ensure()
    second = store.regenerate()
    assert first != second
    assert normalize_setup_code(store.read() or "") == normalize_setup_code(second)
