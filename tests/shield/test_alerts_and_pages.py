"""Who hears of a block: operators by email (once per incident) and on their page; a
company's owners on its Security events page. Nobody else sees the operators' page."""

from __future__ import annotations

import pytest
from django_tasks_db.models import DBTaskResult

from tests.conftest import add_member
from tests.guard.b_helpers import give_totp
from vouch.accounts.models import Role, User
from vouch.shield import alerts, state

pytestmark = pytest.mark.django_db

SCANNER = "198.51.100.23"


def _scan(client, address=SCANNER):
    for _ in range(3):
        client.get("/.env", REMOTE_ADDR=address)


def test_operators_get_one_email_per_incident_not_per_request_or_escalation(client, clock, mailoutbox):
    User.objects.create_operator("ops@example.com")
    _scan(client)
    _scan(client, "203.0.113.5")
    # The blocks queued one task between them (the rest of the flood queues nothing).
    assert DBTaskResult.objects.filter(task_path="vouch.shield.alerts.send_block_alerts").count() == 1
    assert alerts.send_block_alerts.call() == 2
    [message] = mailoutbox
    assert message.to == ["ops@example.com"]
    assert "2 sources blocked" in message.subject
    assert SCANNER in message.body and "203.0.113.5" in message.body and "/operator/security/" in message.body
    assert alerts.send_block_alerts.call() == 0  # mailed once
    # The block ends and the scanner comes back: a longer block, the same incident, no email.
    clock[0] += 61
    state.table.forget()
    _scan(client)
    assert state.blocks_for(clock[0], (state.ADDRESS, SCANNER)).level == 2
    assert alerts.send_block_alerts.call() == 0
    assert len(mailoutbox) == 1


def test_operators_page_lists_blocks_and_lifts_one(client, clock):
    _scan(client)
    operator = User.objects.create_operator("ops@example.com")
    give_totp(operator)  # operators act only with two-factor (P15)
    staff = client.__class__()
    staff.force_login(operator)
    page = staff.get("/operator/security/", REMOTE_ADDR="192.0.2.1")
    assert page.status_code == 200
    text = page.content.decode()
    assert SCANNER in text and ("Page not found" in text or "scanners probe" in text)
    lifted = staff.post(
        "/operator/security/lift/", {"scope": "address", "source": SCANNER}, REMOTE_ADDR="192.0.2.1", follow=True
    )
    assert "was lifted" in lifted.content.decode()
    assert client.get("/accounts/login/", REMOTE_ADDR=SCANNER).status_code == 200
    # Lifting a block that is not there says so.
    again = staff.post(
        "/operator/security/lift/", {"scope": "address", "source": SCANNER}, REMOTE_ADDR="192.0.2.1", follow=True
    )
    assert "already ended" in again.content.decode()
    bad = staff.post("/operator/security/lift/", {"scope": "planet", "source": "x"}, REMOTE_ADDR="192.0.2.1")
    assert bad.status_code == 302


def test_members_cannot_open_the_operators_page(client, company, owner, clock):
    client.force_login(owner.user)
    assert client.get("/operator/security/").status_code in (403, 404)
    assert client.post("/operator/security/lift/", {"scope": "address", "source": SCANNER}).status_code in (403, 404)


def test_owners_see_the_detections_of_their_members_on_security_events(client, company, owner, clock):
    attacker = add_member(company, Role.RECRUITER)
    client.force_login(attacker.user)
    client.get("/requests/?q=1 UNION SELECT password FROM accounts_user", REMOTE_ADDR=SCANNER)
    owner_client = client.__class__()
    owner_client.force_login(owner.user)
    page = owner_client.get("/security/events/").content.decode()
    assert "Hostile request detected" in page
