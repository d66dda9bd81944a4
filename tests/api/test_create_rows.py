"""What one creation through the API writes, row by row: the shortcuts taken for its speed
(the name's search rows in one driver call each, the built-in questionnaire's version
read through SQL compiled once, no workflow settings read) must leave every row the
workflow wrote before."""

from __future__ import annotations

from unittest import mock

import pytest
from django.test import TestCase

from tests.api.conftest import ApiClient, make_key
from tests.api.test_resources import new_request
from tests.references.jobs_helpers import queued
from vouch.accounts.policy import Role
from vouch.activity.models import Entry
from vouch.api.models import IdempotentCall
from vouch.core.context import company_context
from vouch.links.models import Link
from vouch.references.candidates import name_index
from vouch.references.models import Candidate, Questionnaire, QuestionnaireVersion
from vouch.references.questionnaires import services as questionnaires
from vouch.references.request_models import (
    NamePrefix,
    OutgoingMail,
    ReferenceRequest,
    SearchTerm,
    TimelineEvent,
    WorkflowSettings,
)
from vouch.vault.fields import blind_index
from vouch.vault.normalise import name_words
from vouch.vault.prefixes import name_prefix_digests

pytestmark = pytest.mark.django_db

NAME = "Siobhán O'Brien-Ní Dhomhnaill"


def name_rows(candidate_id) -> tuple[set[str], set[str]]:
    return (
        set(SearchTerm.objects.filter(candidate_id=candidate_id).values_list("term", flat=True)),
        set(NamePrefix.objects.filter(candidate_id=candidate_id).values_list("digest", flat=True)),
    )


def expected_name_rows(name: str) -> tuple[set[str], set[str]]:
    return {blind_index("name", word) for word in name_words(name)}, name_prefix_digests(name)  # type: ignore[misc]


@pytest.fixture
def api(company, members):
    return ApiClient(make_key(members[Role.ADMIN]))


def test_a_creation_writes_every_row_it_wrote(company, members, api):
    with company_context(company):
        WorkflowSettings.objects.all().delete()  # the API's form no longer reads (or makes) them
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = api.post_json(
            "/api/v1/requests",
            new_request(candidate={"name": NAME, "email": "siobhan@example.org"}),
            HTTP_IDEMPOTENCY_KEY="first-call",
        )
    assert response.status_code == 201, response.content
    created = response.json()
    with company_context(company):
        row = ReferenceRequest.objects.select_related("candidate", "questionnaire_version__questionnaire").get(
            pk=created["id"]
        )
        candidate = row.candidate
        assert candidate.name == NAME and Candidate.objects.count() == 1
        # The candidate's search rows: each word and each start, as the ORM path wrote them.
        terms, prefixes = name_rows(candidate.pk)
        assert (terms, prefixes) == expected_name_rows(NAME) and len(prefixes) > 5
        # The built-in's snapshot, with the code's questions.
        version = row.questionnaire_version
        builtin = questionnaires.builtin("general-professional")
        assert version.questionnaire.builtin_key == "general-professional"
        assert version.questions == builtin.questions  # type: ignore[union-attr]
        assert [e.kind for e in TimelineEvent.objects.filter(request=row).order_by("at", "id")] == [
            "request_created",
            "candidate_emailed",
        ]
        assert [e.details for e in Entry.objects.filter(action="request_created")] == [{"request": str(row.pk)}]
        assert list(OutgoingMail.objects.values_list("kind", "subject_id")) == [("candidate_invitation", row.pk)]
        assert IdempotentCall.objects.get().status_code == 201
    assert Link.objects.filter(subject_id=row.pk, purpose="candidate", revoked_at__isnull=True).count() == 1
    assert len(queued("request_created")) == 1


def test_the_builtin_version_is_read_once_made_and_a_new_one_added_when_the_questions_change(company, members, api):
    for number in range(2):
        assert api.post_json("/api/v1/requests", new_request(external_id=f"a{number}")).status_code == 201
    with company_context(company):
        assert Questionnaire.objects.filter(builtin_key="general-professional").count() == 1
        assert QuestionnaireVersion.objects.filter(questionnaire__builtin_key="general-professional").count() == 1
        assert len(set(ReferenceRequest.objects.values_list("questionnaire_version_id", flat=True))) == 1
    # The code's questions changed (a release): the next request pins a new version.
    builtin = questionnaires.builtin("general-professional")
    changed = [*builtin.questions, {**builtin.questions[-1], "id": "added", "text": "Anything else?"}]  # type: ignore[union-attr]
    with mock.patch.dict(questionnaires.BUILTINS["general-professional"], {"questions": changed}):
        assert api.post_json("/api/v1/requests", new_request(external_id="b")).status_code == 201
    with company_context(company):
        versions = list(
            QuestionnaireVersion.objects.filter(questionnaire__builtin_key="general-professional").order_by("number")
        )
        assert [v.number for v in versions] == [1, 2] and versions[1].questions == changed
        assert ReferenceRequest.objects.get(external_id="b").questionnaire_version_id == versions[1].pk


def test_reindexing_a_known_candidate_replaces_their_rows(company):
    with company_context(company):
        candidate = Candidate.objects.create(name="Maria Lopez", email="maria@example.org")
        name_index.index_name(candidate, new=True)
        assert name_rows(candidate.pk) == expected_name_rows("Maria Lopez")
        candidate.name = "Marek Novak"
        candidate.save()
        name_index.index_name(candidate)
        assert name_rows(candidate.pk) == expected_name_rows("Marek Novak")
        assert not set(name_rows(candidate.pk)[1]) & expected_name_rows("Maria Lopez")[1] - name_prefix_digests("Mar")
