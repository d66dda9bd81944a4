"""Users without a password: no Argon2 hash (32 MiB) where a password is not under test."""

from __future__ import annotations

from tests.conftest import add_member, make_company, make_user
from vouch.accounts.policy import Role


def fast_user(email: str | None = None, name: str = "Test Person"):
    return make_user(email, password=None, name=name)


def fast_company(name: str | None = None, region: str = "eu", owner=None):
    return make_company(name, region, owner=owner or fast_user())


def fast_member(company, role: Role, user=None):
    return add_member(company, role, user=user or fast_user())
