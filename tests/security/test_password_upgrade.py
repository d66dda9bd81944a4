"""P11: a hash stored with older Argon2 parameters is re-hashed with the current
ones at the next sign-in, so a parameter change reaches every active account."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, HTTPSClient, make_user
from vouch.accounts.hashers import VouchArgon2PasswordHasher

pytestmark = pytest.mark.django_db


class OldParameters(VouchArgon2PasswordHasher):
    memory_cost = 65536
    time_cost = 2


def test_current_parameters_are_at_or_above_the_owasp_floor():
    hasher = VouchArgon2PasswordHasher()
    assert hasher.memory_cost >= 19456 and hasher.time_cost >= 2 and hasher.parallelism >= 1


def test_sign_in_upgrades_a_hash_with_other_parameters():
    user = make_user("upgrade@example.com")
    user.password = OldParameters().encode(PASSWORD, OldParameters().salt())
    user.save(update_fields=["password"])
    assert "m=65536,t=2,p=1" in user.password
    client = HTTPSClient()
    response = client.post("/accounts/login/", {"login": "upgrade@example.com", "password": PASSWORD})
    assert response.status_code == 302
    user.refresh_from_db()
    hasher = VouchArgon2PasswordHasher()
    assert f"m={hasher.memory_cost},t={hasher.time_cost},p={hasher.parallelism}" in user.password
    assert user.check_password(PASSWORD)
