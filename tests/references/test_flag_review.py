"""Reviewing fraud flags: who may, what is recorded, and every refusal (a viewer, a flag
of another request, a request out of sight, an empty or second review), through the
pages as a plain form and with htmx."""

from __future__ import annotations

import secrets

import pytest
from django.urls import reverse

from tests.conftest import add_member
from tests.references.test_fraud import CANDIDATE_IP, act, browser
from tests.references.workflow import REFEREES, make_request, nominate
from vouch.accounts.policy import Role
from vouch.activity.models import Entry
from vouch.core.context import company_context
from vouch.references.request_models import Flag, ReferenceRequest, TimelineEvent, WorkflowSettings

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def flagged_request(company, actor):
    """A request whose first referee opened their link in the candidate's browser, just
    after being nominated: three flags (device, address, network); returns the first two."""
    reference_request, _ = make_request(company, actor)
    reference, _ = nominate(company, reference_request, REFEREES[0])
    device = secrets.token_urlsafe(16)
    act(company, reference_request, browser(CANDIDATE_IP, device=device), "opened")
    act(company, reference_request, browser(CANDIDATE_IP, device=device), "opened", reference)
    with company_context(company):
        flags = {flag.kind: flag for flag in Flag.objects.filter(request=reference_request)}
    assert set(flags) == {"device_candidate", "ip_candidate", "quick_open_network"}
    return reference_request, (flags["device_candidate"], flags["ip_candidate"])


def review_url(reference_request, flag) -> str:
    return reverse("flag_review", kwargs={"request_id": reference_request.pk, "flag_id": flag.pk})


def stored(company, flag) -> Flag:
    with company_context(company):
        flag = Flag.objects.get(pk=flag.pk)
        flag.review_comment = str(flag.review_comment)
        return flag


def open_flags(company, reference_request) -> int:
    with company_context(company):
        return ReferenceRequest.objects.get(pk=reference_request.pk).open_flags


def test_recruiter_reviews_a_flag_with_a_comment(client, company, members):
    recruiter = members[Role.RECRUITER].user
    reference_request, (device, address) = flagged_request(company, recruiter)
    assert open_flags(company, reference_request) == 3
    client.force_login(recruiter)
    response = client.post(
        review_url(reference_request, device), {"comment": "Called Rita on the switchboard: she answered."}
    )
    assert response.status_code == 302
    # Back to the same referee's section of the signals.
    assert response["Location"] == (
        reverse("request_detail", kwargs={"request_id": reference_request.pk}) + f"#signals-{device.reference_id}"
    )
    flag = stored(company, device)
    assert flag.reviewed_at is not None and flag.reviewed_by_id == recruiter.pk
    assert flag.review_comment == "Called Rita on the switchboard: she answered."
    assert stored(company, address).reviewed_at is None
    assert open_flags(company, reference_request) == 2
    with company_context(company):
        line = TimelineEvent.objects.get(request=reference_request, kind="flag_reviewed")
        assert line.actor_id == recruiter.pk and "switchboard" in str(line.summary)
        entry = Entry.objects.get(action="flag_reviewed")
        assert entry.actor_id == recruiter.pk and entry.details["flag"] == str(device.pk)
    page = client.get(response["Location"]).content.decode()
    assert "Marked as reviewed: Same device as the candidate (1 signal)." in page
    assert "Called Rita on the switchboard: she answered." in page
    # The open group (address and network: one cause) still has its form, naming both; the reviewed one has none.
    assert f'name="flag" value="{address.pk}"' in page and f'name="flag" value="{device.pk}"' not in page


