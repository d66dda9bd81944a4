"""What the sign-in throttle writes to the operator's log (issue 14, item 17): nothing at
info for an ordinary successful sign-in; a line for each failure, and a warning when a
hold starts."""

from __future__ import annotations

import json

import pytest

from tests.conftest import make_user
from tests.guard import throttle_helpers
from tests.guard.throttle_helpers import PASSWORD, THROTTLED, attempt, text

pytestmark = pytest.mark.django_db
clock = throttle_helpers.clock  # fixtures

INFO_AND_ABOVE = ("info", "warning", "error", "critical")


def throttle_lines(stream, levels=INFO_AND_ABOVE) -> list[dict]:
    parsed = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    return [p for p in parsed if p.get("logger", "").startswith("vouch.guard.throttle") and p["level"] in levels]


def test_a_successful_sign_in_logs_nothing_at_info_from_the_throttle(clock, logs):
    user = make_user()
    response = attempt(user.email, PASSWORD)
    assert response.status_code == 302
    assert throttle_lines(logs) == []
    # Still there for whoever turns debug on.
    assert [line["event"] for line in throttle_lines(logs, ("debug",))] == [f"bruteforce password_check user={user.pk}"]


def test_failures_and_a_hold_are_still_logged(clock, logs):
    user = make_user()
    ip = "198.51.100.7"
    for _ in range(5):  # the free failures on the account
        response = attempt(user.email, ip=ip)
        assert response.status_code == 200 and THROTTLED not in text(response)
    failed = [line for line in throttle_lines(logs) if line["event"].startswith("bruteforce password_failed")]
    assert len(failed) == 5 and all(line["level"] == "info" for line in failed)
    holds = [line for line in throttle_lines(logs) if line["event"].startswith("bruteforce hold")]
    assert holds and all(line["level"] == "warning" for line in holds)
    assert any(f"user={user.pk}" in line["event"] and "scope=account" in line["event"] for line in holds)
    assert THROTTLED in text(attempt(user.email, ip="198.51.100.8"))
