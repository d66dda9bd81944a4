"""The workflow settings page: admins and owners only; every value checked, with a
message beside it and a 400; saved settings logged; the schedule used by reminders."""

from __future__ import annotations

import pytest
from django.urls import reverse

from vouch.accounts.policy import Role
from vouch.activity.models import Entry
from vouch.activity.services import Kind
from vouch.core.context import company_context
from vouch.references.company_settings.forms import parse_reminder_days
from vouch.references.request_models import WorkflowSettings

pytestmark = pytest.mark.django_db

URL = "/company/workflow/"
GOOD = {
    "reminder_days": "1, 3, 5, 10",
    "replace_after_days": "7",
    "retention_months": "24",
    "recruiters_see_all": "own",
    "default_deadline_days": "21",
    "default_referees": "3",
}


def _settings(company) -> WorkflowSettings:
    with company_context(company):
        return WorkflowSettings.current()


def test_the_url_is_the_named_one():
    assert reverse("workflow_settings") == URL


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_admins_and_owners_change_the_settings(client, company, members, role):
    client.force_login(members[role].user)
    page = client.get(URL)
    assert page.status_code == 200
    assert b'value="2, 4, 6"' in page.content  # the defaults, as the form shows them
    response = client.post(URL, GOOD)
    assert response.status_code == 302 and response["Location"] == URL
    saved = _settings(company)
    assert saved.reminder_days == [1, 3, 5, 10]
    assert (saved.replace_after_days, saved.retention_months, saved.recruiters_see_all) == (7, 24, False)
    assert (saved.default_deadline_days, saved.default_referees) == (21, 3)
    assert saved.updated_by_id == members[role].user.pk
    with company_context(company):
        [entry] = Entry.objects.filter(action=Kind.WORKFLOW_SETTINGS_CHANGED)
        assert entry.actor_id == members[role].user.pk
        assert entry.details["reminder_days"] == {"from": [2, 4, 6], "to": [1, 3, 5, 10]}
        assert entry.details["recruiters_see_all"] == {"from": True, "to": False}
    assert "Workflow settings saved." in client.get(URL).content.decode()
    # Saving the same values again changes and logs nothing.
    client.post(URL, GOOD)
    with company_context(company):
        assert Entry.objects.filter(action=Kind.WORKFLOW_SETTINGS_CHANGED).count() == 1


@pytest.mark.parametrize("role", [Role.RECRUITER, Role.VIEWER])
def test_recruiters_and_viewers_are_refused(client, company, members, role):
    client.force_login(members[role].user)
    assert client.get(URL).status_code == 403
    assert client.post(URL, GOOD).status_code == 403
    assert _settings(company).reminder_days == [2, 4, 6]
    assert _settings(company).recruiters_see_all is True


def test_signed_out_visitors_are_sent_to_sign_in(client, company):
    response = client.post(URL, GOOD)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert _settings(company).retention_months == 12


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("reminder_days", "2, 4, 6, 8, 10, 12", "at most 5 reminders"),
        ("reminder_days", "0, 2", "between 1 and 60"),
        ("reminder_days", "2, 61", "between 1 and 60"),
        ("reminder_days", "4, 2", "earliest first"),
        ("reminder_days", "2, 2, 4", "only once"),
        ("reminder_days", "two, four", "is not a number of days"),
        ("reminder_days", "2, -4", "is not a number of days"),
        ("reminder_days", "١, ٢", "is not a number of days"),
        ("reminder_days", "2" * 50, "at most 40 characters"),
        ("replace_after_days", "0", "greater than or equal to 1"),
        ("replace_after_days", "", "This field is required"),
        ("retention_months", "0", "greater than or equal to 1"),
        ("retention_months", "121", "less than or equal to 120"),
        ("retention_months", "12.5", "Enter a whole number"),
        ("recruiters_see_all", "everyone", "Select a valid choice"),
        ("default_deadline_days", "91", "less than or equal to 90"),
        ("default_referees", "6", "less than or equal to 5"),
        ("default_referees", "0", "greater than or equal to 1"),
    ],
)
def test_bad_values_are_refused_with_a_message_and_nothing_is_saved(client, company, members, field, value, message):
    client.force_login(members[Role.ADMIN].user)
    response = client.post(URL, {**GOOD, field: value})
    assert response.status_code == 400
    text = response.content.decode()
    assert message in text, text
    assert "Nothing was saved" in text
    saved = _settings(company)
    assert saved.reminder_days == [2, 4, 6] and saved.retention_months == 12 and saved.recruiters_see_all


def test_no_reminders_is_a_choice(client, company, members):
    client.force_login(members[Role.OWNER].user)
    assert client.post(URL, {**GOOD, "reminder_days": " "}).status_code == 302
    assert _settings(company).reminder_days == []


def test_the_company_settings_page_links_here(client, company, members):
    client.force_login(members[Role.ADMIN].user)
    assert f'href="{URL}"' in client.get("/company/settings/").content.decode()


def test_reminder_days_are_read_leniently_but_strictly_checked():
    assert parse_reminder_days("2,4,6") == [2, 4, 6]
    assert parse_reminder_days(" 1 ; 3 ,7 ") == [1, 3, 7]
    assert parse_reminder_days(", ,") == []


def test_shortening_retention_says_how_many_closed_requests_will_go(client, company, members):
    from datetime import timedelta

    from django.utils import timezone

    from tests.references.workflow import make_request
    from vouch.references.models import ReferenceRequest
    from vouch.references.requests import flows as request_flows

    actor = members[Role.RECRUITER].user
    for email in ("a@example.org", "b@example.org"):
        reference_request, _ = make_request(company, actor, email=email)
        with company_context(company):
            request_flows.cancel_request(reference_request, actor=actor)
            ReferenceRequest.objects.filter(pk=reference_request.pk).update(
                closed_at=timezone.now() - timedelta(days=100)
            )
    client.force_login(members[Role.ADMIN].user)
    page = client.post(URL, {**GOOD, "retention_months": "3"}, follow=True).content.decode()
    assert "2 closed requests are now past the retention period" in page
    with company_context(company):
        assert ReferenceRequest.objects.count() == 2  # deleted by the daily run, not by the page
