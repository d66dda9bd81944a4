"""Emails to a company's candidates and referees carry its brand (issue 20): sent as
"<Company> via Vouch", whatever the name holds (an apostrophe, "Smith & Jones",
accents, CJK, and a name crafted to add a Bcc header), read back from the real outbox
as a mail reader would; the HTML headed by the company's name in its colour, with the
logo attached inline by Content-ID; the text part names the company and shows no logo.
Mail to the company's own members stays from Vouch."""

from __future__ import annotations

import email
import email.policy
import io
from email.utils import getaddresses

import pytest
from django.core import mail
from PIL import Image

from tests.conftest import make_company
from tests.references import branding_helpers as logos
from tests.references.workflow import REFEREES, make_request, nominate
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.outbox import store
from vouch.references.branding import services as branding
from vouch.references.branding.sender import sender
from vouch.references.mailing import mail as reference_mail
from vouch.tenancy.models import Company

pytestmark = pytest.mark.django_db

NAMES = [
    ("O'Brien Recruitment", "O'Brien Recruitment via Vouch"),
    ('Smith & Jones, "Partners"', 'Smith & Jones, "Partners" via Vouch'),
    ("Zürich Personal AG – Ærø", "Zürich Personal AG – Ærø via Vouch"),
    ("株式会社テスト採用", "株式会社テスト採用 via Vouch"),
    ("Evil\r\nBcc: x@y", "Evil Bcc: x@y via Vouch"),
    ("Evil\nTo: victim@example.com\n\nbody", "Evil To: victim@example.com body via Vouch"),
]


def received(message) -> email.message.EmailMessage:
    return email.message_from_bytes(message.message().as_bytes(), policy=email.policy.default)


def company_named(name: str):
    company = make_company("Placeholder")
    # Stored as given: the signup and settings forms refuse line breaks, but a name from
    # before that rule (or from the database) must still be safe.
    Company.objects.filter(pk=company.pk).update(name=name)
    return Company.objects.get(pk=company.pk)


@pytest.mark.parametrize(("name", "shown"), NAMES, ids=["apostrophe", "quotes", "accents", "cjk", "crlf-bcc", "lf-to"])
def test_the_sender_is_the_company_via_vouch_and_no_name_adds_a_header(name, shown, outbox_dir, settings):
    company = company_named(name)
    owner = company.memberships.get(role=Role.OWNER)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    reference_request, _ = make_request(company, owner.user, email="casey@example.org")
    [invitation] = [m for m in mail.outbox if "casey@example.org" in m.to]
    parsed = received(invitation)
    [sent_from] = parsed["From"].addresses
    assert (sent_from.display_name, sent_from.addr_spec) == (shown, "no-reply@localhost")
    assert parsed.get_all("Bcc") is None and parsed.get_all("Cc") is None
    assert [str(a.addr_spec) for a in parsed["To"].addresses] == ["casey@example.org"]
    assert invitation.recipients() == ["casey@example.org"]
    headers = invitation.message().as_bytes().split(b"\n\n", 1)[0]
    assert not [line for line in headers.split(b"\n") if line.lower().startswith((b"bcc:", b"to: victim"))]
    # The same mail through the real outbox, read back with its helpers.
    settings.EMAIL_BACKEND = "vouch.outbox.backends.OutboxBackend"
    assert reference_mail.candidate_invitation(company.pk, reference_request.pk, "t" * 43)
    [kept] = store.list_messages(directory=outbox_dir)
    assert getaddresses([kept.sender]) == [(shown, "no-reply@localhost")]
    assert kept.to == "casey@example.org"


def test_the_sender_keeps_the_installations_address_and_name():
    assert sender("Acme", "Refs Desk <refs@example.com>") == "Acme via Refs Desk <refs@example.com>"
    assert sender("", "Vouch <no-reply@localhost>") == "Vouch <no-reply@localhost>"
    assert sender("O'Brien, Ltd", "Vouch <v@example.com>") == '"O\'Brien, Ltd via Vouch" <v@example.com>'
    assert len(getaddresses([sender("A" * 500, "Vouch <v@example.com>")])[0][0]) == 80 + len(" via Vouch")


def test_branded_mail_shows_the_name_colour_and_inline_logo(company, members, mailoutbox):
    owner = members[Role.OWNER]
    logos.set_logo(company, owner, logos.png((300, 100)))
    with company_context(company):
        branding.set_accent(owner, "#0b5394")
        version = branding.brand_of(company).logo_version
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    nominate(company, reference_request, REFEREES[0])
    for address in ("casey@example.org", REFEREES[0]["email"]):
        [message] = [m for m in mailoutbox if address in m.to]
        parsed = received(message)
        assert parsed.get_content_type() == "multipart/related"
        html = parsed.get_body(preferencelist=("html",)).get_content()
        text = parsed.get_body(preferencelist=("plain",)).get_content()
        assert "Acme Hiring" in html and "#0b5394" in html
        [logo] = [part for part in parsed.walk() if part.get_content_type() == "image/png"]
        cid = logo["Content-ID"].strip("<>")
        assert f'src="cid:{cid}"' in html
        assert logo.get_content_disposition() == "inline"
        # The stored 300 × 100 logo, made the size the mail shows it (twice, for sharp screens).
        with Image.open(io.BytesIO(logo.get_content())) as attached:
            assert attached.format == "PNG" and attached.size == (288, 96)
        with company_context(company):
            assert branding.logo_png(version) != logo.get_content()
        assert 'width="144" height="48"' in html
        assert "Acme Hiring" in text and "cid:" not in text and "logo" not in text.lower()
        assert parsed["From"].addresses[0].display_name == "Acme Hiring via Vouch"


def test_without_a_logo_the_mail_has_no_image_and_vouchs_blue(company, members, mailoutbox):
    make_request(company, members[Role.RECRUITER].user)
    [message] = [m for m in mailoutbox if "casey@example.org" in m.to]
    parsed = received(message)
    assert parsed.get_content_type() == "multipart/alternative"
    html = parsed.get_body(preferencelist=("html",)).get_content()
    assert "cid:" not in html and "#1f5fbf" in html and "Acme Hiring" in html


def test_mail_to_members_stays_from_vouch(company, members, mailoutbox):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    mailoutbox.clear()
    with company_context(company):
        reference_request.refresh_from_db()
    assert reference_mail.notice_request_completed(company.pk, reference_request.pk)
    [notice] = mailoutbox
    assert notice.from_email == "Vouch <no-reply@localhost>"
    assert received(notice).get_content_type() == "multipart/alternative"
