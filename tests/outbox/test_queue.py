"""Account mail is never lost (vouch.outbox.queue): sent at once; when the mail server is
away, kept sealed in the control database and sent by the worker's round once it is back,
once; given up after three days; a purged company's kept mail goes with it."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.test import override_settings
from django.utils import timezone

from tests.conftest import make_user
from tests.outbox.test_smtp_tls import (  # noqa: F401 (fixtures)
    certificate,
    free_port,
    smtp_settings,
    starttls_server,
)
from vouch.guard import notifications
from vouch.outbox import queue, sealing
from vouch.outbox.backends import company_headers
from vouch.outbox.models import QueuedMail

pytestmark = pytest.mark.django_db

NAME = "Siobhán O'Brien-Æsir 田中"


def message(to: str = "siobhan@example.com", company=None) -> EmailMultiAlternatives:
    text = f"Hello {NAME}, reset here: https://vouch.example/accounts/password/reset/key/abc-123/"
    msg = EmailMultiAlternatives(
        "[Vouch] Your password was changed", text, "vouch@example.com", [to], headers=company_headers(company)
    )
    msg.attach_alternative(f"<p>Hello {NAME} &amp; Smith</p>", "text/html")
    return msg


def down(**extra) -> dict:
    """SMTP settings pointing at a port nobody listens on: the mail server is away."""
    return smtp_settings(free_port(), **extra)


def received(server) -> list[email.message.EmailMessage]:
    # As bytes: the parts are 8-bit UTF-8, which a parser given text would escape.
    return [
        email.message_from_bytes(m["content"].encode(), policy=email.policy.default) for m in server.collector.messages
    ]


def test_sent_at_once_when_the_server_is_there_and_nothing_kept():
    assert queue.send(message(), "password_changed") is True
    assert len(mail.outbox) == 1 and mail.outbox[0].subject == "[Vouch] Your password was changed"
    assert not QueuedMail.objects.exists()


def test_kept_sealed_when_the_server_is_away_then_sent_once_by_the_worker(starttls_server, certificate):  # noqa: F811
    with override_settings(**down()):
        assert queue.send(message(), "password_changed") is False
    (row,) = QueuedMail.objects.all()
    assert row.attempts == 1 and row.sent_at is None and row.last_error.startswith("ConnectionRefusedError")
    # Sealed at rest: neither the address, the name nor the live link is in the row.
    stored = bytes(row.sealed)
    assert sealing.is_sealed(stored)
    for secret in (b"siobhan@example.com", b"O'Brien", b"abc-123", b"password was changed"):
        assert secret not in stored
    # Not due yet: the worker's round leaves it.
    with override_settings(**smtp_settings(starttls_server.port, certificate[0])):
        assert queue.drain() == 0
        assert starttls_server.collector.messages == []
        later = timezone.now() + timedelta(minutes=2)
        assert queue.drain(now=later) == 1
        assert queue.drain(now=later + timedelta(hours=1)) == 0  # once
    (sent,) = received(starttls_server)
    assert sent["To"] == "siobhan@example.com" and "Your password was changed" in sent["Subject"]
    assert NAME in sent.get_body(preferencelist=("plain",)).get_content()
    assert "O'Brien" in sent.get_body(preferencelist=("html",)).get_content()
    assert "X-Vouch" not in sent.as_string()  # Vouch's own bookkeeping stays home
    row.refresh_from_db()
    assert row.sent_at is not None and row.attempts == 2 and row.last_error == ""


def test_the_same_message_id_on_every_try(starttls_server, certificate):  # noqa: F811
    outgoing = message()
    with override_settings(**down()):
        queue.send(outgoing, "password_changed")
    first_id = outgoing.extra_headers["Message-ID"]
    with override_settings(**smtp_settings(starttls_server.port, certificate[0])):
        queue.drain(now=timezone.now() + timedelta(minutes=2))
    (sent,) = received(starttls_server)
    assert sent["Message-ID"] == first_id


def test_retries_back_off_and_give_up_after_three_days():
    with override_settings(**down()):
        queue.send(message(), "password_changed")
        row = QueuedMail.objects.get()
        start = row.created_at
        waits = []
        moment = row.next_attempt_at
        while moment - start < queue.GIVE_UP_AFTER:
            assert queue.drain(now=moment) == 0
            row.refresh_from_db()
            if row.gave_up_at:
                break
            waits.append(row.next_attempt_at - moment)
            moment = row.next_attempt_at
        assert queue.drain(now=start + queue.GIVE_UP_AFTER + timedelta(hours=6)) == 0
    row.refresh_from_db()
    assert row.gave_up_at is not None and row.sent_at is None
    assert waits[:4] == [timedelta(minutes=2), timedelta(minutes=4), timedelta(minutes=8), timedelta(minutes=16)]
    assert max(waits) == timedelta(hours=6)
    assert queue.waiting() == {"waiting": 0, "given_up": 1}


def test_two_senders_never_both_send_one_row():
    with override_settings(**down()):
        queue.send(message(), "password_changed")
    row = QueuedMail.objects.get()
    later = timezone.now() + timedelta(minutes=2)
    first = queue._claim(row.pk, later)
    assert first is not None
    assert queue._claim(row.pk, later) is None  # the other sender loses while the lease holds
    assert queue._claim(row.pk, later + queue.LEASE + timedelta(seconds=1)) is not None  # a dead holder's lease ends


def test_a_sealed_message_moved_to_another_row_does_not_open(starttls_server, certificate):  # noqa: F811
    with override_settings(**down()):
        queue.send(message("first@example.com"), "a")
        queue.send(message("second@example.com"), "b")
    first, second = QueuedMail.objects.order_by("kind")
    QueuedMail.objects.filter(pk=second.pk).update(sealed=bytes(first.sealed))
    with override_settings(**smtp_settings(starttls_server.port, certificate[0])):
        assert queue.drain(now=timezone.now() + timedelta(minutes=2)) == 1
    assert [m["To"] for m in received(starttls_server)] == ["first@example.com"]
    second.refresh_from_db()
    assert second.sent_at is None and second.last_error == "DecryptionError"


def test_a_change_rolled_back_keeps_no_mail():
    from django.db import transaction

    with override_settings(**down()), pytest.raises(RuntimeError), transaction.atomic():
        queue.send(message(), "password_changed")
        raise RuntimeError("the change failed")
    assert not QueuedMail.objects.exists()


def test_a_purged_companys_kept_mail_goes_with_it():
    with override_settings(**down()):
        queue.send(message(company="11111111-1111-1111-1111-111111111111"), "a")
        queue.send(message(), "b")
    assert queue.remove_company("11111111-1111-1111-1111-111111111111") == 1
    assert list(QueuedMail.objects.values_list("kind", flat=True)) == ["b"]


def test_an_account_email_during_a_mail_outage_is_sent_when_mail_is_back(starttls_server, certificate):  # noqa: F811
    user = make_user()
    with override_settings(**down()):
        assert notifications.send(notifications.PASSWORD_CHANGED, user) is True  # kept to send
    assert QueuedMail.objects.get().kind == "password_changed"
    with override_settings(**smtp_settings(starttls_server.port, certificate[0])):
        assert queue.drain(now=timezone.now() + timedelta(minutes=2)) == 1
    (sent,) = received(starttls_server)
    assert sent["To"] == user.email and "password" in str(sent["Subject"]).lower()


def test_sent_and_given_up_rows_are_purged_after_30_days():
    with override_settings(**down()):
        queue.send(message(), "a")
    QueuedMail.objects.update(sent_at=timezone.now())
    assert queue.purge(now=timezone.now() + timedelta(days=29)) == 0
    assert queue.purge(now=timezone.now() + timedelta(days=31)) == 1
