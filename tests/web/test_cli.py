"""The `vouch` command line: operator accounts are created without any password shown."""

import re

import pytest

from tests.guard.b_helpers import give_totp
from vouch.accounts.models import User
from vouch.cli import main


@pytest.mark.django_db
def test_operator_create_emails_a_reset_link_and_never_prints_a_password(capsys, mailoutbox, client):
    assert main(["operator", "create", "Ops@Example.com", "--name", "Olive Ops"]) == 0
    assert "created" in capsys.readouterr().out
    operator = User.objects.get(email="ops@example.com")
    assert operator.is_staff and operator.is_operator
    assert not operator.has_usable_password()
    assert operator.memberships.count() == 0
    assert len(mailoutbox) == 1
    body = mailoutbox[0].body
    link = re.search(r"https://\S+/accounts/password/reset/key/\S+", body).group(0)
    # The link really sets a password (allauth stores the key in the session, then redirects).
    path = link.split("8443", 1)[1] if "8443" in link else "/" + link.split("/", 3)[3]
    response = client.get(path, follow=True)
    assert response.status_code == 200
    assert b"password1" in response.content


@pytest.mark.django_db
def test_operator_create_refuses_an_existing_email(capsys, owner):
    assert main(["operator", "create", owner.user.email.upper()]) == 1
    assert "already exists" in capsys.readouterr().err


@pytest.mark.django_db
def test_operator_sees_no_company_pages(client, owner):
    operator = User.objects.create_operator("ops2@example.com")
    give_totp(operator)  # operators act only with two-factor (P15)
    client.force_login(operator)
    assert client.get("/dashboard/").status_code == 302  # to the operator page, never a company
    response = client.get("/operator/")
    assert response.status_code == 200
    assert b"Acme Hiring" not in response.content
    client.force_login(owner.user)
    assert client.get("/operator/").status_code == 403
