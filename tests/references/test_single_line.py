"""Single-line fields refuse control characters everywhere, with one message; and a
mail that cannot be sent is never lost silently (issue 14, item 5).

The attack: a name typed through the candidate's private link with a LF cuts the
subject of the email Vouch sends and puts the rest at the top of its body (the
candidate writes text in an email from Vouch); a lone CR made Django refuse the header
and the mail was dropped without a trace, so a replacement referee never got a link."""

from __future__ import annotations

import importlib
import pkgutil
import socket

import pytest
from django import forms
from django.core import mail
from django.test import override_settings
from django.urls import reverse

import vouch
from tests.conftest import HTTPSClient
from tests.references.workflow import IDENTITY, REFEREES, last_token, make_request, nominate
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.core.text import MESSAGE, SingleLineField, one_line, validate_single_line
from vouch.references.candidates.forms import validate_phone
from vouch.references.models import Reference, ReferenceRequest
from vouch.references.referees import flows as referee_flows

pytestmark = pytest.mark.django_db

# LF, lone CR, CRLF, NEL, the line separator, a right-to-left override, a NUL, a tab.
BAD = ["\n", "\r", "\r\n", "\x85", "\u2028", "\u202e", "\x00", "\t"]


@pytest.fixture
def recruiter(members):
    return members[Role.RECRUITER].user


@pytest.fixture
def opened(company, recruiter):
    return make_request(company, recruiter)


def home(token: str) -> str:
    return f"/c/{token}/"


def page_says_it(response) -> None:
    assert response.status_code == 400
    assert MESSAGE in response.content.decode()


@pytest.mark.parametrize("bad", BAD)
def test_candidate_link_refuses_control_characters_in_names(client, company, opened, bad):
    reference_request, token = opened
    sent = len(mail.outbox)
    typed = f"Casey{bad}Bcc: victim@example.net"
    page_says_it(client.post(home(token) + "details/", {"name": typed, "email": "casey@example.org", "phone": ""}))
    page_says_it(client.post(home(token) + "nominate/", {**REFEREES[0], "name": f"Rita{bad}Referee"}))
    page_says_it(client.post(home(token) + "nominate/", {**REFEREES[0], "organisation": f"Acme{bad}Widgets"}))
    with company_context(company):
        assert ReferenceRequest.objects.get(pk=reference_request.pk).candidate.name == "Casey Candidate"
        assert not Reference.objects.filter(request_id=reference_request.pk).exists()
    assert len(mail.outbox) == sent


@pytest.mark.parametrize("bad", ["\r", "\n"])
def test_a_replacement_referee_with_a_line_break_is_refused_not_dropped(client, company, opened, bad):
    reference_request, token = opened
    for referee in REFEREES[:2]:
        assert client.post(home(token) + "nominate/", referee).status_code == 302
    with company_context(company):
        second = Reference.objects.filter(request_id=reference_request.pk).order_by("nominated_at", "id")[1]
        referee_flows.decline(second, "I did not work with them.")
    replace = home(token) + f"replace/{second.pk}/"
    page_says_it(client.post(replace, {**REFEREES[2], "name": f"Morgan{bad}Manager"}))
    assert client.post(replace, REFEREES[2]).status_code == 302
    assert last_token(REFEREES[2]["email"], "r")  # the replacement got their link


def test_referee_link_refuses_control_characters(client, company, opened):
    reference_request, _ = opened
    _, token = nominate(company, reference_request, REFEREES[0])
    page_says_it(client.post(f"/r/{token}/confirm/", {**IDENTITY, "job_title": "Director\rof things"}))


def test_member_pages_refuse_them_with_the_same_message(client, company, recruiter):
    client.force_login(recruiter)
    response = client.post(reverse("candidate_new"), {"name": "Alex\u2028Example", "email": "alex@example.com"})
    assert MESSAGE in response.content.decode() and response.status_code in (200, 400)
    signup = HTTPSClient().post(
        reverse("account_signup"),
        {"full_name": "Grace\rFounder", "email": "g@example.com", "company_name": "Hopper\nHiring", "region": "au"},
    )
    assert signup.content.decode().count(MESSAGE) == 2


