"""The workflow's state machine, driven through its functions."""

from __future__ import annotations

import pytest

from tests.references.workflow import IDENTITY, REFEREES, make_request, nominate
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.links import services as links
from vouch.references import flows
from vouch.references.candidates import flows as candidate_flows
from vouch.references.models import Reference, ReferenceRequest
from vouch.references.referees import flows as referee_flows
from vouch.references.request_models import ReferenceStatus, RequestStatus

pytestmark = pytest.mark.django_db


def answers_for(reference_request):
    result = {}
    for question in reference_request.questionnaire_version.questions:
        kind = question["type"]
        result[question["id"]] = {
            "text": "Reliable and careful.",
            "rating": question.get("scale", {}).get("max"),
            "yes_no": "yes",
            "single": (question.get("choices") or [""])[0],
            "multiple": (question.get("choices") or [""])[:1],
        }[kind]
    return result


def test_a_request_runs_from_creation_to_completion(company, members):
    recruiter = members[Role.RECRUITER].user
    reference_request, candidate_token = make_request(company, recruiter)
    assert links.resolve(candidate_token, "candidate").subject_id == reference_request.pk
    with company_context(company):
        assert ReferenceRequest.objects.get().status == RequestStatus.AWAITING_CANDIDATE
        candidate_flows.confirm_candidate(reference_request, name="Casey Candidate", email="casey@example.org")
    first, first_token = nominate(company, reference_request, REFEREES[0])
    second, second_token = nominate(company, reference_request, REFEREES[1])
    with company_context(company):
        assert ReferenceRequest.objects.get().status == RequestStatus.AWAITING_REFEREES
        with pytest.raises(flows.WorkflowError):
            candidate_flows.nominate(reference_request, **REFEREES[2])
        referee_flows.referee_opened(first)
        referee_flows.confirm_referee(first, **IDENTITY)
        assert referee_flows.save_answers(first, {}) == {}
        assert referee_flows.submit_answers(first, answers_for(reference_request)) == {}
        assert Reference.objects.get(pk=first.pk).status == ReferenceStatus.COMPLETED
        assert ReferenceRequest.objects.get().status == RequestStatus.IN_PROGRESS
        referee_flows.decline(second, "I never worked with them.")
        assert ReferenceRequest.objects.get().status == RequestStatus.AWAITING_CANDIDATE
    # Answered and declined links still open (on a thank-you page); the replaced one does not.
    assert links.resolve(first_token, "referee") is not None
    third, _ = nominate(company, reference_request, REFEREES[2], replacing=second)
    with company_context(company):
        assert Reference.objects.get(pk=second.pk).status == ReferenceStatus.REPLACED
        referee_flows.confirm_referee(third, **IDENTITY)
        assert referee_flows.submit_answers(third, answers_for(reference_request)) == {}
        done = ReferenceRequest.objects.get()
        assert (done.status, done.references_completed) == (RequestStatus.COMPLETED, 2)
        assert done.closed_at is not None
        kinds = list(done.timeline.values_list("kind", flat=True))
        assert kinds[0] == "request_created" and kinds[-1] == "request_completed"
        assert "referee_declined" in kinds and "referee_replaced" in kinds
    assert links.resolve(second_token, "referee") is None
    assert links.resolve(candidate_token, "candidate") is not None


def test_submitted_answers_cannot_be_changed(company, members):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    reference, _ = nominate(company, reference_request, REFEREES[0])
    with company_context(company):
        referee_flows.confirm_referee(reference, **IDENTITY)
        assert referee_flows.submit_answers(reference, answers_for(reference_request)) == {}
        with pytest.raises(flows.WorkflowError):
            referee_flows.save_answers(reference, {})
        with pytest.raises(flows.WorkflowError):
            referee_flows.decline(reference, "changed my mind")
