"""Workflow mail is recorded in the same transaction as the change that causes it,
sent after the commit, tried again with a growing wait when it cannot be sent, and
sent by one sender only; tasks left running by a dead worker are queued again."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.core import mail
from django.db import router, transaction
from django.test import TestCase, override_settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.references.workflow import REQUEST, make_request
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.references import jobs
from vouch.references.mailing import outgoing
from vouch.references.request_models import OutgoingMail, ReferenceRequest, TimelineEvent
from vouch.references.requests import flows as request_flows

pytestmark = pytest.mark.django_db
CANDIDATE = REQUEST["email"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: connections are refused


def _relay_down():
    return override_settings(
        EMAIL_BACKEND="vouch.outbox.backends.SMTPBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=_closed_port(),
        EMAIL_USE_TLS=False,
        EMAIL_TIMEOUT=5,
    )


def _create(company, actor):
    """A request whose candidate's invitation may not go out (make_request insists)."""
    values = {**REQUEST, "deadline": timezone.now() + timedelta(days=14)}
    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):
        reference_request = request_flows.create_request(actor=actor, **values)
    return reference_request, None


def _rows(company, **filters):
    with company_context(company):
        rows = list(OutgoingMail.objects.filter(**filters).order_by("created_at"))
        for row in rows:
            row.token  # noqa: B018 - opened here, in the company's context
        return rows


def test_a_change_rolled_back_has_no_mail_and_one_committed_has_its_mail_sent(company, members):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    (invitation,) = _rows(company, kind="candidate_invitation")
    assert invitation.sent_at is not None and invitation.token is None  # the raw token is not kept
    mail.outbox.clear()
    # The atomic block finds the company's database through the context: nested.
    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):  # noqa: SIM117
        with pytest.raises(RuntimeError), transaction.atomic(using=router.db_for_write(ReferenceRequest)):
            request_flows.send_candidate_link(ReferenceRequest.objects.get(pk=reference_request.pk))
            assert OutgoingMail.objects.filter(sent_at__isnull=True).count() == 1
            raise RuntimeError("the change fails after the mail was recorded")
    assert len(_rows(company)) == 1 and mail.outbox == []


def test_a_mail_that_cannot_be_sent_is_tried_again_later_and_sent_once(company, members):
    with _relay_down():
        reference_request, _ = _create(company, members[Role.RECRUITER].user)
        (row,) = _rows(company, kind="candidate_invitation")
        assert row.sent_at is None and row.attempts == 1 and row.token
        assert row.next_attempt_at > timezone.now()
        # Not due yet: nothing is tried.
        assert outgoing.drain_company(company) == 0
        later = row.next_attempt_at + timedelta(seconds=1)
        assert outgoing.drain_company(company, now=later) == 0
    (row,) = _rows(company, kind="candidate_invitation")
    assert row.attempts == 2 and row.next_attempt_at >= later + timedelta(minutes=2)
    with company_context(company):  # the recruiter sees the first failure, once
        assert TimelineEvent.objects.filter(request_id=reference_request.pk, kind="email_failed").count() == 1
    # The relay is back: the next round sends it, and only it.
    assert outgoing.drain_company(company, now=row.next_attempt_at) == 1
    assert outgoing.drain_company(company, now=row.next_attempt_at + timedelta(days=1)) == 0
    assert [m.to for m in mail.outbox] == [[CANDIDATE]]
    (row,) = _rows(company, kind="candidate_invitation")
    assert row.sent_at is not None and row.token is None


def test_a_mail_that_never_goes_is_given_up(company, members):
    with _relay_down():
        _create(company, members[Role.RECRUITER].user)
        moment = timezone.now()
        for _ in range(outgoing.MAX_ATTEMPTS):
            moment += timedelta(hours=7)
            outgoing.drain_company(company, now=moment)
    (row,) = _rows(company, kind="candidate_invitation")
    assert row.gave_up_at is not None and row.attempts == outgoing.MAX_ATTEMPTS and row.token is None
    assert outgoing.drain_company(company, now=moment + timedelta(days=1)) == 0


def test_a_mail_is_claimed_by_one_sender_and_a_dead_senders_claim_is_taken_over(company, members):
    with _relay_down():
        _create(company, members[Role.RECRUITER].user)
    (row,) = _rows(company, kind="candidate_invitation")
    now = row.next_attempt_at
    with company_context(company):
        first = outgoing._claim(row.pk, now)
        assert first is not None
        assert outgoing._claim(row.pk, now) is None  # held: a second sender gets nothing
        assert outgoing.drain_company(company, now=now) == 0
        # The first sender died; once its lease lapsed another takes the mail over.
        later = now + outgoing.lease() + timedelta(seconds=1)
        second = outgoing._claim(row.pk, later)
        assert second is not None
        # The dead sender's late marking (it held an older claim) changes nothing.
        assert OutgoingMail.objects.filter(pk=row.pk, claim=first).update(sent_at=later) == 0
    assert outgoing.drain_company(company, now=later + outgoing.lease() + timedelta(seconds=1)) == 1
    assert len([m for m in mail.outbox if CANDIDATE in m.to]) == 1


def test_tasks_left_running_by_a_dead_worker_are_queued_again(company, members):
    dead = jobs.remind_candidate.enqueue(str(company.pk), "00000000-0000-0000-0000-000000000001", 1)
    busy = jobs.remind_candidate.enqueue(str(company.pk), "00000000-0000-0000-0000-000000000002", 1)
    now = timezone.now()
    DBTaskResult.objects.filter(pk=dead.id).update(status="RUNNING", started_at=now - outgoing.lease() - timedelta(1))
    DBTaskResult.objects.filter(pk=busy.id).update(status="RUNNING", started_at=now - timedelta(seconds=5))
    assert jobs.recover_stalled_tasks(now=now) == 1
    assert DBTaskResult.objects.get(pk=dead.id).status == "READY"
    assert DBTaskResult.objects.get(pk=busy.id).status == "RUNNING"


def test_a_mail_about_a_request_deleted_meanwhile_is_dropped_not_retried(company, members):
    with _relay_down():
        reference_request, _ = _create(company, members[Role.RECRUITER].user)
    with company_context(company):
        ReferenceRequest.objects.filter(pk=reference_request.pk).delete()
    (row,) = _rows(company, kind="candidate_invitation")
    assert outgoing.drain_company(company, now=row.next_attempt_at) == 0
    (row,) = _rows(company, kind="candidate_invitation")
    assert row.gave_up_at is not None and row.token is None
