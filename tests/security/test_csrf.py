"""CSRF: a forged cross-site POST (the browser sends the cookies, but the attacker
cannot read the token) is refused with the friendly page and changes nothing."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from tests.accounts.helpers import mark_reauthenticated
from tests.conftest import PASSWORD, make_company, make_user

pytestmark = pytest.mark.django_db

# Sent with the forged requests so that the missing/wrong token is what gets them
# refused (a cross-site Origin would be refused even earlier; tested separately).
SAME_ORIGIN = {"HTTP_ORIGIN": "https://testserver"}


def token_from(page) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)


def assert_form_expired(response) -> None:
    assert response.status_code == 403
    body = response.content.decode()
    assert "Form expired" in body
    assert "Traceback" not in body


@pytest.fixture
def signed_in(csrf_client, owner):
    csrf_client.force_login(owner.user)
    # The victim has browsed the site: the CSRF cookie is there and would be sent.
    page = csrf_client.get("/members/")
    assert page.status_code == 200
    assert "__Host-csrftoken" in csrf_client.cookies
    return csrf_client


def _invitations(company) -> int:
    from vouch.accounts.models import Invitation

    return Invitation.objects.filter(company=company).count()


def test_invite_without_token_is_refused(signed_in, company):
    response = signed_in.post("/members/invite/", {"email": "victim-invite@example.com", "role": "20"}, **SAME_ORIGIN)
    assert_form_expired(response)
    assert _invitations(company) == 0
    assert mail.outbox == []


def test_invite_with_a_wrong_token_is_refused(signed_in, company):
    response = signed_in.post(
        "/members/invite/",
        {"email": "victim-invite@example.com", "role": "20", "csrfmiddlewaretoken": "A" * 64},
        **SAME_ORIGIN,
    )
    assert_form_expired(response)
    assert _invitations(company) == 0


def test_invite_with_the_right_token_but_a_foreign_origin_is_refused(signed_in, company):
    token = token_from(signed_in.get("/members/"))
    response = signed_in.post(
        "/members/invite/",
        {"email": "victim-invite@example.com", "role": "20", "csrfmiddlewaretoken": token},
        HTTP_ORIGIN="https://evil.example",
    )
    assert_form_expired(response)
    assert _invitations(company) == 0


def test_invite_with_the_token_works(signed_in, company):
    """The control: the same request with the page's token goes through, so the 403s
    above are the CSRF check and not something else."""
    mark_reauthenticated(signed_in)  # inviting asks for the password again; not what is tested here
    token = token_from(signed_in.get("/members/"))
    response = signed_in.post(
        "/members/invite/",
        {"email": "invitee@example.com", "role": "20", "csrfmiddlewaretoken": token},
        HTTP_ORIGIN="https://testserver",
    )
    assert response.status_code == 302
    assert _invitations(company) == 1


def test_company_switch_without_token_is_refused(signed_in, owner):
    other = make_company("Other Co", owner=owner.user)
    before = signed_in.session.get("vouch_company")
    response = signed_in.post("/companies/switch/", {"company": str(other.pk)}, **SAME_ORIGIN)
    assert_form_expired(response)
    assert signed_in.session.get("vouch_company") == before
    assert before != str(other.pk)


def test_logout_without_token_is_refused(signed_in):
    response = signed_in.post("/accounts/logout/", **SAME_ORIGIN)
    assert_form_expired(response)
    assert signed_in.get("/dashboard/").status_code == 200


def test_login_without_token_is_refused(csrf_client):
    """Login CSRF: an attacker must not sign a victim into the attacker's account."""
    make_user("attacker@example.com")
    csrf_client.get("/accounts/login/")
    response = csrf_client.post(
        "/accounts/login/", {"login": "attacker@example.com", "password": PASSWORD}, **SAME_ORIGIN
    )
    assert_form_expired(response)
    assert "_auth_user_id" not in csrf_client.session


def test_password_change_without_token_is_refused(signed_in, owner):
    old_hash = owner.user.password
    new = "attacker chosen passphrase 0001"
    response = signed_in.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": new, "password2": new},
        **SAME_ORIGIN,
    )
    assert_form_expired(response)
    owner.user.refresh_from_db()
    assert owner.user.password == old_hash


def test_htmx_header_token_is_accepted(signed_in, company):
    """The pages send the token in X-CSRFToken for htmx; that path must work too."""
    mark_reauthenticated(signed_in)  # inviting asks for the password again; not what is tested here
    token = token_from(signed_in.get("/members/"))
    response = signed_in.post(
        "/members/invite/",
        {"email": "htmx@example.com", "role": "20"},
        HTTP_X_CSRFTOKEN=token,
        HTTP_ORIGIN="https://testserver",
    )
    assert response.status_code == 302
    assert _invitations(company) == 1


def test_forged_post_without_origin_or_referer_is_refused(signed_in, company):
    response = signed_in.post("/members/invite/", {"email": "victim-invite@example.com", "role": "20"})
    assert_form_expired(response)
    assert _invitations(company) == 0
