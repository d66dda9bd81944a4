"""The owners' emails about support access, read from the outbox as sent: every owner, a
working review link, and a company name with quotes, an ampersand and accents kept as
written (plain text unescaped, HTML escaped once)."""

from __future__ import annotations

import re

import pytest
from django.test import TestCase
from django.urls import reverse
from django.utils.html import escape

from tests.conftest import make_company, make_user
from tests.outbox.conftest import master_keys, outbox_dir  # noqa: F401 - fixtures
from tests.support.conftest import REASON, approve, ask, second_owner
from tests.vault.conftest import keys_dir  # noqa: F401 - the fixture master_keys builds on
from vouch.outbox import store
from vouch.support import services

pytestmark = pytest.mark.django_db

AWKWARD = "O'Brien & Smith <Zoë> Ångström Müller"
# Any of these in a subject or a text body is HTML escaping where none belongs.
ENTITY = re.compile(r"&(amp|lt|gt|quot|apos|#x27|#39|#34|#x22);")


@pytest.fixture
def awkward(db):
    owner = make_user("first.owner@example.com", name="Siobhán O'Brien")
    company = make_company(AWKWARD, owner=owner)
    return company, owner, second_owner(company)


def sent(outbox_dir) -> list[store.OutboxMessage]:  # noqa: F811
    return list(reversed(store.list_messages(directory=outbox_dir)))


def test_the_owners_emails_from_request_to_end(outbox_dir, master_keys, operator, awkward):  # noqa: F811
    company, owner, other_owner = awkward
    with TestCase.captureOnCommitCallbacks(execute=True):
        grant = ask(operator, company, hours=5)
    requested = sent(outbox_dir)
    assert sorted(m.to for m in requested) == sorted([owner.email, other_owner.email])
    for message in requested:
        assert message.subject == f"[Vouch] An operator asks for support access to {AWKWARD}"
        assert AWKWARD in message.body and REASON in message.body and "5 hours" in message.body
        assert f"https://localhost:8443{reverse('support_review', args=[grant.pk])}" in message.body
        assert not ENTITY.search(message.subject) and not ENTITY.search(message.body)

    with TestCase.captureOnCommitCallbacks(execute=True):
        approve(grant, owner, hours=2)
    started = sent(outbox_dir)[2:]
    assert len(started) == 2
    for message in started:
        assert message.subject == f"[Vouch] Support access to {AWKWARD} has started"
        body = " ".join(message.body.split())
        assert "Siobhán O'Brien let an operator (olive.ops@example.com)" in body and "read-only, until" in body
        assert not ENTITY.search(message.body)

    with TestCase.captureOnCommitCallbacks(execute=True):
        services.revoke(None, grant, other_owner)
    ended = sent(outbox_dir)[4:]
    assert len(ended) == 2
    for message in ended:
        assert message.subject == f"[Vouch] Support access to {AWKWARD} has ended"
        assert "Second Owner revoked it" in " ".join(message.body.split())
    assert len(sent(outbox_dir)) == 6


def test_the_html_part_is_escaped_once(operator, awkward, mailoutbox):
    company, owner, _ = awkward
    with TestCase.captureOnCommitCallbacks(execute=True):
        ask(operator, company)
    for message in mailoutbox:
        html = message.alternatives[0][0]
        assert escape(AWKWARD) in html and "<Zoë>" not in html and "&amp;amp;" not in html
        assert AWKWARD in message.body
        assert message.extra_headers  # marked as the company's mail (purged with it)


def test_a_company_with_a_newline_in_its_name_gets_a_one_line_subject(operator, mailoutbox, db):
    company = make_company("Line One\nBcc: evil@example.com")
    with TestCase.captureOnCommitCallbacks(execute=True):
        ask(operator, company)
    (message,) = mailoutbox
    assert "\n" not in message.subject and message.to == [company.memberships.get().user.email]
