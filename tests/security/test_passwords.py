"""P11: passwords are hashed with a memory-hard, salted hash and never readable.

The parameters are read back from hashes that real accounts stored, not from the
hasher class, so a settings change that swaps the hasher is caught."""

from __future__ import annotations

import base64
import re

import pytest
from django.apps import apps
from django.contrib.sessions.backends.base import SessionBase
from django.core import mail

from tests.conftest import PASSWORD, HTTPSClient, make_user

pytestmark = pytest.mark.django_db

ARGON2ID = re.compile(
    r"^argon2\$argon2id\$v=(?P<v>\d+)\$m=(?P<m>\d+),t=(?P<t>\d+),p=(?P<p>\d+)\$(?P<salt>[A-Za-z0-9+/]+)\$(?P<hash>[A-Za-z0-9+/]+)$"
)
LONG_PASSPHRASE = ("a quiet lighthouse keeper counts forty seven gulls at dusk " * 4)[:200]


def _b64(value: str) -> bytes:
    return base64.b64decode(value + "=" * (-len(value) % 4))


def signup_data(email: str, password: str, name: str = "Ann Example", **extra) -> dict:
    return {
        "full_name": name,
        "email": email,
        "company_name": "Foo Ltd",
        "region": "eu",
        "password1": password,
        "password2": password,
        **extra,
    }


def _all_mail_text() -> str:
    parts = []
    for message in mail.outbox:
        parts.append(message.message().as_string())
        parts.append(message.subject)
        parts.append(message.body)
        parts.extend(content for content, _ in getattr(message, "alternatives", []))
    return "\n".join(parts)


def _parsed(encoded: str) -> dict:
    match = ARGON2ID.match(encoded)
    assert match, f"not an argon2id hash: {encoded[:30]}..."
    return match.groupdict()


def test_stored_hash_is_argon2id_with_owasp_parameters():
    user = make_user("hash@example.com")
    user.refresh_from_db()
    params = _parsed(user.password)
    assert int(params["v"]) == 19
    assert int(params["m"]) >= 19456  # KiB, OWASP floor
    assert int(params["t"]) >= 2
    assert int(params["p"]) >= 1
    assert len(_b64(params["salt"])) >= 16
    assert len(_b64(params["hash"])) >= 32
    assert PASSWORD not in user.password
    assert user.check_password(PASSWORD)
    assert not user.check_password(PASSWORD + "x")


def test_signup_stores_an_argon2id_hash(client):
    from vouch.accounts.models import User

    password = "plum orchard semaphore 1987"
    response = client.post("/accounts/signup/", signup_data("new@example.com", password))
    assert response.status_code == 302
    stored = User.objects.get(email="new@example.com").password
    params = _parsed(stored)
    assert int(params["m"]) >= 19456 and int(params["t"]) >= 2 and int(params["p"]) >= 1
    assert password not in stored


def test_same_password_gives_different_salts_and_hashes():
    first = make_user("same1@example.com").password
    second = make_user("same2@example.com").password
    assert first != second
    assert _parsed(first)["salt"] != _parsed(second)["salt"]
    assert _parsed(first)["hash"] != _parsed(second)["hash"]


def _signup_errors(client, email: str, password: str, name: str = "Ann Example") -> str:
    from vouch.accounts.models import User

    response = client.post("/accounts/signup/", signup_data(email, password, name=name))
    assert response.status_code == 200, "a rejected password must re-render the form"
    assert not User.objects.filter(email__iexact=email).exists()
    assert mail.outbox == []
    return response.content.decode()


def test_signup_rejects_passwords_shorter_than_12(client):
    page = _signup_errors(client, "short@example.com", "Xk9#pL2$wQ7")  # 11 characters
    assert "at least 12 characters" in page
    assert "errorlist" in page


def test_signup_rejects_a_common_password(client):
    page = _signup_errors(client, "common@example.com", "password1234")
    assert "too common" in page


def test_signup_rejects_a_password_like_the_email(client):
    page = _signup_errors(client, "margaret.thornbury@example.com", "margaret.thornbury")
    assert "too similar" in page


def test_signup_rejects_a_password_like_the_name(client):
    page = _signup_errors(client, "bf@example.com", "Bartholomew Fitzgerald", name="Bartholomew Fitzgerald")
    assert "too similar" in page


def test_signup_rejects_mismatched_passwords(client):
    from vouch.accounts.models import User

    data = signup_data("mismatch@example.com", "plum orchard semaphore 1987")
    data["password2"] = "plum orchard semaphore 1988"
    response = client.post("/accounts/signup/", data)
    assert response.status_code == 200
    assert not User.objects.filter(email="mismatch@example.com").exists()


def _change_password(client, user, new: str, old: str = PASSWORD):
    client.force_login(user)
    return client.post("/accounts/password/change/", {"oldpassword": old, "password1": new, "password2": new})


