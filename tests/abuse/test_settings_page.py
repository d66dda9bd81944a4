"""P18: owners adjust the thresholds on the security settings page, within each rule's
range; out-of-range values are refused with a clear error; changes are recorded."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.accounts.helpers import fast_company, fast_member, mark_reauthenticated
from tests.conftest import HTTPSClient, make_company
from vouch.abuse import rules, thresholds
from vouch.abuse.models import RuleThreshold
from vouch.abuse.rules import RULES
from vouch.accounts.policy import Role
from vouch.audit.models import EventAction, SecurityEvent

pytestmark = pytest.mark.django_db
URL = "/company/security/unusual-use/"


def defaults(**changes) -> dict:
    return {**{name: str(rule.default) for name, rule in RULES.items()}, **changes}


def as_member(membership) -> HTTPSClient:
    client = HTTPSClient()
    client.force_login(membership.user)
    mark_reauthenticated(client)
    return client


@pytest.fixture
def owner_client():
    company = fast_company("O'Brien & Smith")
    owner = company.memberships.get(role=Role.OWNER)
    return company, owner, as_member(owner)


def test_the_section_is_on_the_security_page(owner_client):
    company, owner, client = owner_client
    page = client.get(reverse("company_security")).content.decode()
    assert reverse("abuse_thresholds") == URL
    assert "Unusual use" in page and f'action="{URL}"' in page
    assert 'name="bulk_exports" value="20"' in page


def test_an_owner_sets_a_threshold_and_it_is_recorded(owner_client):
    company, owner, client = owner_client
    response = client.post(URL, defaults(bulk_exports="50"))
    assert response.status_code == 302 and response["Location"] == reverse("company_security")
    assert thresholds.threshold(rules.BULK_EXPORTS, company.pk) == 50
    (event,) = SecurityEvent.objects.filter(action=EventAction.ABUSE_RULE_CHANGED)
    assert event.company_id == company.pk and event.actor_id == owner.user.pk
    assert event.details == {"rule": "bulk_exports", "from": 20, "to": 50, "default": 20}
    # Back to the default: the override goes.
    client.post(URL, defaults())
    assert not RuleThreshold.objects.filter(company=company).exists()
    assert SecurityEvent.objects.filter(action=EventAction.ABUSE_RULE_CHANGED).count() == 2


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("bulk_exports", "2", "Choose a number from 3 to 1000 (the default is 20)."),
        ("link_guesses", "100001", "Choose a number from 20 to 100000 (the default is 100)."),
        ("mass_invitations", "-5", "Choose a number from 5 to 1000 (the default is 30)."),
        ("downloads", "lots", "Enter a whole number."),
        ("request_burst", "", "Enter a number from 10 to 10000."),
    ],
)
def test_out_of_range_thresholds_are_refused(owner_client, field, value, message):
    company, owner, client = owner_client
    response = client.post(URL, defaults(**{field: value}))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not RuleThreshold.objects.exists()
    assert not SecurityEvent.objects.filter(action=EventAction.ABUSE_RULE_CHANGED).exists()


def test_the_service_refuses_out_of_range_too(owner_client):
    company, owner, client = owner_client
    with pytest.raises(thresholds.ThresholdError):
        thresholds.save(company, owner, {"bulk_exports": 100_000})


@pytest.mark.parametrize("role", [Role.ADMIN, Role.RECRUITER, Role.VIEWER])
def test_only_owners_may_change_thresholds(role):
    company = fast_company()
    client = as_member(fast_member(company, role))
    assert client.post(URL, defaults(bulk_exports="50")).status_code == 403
    assert not RuleThreshold.objects.exists()


def test_an_owner_of_another_company_changes_only_their_own(owner_client):
    company, owner, client = owner_client
    other = fast_company()
    client.post(URL, defaults(bulk_exports="7"))
    assert thresholds.threshold(rules.BULK_EXPORTS, company.pk) == 7
    assert thresholds.threshold(rules.BULK_EXPORTS, other.pk) == 20


def test_saving_asks_for_the_password_again():
    company = make_company()  # an owner with a password (one without has nothing to confirm)
    client = HTTPSClient()
    client.force_login(company.memberships.get(role=Role.OWNER).user)
    response = client.post(URL, defaults(bulk_exports="50"))
    assert response.status_code == 302 and "reauthenticate" in response["Location"]
    assert not RuleThreshold.objects.exists()