def test_review_with_htmx_returns_the_flags_in_place(client, company, members):
    admin = members[Role.ADMIN].user
    reference_request, (device, _) = flagged_request(company, admin)
    client.force_login(admin)
    response = client.post(review_url(reference_request, device), {"comment": "Same office, checked."}, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and 'id="flags"' in html
    assert "Same office, checked." in html and "Reviewed" in html and "2 open" in html
    assert admin.full_name in html or admin.email in html
    assert stored(company, device).reviewed_at is not None


def test_viewer_sees_flags_but_cannot_review(client, company, members):
    reference_request, (device, _) = flagged_request(company, members[Role.RECRUITER].user)
    client.force_login(members[Role.VIEWER].user)
    page = client.get(reverse("request_detail", kwargs={"request_id": reference_request.pk})).content.decode()
    assert "same device as the candidate" in page and "Not reviewed yet." in page
    assert "Mark as reviewed" not in page and review_url(reference_request, device) not in page
    response = client.post(review_url(reference_request, device), {"comment": "I approve."})
    assert response.status_code == 403
    assert stored(company, device).reviewed_at is None and open_flags(company, reference_request) == 3


def test_a_flag_of_another_request_is_not_found(client, company, members):
    recruiter = members[Role.RECRUITER].user
    reference_request, _ = flagged_request(company, recruiter)
    other, (theirs, _) = flagged_request(company, recruiter)
    client.force_login(recruiter)
    response = client.post(review_url(reference_request, theirs), {"comment": "Through the wrong door."})
    assert response.status_code == 404
    assert stored(company, theirs).reviewed_at is None and open_flags(company, other) == 3


def test_a_request_out_of_the_recruiters_sight_is_not_found(client, company, members):
    reference_request, (device, _) = flagged_request(company, members[Role.RECRUITER].user)
    with company_context(company):
        WorkflowSettings.objects.update_or_create(pk=1, defaults={"recruiters_see_all": False})
    other_recruiter = add_member(company, Role.RECRUITER).user
    client.force_login(other_recruiter)
    assert client.post(review_url(reference_request, device), {"comment": "Not mine."}).status_code == 404
    assert stored(company, device).reviewed_at is None


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["form", "htmx"])
def test_an_empty_comment_is_refused(client, company, members, headers):
    recruiter = members[Role.RECRUITER].user
    reference_request, (device, _) = flagged_request(company, recruiter)
    client.force_login(recruiter)
    response = client.post(review_url(reference_request, device), {"comment": "   "}, **headers)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Add a comment saying what you checked." in html and 'aria-invalid="true"' in html
    assert ("<html" in html) is (not headers)
    assert stored(company, device).reviewed_at is None and open_flags(company, reference_request) == 3


def test_a_too_long_comment_is_refused_and_kept_for_editing(client, company, members):
    recruiter = members[Role.RECRUITER].user
    reference_request, (device, _) = flagged_request(company, recruiter)
    client.force_login(recruiter)
    long = "Checked with the referee's employer. " * 60
    response = client.post(review_url(reference_request, device), {"comment": long}, **HTMX)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Keep the comment under 2,000 characters." in html
    assert "Checked with the referee&#x27;s employer." in html
    assert stored(company, device).reviewed_at is None


def test_a_second_review_is_refused(client, company, members):
    recruiter = members[Role.RECRUITER].user
    reference_request, (device, _) = flagged_request(company, recruiter)
    client.force_login(recruiter)
    assert client.post(review_url(reference_request, device), {"comment": "First look."}).status_code == 302
    response = client.post(review_url(reference_request, device), {"comment": "Second look."}, **HTMX)
    assert response.status_code == 400
    assert "This flag has already been reviewed." in response.content.decode()
    assert stored(company, device).review_comment == "First look."
    with company_context(company):
        assert TimelineEvent.objects.filter(request=reference_request, kind="flag_reviewed").count() == 1


def test_review_needs_a_post_and_the_csrf_token(client, csrf_client, company, members):
    recruiter = members[Role.RECRUITER].user
    reference_request, (device, _) = flagged_request(company, recruiter)
    client.force_login(recruiter)
    assert client.get(review_url(reference_request, device)).status_code == 405
    csrf_client.force_login(recruiter)
    assert csrf_client.post(review_url(reference_request, device), {"comment": "Forged."}).status_code == 403
    assert stored(company, device).reviewed_at is None


def test_a_request_without_flags_says_so(client, company, members):
    recruiter = members[Role.RECRUITER].user
    reference_request, _ = make_request(company, recruiter)
    client.force_login(recruiter)
    page = client.get(reverse("request_detail", kwargs={"request_id": reference_request.pk})).content.decode()
    assert 'id="no-flags"' in page and "Vouch checks again each time" in page
