"""Every email Vouch sends, with names holding ' & < > ", accents and non-Latin
scripts (issue 14, item 10): the subject and the text body are plain text, never
HTML-escaped; the HTML body is escaped exactly once.

The emails: the reference workflow's (references/email), the account notices
(guard/email), the sign-in throttle's (guard/email, through allauth's mailer), the
invitation (accounts/email), the deletion notices (tenancy/email) and allauth's own
(account/email: password reset, unknown account, confirmation, account exists)."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta

import pytest
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from tests.conftest import HTTPSClient, add_member, make_company, make_user
from tests.references.workflow import REFEREES, make_request, nominate
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.guard import notifications, unlock
from vouch.references.mailing import mail as reference_mail
from vouch.references.models import Reference
from vouch.references.referees import flows as referee_flows
from vouch.tenancy import deletion

pytestmark = pytest.mark.django_db

PERSON = 'Mary-Jane O\'Brien & <Smith> "Jo" José Müller 王秀英 Ελένη'
CANDIDATE = 'Seán O\'Neil & <Co> "Ned" 李小龍 Δημήτρης'
REFEREE = 'Zoë D\'Arcy & <Ref> "Z" 山田太郎 Κώστας'
COMPANY = 'Smith & Jones <O\'Hara> "Z" Zürich 株式会社'
ROLE = 'R&D <Lead> "Ops" Ingénieur 工程师'
# Any of these in a subject or a text body is HTML escaping where none belongs.
ENTITY = re.compile(r"&(amp|lt|gt|quot|apos|#x27|#39|#34|#x22);")


def parsed(message):
    """``message`` as a mail reader gets it: (subject, text body, HTML body or None),
    after the full round trip through MIME encoding."""
    received = email.message_from_bytes(message.message().as_bytes(), policy=email.policy.default)
    text = received.get_body(preferencelist=("plain",))
    html = received.get_body(preferencelist=("html",))
    return (
        # Python's folding of a long encoded subject starts it on a continuation line,
        # which its own parser reads back with a leading space.
        str(received["Subject"]).strip(),
        text.get_content() if text is not None else "",
        html.get_content() if html is not None else None,
    )


def check(message, *, subject_has: tuple[str, ...] = (), body_has: tuple[str, ...] = ()) -> None:
    subject, text, html = parsed(message)
    assert subject == message.subject  # the header encodes and decodes to the same text
    assert "\n" not in subject and "\r" not in subject
    assert not ENTITY.search(subject), subject
    assert not ENTITY.search(text), (subject, ENTITY.search(text)[0])
    for name in subject_has:
        assert name in subject, (name, subject)
    for name in body_has:
        assert name in text, (name, subject)
    if html is not None:
        for raw in ("<Smith>", "<Co>", "<Ref>", "<O'Hara>", "<Lead>"):
            assert raw not in html, (raw, subject)
        assert "&amp;amp;" not in html and "&amp;lt;" not in html and "&amp;#x27;" not in html, subject
        for name in body_has:
            assert escape(name) in html, (name, subject)


@pytest.fixture
def people(db):
    owner_user = make_user("owner@example.com", password=None, name=PERSON)
    company = make_company(COMPANY, owner=owner_user)
    recruiter = add_member(company, Role.RECRUITER, user=make_user("rec@example.com", password=None, name=PERSON))
    return company, company.memberships.get(role=Role.OWNER), recruiter


def test_reference_workflow_emails(people, mailoutbox):
    company, _, recruiter = people
    reference_request, _ = make_request(
        company, recruiter.user, name=CANDIDATE, role=ROLE, guidance="Tom & Jerry <both>"
    )
    reference, _ = nominate(company, reference_request, {**REFEREES[0], "name": REFEREE})
    second, _ = nominate(company, reference_request, {**REFEREES[1], "name": REFEREE})
    reference_mail.candidate_reminder(company.pk, reference_request.pk, "t" * 43, 1)
    reference_mail.referee_reminder(company.pk, reference.pk, "t" * 43, 1)
    reference_mail.reference_completed(company.pk, reference.pk)
    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):
        referee_flows.decline(Reference.objects.get(pk=second.pk), "No & <never>")
    sent = {message.subject: message for message in mailoutbox}
    expected = {
        f"[Vouch] {COMPANY} asks you to nominate referees": (CANDIDATE, COMPANY, ROLE, "Tom & Jerry <both>"),
        f"[Vouch] {CANDIDATE} has named you as a referee": (REFEREE, CANDIDATE, COMPANY, ROLE),
        f"[Vouch] Reminder: {COMPANY} is waiting for your referees": (CANDIDATE, COMPANY, ROLE),
        f"[Vouch] Reminder: {CANDIDATE} is waiting for your reference": (REFEREE, CANDIDATE, COMPANY),
        f"[Vouch] {REFEREE} has given a reference for {CANDIDATE}": (REFEREE, CANDIDATE, ROLE),
        f"[Vouch] {REFEREE} has given your reference": (REFEREE, CANDIDATE, COMPANY, ROLE),
        f"[Vouch] {REFEREE} cannot give a reference: please nominate someone else": (REFEREE, CANDIDATE, COMPANY),
        # The recruiter's notice of the decline (their preferences: at once, by default).
        f"[Vouch] A referee declined: {CANDIDATE}": (REFEREE, CANDIDATE, ROLE),
    }
    assert set(expected) <= set(sent), sorted(set(expected) - set(sent))
    for subject, names in expected.items():
        in_subject = tuple(name for name in (CANDIDATE, REFEREE, COMPANY) if name in subject)
        check(sent[subject], subject_has=in_subject, body_has=names)
    assert len(mailoutbox) == 9  # the two referee invitations share a subject


def test_account_notices(people, mailoutbox):
    company, owner, _ = people
    user = owner.user
    member = make_user("member@example.com", password=None, name=PERSON)
    context = {
        "company": company,
        "changed_by": user,
        "approved_by": user,
        "member": member,
        "before": Role.RECRUITER,
        "after": Role.ADMIN,
        "reason": "a new country & <device>",
        "method": "Authenticator app",
        "code": "123456",
        "minutes": 10,
        "signals": ["a new country & <device>"],
        "old_email": "old@example.com",
        "new_email": "new@example.com",
        "not_me_url": "https://localhost:8443/x/",
        "suspended_url": "https://localhost:8443/y/",
    }
    for kind in notifications.KINDS.values():
        assert notifications.send(kind, user, ip="203.0.113.9", user_agent="Firefox", context=context), kind.name
    assert len(mailoutbox) == len(notifications.KINDS)
    for message in mailoutbox:
        names = [PERSON] if message.subject != "[Vouch] A member's account was suspended" else [PERSON, COMPANY]
        if "role" in message.subject:
            names.append(COMPANY)
        check(message, body_has=tuple(names))


def test_throttle_invitation_and_deletion_mails(people, mailoutbox):
    company, owner, _ = people
    unlock.send_unlock_mail(None, owner.user)
    unlock.send_password_disabled_mail(None, owner.user)
    inviter = HTTPSClient()
    inviter.force_login(owner.user)
    response = inviter.post(reverse("member_invite"), {"email": "new@example.com", "role": str(int(Role.RECRUITER))})
    assert response.status_code == 302
    deletion.schedule_deletion(company, owner, now=timezone.now() - timedelta(minutes=1))
    deletion.cancel_deletion(company, owner)
    throttled, disabled, invitation, scheduled, cancelled = mailoutbox
    check(throttled)
    check(disabled)
    check(invitation, subject_has=(PERSON, COMPANY), body_has=(PERSON, COMPANY))
    check(scheduled, subject_has=(COMPANY,), body_has=(PERSON, COMPANY))
    check(cancelled, subject_has=(COMPANY,), body_has=(PERSON, COMPANY))


def test_allauth_mails(db, mailoutbox):
    make_user("taken@example.com", password=None, name=PERSON)
    client = HTTPSClient()
    client.post(reverse("account_reset_password"), {"email": "taken@example.com"})
    client.post(reverse("account_reset_password"), {"email": "nobody@example.com"})
    signup = {"full_name": PERSON, "company_name": COMPANY, "region": "au", "password1": "x" * 8}
    signup = {**signup, "password1": "a long & <odd> passphrase 42", "password2": "a long & <odd> passphrase 42"}
    client.post(reverse("account_signup"), {**signup, "email": "grace@example.com"})
    HTTPSClient().post(reverse("account_signup"), {**signup, "email": "taken@example.com"})
    assert len(mailoutbox) == 4
    for message in mailoutbox:
        check(message)


def test_the_outbox_shows_a_long_non_latin_subject_as_sent(outbox_dir):
    """Read back from the local outbox (``vouch outbox``, the /outbox/ page), a folded
    encoded subject is the subject that was sent, without escaping or a leading space."""
    from django.core.mail import EmailMultiAlternatives

    from vouch.outbox import store

    subject = f"[Vouch] {CANDIDATE} has named you as a referee for {COMPANY}"
    message = EmailMultiAlternatives(subject, f"Hello {REFEREE},", None, ["zoe@example.com"])
    message.attach_alternative(f"<p>Hello {escape(REFEREE)},</p>", "text/html")
    message.send()
    (shown,) = store.list_messages()
    assert (shown.subject, shown.body.strip()) == (subject, f"Hello {REFEREE},")