@pytest.mark.parametrize(
    ("new_password", "expected"),
    [
        ("Xk9#pL2$wQ7", "at least 12 characters"),
        ("password1234", "too common"),
        ("rosalind.quayle", "too similar"),  # the email's local part
        ("Rosalind Quayle", "too similar"),  # the name
        ("739184526301", "entirely numeric"),
    ],
)
def test_password_change_applies_the_same_rules(client, new_password, expected):
    user = make_user("rosalind.quayle@example.com", name="Rosalind Quayle")
    old_hash = user.password
    response = _change_password(client, user, new_password)
    assert response.status_code == 200
    assert expected in response.content.decode()
    user.refresh_from_db()
    assert user.password == old_hash


def test_password_change_requires_the_current_password(client):
    user = make_user()
    old_hash = user.password
    response = _change_password(client, user, "an entirely new passphrase 77", old="not my password at all")
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.password == old_hash


def test_a_200_character_passphrase_is_accepted_and_works(client):
    from vouch.accounts.models import User

    assert len(LONG_PASSPHRASE) == 200
    response = client.post("/accounts/signup/", signup_data("long@example.com", LONG_PASSPHRASE))
    assert response.status_code == 302
    user = User.objects.get(email="long@example.com")
    _parsed(user.password)
    # Signup verification is mandatory; confirm the address as the emailed link would.
    from allauth.account.models import EmailAddress

    EmailAddress.objects.filter(user=user).update(verified=True)
    fresh = HTTPSClient()
    response = fresh.post("/accounts/login/", {"login": "long@example.com", "password": LONG_PASSPHRASE})
    assert response.status_code == 302
    assert fresh.get("/dashboard/").status_code == 200
    # One character off is refused.
    other = HTTPSClient()
    response = other.post("/accounts/login/", {"login": "long@example.com", "password": LONG_PASSPHRASE[:-1]})
    assert response.status_code == 200
    assert "_auth_user_id" not in other.session


def test_a_200_character_passphrase_can_be_set_by_password_change(client):
    user = make_user()
    response = _change_password(client, user, LONG_PASSPHRASE)
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(LONG_PASSPHRASE)


def test_signup_mail_never_contains_the_password(client):
    password = "vermilion kestrel harbour 5521"
    response = client.post("/accounts/signup/", signup_data("mailcheck@example.com", password))
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    text = _all_mail_text()
    assert "mailcheck@example.com" in text  # the check looks at the right message
    assert password not in text


def test_reset_mail_is_a_link_and_never_a_password(client):
    make_user("forgot@example.com")
    response = client.post("/accounts/password/reset/", {"email": "forgot@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    text = _all_mail_text()
    assert PASSWORD not in text
    assert re.search(r"https://[^\s]+/accounts/password/reset/key/[0-9a-z]+-[^\s/]+/", text)
    assert not re.search(r"(?i)password\s*(is|:)\s*\S", text)


def test_lost_password_is_reset_through_the_link_not_retrieved(client):
    user = make_user("lost@example.com")
    client.post("/accounts/password/reset/", {"email": "lost@example.com"})
    link = re.search(r"https://[^\s/]+(/accounts/password/reset/key/[^\s]+/)", mail.outbox[0].body).group(1)
    response = client.get(link)
    assert response.status_code == 302  # allauth moves the key out of the URL into the session
    form_url = response["Location"]
    page = client.get(form_url)
    assert page.status_code == 200
    assert PASSWORD not in page.content.decode()
    new = "a brand new reset passphrase 2024"
    response = client.post(form_url, {"password1": new, "password2": new})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)
    assert not user.check_password(PASSWORD)
    # The link is single-use.
    reused = client.get(link)
    assert reused.status_code == 200
    assert "invalid" in reused.content.decode()
    assert 'name="password1"' not in reused.content.decode()


def test_password_is_stored_nowhere_in_plain_text(client):
    """After signup, login and a session, no row of any table holds the password."""
    password = "ultramarine pelican ledger 8830"
    assert client.post("/accounts/signup/", signup_data("nowhere@example.com", password)).status_code == 302
    from allauth.account.models import EmailAddress

    EmailAddress.objects.filter(email="nowhere@example.com").update(verified=True)
    assert client.post("/accounts/login/", {"login": "nowhere@example.com", "password": password}).status_code == 302
    needles = {password, base64.b64encode(password.encode()).decode()}
    scanned = 0
    from vouch.core.context import company_context
    from vouch.tenancy.models import Company

    company = Company.objects.get(memberships__user__email="nowhere@example.com")
    with company_context(company):  # the company's own database is scanned too
        rows = [(model, row) for model in apps.get_models() for row in model._default_manager.all()]
    for model, row in rows:
        scanned += 1
        for field in model._meta.concrete_fields:
            value = field.value_from_object(row)
            text = value.decode(errors="ignore") if isinstance(value, bytes) else str(value)
            assert not any(n in text for n in needles), f"{model.__name__}.{field.name} holds the password"
        if hasattr(row, "session_data"):
            decoded = str(SessionBase().decode(row.session_data))
            assert password not in decoded
    assert scanned > 3
    # The session store that is actually in use (database or cache) holds no copy either.
    assert password not in str(dict(client.session.items()))
