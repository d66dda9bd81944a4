"""Company security settings: owners only, re-authenticated, validated, recorded; and
each setting enforced (networks, session limits, password length)."""

from __future__ import annotations

import time

import pytest
from django.core.exceptions import PermissionDenied
from django.test import override_settings
from django.urls import reverse

from tests.conftest import PASSWORD, HTTPSClient, add_member, make_company, make_user
from tests.guard.b_helpers import PROXY, reauthenticate, security_form, sign_in
from vouch.accounts.policy import Role
from vouch.audit.models import EventAction, SecurityEvent
from vouch.guard import company_security
from vouch.guard.models import CompanySecuritySettings
from vouch.guard.session_lifetime import SEEN_AT

pytestmark = pytest.mark.django_db
URL = "/company/security/"


def owner_client(company, **extra) -> HTTPSClient:
    client = HTTPSClient(**extra)
    owner = company.memberships.get(role=Role.OWNER).user
    assert sign_in(client, owner.email).status_code == 302
    return client


def test_owner_saves_settings_after_reauthentication_and_an_event_is_recorded():
    company = make_company()
    client = owner_client(company)
    assert client.get(URL).status_code == 200
    data = security_form(require_2fa="on", idle_timeout_minutes=15, min_password_length=16)
    reauthenticate(client)
    response = client.post(URL, data)
    assert response.status_code == 302, response.content[:500]
    row = CompanySecuritySettings.objects.get(company=company)
    assert row.require_2fa and row.require_2fa_since is not None
    assert (row.idle_timeout_minutes, row.min_password_length) == (15, 16)
    event = SecurityEvent.objects.filter(action=EventAction.COMPANY_SECURITY_CHANGED).first()
    assert event.company_id == company.pk and event.details["require_2fa"] is True


