"""Your sessions: listed with device, place and last seen; ended one at a time or all
others; a password change or reset ends the rest. Ended means gone server-side."""

from __future__ import annotations

import pytest
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.utils.module_loading import import_string

from tests.conftest import PASSWORD, HTTPSClient, make_company, make_user
from tests.guard.b_helpers import sign_in
from vouch.audit.models import EventAction, SecurityEvent
from vouch.guard import sessions as guard_sessions

pytestmark = pytest.mark.django_db
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def device(user, agent: str, ip: str) -> HTTPSClient:
    client = HTTPSClient(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    assert sign_in(client, user.email).status_code == 302
    assert client.get("/accounts/sessions/").status_code == 200
    return client


def session_exists(key: str) -> bool:
    store: SessionBase = import_string(settings.SESSION_ENGINE + ".SessionStore")
    return store().exists(key)


def test_sessions_are_listed_with_device_place_and_current_marker():
    user = make_company().memberships.get().user
    laptop = device(user, FIREFOX, "198.51.100.20")
    device(user, SAFARI_IPHONE, "203.0.113.9")
    page = laptop.get("/accounts/sessions/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Firefox on Windows" in text and "Safari on iPhone" in text
    assert "198.51.100.0/24" in text and "203.0.113.0/24" in text
    assert text.count("This session") == 1
    assert len(page.context["sessions"]) == 2 and page.context["sessions"][0].current


def test_ending_one_session_kills_its_cookie_server_side():
    user = make_user()
    laptop = device(user, FIREFOX, "198.51.100.20")
    phone = device(user, SAFARI_IPHONE, "203.0.113.9")
    phone_key = phone.session.session_key
    target = UserSession.objects.get(session_key=phone_key)
    response = laptop.post(f"/accounts/sessions/{target.pk}/end/")
    assert response.status_code == 302
    assert not session_exists(phone_key)
    assert not UserSession.objects.filter(pk=target.pk).exists()
    # The phone's cookie no longer opens anything; the laptop is still signed in.
    assert phone.get("/accounts/sessions/").status_code == 302
    assert laptop.get("/accounts/sessions/").status_code == 200
    assert SecurityEvent.objects.filter(action=EventAction.SESSION_REVOKED, actor=user).exists()


def test_cannot_end_another_users_session():
    alice, mallory = make_user(), make_user()
    alice_client = device(alice, FIREFOX, "198.51.100.20")
    mallory_client = device(mallory, FIREFOX, "198.51.100.21")
    alice_session = UserSession.objects.get(user=alice)
    mallory_client.post(f"/accounts/sessions/{alice_session.pk}/end/")
    assert session_exists(alice_session.session_key)
    assert alice_client.get("/accounts/sessions/").status_code == 200


def test_end_all_other_sessions():
    user = make_user()
    clients = [device(user, FIREFOX, f"198.51.100.{n}") for n in range(1, 4)]
    keep = clients[0]
    assert keep.post("/accounts/sessions/end-others/").status_code == 302
    assert keep.get("/accounts/sessions/").status_code == 200
    for other in clients[1:]:
        assert other.get("/accounts/sessions/").status_code == 302
    assert UserSession.objects.filter(user=user).count() == 1


def test_ending_requires_post():
    user = make_user()
    client = device(user, FIREFOX, "198.51.100.20")
    assert client.get("/accounts/sessions/end-others/").status_code == 405


def test_password_change_ends_other_sessions_and_keeps_this_one():
    user = make_user()
    here = device(user, FIREFOX, "198.51.100.20")
    there = device(user, SAFARI_IPHONE, "203.0.113.9")
    there_key = there.session.session_key
    new = "a much longer new passphrase 2024 heron"
    response = here.post("/accounts/password/change/", {"oldpassword": PASSWORD, "password1": new, "password2": new})
    assert response.status_code == 302
    assert not session_exists(there_key)
    assert there.get("/accounts/sessions/").status_code == 302
    assert here.get("/accounts/sessions/").status_code == 200


def test_password_reset_ends_every_session():
    user = make_user()
    client = device(user, FIREFOX, "198.51.100.20")
    key = client.session.session_key
    request = type("R", (), {"user": user, "session": None, "META": {}})()
    guard_sessions.on_password_reset(None, request, user)
    assert not session_exists(key)
    assert client.get("/accounts/sessions/").status_code == 302


def test_describe_device_and_network():
    assert guard_sessions.describe_device(FIREFOX) == "Firefox on Windows"
    assert guard_sessions.describe_device("") == "Unknown device"
    assert guard_sessions.network_of("2001:db8:1:2::5") == "2001:db8:1::/48"
    assert guard_sessions.network_of("nonsense") == "unknown network"
