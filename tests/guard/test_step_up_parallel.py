"""The emailed sign-in code (step-up) against the real server: parallel guesses at one
pending sign-in are each counted before the code is compared, so no more than the
allowance is ever compared, and the right code is refused once it is used up (P3, P13)."""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from html import unescape

import pytest

from tests.e2e.support import Outbox
from tests.live import cleanup, make_server
from tests.server import helpers
from vouch.guard.stages import CODE_ATTEMPTS, WRONG_PER_HOUR
from vouch.guard.throttle import DISTINCT_ACCOUNTS_LIMIT

PARALLEL = 16
VERIFY = "/accounts/verify-sign-in/"


@pytest.fixture(scope="module")
def server():
    # The ten-second sign-in limits and the caps on one client's requests in flight
    # (vouch.shield, tested in tests/shield) rightly refuse part of this test's bursts of
    # sixteen guesses from one address: on a loaded machine the in-flight caps (two or
    # three a worker) let only four through, fewer than a code's allowance. Here the point
    # is what the code counter does with guesses that arrive at once.
    live = make_server(
        workers=2,
        extra_env={
            "VOUCH_BURST_LIMITS": "sign_in.address=100000,sign_in.network=100000",
            "VOUCH_CLIENT_IN_FLIGHT": str(PARALLEL),
            "VOUCH_ANONYMOUS_IN_FLIGHT": str(PARALLEL),
        },
    )
    live.start()
    yield live
    cleanup(live)


def _stuffing_address(server) -> None:
    """Failed passwords for several unknown accounts from this client's address: the
    next sign-in from it scores "one address trying many accounts" and needs a code."""
    for n in range(5):
        assert n < DISTINCT_ACCOUNTS_LIMIT
        response = helpers.login(server, f"nobody-{uuid.uuid4().hex[:8]}@example.com", "not the password 123")
        assert response.status == 200


def _pending_sign_in(server, email: str) -> dict[str, str]:
    """Password accepted, code asked for: the cookies of that pending sign-in."""
    csrf_cookie, token, _ = helpers.csrf_form(server, "/accounts/login/")
    response = helpers.post_form(
        server,
        "/accounts/login/",
        {"csrfmiddlewaretoken": token, "login": email, "password": helpers.PASSWORD},
        cookies={"__Host-csrftoken": csrf_cookie},
    )
    assert response.status == 302 and response.header("Location") == VERIFY, (response.status, response.text[-500:])
    return {"__Host-csrftoken": csrf_cookie, "__Host-vouch_session": response.cookies()["__Host-vouch_session"].value}


def _form_token(server, cookies: dict[str, str]) -> str:
    page = helpers.request(server, "GET", VERIFY, cookies=cookies)
    assert page.status == 200, page.status
    return unescape(re.search(r'name="csrfmiddlewaretoken"\s+value="([^"]+)"', page.text).group(1))


def _post_code(server, cookies: dict[str, str], token: str, code: str) -> helpers.Response:
    return helpers.post_form(server, VERIFY, {"csrfmiddlewaretoken": token, "code": code}, cookies)


def _signed_in(response: helpers.Response) -> bool:
    return response.status == 302 and response.header("Location") not in (VERIFY, "/accounts/login/")


def _compared(server, user_id: int) -> int:
    """Wrong codes compared: each is recorded as one authn_step_up_fail event."""
    out = helpers.run_django(
        server,
        f"""
        from vouch.audit.models import EventAction, SecurityEvent
        print(SecurityEvent.objects.filter(action=EventAction.AUTHN_STEP_UP_FAIL, target="user:{user_id}").count())
        """,
    )
    return int(out.strip().splitlines()[-1])


def _new_code(outbox: Outbox, email: str, before: int) -> str:
    """The code of the sign-in code mail sent after ``before`` of them (sent by the request)."""
    codes = outbox.to(email, "sign-in code")
    assert len(codes) == before + 1, [m.subject for m in outbox.to(email)]
    return re.search(r"\b(\d{6})\b", codes[-1].body).group(1)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def _guess_in_parallel(server, cookies: dict[str, str], code: str) -> tuple[str, list[helpers.Response]]:
    token = _form_token(server, cookies)
    with ThreadPoolExecutor(PARALLEL) as pool:
        return token, list(pool.map(lambda _: _post_code(server, cookies, token, _wrong(code)), range(PARALLEL)))


def test_parallel_wrong_codes_are_counted_before_they_are_compared(server):
    email = f"stepup-{uuid.uuid4().hex[:8]}@example.com"
    user_id = helpers.create_member(server, email, f"Step-up {email}")["user_id"]
    outbox = Outbox(server.data_dir / "outbox")
    _stuffing_address(server)

    cookies = _pending_sign_in(server, email)
    code = _new_code(outbox, email, 0)
    token, answers = _guess_in_parallel(server, cookies, code)
    assert all(a.status < 500 for a in answers) and not any(_signed_in(a) for a in answers)
    # One code's allowance was compared, however many guesses arrived at once...
    assert _compared(server, user_id) == CODE_ATTEMPTS
    # ...and the right code is refused now: its tries are used up.
    assert not _signed_in(_post_code(server, cookies, token, code))

    # More codes, guessed at in parallel until the hour's allowance of wrong codes is gone.
    sent = 1
    while _compared(server, user_id) < WRONG_PER_HOUR:
        cookies = _pending_sign_in(server, email)
        code = _new_code(outbox, email, sent)
        sent += 1
        _guess_in_parallel(server, cookies, code)
        assert _compared(server, user_id) <= WRONG_PER_HOUR

    # Past it, the right password and the right code together do not sign in, and no
    # code is compared: no new code is sent, or if one were, it is refused unread.
    csrf_cookie, token, _ = helpers.csrf_form(server, "/accounts/login/")
    response = helpers.post_form(
        server,
        "/accounts/login/",
        {"csrfmiddlewaretoken": token, "login": email, "password": helpers.PASSWORD},
        cookies={"__Host-csrftoken": csrf_cookie},
    )
    assert not _signed_in(response)
    if response.header("Location") == VERIFY:
        cookies = {
            "__Host-csrftoken": csrf_cookie,
            "__Host-vouch_session": response.cookies()["__Host-vouch_session"].value,
        }
        code = _new_code(outbox, email, sent)
        assert not _signed_in(_post_code(server, cookies, _form_token(server, cookies), code))
    else:
        assert response.status == 429 and "Too many codes" in response.text
        assert len(outbox.to(email, "sign-in code")) == sent
    assert _compared(server, user_id) == WRONG_PER_HOUR
