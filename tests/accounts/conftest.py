"""Fixtures for the account tests: the shared ones, but with users that have no
password, so no Argon2 hash (32 MiB, the real cost) is computed where a password
is not what is under test. Tests of logging in create their own users with one."""

from __future__ import annotations

import pytest

from tests.accounts.helpers import fast_company, fast_member
from vouch.accounts.policy import Role


@pytest.fixture
def company(db):
    return fast_company("Acme Hiring")


@pytest.fixture
def members(company, owner):
    """One active member of each role in ``company``, keyed by role."""
    result = {Role.OWNER: owner}
    for role in (Role.ADMIN, Role.RECRUITER, Role.VIEWER):
        result[role] = fast_member(company, role)
    return result
