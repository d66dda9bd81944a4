"""A candidate's data exported as JSON or erased for good, by admins and owners only,
after re-authentication."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from tests.accounts.helpers import fast_company, fast_member, mark_reauthenticated
from tests.references.helpers import add_file
from tests.references.test_report import PAT_IDENTITY, full_request
from tests.references.workflow import REFEREES, make_request, nominate
from vouch import regions
from vouch.accounts.policy import Role
from vouch.activity.models import Entry
from vouch.core.context import company_context
from vouch.links import services as links
from vouch.links.models import Link
from vouch.references.models import Attachment, Candidate
from vouch.references.privacy import candidate_data as privacy
from vouch.references.request_models import (
    Flag,
    NamePrefix,
    Reference,
    ReferenceRequest,
    ReportFile,
    SearchTerm,
    TimelineEvent,
    Touch,
)

pytestmark = pytest.mark.django_db


def stored_files(company) -> set:
    root = regions.files_dir(company.pk, company.region)
    return {p for p in root.rglob("*") if p.is_file()}


def signed_in(client, membership):
    client.force_login(membership.user)
    mark_reauthenticated(client)
    return client


def with_everything(company, members):
    """A completed request with a stored PDF, a touch, a flag, an attachment, and a
    second open request with a referee link."""
    reference_request, rita, pat = full_request(company, members[Role.RECRUITER].user)
    with company_context(company):
        Touch.objects.create(
            request=reference_request,
            reference=pat,
            actor="referee",
            action="submitted",
            ip="203.0.113.9",
            device_family="Firefox",
        )
        from vouch.references.reports import pdf as report_pdf

        report_pdf.report_file_for(reference_request)
        candidate = Candidate.objects.get(pk=reference_request.candidate_id)
    add_file(company, candidate, "Casey CV.pdf")
    second, candidate_token = make_request(company, members[Role.RECRUITER].user, role="Finance Director")
    _, referee_token = nominate(company, second, REFEREES[2])
    return candidate, reference_request, second, candidate_token, referee_token


# --- who may -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.RECRUITER])
def test_viewers_and_recruiters_cannot_export_or_erase(client, company, members, role):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    signed_in(client, members[role])
    candidate_id = reference_request.candidate_id
    for name in ("candidate_export", "candidate_erase"):
        url = reverse(name, args=[candidate_id])
        assert client.get(url).status_code == 403
        assert client.post(url, {"confirm_name": "Casey Candidate"}).status_code == 403
    with company_context(company):
        assert Candidate.objects.filter(pk=candidate_id).exists()
        assert not Entry.objects.filter(action__in=["candidate_exported", "candidate_erased"]).exists()


def test_another_companys_candidate_is_a_404(client, company, members):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    other = fast_company("Other Hiring")
    signed_in(client, fast_member(other, Role.OWNER))
    for name in ("candidate_export", "candidate_erase"):
        url = reverse(name, args=[reference_request.candidate_id])
        assert client.get(url).status_code == 404
        assert client.post(url, {"confirm_name": "Casey Candidate"}).status_code == 404
    with company_context(company):
        assert ReferenceRequest.objects.filter(pk=reference_request.pk).exists()


def test_export_and_erase_ask_for_the_password_again(client, company, members):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    client.force_login(members[Role.ADMIN].user)
    for name in ("candidate_export", "candidate_erase"):
        url = reverse(name, args=[reference_request.candidate_id])
        assert client.get(url).status_code == 200  # the explanation page needs no password
        response = client.post(url, {"confirm_name": "Casey Candidate"})
        assert response.status_code == 302 and "reauthenticate" in response["Location"]
    with company_context(company):
        assert Candidate.objects.filter(pk=reference_request.candidate_id).exists()
        assert not Entry.objects.filter(action__in=["candidate_exported", "candidate_erased"]).exists()


def test_the_candidate_page_offers_export_and_erase_to_admins_only(client, company, members):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    url = reverse("candidate_detail", args=[reference_request.candidate_id])
    client.force_login(members[Role.ADMIN].user)
    page = client.get(url).content.decode()
    assert reverse("candidate_export", args=[reference_request.candidate_id]) in page
    assert reverse("candidate_erase", args=[reference_request.candidate_id]) in page
    client.force_login(members[Role.RECRUITER].user)
    page = client.get(url).content.decode()
    assert reverse("candidate_erase", args=[reference_request.candidate_id]) not in page


# --- export -----------------------------------------------------------------------------


def test_export_holds_everything_about_the_candidate(client, company, members):
    candidate, reference_request, second, _, _ = with_everything(company, members)
    signed_in(client, members[Role.ADMIN])
    response = client.post(reverse("candidate_export", args=[candidate.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Cache-Control"] == "private, no-store"
    assert response["Content-Disposition"] == f'attachment; filename="candidate-{candidate.pk.hex[:8]}.json"'
    data = json.loads(response.content)
    assert data["candidate"]["name"] == "Casey Candidate" and data["candidate"]["email"] == "casey@example.org"
    assert [a["name"] for a in data["attachments"]] == ["Casey CV.pdf"]
    by_id = {r["id"]: r for r in data["requests"]}
    assert set(by_id) == {str(reference_request.pk), str(second.pk)}
    done = by_id[str(reference_request.pk)]
    assert done["role"] == "Head of Finance" and done["status"] == "completed"
    pat = next(r for r in done["references"] if r["nomination"]["name"] == "Pat Peer")
    assert pat["nomination"]["organisation"] == "Globex" and pat["identity"] == PAT_IDENTITY
    answers = {a["question"]: a["answer"] for a in pat["answers"]}
    assert answers["strengths"] == "Calm under audit pressure." and answers["reliability"] == 3
    assert {"at", "action", "ip", "device_family"} <= set(done["touches"][0])
    assert done["touches"][0]["ip"] == "203.0.113.9" and done["touches"][0]["device_family"] == "Firefox"
    assert {f["explanation"] for f in done["flags"]} >= {"Pat Peer answered from the candidate's network."}
    assert any("Calm" not in e["summary"] and e["kind"] == "request_created" for e in done["timeline"])
    with company_context(company):
        entry = Entry.objects.get(action="candidate_exported")
        assert entry.details["candidate"] == str(candidate.pk) and entry.details["requests"] == 2
        assert "Casey" not in entry.summary and "Casey" not in json.dumps(entry.details)


def test_export_of_a_declined_reference_includes_the_reason(company, members):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    reference, _ = nominate(company, reference_request, REFEREES[0])
    with company_context(company):
        from vouch.references.referees import flows as referee_flows

        referee_flows.decline(reference, "Conflict of interest.")
        data = privacy.export_candidate(Candidate.objects.get(pk=reference_request.candidate_id))
    assert data["requests"][0]["references"][0]["decline_reason"] == "Conflict of interest."


# --- erasure ----------------------------------------------------------------------------


def test_a_wrong_name_erases_nothing(client, company, members):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    signed_in(client, members[Role.ADMIN])
    response = client.post(reverse("candidate_erase", args=[reference_request.candidate_id]), {"confirm_name": "Casey"})
    assert response.status_code == 400
    assert b"Nothing was erased" in response.content
    with company_context(company):
        assert ReferenceRequest.objects.filter(pk=reference_request.pk).exists()


def test_erasure_removes_rows_files_and_links(client, company, members):
    candidate, reference_request, second, candidate_token, referee_token = with_everything(company, members)
    with company_context(company):
        report_path = ReportFile.objects.get(request=reference_request).file.storage.stored_path(
            ReportFile.objects.get(request=reference_request).file.name
        )
        attachment = Attachment.objects.get(candidate=candidate)
        attachment_path = attachment.file.storage.stored_path(attachment.file.name)
        request_ids = [reference_request.pk, second.pk]
        reference_ids = list(Reference.objects.values_list("pk", flat=True))
    # Another candidate's data stays.
    kept, kept_token = make_request(company, members[Role.RECRUITER].user, name="Kim Kept", email="kim@example.org")
    assert report_path.exists() and attachment_path.exists()
    signed_in(client, members[Role.OWNER])
    page = client.get(reverse("candidate_erase", args=[candidate.pk])).content.decode()
    assert "2 reference requests" in page and "1 stored report PDF" in page
    response = client.post(reverse("candidate_erase", args=[candidate.pk]), {"confirm_name": "  casey   candidate "})
    assert response.status_code == 302 and response["Location"] == reverse("candidates")
    with company_context(company):
        assert not Candidate.objects.filter(pk=candidate.pk).exists()
        assert not ReferenceRequest.objects.filter(pk__in=request_ids).exists()
        assert not Reference.objects.filter(pk__in=reference_ids).exists()
        for model in (Touch, Flag, TimelineEvent, ReportFile):
            assert not model.objects.filter(request_id__in=request_ids).exists(), model.__name__
        assert not Attachment.objects.filter(candidate_id=candidate.pk).exists()
        assert not SearchTerm.objects.filter(candidate_id=candidate.pk).exists()
        assert not NamePrefix.objects.filter(candidate_id=candidate.pk).exists()
        assert ReferenceRequest.objects.filter(pk=kept.pk).exists()
        entry = Entry.objects.get(action="candidate_erased")
        assert entry.details == {
            "candidate": str(candidate.pk),
            "requests": 2,
            "references": 3,
            "report_files": 1,
            "attachments": 1,
            "links": entry.details["links"],
        }
        assert entry.details["links"] >= 5  # two candidate links, three referee links
        assert "Casey" not in entry.summary
    assert not report_path.exists() and not attachment_path.exists()
    assert not Link.objects.filter(subject_id__in=[*request_ids, *reference_ids]).exists()
    assert links.resolve(kept_token, "candidate") is not None
    # The erased candidate's and referee's links give the neutral 404.
    client.logout()
    for path in (f"/c/{candidate_token}/", f"/r/{referee_token}/"):
        response = client.get(path)
        assert response.status_code == 404


def test_delete_requests_is_reusable_and_leaves_other_requests(company, members):
    first, first_token = make_request(company, members[Role.RECRUITER].user)
    second, second_token = make_request(company, members[Role.RECRUITER].user, email="other@example.org", name="Oli")
    with company_context(company):
        deleted = privacy.delete_requests(ReferenceRequest.objects.filter(pk=first.pk))
        assert (deleted.requests, deleted.references, deleted.links) == (1, 0, 1)
        assert list(ReferenceRequest.objects.values_list("pk", flat=True)) == [second.pk]
        assert privacy.delete_requests(ReferenceRequest.objects.none()).requests == 0
    assert links.resolve(first_token, "candidate") is None
    assert links.resolve(second_token, "candidate") is not None


def test_the_password_page_replays_the_held_back_erasure(client, company, members):
    """Through allauth's page, as a person would: the held-back POST runs once confirmed."""
    from tests.conftest import PASSWORD, make_user
    from tests.conftest import add_member as add

    admin = add(company, Role.ADMIN, user=make_user())
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    assert client.post("/accounts/login/", {"login": admin.user.email, "password": PASSWORD}).status_code == 302
    url = reverse("candidate_erase", args=[reference_request.candidate_id])
    held = client.post(url, {"confirm_name": "Casey Candidate"})
    assert held.status_code == 302 and "reauthenticate" in held["Location"]
    with company_context(company):
        assert Candidate.objects.filter(pk=reference_request.candidate_id).exists()
    response = client.post(held["Location"], {"password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("candidates")
    with company_context(company):
        assert not Candidate.objects.filter(pk=reference_request.candidate_id).exists()
        assert Entry.objects.filter(action="candidate_erased").count() == 1


def test_a_candidate_without_requests_is_erased_with_their_files(company, members):
    from tests.references.helpers import add_candidate

    candidate = add_candidate(company, "Nia Norequest", "nia@example.org")
    attachment = add_file(company, candidate)
    with company_context(company):
        path = attachment.file.storage.stored_path(attachment.file.name)
        deleted = privacy.erase_candidate(candidate, actor=members[Role.ADMIN].user)
        assert (deleted.requests, deleted.attachments) == (0, 1)
        assert not Candidate.objects.filter(pk=candidate.pk).exists()
    assert not path.exists()
