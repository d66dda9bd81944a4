"""No account enumeration: login, signup, password reset and email change answer a
registered and an unregistered address alike, in status, page, mail and hashing work."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from allauth.account.models import EmailAddress
from django.core import mail

from tests.conftest import PASSWORD, HTTPSClient, make_user

pytestmark = pytest.mark.django_db

KNOWN = "known.person@example.com"
UNKNOWN = "nobody.here@example.com"


def normalise(html: str, *emails: str) -> str:
    """The page minus what differs per request by design: CSRF tokens and the
    address the visitor typed in (echoed back into the form)."""
    html = re.sub(r'(name="csrfmiddlewaretoken"\s+value=")[^"]+"', r'\1TOKEN"', html)
    html = re.sub(r'("X-CSRFToken":\s*")[^"]+"', r'\1TOKEN"', html)
    html = re.sub(r'nonce="[^"]*"', 'nonce="NONCE"', html)
    for email in emails:
        html = html.replace(email, "EMAIL")
    return html


@pytest.fixture
def hash_calls(monkeypatch):
    """Counts Argon2 verify/encode calls while still doing the real work."""
    from vouch.accounts.hashers import VouchArgon2PasswordHasher

    calls: Counter = Counter()
    for name in ("verify", "encode"):
        original = getattr(VouchArgon2PasswordHasher, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(VouchArgon2PasswordHasher, name, counting)
    return calls


def _shape(response) -> tuple:
    return response.status_code, response.get("Location"), sorted(response.cookies.keys())


def _page(client, response) -> str:
    if response.status_code == 302:
        response = client.get(response["Location"])
    assert response.status_code == 200
    return response.content.decode()


# -- login -------------------------------------------------------------------------


def _login(email: str, hash_calls: Counter) -> tuple[tuple, str, int]:
    client = HTTPSClient()
    hash_calls.clear()
    response = client.post("/accounts/login/", {"login": email, "password": "wrong password, long enough"})
    work = sum(hash_calls.values())
    assert "_auth_user_id" not in client.session
    return _shape(response), normalise(response.content.decode(), email), work


def test_login_answers_known_and_unknown_emails_alike(hash_calls):
    make_user(KNOWN)
    known_shape, known_page, known_work = _login(KNOWN, hash_calls)
    unknown_shape, unknown_page, unknown_work = _login(UNKNOWN, hash_calls)
    assert known_shape == unknown_shape
    assert known_shape[0] == 200
    assert "not correct" in known_page
    assert known_page == unknown_page


def test_login_with_unknown_email_costs_a_hash_too(hash_calls):
    make_user(KNOWN)
    _, _, known_work = _login(KNOWN, hash_calls)
    assert hash_calls["verify"] == 1
    _, _, unknown_work = _login(UNKNOWN, hash_calls)
    assert hash_calls["encode"] >= 1, "an unknown email must still cost an Argon2 hash"
    assert known_work == unknown_work == 1


def test_login_unverified_account_with_wrong_password_looks_like_unknown(hash_calls):
    user = make_user(KNOWN)
    EmailAddress.objects.filter(user=user).update(verified=False)
    known_shape, known_page, known_work = _login(KNOWN, hash_calls)
    unknown_shape, unknown_page, unknown_work = _login(UNKNOWN, hash_calls)
    assert (known_shape, known_page, known_work) == (unknown_shape, unknown_page, unknown_work)


# -- password reset ----------------------------------------------------------------


def _reset(email: str, hash_calls: Counter) -> tuple[tuple, str, int]:
    client = HTTPSClient()
    hash_calls.clear()
    response = client.post("/accounts/password/reset/", {"email": email})
    work = sum(hash_calls.values())
    return _shape(response), normalise(_page(client, response), email), work


def test_password_reset_answers_known_and_unknown_alike_and_mails_both(hash_calls):
    make_user(KNOWN)
    known = _reset(KNOWN, hash_calls)
    unknown = _reset(UNKNOWN, hash_calls)
    assert known == unknown
    assert known[0][0] == 302
    assert [m.to for m in mail.outbox] == [[KNOWN], [UNKNOWN]]
    known_mail, unknown_mail = mail.outbox
    assert "/accounts/password/reset/key/" in known_mail.body
    assert PASSWORD not in known_mail.body
    # The unknown address learns there is no account, which only its owner can read.
    assert "/accounts/password/reset/key/" not in unknown_mail.body
    assert "/accounts/signup/" in unknown_mail.body


def test_password_reset_is_case_insensitive_without_telling(hash_calls):
    make_user(KNOWN)
    shape, _, _ = _reset(KNOWN.upper(), hash_calls)
    assert shape[0] == 302
    assert len(mail.outbox) == 1
    assert "/accounts/password/reset/key/" in mail.outbox[0].body


# -- signup ------------------------------------------------------------------------


def _signup(email: str, hash_calls: Counter) -> tuple[tuple, str, int]:
    client = HTTPSClient()
    hash_calls.clear()
    password = "tangerine viaduct 3141 sparrow"
    response = client.post(
        "/accounts/signup/",
        {
            "full_name": "Sam Sample",
            "email": email,
            "company_name": "Sample Co",
            "region": "eu",
            "password1": password,
            "password2": password,
        },
    )
    work = sum(hash_calls.values())
    return _shape(response), normalise(_page(client, response), email), work


def test_signup_with_a_registered_email_looks_like_a_fresh_signup(hash_calls):
    from vouch.accounts.models import User
    from vouch.tenancy.models import Company

    existing = make_user(KNOWN)
    original_hash = existing.password
    users_before, companies_before = User.objects.count(), Company.objects.count()

    taken = _signup(KNOWN, hash_calls)
    assert User.objects.count() == users_before, "no second account for a registered email"
    assert Company.objects.count() == companies_before
    fresh = _signup(UNKNOWN, hash_calls)
    assert User.objects.count() == users_before + 1

    assert taken[0] == fresh[0]
    assert taken[0][0] == 302
    assert taken[1] == fresh[1]
    assert taken[2] == fresh[2] >= 1, "answering a registered email must cost the same hashing as a signup"

    existing.refresh_from_db()
    assert existing.password == original_hash
    assert [m.to for m in mail.outbox] == [[KNOWN], [UNKNOWN]]
    assert "already exists" in mail.outbox[0].body
    assert "/accounts/password/reset/" in mail.outbox[0].body
    assert "confirm-email" in mail.outbox[1].body


def test_signup_with_a_registered_email_in_other_case_creates_nothing(client):
    from vouch.accounts.models import User

    make_user(KNOWN)
    password = "tangerine viaduct 3141 sparrow"
    response = client.post(
        "/accounts/signup/",
        {
            "full_name": "Sam Sample",
            "email": KNOWN.upper(),
            "company_name": "Sample Co",
            "region": "eu",
            "password1": password,
            "password2": password,
        },
    )
    assert response.status_code == 302
    assert User.objects.filter(email__iexact=KNOWN).count() == 1
    assert "already exists" in mail.outbox[0].body


# -- email change ------------------------------------------------------------------


def _change_email(target: str) -> tuple[tuple, str, object]:
    me = make_user()
    client = HTTPSClient()
    client.force_login(me)
    # Changing the address is a sensitive action: allauth asks for the password again.
    assert client.post("/accounts/email/", {"action_add": "", "email": target})["Location"].startswith(
        "/accounts/reauthenticate/"
    )
    assert client.post("/accounts/reauthenticate/", {"password": PASSWORD}).status_code == 302
    response = client.post("/accounts/email/", {"action_add": "", "email": target})
    page = normalise(_page(client, response), target, me.email)
    return _shape(response), page, me


def test_email_change_to_someone_elses_address_discloses_nothing():
    owner = make_user(KNOWN)
    mail.outbox.clear()
    taken_shape, taken_page, me1 = _change_email(KNOWN)
    taken_mail = [m.to for m in mail.outbox]
    mail.outbox.clear()
    free_shape, free_page, me2 = _change_email(UNKNOWN)
    free_mail = [m.to for m in mail.outbox]

    assert taken_shape == free_shape
    assert taken_page == free_page
    # Both sides mail the requested address (the confirmation); nothing else differs.
    assert KNOWN in sum(taken_mail, []) and UNKNOWN in sum(free_mail, [])
    assert len(taken_mail) == len(free_mail)

    # And the address is not taken from its owner.
    owner_address = EmailAddress.objects.get(user=owner, email__iexact=KNOWN)
    assert owner_address.verified and owner_address.primary
    owner.refresh_from_db()
    assert owner.email == KNOWN
    me1.refresh_from_db()
    assert me1.email != KNOWN
    assert not EmailAddress.objects.filter(user=me1, email__iexact=KNOWN, verified=True).exists()