def _vouch_forms() -> list[type[forms.Form]]:
    for module in pkgutil.walk_packages(vouch.__path__, "vouch."):
        leaf = module.name.rsplit(".", 1)[-1]
        if "form" in leaf or "filter" in leaf or leaf in ("signup", "services"):
            importlib.import_module(module.name)
    found, todo = [], [forms.Form]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("vouch."):
            found.append(cls)
    return found


def test_every_single_line_text_field_of_vouch_uses_the_rule():
    """Every text box (a CharField drawn as a one-line input) that is not an address,
    a phone number, a month or a date refuses control characters."""
    checked, missing = 0, []
    for form in _vouch_forms():
        for name, field in form.base_fields.items():
            if type(field) is not forms.CharField and not isinstance(field, SingleLineField):
                continue  # e-mail, month, choice, date fields: checked by their own type
            widget = field.widget
            if isinstance(widget, forms.Textarea | forms.HiddenInput) or validate_phone in field.validators:
                continue  # several lines by design; a phone number allows digits and a few signs only
            if form.__name__ == "InvitedSignupForm" and name == "username":
                continue  # allauth's, removed from the form: Vouch signs in by email only
            if form.__module__ == "vouch.guard.mfa" and name == "code":
                continue  # a 2FA code: compared with the authenticator, never stored or mailed
            checked += 1
            if validate_single_line not in field.validators:
                missing.append(f"{form.__module__}.{form.__name__}.{name}")
    assert checked >= 15
    assert not missing, missing


def test_one_line_keeps_letters_of_every_script():
    assert one_line("Zoë\u200dD'Arcy\r\n王秀英\u2028Ελένη") == "Zoë\u200dD'Arcy 王秀英 Ελένη"
    validate_single_line("نسرین\u200cکریمی Zoë 王秀英")  # a ZWNJ belongs in Persian names


def test_a_name_saved_before_the_rule_still_gets_its_mail_with_a_whole_subject(company, recruiter):
    """Text stored before the forms refused control characters reaches the subject as
    one line: the mail goes out instead of being refused by Django."""
    reference_request, _ = make_request(company, recruiter, name="Casey\rBcc: victim@example.net")
    nominate(company, reference_request, REFEREES[0])
    (message,) = [m for m in mail.outbox if REFEREES[0]["email"] in m.to]
    assert message.subject == "[Vouch] Casey Bcc: victim@example.net has named you as a referee"
    assert message.message()["Bcc"] is None


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: connections are refused


def test_a_mail_that_cannot_be_sent_is_shown_to_the_recruiter(client, company, opened, recruiter):
    reference_request, token = opened
    smtp = {"EMAIL_BACKEND": "vouch.outbox.backends.SMTPBackend", "EMAIL_HOST": "127.0.0.1"}
    with override_settings(**smtp, EMAIL_PORT=_closed_port(), EMAIL_USE_TLS=False, EMAIL_TIMEOUT=5):
        assert client.post(home(token) + "nominate/", REFEREES[0]).status_code == 302
    with company_context(company):
        failed = [
            e.summary
            for e in ReferenceRequest.objects.get(pk=reference_request.pk).timeline.filter(kind="email_failed")
        ]
    assert len(failed) == 1
    assert REFEREES[0]["email"] in failed[0] and "could not be sent" in failed[0]
    member = HTTPSClient()
    member.force_login(recruiter)
    page = member.get(reverse("request_detail", kwargs={"request_id": reference_request.pk})).content.decode()
    expected = f"The email with the private link for the referee Rita Referee (to {REFEREES[0]['email']})"
    assert f'<strong class="email-failed">{expected} could not be sent; check the address.</strong>' in page
