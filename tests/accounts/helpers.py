"""Users without a password: no Argon2 hash (32 MiB) where a password is not under test."""

from __future__ import annotations

from django.urls import reverse

from tests.conftest import PASSWORD, add_member, make_company, make_user
from vouch.accounts.policy import Role


def fast_user(email: str | None = None, name: str = "Test Person"):
    return make_user(email, password=None, name=name)


def fast_company(name: str | None = None, region: str = "eu", owner=None):
    return make_company(name, region, owner=owner or fast_user())


def fast_member(company, role: Role, user=None):
    return add_member(company, role, user=user or fast_user())


def mark_reauthenticated(client) -> None:
    """As if the signed-in person had just confirmed their password on allauth's
    re-authentication page: for tests about something else that pass through a view
    asking for it (role changes, invitations). Uses allauth's own record, so the same
    ACCOUNT_REAUTHENTICATION_TIMEOUT applies. Tests of re-authentication itself go
    through the page instead."""
    from allauth.account.internal.flows.login import record_authentication
    from django.contrib.auth import get_user
    from django.test import RequestFactory

    session = client.session
    request = RequestFactory().get("/")
    request.session = session
    user = get_user(request)
    assert user.is_authenticated, "sign the client in first"
    record_authentication(request, user, method="password", reauthenticated=True)
    session.save()


def signup(client, **overrides):
    """The company sign-up form, posted with a valid default for every field."""
    data = {
        "full_name": "Grace Founder",
        "email": "grace@example.com",
        "company_name": "Hopper Hiring",
        "region": "au",
        "password1": PASSWORD,
        "password2": PASSWORD,
    }
    data.update(overrides)
    return client.post(reverse("account_signup"), data)
