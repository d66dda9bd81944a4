"""Forms posted by hand: a field left out, a field added, the honeypot filled in. And the
same forms posted as a browser posts them raise nothing."""

from __future__ import annotations

import pytest

from tests.audit.helpers import events
from tests.references.workflow import REFEREES, make_request, nominate
from vouch.audit.models import EventAction
from vouch.shield.forms import HONEYPOT

pytestmark = pytest.mark.django_db

BOT = "198.51.100.40"


def _referee_token(company):
    owner_user = company.memberships.order_by("pk").first().user
    reference_request, _ = make_request(company, owner_user, email="cara@example.org")
    _, token = nominate(company, reference_request, REFEREES[0])
    return token


def _points():
    return [e.details["point"] for e in events(EventAction.INTRUSION_DETECTED)]


def _drawn_fields(client, url) -> dict[str, str]:
    """The fields the page draws, as a browser would post them (text boxes empty)."""
    import re

    html = client.get(url, REMOTE_ADDR=BOT).content.decode()
    form = html[html.index('<form method="post"') :]
    form = form[: form.index("</form>")]
    names = re.findall(r'<(?:input|textarea|select)[^>]*\bname="([^"]+)"', form)
    values = dict(re.findall(r'<input[^>]*\bname="([^"]+)"[^>]*\bvalue="([^"]*)"', form))
    return {name: values.get(name, "") for name in names if name != "csrfmiddlewaretoken"}


def test_the_decline_form_posted_as_drawn_raises_nothing_and_the_honeypot_is_hidden(client, company, clock):
    token = _referee_token(company)
    url = f"/r/{token}/decline/"
    fields = _drawn_fields(client, url)
    assert HONEYPOT in fields
    html = client.get(url, REMOTE_ADDR=BOT).content.decode()
    assert 'class="honeypot"' in html and 'tabindex="-1"' in html
    client.post(url, {**fields, "reason": ""}, REMOTE_ADDR=BOT)
    assert _points() == []


def test_a_filled_honeypot_blocks_the_bot(client, company, clock):
    token = _referee_token(company)
    url = f"/r/{token}/decline/"
    fields = _drawn_fields(client, url)
    client.post(url, {**fields, HONEYPOT: "http://spam.example"}, REMOTE_ADDR=BOT)
    assert _points() == ["honeytoken"]
    assert client.get("/accounts/login/", REMOTE_ADDR=BOT).status_code == 403


def test_fields_left_out_or_added_are_tampering(client, company, clock):
    token = _referee_token(company)
    url = f"/r/{token}/decline/"
    fields = _drawn_fields(client, url)
    client.post(url, {**fields, "is_admin": "1"}, REMOTE_ADDR=BOT)
    dropped = dict(fields)
    dropped.pop(next(name for name in fields if name != HONEYPOT))
    client.post(url, dropped, REMOTE_ADDR="203.0.113.41")  # another network: its own event, not sampled away
    assert _points() == ["form_tampering", "form_tampering"]
    details = [e.details["detail"] for e in events(EventAction.INTRUSION_DETECTED)]
    assert "is_admin" in details[0]
