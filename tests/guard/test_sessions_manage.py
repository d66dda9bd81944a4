"""Your sessions: listed with device, place and last seen; ended one at a time or all
others, after confirming the password again; a password change or reset ends the
rest. Ended means gone server-side. Re-authentication gives the session a new key."""

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
REAUTH = "/accounts/reauthenticate/"
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


def confirm_password(client: HTTPSClient, held_back, password: str = PASSWORD):
    """The held-back POST went to allauth's re-authentication page: confirm there (allauth
    then replays the POST) and return that answer."""
    assert held_back.status_code == 302 and held_back["Location"].startswith(REAUTH), held_back.get("Location")
    return client.post(held_back["Location"], {"password": password})


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
    held_back = laptop.post(f"/accounts/sessions/{target.pk}/end/")
    assert session_exists(phone_key)  # not before the password is confirmed again
    assert confirm_password(laptop, held_back).status_code == 302
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
    held_back = keep.post("/accounts/sessions/end-others/")
    # A signed-in session alone cannot sign its owner out everywhere else.
    assert UserSession.objects.filter(user=user).count() == 3
    assert confirm_password(keep, held_back, password="a wrong password here").status_code == 200
    assert UserSession.objects.filter(user=user).count() == 3
    assert confirm_password(keep, held_back).status_code == 302
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


def test_reauthentication_issues_a_new_session_key():
    user = make_user()
    laptop = device(user, FIREFOX, "198.51.100.20")
    device(user, SAFARI_IPHONE, "203.0.113.9")
    before = laptop.cookies[settings.SESSION_COOKIE_NAME].value
    copy = HTTPSClient()  # someone holding a copy of the cookie from before
    copy.cookies[settings.SESSION_COOKIE_NAME] = before
    assert copy.get("/accounts/sessions/").status_code == 200

    confirm_password(laptop, laptop.post("/accounts/sessions/end-others/"))
    after = laptop.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != before
    assert not session_exists(before) and session_exists(after)
    # The copied cookie opens nothing now; the person carries on, and their session is
    # still the one listed (so it can still be ended from elsewhere).
    assert copy.get("/accounts/sessions/").status_code == 302
    page = laptop.get("/accounts/sessions/")
    assert page.status_code == 200 and page.context["sessions"][0].current
    assert list(UserSession.objects.filter(user=user).values_list("session_key", flat=True)) == [after]


def test_reauthentication_with_a_two_factor_code_issues_a_new_session_key():
    from tests.guard.b_helpers import give_totp, totp_code

    user = make_user()
    secret = give_totp(user)
    client = HTTPSClient()
    client.force_login(user)
    before = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert client.get("/accounts/2fa/reauthenticate/").status_code == 200
    assert client.post("/accounts/2fa/reauthenticate/", {"code": totp_code(secret)}).status_code == 302
    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != before and not session_exists(before)
    assert client.get("/accounts/sessions/").status_code == 200


def test_a_wrong_password_keeps_the_session_key():
    user = make_user()
    client = device(user, FIREFOX, "198.51.100.20")
    before = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert client.post(REAUTH, {"password": "not the password at all"}).status_code == 200
    assert client.cookies[settings.SESSION_COOKIE_NAME].value == before and session_exists(before)
