"""The operators' backups page (operators only, an empty state, per region the last backup,
the mirror and the last drill) and the company page's backup lines for owners."""

from __future__ import annotations

import re

import pytest

from tests.accounts.helpers import fast_company
from tests.backups.conftest import add_files
from tests.guard.b_helpers import give_totp
from vouch.accounts.models import User
from vouch.accounts.policy import Role
from vouch.backups import drills
from vouch.backups.sets import write_company_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    user = User.objects.create_operator("ops@example.com")
    give_totp(user)  # operators act only with two-factor (P15)
    return user


def test_only_operators_see_the_backups_page(client, company, members):
    for role in (Role.OWNER, Role.ADMIN):
        client.force_login(members[role].user)
        assert client.get("/operator/backups/").status_code == 403
    client.logout()
    assert client.get("/operator/backups/").status_code == 302  # to sign in


def test_empty_state_then_a_region_with_its_backup_and_drill(client, operator, backup_dir):
    client.force_login(operator)
    page = client.get("/operator/backups/")
    assert page.status_code == 200
    assert 'id="backups-empty"' in page.content.decode()

    company = fast_company("Secret Name Ltd")
    add_files(company, {"a.txt": b"x"})
    write_company_set(company)
    drills.drill_company(company)

    body = client.get("/operator/backups/").content.decode()
    assert 'id="backups-empty"' not in body
    row = body.split('data-region="eu"')[1].split("</tr>")[0]
    # Taken and drilled moments ago, said in people's words ("now", "2 seconds ago").
    assert re.search(r"<td>(now|\d+\xa0seconds? ago|a second ago)</td>", row), row
    assert re.search(r"Passed, (now|\d+\xa0seconds? ago|a second ago),", row), row
    assert "Secret Name Ltd" not in body  # ids and states only
    assert 'data-region="control"' in body
    assert "drills" in body.split('id="data-safety"')[1]


def test_owners_see_their_companys_last_backup_and_drill(client, company, members, backup_dir):
    client.force_login(members[Role.OWNER].user)
    assert "None yet" in client.get("/company/settings/").content.decode().split('id="company-backups"')[1]
    write_company_set(company)
    drills.drill_company(company)
    section = client.get("/company/settings/").content.decode().split('id="company-backups"')[1].split("</section>")[0]
    assert "Passed" in section and "None yet" not in section
    client.force_login(members[Role.ADMIN].user)
    assert 'id="company-backups"' not in client.get("/company/settings/").content.decode()
