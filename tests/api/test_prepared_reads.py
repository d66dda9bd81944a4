"""The API's reads through SQL compiled once (vouch.core.db) give what the ORM gives: the
company and the key of every call, a request with its candidate (and only one the
member may see), its references; each in one query. Run on both paths."""

from __future__ import annotations

import uuid

import pytest
from django.db import connections, router
from django.http import Http404
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from tests.api.conftest import make_key
from tests.references.workflow import REFEREES, make_request, nominate
from vouch.accounts.policy import Role
from vouch.api.keys import services
from vouch.api.models import ApiKey
from vouch.api.resources import requests as resources
from vouch.audit.models import SecurityEvent
from vouch.core.context import company_context
from vouch.references.request_models import Reference, ReferenceRequest, WorkflowSettings
from vouch.references.requests.access import request_or_404
from vouch.tenancy.models import Company

pytestmark = pytest.mark.django_db


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def test_the_company_and_the_key_are_the_orm_rows(company, members):
    key = make_key(members[Role.ADMIN], ["requests:read"])
    parsed = services.parse(key)
    assert parsed is not None
    found = services.company_for(parsed)
    assert found is not None and _fields(found) == _fields(Company.objects.get(pk=company.pk))
    with company_context(company):
        mine = services._key_by_public_id.get(parsed.public_id, using=router.db_for_read(ApiKey))
        assert mine is not None and _fields(mine) == _fields(ApiKey.objects.get(public_id=parsed.public_id))
        assert services._key_by_public_id.get("nosuchkey123", using=router.db_for_read(ApiKey)) is None
    # A company switched off is no company for its keys.
    Company.objects.filter(pk=company.pk).update(is_active=False)
    assert services.company_for(parsed) is None
    assert services.company_for(services.Parsed(uuid.uuid4(), parsed.public_id, parsed.secret)) is None


def _member_request(company, membership):
    request = RequestFactory().get("/api/v1/requests/x")
    request.company, request.membership, request.user = company, membership, membership.user
    return request


def test_a_request_and_its_references_are_the_orm_rows_in_two_queries(company, members):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    nominate(company, reference_request, REFEREES[0])
    nominate(company, reference_request, REFEREES[1])
    caller = _member_request(company, members[Role.ADMIN])
    with company_context(company) as context:
        with CaptureQueriesContext(connections[context.alias]) as queries:
            mine = request_or_404(caller, reference_request.pk, questionnaire=False)
            references = resources._references(mine)
        assert len(queries.captured_queries) == 2
        theirs = ReferenceRequest.objects.select_related("candidate").get(pk=reference_request.pk)
        assert _fields(mine) == _fields(theirs) and _fields(mine.candidate) == _fields(theirs.candidate)
        assert mine.candidate.name == theirs.candidate.name and mine.role == theirs.role  # opened alike
        expected = [
            {name: getattr(row, name) for name in resources.REFERENCE_FIELDS}
            for row in Reference.objects.filter(request=reference_request).order_by("nominated_at", "id")
        ]
        assert references == expected and len(references) == 2
        assert {item["name"] for item in references} == {REFEREES[0]["name"], REFEREES[1]["name"]}


def test_a_request_outside_the_members_view_is_a_recorded_404(company, members):
    """A recruiter limited to their own requests: another member's request is a 404, as
    the queryset's, and recorded; so is an unknown id."""
    others, _ = make_request(company, members[Role.ADMIN].user)
    own, _ = make_request(company, members[Role.RECRUITER].user)
    with company_context(company):
        WorkflowSettings.objects.update(recruiters_see_all=False)
        caller = _member_request(company, members[Role.RECRUITER])
        assert request_or_404(caller, own.pk, questionnaire=False).pk == own.pk
        for missing in (others.pk, uuid.uuid4()):
            with pytest.raises(Http404):
                request_or_404(caller, missing, questionnaire=False)
            with pytest.raises(Http404):  # the queryset's answer is the same
                request_or_404(caller, missing)
    assert SecurityEvent.objects.filter(action="authz_fail", details__object="references.ReferenceRequest").count() == 4


def test_the_builtin_version_is_the_orm_row_in_one_query(company):
    from vouch.references.models import QuestionnaireVersion
    from vouch.references.questionnaires import services as questionnaires

    with company_context(company):
        made = questionnaires.version_for_request("builtin:general-professional")
        alias = router.db_for_read(QuestionnaireVersion)
        with CaptureQueriesContext(connections[alias]) as queries:
            again = questionnaires.version_for_request("builtin:general-professional")
        assert len(queries) == 1
        orm = QuestionnaireVersion.objects.get(pk=made.pk)
        assert _fields(again) == _fields(orm) and again._state.db == orm._state.db and not again._state.adding


def test_a_company_by_its_id_is_the_orm_row(company):
    from vouch.tenancy.company_row import company_by_id

    for given in (company.pk, str(company.pk)):
        found = company_by_id(given)
        assert found is not None and _fields(found) == _fields(Company.objects.get(pk=company.pk))
    assert company_by_id(uuid.uuid4()) is None


def test_the_unfiltered_lists_first_page_is_the_querysets_in_every_view(company, members):
    """The prepared first page (what an ATS polls) against ``pagination.take`` of the
    filtered queryset: everyone's view and a recruiter limited to their own, with a page
    smaller than, equal to and larger than what there is."""
    from vouch.api import pagination
    from vouch.references.requests import listing
    from vouch.references.requests.access import visible_requests

    for creator in (Role.ADMIN, Role.RECRUITER, Role.ADMIN, Role.RECRUITER, Role.RECRUITER):
        make_request(company, members[creator].user)
    with company_context(company):
        for see_all in (True, False):
            WorkflowSettings.objects.update(recruiters_see_all=see_all)
            for role in (Role.ADMIN, Role.RECRUITER, Role.VIEWER):
                caller = _member_request(company, members[role])
                for limit in (1, 2, 3, 5, 25):
                    queryset = listing.filtered(visible_requests(caller), listing.Filters())
                    expected = pagination.take(queryset.values(*resources.SUMMARY_FIELDS), limit)
                    assert resources._first_page(caller, limit) == expected, (see_all, role, limit)
        # The recruiter's own view holds only their three requests.
        caller = _member_request(company, members[Role.RECRUITER])
        page, more = resources._first_page(caller, 25)
        assert len(page) == 3 and not more
