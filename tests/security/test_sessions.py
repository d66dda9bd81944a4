"""Sessions: rotated at login, destroyed at logout, idle and absolute limits enforced
server-side, and other sessions dropped when the password changes."""

from __future__ import annotations

import re
import time
from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.cache import caches

from tests.conftest import PASSWORD, HTTPSClient, make_user

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME


def session_exists(key: str) -> bool:
    """Whether the server still holds the session, in every place the engine keeps it."""
    engine = import_module(settings.SESSION_ENGINE)
    found = engine.SessionStore().exists(key)
    found = found or Session.objects.filter(session_key=key).exists()
    prefix = getattr(engine, "KEY_PREFIX", None)
    if prefix is not None:  # cache-backed engines
        found = found or caches[settings.SESSION_CACHE_ALIAS].get(prefix + key) is not None
    return found


def replay(key: str) -> HTTPSClient:
    """A fresh client (an attacker) presenting a stolen session cookie."""
    attacker = HTTPSClient()
    attacker.cookies[COOKIE] = key
    return attacker


def is_signed_in(client) -> bool:
    response = client.get("/accounts/email/")  # any signed-in page, company or not
    if response.status_code == 200:
        return True
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    return False


def test_session_key_rotates_at_login(client):
    make_user("rotate@example.com")
    # An attacker plants a session id (fixation) before the victim signs in.
    planted = client.session
    planted["planted"] = "yes"
    planted.save()
    before = client.cookies[COOKIE].value
    assert session_exists(before)

    response = client.post("/accounts/login/", {"login": "rotate@example.com", "password": PASSWORD})
    assert response.status_code == 302
    after = response.cookies[COOKIE].value
    assert after and after != before
    assert not session_exists(before), "the pre-login session must be gone"
    assert is_signed_in(client)
    assert not is_signed_in(replay(before))


def test_logout_destroys_the_server_side_session(client, owner):
    client.force_login(owner.user)
    assert is_signed_in(client)
    key = client.cookies[COOKIE].value
    assert session_exists(key)

    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert not session_exists(key)
    assert not is_signed_in(replay(key))
    assert not is_signed_in(client)


def test_logout_by_get_does_nothing(client, owner):
    client.force_login(owner.user)
    key = client.cookies[COOKIE].value
    client.get("/accounts/logout/")  # a link or <img> on another site must not sign anyone out
    assert session_exists(key)
    assert is_signed_in(client)


def _set_session(client, **values) -> None:
    session = client.session
    for name, value in values.items():
        session[name] = value
    session.save()


def test_idle_session_ends(client, owner):
    client.force_login(owner.user)
    assert is_signed_in(client)  # the middleware stamps vouch_auth_at / vouch_seen_at
    session = client.session
    assert isinstance(session["vouch_auth_at"], int)
    key = client.cookies[COOKIE].value
    now = int(time.time())
    _set_session(client, vouch_seen_at=now - settings.SESSION_IDLE_SECONDS - 5)
    response = client.get("/accounts/email/", follow=True)
    assert response.redirect_chain[0][0].startswith("/accounts/login/")
    assert "Your session ended" in response.content.decode()
    assert not is_signed_in(client)
    assert not session_exists(key)
    assert not is_signed_in(replay(key))


def test_activity_within_the_idle_limit_keeps_the_session(client, owner):
    client.force_login(owner.user)
    assert is_signed_in(client)
    now = int(time.time())
    _set_session(client, vouch_seen_at=now - settings.SESSION_IDLE_SECONDS + 30)
    assert is_signed_in(client)
    assert client.session["vouch_seen_at"] >= now  # activity moved "last seen" forward


def test_absolute_lifetime_ends_an_active_session(client, owner):
    client.force_login(owner.user)
    assert is_signed_in(client)
    key = client.cookies[COOKIE].value
    now = int(time.time())
    _set_session(client, vouch_auth_at=now - settings.SESSION_MAX_SECONDS - 5, vouch_seen_at=now)
    assert not is_signed_in(client)
    assert not session_exists(key)


def test_session_limits_are_sane():
    assert 0 < settings.SESSION_IDLE_SECONDS <= settings.SESSION_MAX_SECONDS <= 24 * 3600
    assert settings.SESSION_COOKIE_AGE <= settings.SESSION_MAX_SECONDS


def test_password_change_signs_out_other_sessions(owner):
    user = owner.user
    first, second = HTTPSClient(), HTTPSClient()
    first.force_login(user)
    second.force_login(user)
    assert is_signed_in(first) and is_signed_in(second)
    second_key = second.cookies[COOKIE].value

    new = "a completely new passphrase 6061"
    response = first.post("/accounts/password/change/", {"oldpassword": PASSWORD, "password1": new, "password2": new})
    assert response.status_code == 302
    assert is_signed_in(first), "the session that changed the password stays signed in"
    assert not is_signed_in(second)
    assert not is_signed_in(replay(second_key))


def test_password_reset_signs_out_existing_sessions(owner):
    user = owner.user
    victim_session = HTTPSClient()
    victim_session.force_login(user)
    assert is_signed_in(victim_session)

    resetter = HTTPSClient()
    resetter.post("/accounts/password/reset/", {"email": user.email})
    link = re.search(r"https?://[^\s/]+(/accounts/password/reset/key/\S+/)", mail.outbox[0].body).group(1)
    form_url = resetter.get(link)["Location"]
    new = "reset passphrase for the test 9192"
    assert resetter.post(form_url, {"password1": new, "password2": new}).status_code == 302
    assert not is_signed_in(victim_session)
