"""Two-factor: TOTP through allauth, a company requirement with a grace period (banner,
then redirect), owners/admins who cannot remove their last method, re-authentication."""

from __future__ import annotations

from datetime import timedelta

import pytest
from allauth.mfa.models import Authenticator
from django.utils import timezone

from tests.conftest import HTTPSClient, add_member, make_company
from tests.guard.b_helpers import give_totp, reauthenticate, sign_in, totp_code
from vouch.accounts.policy import Role
from vouch.audit.models import EventAction, SecurityEvent
from vouch.guard import company_security, mfa
from vouch.guard.models import CompanySecuritySettings

pytestmark = pytest.mark.django_db


def require_2fa(company, *, since_days_ago: float = 0, grace_days: int = 7) -> None:
    row = company_security.for_company(company)
    row.require_2fa = True
    row.require_2fa_since = timezone.now() - timedelta(days=since_days_ago)
    row.require_2fa_grace_days = grace_days
    row.save()


def signed_in(user, secret: str | None = None) -> HTTPSClient:
    client = HTTPSClient()
    response = sign_in(client, user.email)
    assert response.status_code == 302
    if secret is not None:
        assert response["Location"] == "/accounts/2fa/authenticate/"
        assert client.post("/accounts/2fa/authenticate/", {"code": totp_code(secret)}).status_code == 302
    return client


def test_totp_activation_and_sign_in_with_a_computed_code():
    company = make_company()
    user = add_member(company, Role.RECRUITER).user
    client = signed_in(user)
    reauthenticate(client)
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    secret = page.context["form"].secret
    response = client.post("/accounts/2fa/totp/activate/", {"code": totp_code(secret)})
    assert response.status_code == 302
    assert mfa.has_2fa(user)
    # Signing in now asks for the code; a wrong one does not get in, the right one does.
    fresh = HTTPSClient()
    response = sign_in(fresh, user.email)
    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert fresh.post("/accounts/2fa/authenticate/", {"code": "000000"}).status_code == 200
    assert fresh.get("/dashboard/").status_code == 302
    assert fresh.post("/accounts/2fa/authenticate/", {"code": totp_code(secret)}).status_code == 302
    assert fresh.get("/dashboard/").status_code == 200


def test_member_in_grace_sees_banner_with_deadline():
    company = make_company()
    require_2fa(company, since_days_ago=1, grace_days=7)
    user = add_member(company, Role.VIEWER).user
    response = signed_in(user).get("/dashboard/")
    assert response.status_code == 200
    assert b'id="two-factor-banner"' in response.content
    deadline = response.wsgi_request.two_factor_deadline
    assert deadline > timezone.now() + timedelta(days=5)


def test_member_past_grace_cannot_reach_company_pages_but_can_set_up_2fa():
    company = make_company()
    require_2fa(company, since_days_ago=10, grace_days=7)
    user = add_member(company, Role.VIEWER).user
    # Joined before the requirement: the grace counts from the requirement.
    type(user.memberships.first()).objects.filter(user=user).update(created_at=timezone.now() - timedelta(days=30))
    client = signed_in(user)
    for path in ("/dashboard/", "/members/", "/activity/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"] == "/accounts/2fa/", path
    assert client.get("/accounts/2fa/").status_code == 200
    give_totp(user)
    assert client.get("/dashboard/").status_code == 200
    assert b"two-factor-banner" not in client.get("/dashboard/").content


def test_new_member_gets_the_full_grace_from_joining():
    company = make_company()
    require_2fa(company, since_days_ago=30, grace_days=7)
    user = add_member(company, Role.VIEWER).user  # joined just now
    response = signed_in(user).get("/dashboard/")
    assert response.status_code == 200 and b"two-factor-banner" in response.content


def test_company_without_requirement_shows_nothing():
    company = make_company()
    user = add_member(company, Role.VIEWER).user
    assert b"two-factor-banner" not in signed_in(user).get("/dashboard/").content


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OWNER])
def test_admin_cannot_remove_their_only_totp_when_required(role):
    company = make_company()
    membership = company.memberships.get(role=Role.OWNER) if role == Role.OWNER else add_member(company, role)
    user = membership.user
    secret = give_totp(user)
    require_2fa(company)
    client = signed_in(user, secret)
    reauthenticate(client)
    response = client.post("/accounts/2fa/totp/deactivate/")
    assert response.status_code == 200
    assert b"add another method" in response.content
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def test_recruiter_may_remove_totp_and_admin_may_once_not_required():
    company = make_company()
    recruiter = add_member(company, Role.RECRUITER).user
    admin = add_member(company, Role.ADMIN).user
    recruiter_secret = give_totp(recruiter)
    admin_secret = give_totp(admin)
    require_2fa(company)
    client = signed_in(recruiter, recruiter_secret)
    reauthenticate(client)
    assert client.post("/accounts/2fa/totp/deactivate/").status_code == 302
    assert not mfa.has_2fa(recruiter)
    CompanySecuritySettings.objects.filter(company=company).update(require_2fa=False)
    admin_client = signed_in(admin, admin_secret)
    reauthenticate(admin_client)
    assert admin_client.post("/accounts/2fa/totp/deactivate/").status_code == 302
    assert not mfa.has_2fa(admin)


def test_admin_cannot_remove_last_security_key_when_required():
    company = make_company()
    admin = add_member(company, Role.ADMIN).user
    key = Authenticator.objects.create(user=admin, type=Authenticator.Type.WEBAUTHN, data={"name": "key"})
    require_2fa(company)
    client = HTTPSClient()
    client.force_login(admin)  # a real key sign-in is the browser test's job (tests/e2e)
    reauthenticate(client)
    response = client.post(f"/accounts/2fa/webauthn/keys/{key.pk}/remove/")
    assert response.status_code == 302
    assert Authenticator.objects.filter(pk=key.pk).exists()
    assert SecurityEvent.objects.filter(action=EventAction.AUTHN_MFA_REMOVED, outcome="blocked", actor=admin).exists()
    # With a second method, the key may go.
    give_totp(admin)
    assert mfa.can_remove(key)


def test_2fa_changes_need_reauthentication():
    company = make_company()
    user = add_member(company, Role.ADMIN).user
    client = signed_in(user, give_totp(user))
    session = client.session
    session["account_authentication_methods"] = [{"method": "password", "at": 0}]
    session.save()
    response = client.post("/accounts/2fa/totp/deactivate/")
    assert response.status_code == 302 and "/reauthenticate/" in response["Location"]
    assert mfa.has_2fa(user)
