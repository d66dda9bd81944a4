"""Delivering webhooks: signatures, order, retries, Retry-After, 410, disabling after
days, and nothing lost to a crash. A real HTTPS receiver, the real task worker."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone
from freezegun import freeze_time
from standardwebhooks.webhooks import WebhookVerificationError

from tests.references.jobs_helpers import run_due
from tests.references.test_candidate_pages import complete, decline
from tests.references.workflow import REFEREES, REQUEST, make_request, nominate
from tests.webhooks.helpers import add_endpoint, deliveries, event, reload, verified
from tests.webhooks.receiver import Answer
from vouch.core.context import company_context
from vouch.references.requests import flows as request_flows
from vouch.webhooks import delivery as sending
from vouch.webhooks import services
from vouch.webhooks.models import DeliveryStatus, Endpoint

pytestmark = pytest.mark.django_db

PERSONAL = [REQUEST["name"], REQUEST["email"], REQUEST["phone"], REQUEST["role"]] + [
    value for referee in REFEREES[:3] for value in (referee["name"], referee["email"], referee["organisation"])
]


def test_a_whole_check_reaches_the_receiver_signed_in_order_and_thin(company, owner, receiver):
    endpoint, secret = add_endpoint(company, receiver)
    reference_request, _ = make_request(company, owner.user)
    first, _ = nominate(company, reference_request, REFEREES[0])
    second, _ = nominate(company, reference_request, REFEREES[1])
    decline(company, second)
    third, _ = nominate(company, reference_request, REFEREES[2], replacing=second)
    complete(company, first)
    complete(company, third)
    run_due(timezone.now())

    payloads = [verified(item, secret) for item in receiver.received]
    assert [p["type"] for p in payloads] == [
        "request.created",
        "candidate.nominated",
        "candidate.nominated",
        "reference.declined",
        "candidate.nominated",
        "reference.completed",
        "reference.completed",
        "request.completed",
    ]
    assert {p["data"]["request_id"] for p in payloads} == {str(reference_request.pk)}
    assert payloads[3]["data"]["reference_id"] == str(second.pk)
    assert payloads[-1]["data"]["status"] == "completed"
    assert payloads[-1]["data"]["links"]["report"].startswith("https://")
    assert payloads[0]["data"]["links"]["request"].endswith(f"/requests/{reference_request.pk}/")
    # Thin: no name, address, phone, role or organisation anywhere in what was sent.
    raw = b"".join(item.body for item in receiver.received).decode()
    for value in PERSONAL:
        assert value not in raw, value
    # Each message has its own id; the log says delivered.
    assert len({item.headers["webhook-id"] for item in receiver.received}) == 8
    assert {row.status for row in deliveries(company, endpoint)} == {DeliveryStatus.DELIVERED}


def test_a_tampered_body_or_another_secret_fails_verification(company, owner, receiver):
    endpoint, secret = add_endpoint(company, receiver)
    event(company)
    run_due(timezone.now())
    item = receiver.received[0]
    item.body = item.body.replace(b"awaiting_candidate", b"completed")
    with pytest.raises(WebhookVerificationError):
        verified(item, secret)
    with pytest.raises(WebhookVerificationError):
        verified(receiver.received[0], services.new_secret())


def test_only_the_chosen_event_types_and_enabled_endpoints_are_sent(company, owner, receiver):
    add_endpoint(company, receiver, types=["request.cancelled"], path="/cancelled")
    off, _ = add_endpoint(company, receiver, path="/off")
    with company_context(company):
        services.set_enabled(off, False)
    reference_request, _ = make_request(company, owner.user)
    with company_context(company):
        request_flows.cancel_request(reference_request, actor=owner.user, reason="Role filled")
    run_due(timezone.now())
    assert [(item.path, json.loads(item.body)["type"]) for item in receiver.received] == [
        ("/cancelled", "request.cancelled")
    ]


def test_rotation_signs_with_both_secrets_during_the_overlap(company, owner, receiver):
    endpoint, old = add_endpoint(company, receiver)
    with company_context(company):
        new = services.rotate_secret(endpoint)
    event(company)
    run_due(timezone.now())
    item = receiver.received[0]
    assert len(item.headers["webhook-signature"].split(" ")) == 2
    verified(item, old)
    verified(item, new)
    # After the overlap only the new secret signs.
    later = timezone.now() + services.ROTATION_OVERLAP + timedelta(minutes=1)
    event(company)
    run_due(later)
    item = receiver.received[1]
    assert len(item.headers["webhook-signature"].split(" ")) == 1


def test_backoff_is_exponential_with_full_jitter_within_the_cap():
    rng = random.Random(7)
    for attempts in range(1, 30):
        ceiling = min(sending.CAP_SECONDS, sending.BASE_SECONDS * 2**attempts)
        waits = [sending.backoff(attempts, rng=rng).total_seconds() for _ in range(200)]
        assert all(1.0 <= wait <= ceiling for wait in waits)
        assert max(waits) > ceiling / 2  # spread over the range, not a fixed wait
    # Waiting the ceiling every time, the tries still fit about three days many times over.
    assert sum(min(sending.CAP_SECONDS, sending.BASE_SECONDS * 2**n) for n in range(1, 12)) < 3 * 86400


def test_failures_are_retried_then_delivered(company, owner, receiver):
    endpoint, secret = add_endpoint(company, receiver)
    receiver.script(Answer(status=500), Answer(status=503))
    event(company)
    start = timezone.now()
    run_due(start)
    (row,) = deliveries(company)
    assert (row.status, row.attempts, row.response_code) == (DeliveryStatus.PENDING, 1, 500)
    assert timedelta(seconds=1) <= row.next_attempt_at - row.last_attempt_at <= timedelta(seconds=61)
    run_due(row.next_attempt_at + timedelta(seconds=1))
    row = reload(company, row)
    assert (row.attempts, row.response_code) == (2, 503)
    assert row.next_attempt_at - row.last_attempt_at <= timedelta(seconds=121)
    run_due(row.next_attempt_at + timedelta(seconds=1))
    row = reload(company, row)
    assert (row.status, row.attempts, row.response_code) == (DeliveryStatus.DELIVERED, 3, 204)
    # Every attempt was the same message, signed afresh.
    assert len({item.headers["webhook-id"] for item in receiver.received}) == 1
    for item in receiver.received:
        verified(item, secret)
    assert reload(company, endpoint).failing_since is None


def test_retry_after_is_honoured(company, owner, receiver):
    add_endpoint(company, receiver)
    receiver.script(Answer(status=429, headers={"Retry-After": "3600"}))
    event(company)
    run_due(timezone.now())
    (row,) = deliveries(company)
    wait = row.next_attempt_at - row.last_attempt_at
    assert timedelta(minutes=59) < wait < timedelta(minutes=61)
    # Not sent before then.
    run_due(row.last_attempt_at + timedelta(minutes=30))
    assert len(receiver.received) == 1
    run_due(row.next_attempt_at + timedelta(seconds=1))
    assert len(receiver.received) == 2


def test_retry_after_as_a_date():
    now = timezone.now()
    header = (now + timedelta(hours=2)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert timedelta(minutes=119) < sending.retry_after(header, now) <= timedelta(hours=2)
    assert sending.retry_after("soon", now) is None
    assert sending.retry_after("99999999", now) == timedelta(seconds=sending.RETRY_AFTER_MAX_SECONDS)


def test_410_gone_disables_the_endpoint_and_tells_the_owners(company, owner, receiver):
    endpoint, _ = add_endpoint(company, receiver)
    receiver.script(Answer(status=410))
    event(company)
    run_due(timezone.now())
    endpoint = reload(company, endpoint)
    assert not endpoint.enabled and "410" in endpoint.disabled_reason
    (row,) = deliveries(company)
    assert (row.status, row.response_code) == (DeliveryStatus.FAILED, 410)
    (message,) = [m for m in mail.outbox if "webhook endpoint" in m.subject]
    assert message.to == [owner.user.email] and endpoint.url in message.body
    # Nothing more is sent to it.
    event(company)
    run_due(timezone.now())
    assert len(receiver.received) == 1


def test_an_endpoint_failing_for_three_days_is_disabled(company, owner, receiver):
    endpoint, _ = add_endpoint(company, receiver)
    receiver.default = Answer(status=500)
    event(company)
    start = timezone.now()
    moment = start
    for _ in range(100):
        run_due(moment)
        (row,) = deliveries(company)
        if row.status != DeliveryStatus.PENDING:
            break
        moment = row.next_attempt_at + timedelta(seconds=1)
    assert row.status == DeliveryStatus.FAILED
    assert row.attempts >= 10
    assert timedelta(days=2) < row.last_attempt_at - start <= timedelta(days=3)
    endpoint = reload(company, endpoint)
    assert not endpoint.enabled and "three days" in endpoint.disabled_reason
    assert [m.to for m in mail.outbox if "webhook endpoint" in m.subject] == [[owner.user.email]]


def test_a_crash_between_attempts_loses_nothing(company, owner, receiver):
    """The task of the next attempt is lost (a worker killed, a queue emptied): the
    delivery stays pending and the background round queues it again."""
    from django_tasks_db.models import DBTaskResult

    endpoint, secret = add_endpoint(company, receiver)
    receiver.script(Answer(status=500))
    event(company)
    run_due(timezone.now())
    DBTaskResult.objects.filter(status="READY").delete()
    (row,) = deliveries(company)
    assert row.status == DeliveryStatus.PENDING
    later = row.next_attempt_at + sending.OVERDUE + timedelta(seconds=1)
    assert sending.sweep_company(company, now=later) == 1
    run_due(later)
    row = reload(company, row)
    assert row.status == DeliveryStatus.DELIVERED
    with freeze_time(later):  # the receiver checks the signature's time against its clock
        assert verified(receiver.received[-1], secret)["type"] == "request.created"


def test_a_dead_senders_claim_lapses(company, owner, receiver):
    add_endpoint(company, receiver)
    event(company)
    (row,) = deliveries(company)
    now = timezone.now()
    with company_context(company):
        assert sending._claim(row.pk, now) is not None  # a sender claimed it, then died
        assert sending.attempt(row.pk, now=now) == "not pending or claimed"
    later = now + sending.LEASE + timedelta(seconds=1)
    with company_context(company):
        assert sending.attempt(row.pk, now=later) == "delivered"


def test_replay_sends_the_same_message_again(company, owner, receiver):
    endpoint, secret = add_endpoint(company, receiver)
    event(company)
    run_due(timezone.now())
    (row,) = deliveries(company)
    with company_context(company):
        services.replay(row)
    run_due(timezone.now())
    assert len(receiver.received) == 2
    assert receiver.received[0].headers["webhook-id"] == receiver.received[1].headers["webhook-id"]
    assert reload(company, row).attempts == 2


def test_a_refused_address_is_logged_not_sent(company, owner, receiver, settings):
    endpoint, _ = add_endpoint(company, receiver)
    settings.VOUCH_WEBHOOKS_ALLOW_NETWORKS = []
    event(company)
    run_due(timezone.now())
    (row,) = deliveries(company)
    assert row.status == DeliveryStatus.PENDING and row.error.startswith("Refused")
    assert receiver.received == []
    # The endpoint stays enabled: a name's address may become public again.
    with company_context(company):
        assert Endpoint.objects.get(pk=endpoint.pk).enabled


def test_the_owners_email_reads_right_with_awkward_names(owner, receiver, db):
    from tests.conftest import make_company, make_user

    person = make_user(name="Siobhán O'Brien")
    awkward = make_company("Smith & Jones <Recrutement> — 採用", owner=person)
    endpoint, _ = add_endpoint(awkward, receiver)
    with company_context(awkward):
        services.update_endpoint(endpoint, description="O'Brien & Co's ATS")
    receiver.script(Answer(status=410))
    event(awkward)
    run_due(timezone.now())
    (message,) = [m for m in mail.outbox if "webhook endpoint" in m.subject]
    assert message.subject.endswith("A webhook endpoint of Smith & Jones <Recrutement> — 採用 was disabled")
    assert "Hello Siobhán O'Brien," in message.body and "O'Brien & Co's ATS" in message.body
    html = message.alternatives[0][0]
    assert "Smith &amp; Jones &lt;Recrutement&gt; — 採用" in html and "<Recrutement>" not in html


def test_a_burst_of_events_is_one_round_sent_in_order(company, owner, receiver):
    """Events that arrive while a round is queued add no task: the round sends them all,
    oldest first; an event after the round started queues the next one."""
    from django_tasks_db.models import DBTaskResult

    endpoint, secret = add_endpoint(company, receiver)
    ids = [f"0b5b5a43-6b0a-4b6a-9d1c-5c1f1e2d3a4{n}" for n in range(5)]
    for request_id in ids:
        event(company, request_id=request_id)
    waiting = DBTaskResult.objects.filter(status="READY")
    assert [task.task_path for task in waiting] == ["vouch.webhooks.delivery.deliver_due"]
    run_due(timezone.now())
    assert [verified(item, secret)["data"]["request_id"] for item in receiver.received] == ids
    assert {row.status for row in deliveries(company, endpoint)} == {DeliveryStatus.DELIVERED}
    event(company, request_id=ids[0])
    assert DBTaskResult.objects.filter(status="READY", task_path__endswith=".deliver_due").count() == 1


def test_a_round_leaves_a_claimed_delivery_to_its_sender_and_resends_it_when_the_claim_lapses(company, owner, receiver):
    """A sender killed after sending but before recording: its claim lapses, the next
    round sends the delivery again with the same webhook-id (at least once)."""
    endpoint, secret = add_endpoint(company, receiver)
    event(company)
    (row,) = deliveries(company)
    now = timezone.now()
    with company_context(company):
        assert sending._claim(row.pk, now) is not None  # the dead sender's
        assert sending.deliver_round(company) == "0 sent"
    assert receiver.received == []
    later = now + sending.LEASE + timedelta(seconds=1)
    with freeze_time(later, tick=True):
        assert sending.deliver_round(company) == "1 sent"
        assert verified(receiver.received[0], secret)["type"] == "request.created"
    assert receiver.received[0].headers["webhook-id"] == row.message_id
    assert reload(company, row).status == DeliveryStatus.DELIVERED


def test_a_round_that_runs_long_queues_the_next_for_the_rest(company, owner, receiver):
    from django_tasks_db.models import DBTaskResult

    add_endpoint(company, receiver)
    for n in range(3):
        event(company, request_id=f"0b5b5a43-6b0a-4b6a-9d1c-5c1f1e2d3a4{n}")
    DBTaskResult.objects.all().delete()
    cache.delete(sending._round_flag(company.pk))  # as a round does when it starts
    assert sending.deliver_round(company, seconds=0) == "1 sent; the rest queued"
    assert len(receiver.received) == 1
    assert DBTaskResult.objects.filter(status="READY", task_path__endswith=".deliver_due").count() == 1
    run_due(timezone.now())
    assert len(receiver.received) == 3


def test_without_the_cache_each_delivery_is_its_own_task(company, owner, receiver, monkeypatch):
    from django_tasks_db.models import DBTaskResult

    class Away:
        def add(self, *args, **kwargs):
            raise ConnectionError("the cache is away")

    add_endpoint(company, receiver)
    add_endpoint(company, receiver, path="/other")
    monkeypatch.setattr(sending, "cache", Away())
    event(company)
    waiting = DBTaskResult.objects.filter(status="READY")
    assert sorted(task.task_path for task in waiting) == ["vouch.webhooks.delivery.deliver"] * 2
    run_due(timezone.now())
    assert len(receiver.received) == 2


def test_a_round_the_queue_refused_leaves_no_flag_behind(company, owner, receiver, monkeypatch):
    """The queue refuses the round: each delivery is queued on its own (refused too here,
    so left to the background round), and the next event queues a round at once."""
    from django_tasks_db.models import DBTaskResult

    add_endpoint(company, receiver)

    class Away:
        def enqueue(self, *args, **kwargs):
            raise ConnectionError("the queue is away")

    with monkeypatch.context() as patched:
        patched.setattr(sending, "deliver_due", Away())
        patched.setattr(sending, "deliver", Away())
        event(company)
    assert not DBTaskResult.objects.exists()
    assert cache.get(sending._round_flag(company.pk)) is None
    event(company)
    assert [task.task_path for task in DBTaskResult.objects.all()] == ["vouch.webhooks.delivery.deliver_due"]
    run_due(timezone.now())
    assert len(receiver.received) == 2
