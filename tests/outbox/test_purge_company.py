"""Purging a company removes its mail from the local outbox (issue 14, item 9): the
messages hold its people's names, addresses and live private links, sealed under the
installation's outbox key, which the company's crypto-shredding does not destroy."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.mail import send_mail
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from tests.conftest import HTTPSClient, add_member, make_company, make_user
from tests.references.workflow import REFEREES, REQUEST
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.outbox import sealing, store
from vouch.outbox.backends import COMPANY_HEADER, company_headers
from vouch.references.candidates import flows as candidate_flows
from vouch.references.requests import flows as request_flows
from vouch.tenancy import deletion

pytestmark = pytest.mark.django_db

LINK = re.compile(rb"https://[^\s\"<>]+/(?:c|r|invitations)/[A-Za-z0-9_-]{20,}/")


def opened_messages(directory) -> dict[str, bytes]:
    """Every message file of the outbox, opened: file name -> the whole MIME message."""
    key = sealing.load_key(directory)
    return {
        path.name: sealing.open_message(key, path.name, path.read_bytes())
        for path in sorted(directory.iterdir())
        if path.suffix == store.SEALED_SUFFIX
    }


def activity(company, recruiter, candidate: dict, referee: dict) -> None:
    """A request, a nominated referee and an invitation: mail holding names, addresses
    and private links of ``company``'s people."""
    deadline = timezone.now() + timedelta(days=14)
    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):
        reference_request = request_flows.create_request(
            actor=recruiter, **{**REQUEST, **candidate, "deadline": deadline}
        )
    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):
        candidate_flows.nominate(reference_request, **referee)


def test_purge_removes_the_companys_messages_and_only_them(outbox_dir):
    doomed_owner = make_user("olive.owner@doomed.example", password=None, name="Olive Doomed-Owner")
    doomed = make_company("Doomed Widgets Ltd", owner=doomed_owner)
    recruiter = add_member(doomed, Role.RECRUITER, user=make_user("rex@doomed.example", password=None)).user
    kept = make_company("Survivor Hiring")
    kept_recruiter = add_member(kept, Role.RECRUITER).user

    candidate = {"name": "Quentin Doomedcandidate", "email": "quentin@candidates.example"}
    referee = {**REFEREES[0], "name": "Rhoda Doomedreferee", "email": "rhoda@referees.example"}
    activity(doomed, recruiter, candidate, referee)
    survivor = {"name": "Sally Survivor", "email": "sally@candidates.example"}
    activity(kept, kept_recruiter, survivor, {**REFEREES[1], "name": "Sam Survivorref"})
    inviter = HTTPSClient()
    inviter.force_login(doomed_owner)
    invited = inviter.post(reverse("member_invite"), {"email": "ivy@doomed.example", "role": str(int(Role.VIEWER))})
    assert invited.status_code == 302
    owner = doomed.memberships.get(role=Role.OWNER)
    deletion.schedule_deletion(doomed, owner)  # mails the owner, naming the company
    send_mail("Sign-in code", "Your code is 123456.", None, ["olive.owner@doomed.example"])  # not a company's

    before = opened_messages(outbox_dir)
    doomed_mail = b"".join(before.values())
    secrets = [
        b"Doomed Widgets Ltd",
        b"Quentin Doomedcandidate",
        b"quentin@candidates.example",
        b"Rhoda Doomedreferee",
        b"rhoda@referees.example",
        b"ivy@doomed.example",
    ]
    for secret in secrets:
        assert secret in doomed_mail, secret
    links = [link for message in before.values() for link in LINK.findall(message) if b"Survivor" not in message]
    assert len(links) >= 3  # candidate, referee, invitation
    assert not any(COMPANY_HEADER.encode() in message for message in before.values())  # never leaves Vouch

    grace = deletion.grace_period()
    assert deletion.delete_now(doomed.pk, now=timezone.now() + grace + timedelta(minutes=1)) is not None

    after = opened_messages(outbox_dir)
    left = b"".join(after.values())
    on_disk = b"".join(path.read_bytes() for path in outbox_dir.iterdir() if path.is_file())
    for secret in [*secrets, *links, *(link.rsplit(b"/", 2)[1] for link in links)]:
        assert secret not in left, secret
        assert secret not in on_disk, secret
    assert b"Sally Survivor" in left and b"Sam Survivorref" in left  # another company's stay
    assert b"Your code is 123456." in left  # so does mail of no company
    assert not list(outbox_dir.glob(".*.tmp"))


def test_a_message_moved_to_another_companys_name_does_not_open(outbox_dir, company):
    from django.core.mail import EmailMessage

    EmailMessage("Hello", "Body", None, ["a@example.com"], headers=company_headers(company.pk)).send()
    (path,) = outbox_dir.glob("*.sealed")
    assert company.pk.hex in path.name
    other = path.with_name(path.name.replace(company.pk.hex, "0" * 32))
    path.rename(other)
    assert store.get_message(other.name) is None
    assert store.remove_company_messages("not-a-company-id") == 0
