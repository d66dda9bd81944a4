"""Issue 14, item 2: security events anyone can cause without signing in are sampled,
one per network and kind a minute, and the count of the others is never lost (the next
recorded event or the flush queued with the first carries it)."""

from __future__ import annotations

import secrets

import pytest
from django_tasks_db.models import DBTaskResult

from tests.audit.helpers import events
from vouch.audit import sampling
from vouch.audit.models import EventAction
from vouch.guard import throttle

pytestmark = pytest.mark.django_db

FLOODER = "192.0.2.66"


@pytest.fixture(autouse=True)
def _shield_allows_the_floods(settings):
    # These floods would be blocked by intrusion detection after about ten requests
    # (tests/shield); here the log's sampling of a sustained flood is what is tested.
    settings.VOUCH_SHIELD_ALLOW = ["192.0.2.0/24", "198.51.100.0/24", "2001:db8::/32"]


@pytest.fixture
def clock(monkeypatch):
    # At the start of a minute, so a test's requests all fall in one.
    moment = [(int(sampling.now() // sampling.INTERVAL) + 1) * sampling.INTERVAL + 1.0]
    monkeypatch.setattr(sampling, "now", lambda: moment[0])
    monkeypatch.setattr(throttle, "now", lambda: moment[0])
    return moment


def _forged_posts(csrf_client, count: int, address: str = FLOODER) -> None:
    for _ in range(count):
        response = csrf_client.post("/accounts/login/", {"login": "a@example.com"}, REMOTE_ADDR=address)
        assert response.status_code == 403


def _csrf_events():
    """The CSRF refusals recorded, and the flush events standing for unrecorded ones."""
    rows = events(EventAction.AUTHZ_FAIL)
    return [e for e in rows if e.details.get("reason") == "csrf" or e.details.get("kind") == "authz_fail:csrf"]


def _stands_for(rows) -> int:
    """How many refusals the recorded events stand for: each itself (a flush event only
    for its count) plus the refusals it says were not recorded."""
    return sum(row.details.get("not_recorded", 0) + (0 if row.target.startswith("network:") else 1) for row in rows)


def test_csrf_failures_from_one_network_are_one_event_a_minute_with_the_count_carried(csrf_client, clock):
    _forged_posts(csrf_client, 40)
    _forged_posts(csrf_client, 10, address="192.0.2.99")  # another address of the same /24
    (first,) = _csrf_events()
    assert first.ip == FLOODER and "not_recorded" not in first.details
    # Another network is another source: its first refusal is recorded.
    _forged_posts(csrf_client, 3, address="198.51.100.7")
    assert len(_csrf_events()) == 2
    # Next minute: one more event; two minutes on, the first minute's 49 are carried.
    clock[0] += sampling.INTERVAL
    _forged_posts(csrf_client, 5)
    assert [e.details.get("not_recorded") for e in _csrf_events()[2:]] == [None]
    clock[0] += sampling.INTERVAL
    _forged_posts(csrf_client, 1)
    carried = _csrf_events()[3]
    assert carried.details["not_recorded"] == 49
    # The flood stops. The minute before last has nobody to carry its 4: its flush does.
    clock[0] += 10 * sampling.INTERVAL
    flood_network = [e for e in _csrf_events() if e.ip and e.ip.startswith("192.0.2.")]
    kind, source = "authz_fail:csrf", "192.0.2.0/24"
    windows = sorted({int(w) for w in range(int(clock[0] // 60) - 13, int(clock[0] // 60))})
    for window in windows:
        sampling.flush(EventAction.AUTHZ_FAIL, kind, source, window)
        sampling.flush(EventAction.AUTHZ_FAIL, kind, source, window)  # taken once only
    summaries = _csrf_events()[4:]
    assert [(e.target, e.details["not_recorded"], e.details["network"]) for e in summaries] == [
        ("network:192.0.2.0/24", 4, "192.0.2.0/24")
    ]
    assert summaries[0].ip is None
    # Every refusal accounted for, none twice.
    assert _stands_for(flood_network + summaries) == 40 + 10 + 5 + 1
    # Each recorded event queued its flush in the task queue, for once its minute settles.
    queued = DBTaskResult.objects.filter(task_path="vouch.audit.sampling.flush_sampled")
    assert queued.count() == 4  # 3 minutes of the flood's network, 1 of the other
    assert all(row.run_after is not None for row in queued)


def test_the_flush_task_waits_for_its_minute_to_settle(csrf_client, clock):
    _forged_posts(csrf_client, 7)
    window = int(clock[0] // sampling.INTERVAL)
    args = (EventAction.AUTHZ_FAIL, "authz_fail:csrf", "192.0.2.0/24", window)
    # Run too early (a worker ahead of time): nothing taken, the task queued again.
    assert sampling.flush_sampled.call(*args) == 0
    assert DBTaskResult.objects.filter(task_path="vouch.audit.sampling.flush_sampled").count() == 2
    clock[0] += sampling.SETTLE_WINDOWS * sampling.INTERVAL
    assert sampling.flush_sampled.call(*args) == 6
    assert sampling.flush_sampled.call(*args) == 0
    assert _stands_for(_csrf_events()) == 7


def test_refused_links_from_one_network_are_sampled(client, clock):
    for n in range(throttle.CODE_ADDRESS.free - 1):  # under the address's limit: each a real lookup
        response = client.get(f"/r/{secrets.token_urlsafe(32)}/", REMOTE_ADDR=f"2001:db8:9:9::{n + 1:x}")
        assert response.status_code == 404
    (event,) = events(EventAction.LINK_INVALID)
    assert event.details["reason"] == "unknown"


def test_a_signed_in_members_policy_refusal_is_always_recorded(client, company, clock):
    """A member is accountable: their refusals are each recorded, not sampled."""
    from vouch.audit.events import record_refusal

    member = company.memberships.order_by("pk").first().user
    from django.test import RequestFactory

    for _ in range(3):
        request = RequestFactory().get("/dashboard/", REMOTE_ADDR=FLOODER)
        request.user = member
        record_refusal(request, reason="policy")
    assert len(events(EventAction.AUTHZ_FAIL, details__reason="policy")) == 3


def test_failed_sign_ins_at_many_accounts_from_one_network_are_sampled(clock):
    """Each guess at a new account from a new address of one /64: once one event per
    account per minute, now also one per network per minute, with the count kept."""
    from tests.guard.throttle_helpers import attempt

    guesses = 12
    for n in range(guesses):
        response = attempt(f"target{n}@example.com", ip=f"2001:db8:66:1::{n + 1:x}")
        assert response.status_code == 200
    (first,) = events(EventAction.AUTHN_LOGIN_FAIL)
    assert "not_recorded" not in first.details
    clock[0] += sampling.SETTLE_WINDOWS * sampling.INTERVAL
    attempt("target-late@example.com", ip="2001:db8:66:1::ff")
    rows = events(EventAction.AUTHN_LOGIN_FAIL)
    assert len(rows) == 2 and rows[1].details["not_recorded"] == guesses - 1
    assert _stands_for(rows) == guesses + 1


@pytest.fixture
def heard():
    from vouch.audit import observers

    seen: list = []
    observers.observe(seen.append)
    yield seen
    observers.forget(seen.append)


def test_observers_hear_every_occurrence_recorded_or_only_counted(csrf_client, clock, heard):
    """Intrusion detection counts each refusal, while the log keeps one event a minute."""
    _forged_posts(csrf_client, 12)
    csrf = [o for o in heard if o.action == EventAction.AUTHZ_FAIL and o.details.get("reason") == "csrf"]
    assert len(csrf) == 12
    assert len(_csrf_events()) == 1
    assert {o.request.META["REMOTE_ADDR"] for o in csrf} == {FLOODER}
    assert all(o.outcome == "blocked" and o.target.startswith("route:") for o in csrf)


def test_a_failing_observer_does_not_stop_the_event_or_the_others(client, clock, heard):
    from vouch.audit import observers
    from vouch.audit.events import record

    def broken(occurrence):
        raise RuntimeError("observer bug")

    observers.observe(broken)
    try:
        event = record(EventAction.DATA_EXPORT, target="candidates")
    finally:
        observers.forget(broken)
    assert events(EventAction.DATA_EXPORT) == [event]
    assert [o.action for o in heard] == [EventAction.DATA_EXPORT]
