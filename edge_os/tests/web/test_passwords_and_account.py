"""Admin password hashing, policy and the account file."""

from __future__ import annotations

import json
import stat

import pytest
from spinal_edge.web.admin_account import AdminAccount
from spinal_edge.web.errors import AccountFileError, PasswordPolicyError
from spinal_edge.web.passwords import PasswordHasher, check_password_policy

FAST = PasswordHasher(log2_n=10, r=8, p=1)


def test_hash_verifies_only_the_same_password_and_salts_differ():
    a, b = FAST.hash("correct horse battery"), FAST.hash("correct horse battery")
    assert a != b
    assert a.startswith("$scrypt$ln=10,r=8,p=1$")
    assert FAST.verify("correct horse battery", a)
    assert not FAST.verify("correct horse batterz", a)
    assert not FAST.verify("", a)


@pytest.mark.parametrize(
    "stored",
    ["plain-text", "$scrypt$ln=30,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43, "$bcrypt$x"],
)
def test_tampered_or_foreign_hash_is_refused_with_an_account_error(stored):
    with pytest.raises(AccountFileError):
        FAST.verify("anything at all", stored)


@pytest.mark.parametrize(
    ("password", "confirmation", "fragment"),
    [
        ("short", None, "too short"),
        ("x" * 300, None, "too long"),
        (" leading-space-pw", None, "space"),
        ("aaaaaaaaaaaaaa", None, "different"),
        ("a good password", "a good passwort", "differ"),
    ],
)
def test_password_policy_names_the_problem(password, confirmation, fragment):
    with pytest.raises(PasswordPolicyError, match=fragment):
        check_password_policy(password, confirmation)


def test_account_stores_a_private_file_and_checks_the_password(tmp_path):
    account = AdminAccount(tmp_path / "web" / "admin.json", hasher=FAST)
    assert not account.is_set()
    assert not account.verify("whatever password")
    account.set_password("robot arm 2024!", "robot arm 2024!")
    assert account.is_set()
    assert stat.S_IMODE(account.path.stat().st_mode) == 0o600
    assert "robot arm 2024!" not in account.path.read_text()
    assert account.verify("robot arm 2024!")
    assert not account.verify("robot arm 2025!")
    account.clear()
    assert not account.is_set()


def test_account_upgrades_weak_hash_parameters_at_login(tmp_path):
    path = tmp_path / "admin.json"
    AdminAccount(path, hasher=FAST).set_password("robot arm 2024!")
    stronger = PasswordHasher(log2_n=11)
    account = AdminAccount(path, hasher=stronger)
    assert account.verify("robot arm 2024!")
    assert json.loads(path.read_text())["hash"].startswith("$scrypt$ln=11,")


def test_damaged_account_file_keeps_the_page_locked(tmp_path):
    path = tmp_path / "admin.json"
    path.write_text("{not json")
    account = AdminAccount(path, hasher=FAST)
    assert account.is_set()  # fail closed: the setup code is not accepted again
    with pytest.raises(AccountFileError, match="damaged"):
        account.verify("robot arm 2024!")
