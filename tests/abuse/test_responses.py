"""P18 end to end, through the real pages: a bulk exporter must re-authenticate, a bulk
eraser is suspended and cannot sign in, a mass inviter is throttled, and the owners get
exactly one email per incident (read from the outbox) that says what happened."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.core import mail
from django.urls import reverse

from tests.abuse.helpers import occur, set_threshold
from tests.accounts.helpers import mark_reauthenticated
from tests.conftest import PASSWORD, HTTPSClient, add_member, make_company, make_user
from tests.guard.b_helpers import reauthenticate, sign_in
from tests.references.workflow import make_request
from vouch.abuse import rules, throttle
from vouch.abuse.responses import SUBJECT
from vouch.accounts.policy import Role
from vouch.audit.models import EventAction, Outcome, SecurityEvent
from vouch.core import metrics
from vouch.guard import suspension

pytestmark = pytest.mark.django_db


@pytest.fixture
def obrien():
    """A company with an awkward name, its owner and an admin (real passwords)."""
    owner = make_user("owner@obrien.example", name="Orla O'Brien")
    company = make_company("O'Brien & Smith", owner=owner)
    admin = add_member(company, Role.ADMIN, make_user("admin@obrien.example", name="Ada Admin"))
    return company, owner, admin


def signed_in(membership_user) -> HTTPSClient:
    client = HTTPSClient()
    client.force_login(membership_user)
    mark_reauthenticated(client)
    return client


def candidates(company, actor, count: int) -> list:
    return [
        make_request(company, actor, name=f"Casey Candidate{n}", email=f"casey{n}@example.org")[0].candidate_id
        for n in range(count)
    ]


def abuse_events(company) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(action=EventAction.ABUSE_DETECTED, company_id=company.pk))


def test_bulk_exports_ask_for_the_password_before_the_next_export(obrien, django_capture_on_commit_callbacks):
    company, owner, admin = obrien
    set_threshold(company, rules.BULK_EXPORTS, 3)
    ids = candidates(company, admin.user, 4)
    client = signed_in(admin.user)
    other = signed_in(admin.user)  # a second session of the same account (say, a stolen one)
    with django_capture_on_commit_callbacks(execute=True):
        for candidate_id in ids[:3]:
            assert client.post(reverse("candidate_export", args=[candidate_id])).status_code == 200
    (event,) = abuse_events(company)
    assert event.details["response"] == "reauth" and event.outcome == Outcome.BLOCKED
    assert event.target == f"user:{admin.user.pk}" and event.actor_id == admin.user.pk
    # The session had confirmed its password a moment ago: not enough any more.
    refused = client.post(reverse("candidate_export", args=[ids[3]]))
    assert refused.status_code == 302 and "reauthenticate" in refused["Location"]
    # The other session is asked too.
    assert other.post(reverse("candidate_export", args=[ids[3]])).status_code == 302
    # Entering the password lets this session go on; the other is still asked.
    reauthenticate(client)
    assert client.post(reverse("candidate_export", args=[ids[3]])).status_code == 200
    assert other.post(reverse("candidate_export", args=[ids[3]])).status_code == 302


def test_bulk_erasures_suspend_the_account(obrien, django_capture_on_commit_callbacks):
    company, owner, admin = obrien
    set_threshold(company, rules.BULK_ERASURES, 3)
    ids = candidates(company, admin.user, 3)
    client = signed_in(admin.user)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        for n, candidate_id in enumerate(ids):
            erased = client.post(
                reverse("candidate_erase", args=[candidate_id]), {"confirm_name": f"Casey Candidate{n}"}
            )
            assert erased.status_code == 302
    assert suspension.is_suspended(admin.user)
    (event,) = abuse_events(company)
    assert event.details == {
        "rule": "bulk_erasures",
        "count": 3,
        "threshold": 3,
        "window": "one hour",
        "baseline": None,
        "response": "suspend",
    }
    # Its sessions ended; the right password gets the suspended page, not a session.
    assert client.get(reverse("candidates")).status_code == 302
    refused = sign_in(HTTPSClient(), admin.user.email, PASSWORD)
    assert refused.status_code == 403 and "This account is suspended" in refused.content.decode()
    assert len([m for m in mail.outbox if m.subject.endswith(SUBJECT)]) == 1


def test_mass_invitations_throttle_the_account(obrien, django_capture_on_commit_callbacks):
    company, owner, admin = obrien
    set_threshold(company, rules.MASS_INVITATIONS, 5)
    client = signed_in(admin.user)
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(5):
            sent = client.post(
                reverse("member_invite"), {"email": f"new{n}@example.org", "role": str(int(Role.VIEWER))}
            )
            assert sent.status_code == 302
    assert throttle.seconds_left(admin.user.pk) > 0
    counted = metrics.throttled_total.labels(route_class="page", scope="account")._value.get()
    # Posted as a browser posts a form (the test client's default is multipart: an upload).
    form = urlencode({"email": "one-more@example.org", "role": str(int(Role.VIEWER))})
    refused = client.post(reverse("member_invite"), form, content_type="application/x-www-form-urlencoded")
    assert refused.status_code == 429, refused.status_code
    assert metrics.throttled_total.labels(route_class="page", scope="account")._value.get() == counted + 1
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "paused" in refused.content.decode()
    assert client.get(reverse("members")).status_code == 200  # reading goes on
    assert client.post(reverse("account_logout")).status_code == 302  # and signing out
    # Other members of the company are not throttled.
    invite = {"email": "x@example.org", "role": str(int(Role.VIEWER))}
    assert signed_in(owner).post(reverse("member_invite"), invite).status_code == 302


def test_owners_get_one_email_per_incident_in_plain_words(obrien, django_capture_on_commit_callbacks):
    company, owner, admin = obrien
    second_owner = add_member(company, Role.OWNER, make_user("second@obrien.example"))
    rule = rules.REQUEST_BURST
    set_threshold(company, rule, 10)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        occur(rule, company.pk, admin.user.pk, times=60)  # far beyond: still one incident
    (message,) = [m for m in mail.outbox if m.subject.endswith(SUBJECT)]
    assert sorted(message.to) == sorted([owner.email, second_owner.user.email])
    assert admin.user.email not in message.to
    body = message.body
    assert (
        "Ada Admin (admin@obrien.example), a member of O'Brien & Smith, made 10 new reference requests in one hour"
        in body
    )
    assert "The limit your company has set is 10." in body
    assert "&amp;" not in body and "&#x27;" not in body  # plain text is not HTML-escaped
    assert "/security/events/?action=abuse_detected&date_from=" in body
    (alternative, kind) = message.alternatives[0]
    assert kind == "text/html" and "O&#x27;Brien &amp; Smith" in alternative
    # The link opens the company's events page, filtered to the incident.
    review = body.split("https://", 1)[1].split()[0]
    page = signed_in(owner).get("/" + review.split("/", 1)[1])
    assert page.status_code == 200 and "Unusual use detected" in page.content.decode()
    # Another rule is another incident: another email.
    with django_capture_on_commit_callbacks(execute=True):
        occur(rules.MASS_INVITATIONS, company.pk, admin.user.pk, times=rules.MASS_INVITATIONS.default)
    assert len([m for m in mail.outbox if m.subject.endswith(SUBJECT)]) == 2