def test_saving_without_recent_reauthentication_is_sent_to_reauthenticate():
    company = make_company()
    client = owner_client(company)
    # Signed in long ago: allauth's recent-authentication window has passed.
    session = client.session
    session["account_authentication_methods"] = [{"method": "password", "at": time.time() - 3600}]
    session.save()
    response = client.post(URL, security_form(require_2fa="on"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_reauthenticate"))
    assert not CompanySecuritySettings.objects.filter(company=company, require_2fa=True).exists()


@pytest.mark.parametrize("role", [Role.ADMIN, Role.RECRUITER, Role.VIEWER])
def test_non_owner_forging_a_post_is_refused(client, role):
    """A recruiter (or admin, viewer) forging the form, even after a fresh password
    check, gets 403 and nothing changes."""
    company = make_company()
    member = add_member(company, role)
    assert sign_in(client, member.user.email).status_code == 302
    reauthenticate(client)
    response = client.post(URL, security_form(allowed_networks="203.0.113.0/24", require_2fa="on"))
    assert response.status_code == 403
    assert client.get(URL).status_code == 403
    assert not CompanySecuritySettings.objects.filter(company=company).exclude(allowed_networks="").exists()
    assert not CompanySecuritySettings.objects.filter(company=company, require_2fa=True).exists()


def test_owner_of_another_company_cannot_change_this_one():
    company, other = make_company(), make_company()
    stranger = other.memberships.get(role=Role.OWNER)
    with pytest.raises(PermissionDenied):
        company_security.save(company, stranger, company_security.Changes(True, 7, None, None, "", None))
    assert not CompanySecuritySettings.objects.filter(company=company, require_2fa=True).exists()


def test_networks_that_exclude_the_owner_are_refused_with_a_form_error():
    company = make_company()
    client = owner_client(company)
    reauthenticate(client, REMOTE_ADDR="192.0.2.10")
    response = client.post(URL, security_form(allowed_networks="203.0.113.0/24"), REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 400
    assert b"lock you out" in response.content
    assert not CompanySecuritySettings.objects.filter(company=company).exclude(allowed_networks="").exists()
    response = client.post(URL, security_form(allowed_networks="not-a-network"), REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 400 and b"is not an IP address or network" in response.content


def test_member_outside_allowed_networks_is_refused_with_a_clear_page_and_an_event():
    company = make_company()
    client = owner_client(company, REMOTE_ADDR="192.0.2.10")
    reauthenticate(client, REMOTE_ADDR="192.0.2.10")
    response = client.post(URL, security_form(allowed_networks="192.0.2.0/24"), REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 302
    member = add_member(company, Role.RECRUITER)
    outside = HTTPSClient(REMOTE_ADDR="198.51.100.7")
    assert sign_in(outside, member.user.email).status_code == 302
    refused = outside.get("/dashboard/")
    assert refused.status_code == 403
    assert b"Not from this network" in refused.content and b"198.51.100.7" in refused.content
    assert SecurityEvent.objects.filter(
        action=EventAction.AUTHZ_FAIL, actor=member.user, details__reason="address_outside_allowed_networks"
    ).exists()
    inside = HTTPSClient(REMOTE_ADDR="192.0.2.77")
    assert sign_in(inside, member.user.email).status_code == 302
    assert inside.get("/dashboard/").status_code == 200


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored():
    company = make_company()
    company_security.for_company(company)
    CompanySecuritySettings.objects.filter(company=company).update(allowed_networks="192.0.2.0/24")
    company_security.forget(company.pk)
    member = add_member(company, Role.VIEWER)
    with override_settings(VOUCH_TRUSTED_PROXIES=[PROXY]):
        attacker = HTTPSClient(REMOTE_ADDR="198.51.100.7")
        sign_in(attacker, member.user.email)
        # Claims an allowed address, but the peer is not a trusted proxy.
        assert attacker.get("/dashboard/", HTTP_X_FORWARDED_FOR="192.0.2.5").status_code == 403
        # Through the trusted proxy, the forwarded address counts (both ways).
        proxied = HTTPSClient(REMOTE_ADDR=PROXY)
        sign_in(proxied, member.user.email, HTTP_X_FORWARDED_FOR="192.0.2.5")
        assert proxied.get("/dashboard/", HTTP_X_FORWARDED_FOR="192.0.2.5").status_code == 200
        assert proxied.get("/dashboard/", HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 403


def test_address_checks():
    nets = company_security.parse_networks("192.0.2.0/24\n# office\n2001:db8::/32\n")
    assert company_security.address_allowed("192.0.2.9", nets)
    assert company_security.address_allowed("::ffff:192.0.2.9", nets)
    assert company_security.address_allowed("2001:db8::1", nets)
    assert not company_security.address_allowed("192.0.3.1", nets)
    assert not company_security.address_allowed("garbage", nets)
    assert company_security.address_allowed("192.0.3.1", [])
    with pytest.raises(company_security.SecuritySettingsError):
        company_security.parse_networks("0.0.0.0/0")


def test_company_idle_timeout_shortens_sessions_but_never_lengthens_them(settings):
    company = make_company()
    row = company_security.for_company(company)
    row.idle_timeout_minutes = 10
    row.absolute_timeout_hours = 10_000  # longer than the installation's: ignored
    row.save()
    member = add_member(company, Role.VIEWER)
    assert company_security.session_limits(member.user) == (600, settings.SESSION_MAX_SECONDS)
    client = HTTPSClient()
    assert sign_in(client, member.user.email).status_code == 302
    assert client.get("/dashboard/").status_code == 200
    session = client.session
    session[SEEN_AT] = int(time.time()) - 11 * 60  # idle 11 minutes: past the company's 10
    session.save()
    response = client.get("/dashboard/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    # Signed out for real: the old cookie no longer opens anything.
    assert client.get("/dashboard/").status_code == 302


def test_company_minimum_password_length_applies_on_password_change():
    company = make_company()
    row = company_security.for_company(company)
    row.min_password_length = 30
    row.save()
    member = add_member(company, Role.RECRUITER)
    client = HTTPSClient()
    assert sign_in(client, member.user.email).status_code == 302
    short = "violet kestrel 93 quay"  # 22 characters: fine for the installation, not here
    response = client.post(
        "/accounts/password/change/", {"oldpassword": PASSWORD, "password1": short, "password2": short}
    )
    assert response.status_code == 200 and b"at least 30 characters" in response.content
    member.user.refresh_from_db()
    assert member.user.check_password(PASSWORD)
    # A user in no such company is held only to the installation's minimum.
    assert company_security.min_password_length(make_user()) is None


def test_minimum_password_length_must_exceed_the_installation_default():
    company = make_company()
    owner = company.memberships.get(role=Role.OWNER)
    with pytest.raises(company_security.SecuritySettingsError):
        company_security.save(company, owner, company_security.Changes(False, 7, None, None, "", 8))
