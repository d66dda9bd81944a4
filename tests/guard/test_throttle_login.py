"""Brute-force defence on password sign-in (P13): growing delays per account and per
address, distributed guessing, credential stuffing, the 100-failure cap, and no
enumeration. Every refusal is checked to happen before any password hash is computed."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.core.cache import cache

from tests.conftest import HTTPSClient, make_user
from tests.guard import throttle_helpers
from tests.guard.throttle_helpers import (
    DISABLED,
    PASSWORD,
    THROTTLED,
    attempt,
    signed_in,
    text,
)
from vouch.audit.models import EventAction, SecurityEvent
from vouch.guard import throttle
from vouch.guard.models import AccountState

pytestmark = pytest.mark.django_db
clock = throttle_helpers.clock  # fixtures
hash_calls = throttle_helpers.hash_calls


def ip(n: int) -> str:
    return f"198.51.{n // 250}.{n % 250 + 1}"


def fail_from_many(email: str, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        response = attempt(email, ip=ip(n))
        assert response.status_code == 200 and THROTTLED not in text(response), n


# -- delays ---------------------------------------------------------------------------


def test_delays_grow_with_each_failure_and_refusals_compute_no_hash(clock, hash_calls):
    user = make_user()
    fail_from_many(user.email, 5)  # the free failures
    waits = []
    for round_number in range(4):
        hash_calls.clear()
        refused = attempt(user.email, ip=ip(100 + round_number))
        # A small static 429 page, not the whole sign-in form: refusals stay cheap in a flood.
        assert refused.status_code == 429 and THROTTLED in text(refused)
        assert int(refused["Retry-After"]) > 0
        assert sum(hash_calls.values()) == 0  # decided before any hash, real or dummy
        wait = throttle.delay_for(5 + round_number, throttle.ACCOUNT)
        waits.append(wait)
        clock.advance(wait - 2)
        assert THROTTLED in text(attempt(user.email, ip=ip(200 + round_number)))
        clock.advance(3)
        allowed = attempt(user.email, ip=ip(300 + round_number))
        assert THROTTLED not in text(allowed) and sum(hash_calls.values()) == 1
    assert waits == [15, 30, 60, 120]
    assert throttle.delay_for(60, throttle.ACCOUNT) == throttle.MAX_DELAY


def test_the_message_says_how_many_minutes(clock):
    user = make_user()
    fail_from_many(user.email, 5)
    clock.advance(16)
    fail_from_many(user.email, 1, start=50)  # 6th failure: 30 s
    clock.advance(31)
    fail_from_many(user.email, 1, start=51)  # 7th: 60 s
    clock.advance(61)
    fail_from_many(user.email, 1, start=52)  # 8th: 120 s
    page = text(attempt(user.email, ip=ip(60)))
    assert "Try again in 2 minutes." in page


def test_even_the_right_password_waits_out_the_delay_from_a_new_browser(clock):
    user = make_user()
    fail_from_many(user.email, 5)
    client = HTTPSClient()
    assert THROTTLED in text(attempt(user.email, PASSWORD, ip=ip(90), client=client))
    assert not signed_in(client)
    clock.advance(16)
    # Through to the password check, and right (the risk engine may still ask for a step-up).
    assert attempt(user.email, PASSWORD, ip=ip(91), client=client).status_code == 302
    assert AccountState.objects.get(user=user).consecutive_failures == 0


# -- per address, distributed guessing, credential stuffing ---------------------------


def test_one_address_is_slowed_down_across_accounts(hash_calls):
    users = [make_user() for _ in range(6)]
    for user in users[:5]:
        for _ in range(4):  # under each account's free failures
            assert THROTTLED not in text(attempt(user.email, ip="192.0.2.50"))
    hash_calls.clear()
    refused = attempt(users[5].email, ip="192.0.2.50")
    assert THROTTLED in text(refused) and sum(hash_calls.values()) == 0
    # Another address is not affected.
    assert THROTTLED not in text(attempt(users[5].email, ip="192.0.2.51"))


def test_distributed_guessing_from_many_addresses_is_limited_per_account(hash_calls):
    user = make_user()
    fail_from_many(user.email, 5)
    hash_calls.clear()
    for n in range(20, 60):  # forty fresh addresses, one guess each
        assert THROTTLED in text(attempt(user.email, ip=ip(n)))
    assert sum(hash_calls.values()) == 0
    assert AccountState.objects.get(user=user).consecutive_failures == 5


def test_credential_stuffing_one_address_many_accounts(hash_calls):
    users = [make_user() for _ in range(12)]
    stuffer = "192.0.2.77"
    for user in users[:10]:
        assert THROTTLED not in text(attempt(user.email, ip=stuffer))
    assert throttle.distinct_accounts_from(stuffer) == 10
    hash_calls.clear()
    # An 11th account, even with its right password, is refused before any hash.
    client = HTTPSClient()
    assert THROTTLED in text(attempt(users[10].email, PASSWORD, ip=stuffer, client=client))
    assert not signed_in(client) and sum(hash_calls.values()) == 0
    # Accounts already tried from there are not newly blocked; other addresses are fine.
    assert attempt(users[0].email, PASSWORD, ip=stuffer).status_code == 302
    assert attempt(users[11].email, PASSWORD, ip="192.0.2.78").status_code == 302
    assert SecurityEvent.objects.filter(
        action=EventAction.AUTHN_LOGIN_LOCK, details__scope="accounts_from_address"
    ).exists()


def test_unknown_addresses_count_as_accounts_for_stuffing():
    stuffer = "192.0.2.99"
    for n in range(10):
        attempt(f"nobody{n}@example.org", ip=stuffer)
    assert THROTTLED in text(attempt("nobody-else@example.org", ip=stuffer))


# -- the 100 cap ----------------------------------------------------------------------


def _at(user, failures: int) -> None:
    AccountState.objects.update_or_create(user=user, defaults={"consecutive_failures": failures})


def test_hundredth_failure_disables_the_password_and_tells_the_owner(hash_calls):
    user = make_user()
    _at(user, 99)
    mail.outbox.clear()
    attempt(user.email, ip=ip(1))
    state = AccountState.objects.get(user=user)
    assert state.consecutive_failures == 100 and state.password_disabled_at is not None
    (message,) = [m for m in mail.outbox if "turned off" in m.subject]
    assert message.to == [user.email]
    assert "100 failed sign-in attempts" in message.body
    event = SecurityEvent.objects.get(action=EventAction.AUTHN_LOGIN_LOCK, details__reason="password_disabled")
    assert event.target == f"user:{user.pk}"

    # The right password no longer works, from anywhere, and costs no hash.
    hash_calls.clear()
    client = HTTPSClient()
    refused = attempt(user.email, PASSWORD, ip=ip(2), client=client)
    assert DISABLED in text(refused) and not signed_in(client)
    assert sum(hash_calls.values()) == 0
    # ... even after the cache is flushed: the cap lives in the database.
    key = f"bf:a:{throttle.email_key(user.email)}"
    cache.delete_many([f"{key}:f", f"{key}:u", f"{key}:g"])
    assert DISABLED in text(attempt(user.email, PASSWORD, ip=ip(3)))


def test_the_cap_holds_under_concurrent_reservations():
    user = make_user()
    _at(user, 99)
    assert throttle._reserve(user.pk) is True
    assert throttle._reserve(user.pk) is False
    assert AccountState.objects.get(user=user).consecutive_failures == 100


def test_a_failure_counter_at_the_cap_survives_a_cache_flush(clock):
    user = make_user()
    _at(user, 40)
    # No cache state at all (as after a flush): the database count still sets a delay.
    assert THROTTLED not in text(attempt(user.email, ip=ip(1)))
    assert THROTTLED in text(attempt(user.email, PASSWORD, ip=ip(2)))


def test_password_reset_through_email_turns_the_password_back_on():
    user = make_user()
    _at(user, 99)
    mail.outbox.clear()
    attempt(user.email, ip=ip(1))
    (message,) = [m for m in mail.outbox if "turned off" in m.subject]
    url = re.search(r"https://\S+/accounts/password/reset/key/\S+", message.body).group(0)
    path = url.split("://", 1)[1].split("/", 1)[1]
    client = HTTPSClient()
    response = client.get("/" + path)
    assert response.status_code == 302
    new = "a brand new passphrase 8812"
    response = client.post(response["Location"], {"password1": new, "password2": new})
    assert response.status_code == 302
    state = AccountState.objects.get(user=user)
    assert state.password_disabled_at is None and state.consecutive_failures == 0
    assert attempt(user.email, new, ip=ip(5)).status_code == 302


# -- no enumeration --------------------------------------------------------------------


def _normalise(html: str, email: str) -> str:
    html = re.sub(r'(name="csrfmiddlewaretoken"\s+value=")[^"]+"', r'\1TOKEN"', html)
    html = re.sub(r'("X-CSRFToken":\s*")[^"]+"', r'\1TOKEN"', html)
    return html.replace(email, "EMAIL")


def test_throttled_answers_are_the_same_for_known_and_unknown_addresses(clock, hash_calls):
    known = make_user("someone.real@example.com").email
    unknown = "nobody.at.all@example.com"
    pages = {}
    for email in (known, unknown):
        fail_from_many(email, 5, start=0 if email == known else 10)
        hash_calls.clear()
        response = attempt(email, ip=ip(40))
        assert sum(hash_calls.values()) == 0
        pages[email] = (response.status_code, sorted(response.cookies), _normalise(text(response), email))
    assert pages[known] == pages[unknown]
    assert pages[known][0] == 429 and THROTTLED in pages[known][2]


def test_allowed_guesses_cost_the_same_hashing_for_known_and_unknown(hash_calls):
    known = make_user().email
    work = {}
    for email in (known, "not.registered@example.com"):
        hash_calls.clear()
        attempt(email, ip=ip(7))
        work[email] = sum(hash_calls.values())
    assert work[known] == work["not.registered@example.com"] == 1


def test_unknown_addresses_reach_the_same_cap_message():
    unknown = "ghost@example.com"
    cache.set(f"bf:a:{throttle.email_key(unknown)}:f", 100, 3600)
    assert DISABLED in text(attempt(unknown, ip=ip(1)))


# -- the event log is not flooded -------------------------------------------------------


def test_a_flood_of_failures_is_sampled_in_the_event_log(clock):
    user = make_user()
    for n in range(8):
        clock.advance(throttle.MAX_DELAY)  # let every guess through to the password check
        attempt(user.email, ip=ip(n))
    fails = SecurityEvent.objects.filter(action=EventAction.AUTHN_LOGIN_FAIL, target=f"user:{user.pk}")
    assert fails.count() == 1  # the first in the minute (the event window is real time)
    locks = SecurityEvent.objects.filter(action=EventAction.AUTHN_LOGIN_LOCK, target=f"user:{user.pk}")
    assert locks.count() == 1  # once per scope per ten minutes
    assert AccountState.objects.get(user=user).consecutive_failures == 8


def test_skipped_failures_are_counted_in_the_next_event(monkeypatch):
    email = "counted@example.com"
    assert throttle.sample_failure_event(email) == 0
    assert throttle.sample_failure_event(email) is None
    assert throttle.sample_failure_event(email) is None
    cache.delete(f"bf:ev:{throttle.email_key(email)}")  # the minute is over
    assert throttle.sample_failure_event(email) == 2


def test_the_plain_sql_lookup_names_the_right_tables_and_ignores_case():
    from vouch.accounts.models import User

    assert User._meta.db_table == "accounts_user" and AccountState._meta.db_table == "guard_accountstate"
    user = make_user("Mixed.Case@Example.com")
    AccountState.objects.create(user=user, consecutive_failures=7)
    assert throttle._lookup("  mixed.case@EXAMPLE.com ") == (user.pk, 7, False, 0.0)
    assert throttle._lookup("someone.else@example.com") == (None, 0, False, 0.0)
