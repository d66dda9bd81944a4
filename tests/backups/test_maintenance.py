"""One company offline for maintenance: its members and its links get a 503 page with
Retry-After and nothing personal on it; another company is untouched; nothing opens the
offline company's database; the state is in the control database (survives a crash)."""

from __future__ import annotations

import pytest

from tests.accounts.helpers import fast_company
from tests.references.workflow import make_request
from vouch.accounts.policy import Role
from vouch.core.context import CompanyOffline, company_context
from vouch.tenancy import maintenance
from vouch.tenancy.models import Company

pytestmark = pytest.mark.django_db


def owner_user(company):
    return company.memberships.get(role=Role.OWNER).user


def test_only_the_offline_companys_members_get_the_maintenance_page(client, company):
    other = fast_company("Other Co")
    maintenance.take_offline(company.pk, "restore under way")

    client.force_login(owner_user(company))
    page = client.get("/requests/")
    assert page.status_code == 503
    assert int(page["Retry-After"]) > 0
    body = page.content.decode()
    assert "maintenance" in body.lower()
    assert company.name not in body and owner_user(company).email not in body

    client.force_login(owner_user(other))
    assert client.get("/requests/").status_code == 200

    maintenance.bring_online(company.pk)
    client.force_login(owner_user(company))
    assert client.get("/requests/").status_code == 200


def test_an_offline_companys_candidate_link_gets_the_maintenance_page(client, company, members):
    other = fast_company("Other Co")
    _, token = make_request(company, members[Role.RECRUITER].user)
    _, other_token = make_request(other, owner_user(other), email="bob@example.com")
    maintenance.take_offline(company.pk, "restore under way")

    page = client.get(f"/c/{token}/")
    assert page.status_code == 503 and page["Retry-After"]
    assert "Alice" not in page.content.decode() and company.name not in page.content.decode()
    assert client.get(f"/c/{other_token}/").status_code == 200


def test_nothing_opens_an_offline_companys_database_and_the_flag_is_stored(company):
    maintenance.take_offline(company.pk, "run `vouch backup restore ...` again")
    fresh = Company.objects.get(pk=company.pk)  # as another process (or a restart) sees it
    assert fresh.is_offline and "vouch backup restore" in fresh.offline_reason
    with pytest.raises(CompanyOffline), company_context(fresh):
        pass
    with pytest.raises(maintenance.AlreadyOffline, match="vouch backup restore"):
        maintenance.take_offline(company.pk, "a second restore")
    with company_context(fresh, offline_ok=True):  # the restore itself
        pass


def test_an_offline_member_may_still_sign_out(client, company):
    maintenance.take_offline(company.pk, "restore")
    client.force_login(owner_user(company))
    response = client.post("/accounts/logout/")
    assert response.status_code in (200, 302)
