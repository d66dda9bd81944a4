"""The "verify your email" page says where the message is (issue 14, item 16): on the
embedded default, mail goes to the local outbox, so the page points there and not to a
spam folder; with an SMTP server it gives the usual inbox and spam advice."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.accounts.helpers import signup
from vouch.outbox.status import OUTBOX_BACKEND

pytestmark = pytest.mark.django_db


def page_after_signup(client) -> str:
    response = signup(client)
    assert response.status_code == 302 and response["Location"] == reverse("account_email_verification_sent")
    page = client.get(response["Location"])
    assert page.status_code == 200
    return " ".join(page.content.decode().split())  # the text as read, line breaks aside


def test_with_the_local_outbox_the_page_points_to_it(client, settings):
    settings.EMAIL_BACKEND = OUTBOX_BACKEND
    page = page_after_signup(client)
    assert "Verify your email address" in page
    assert "<code>.venv/bin/vouch outbox --latest</code>" in page
    assert f'href="{reverse("outbox")}"' in page
    assert "check your spam folder" not in page and "look in your spam folder" not in page


def test_with_an_smtp_server_the_page_gives_the_inbox_and_spam_advice(client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    page = page_after_signup(client)
    assert "Verify your email address" in page
    assert "look in your spam folder" in page
    assert "outbox" not in page.lower()
