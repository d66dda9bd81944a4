"""vouch.core.db: a row with its select_related rows, read through SQL compiled
once, must be the very row Django's ORM gives (same values, same related objects,
deferred columns still loaded on use, bound to the database it came from), in one
query, and nothing for a key that is not there. Run on both paths (SQLite and
PostgreSQL company databases)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connections, router
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from tests.references.workflow import IDENTITY, REFEREES, make_request, nominate
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.core.db import PreparedLookup, PreparedRows
from vouch.links.models import Link
from vouch.links.services import RESOLVE_COLUMNS, hash_token
from vouch.references.referees import flows as referee_flows
from vouch.references.referees.views import ANSWERS_PAGE_COLUMNS
from vouch.references.request_models import Reference, ReferenceRequest
from vouch.vault.fields import Sealed

pytestmark = pytest.mark.django_db


def _with_request():
    return Reference.objects.select_related("request__candidate", "request__questionnaire_version")


@pytest.fixture
def answered(company, members):
    request, _ = make_request(company, members[Role.RECRUITER].user)
    reference, token = nominate(company, request, REFEREES[0])
    with company_context(company):
        referee_flows.confirm_referee(Reference.objects.get(pk=reference.pk), **IDENTITY)
        referee_flows.save_answers(Reference.objects.get(pk=reference.pk), {"quality": "5", "dates": "Since 2021"})
    return reference, token


def test_a_prepared_read_is_the_orm_read(company, answered):
    reference, _ = answered
    lookup = PreparedLookup(lambda: _with_request().only(*ANSWERS_PAGE_COLUMNS))
    with company_context(company) as context:
        alias = router.db_for_read(Reference)
        assert alias == context.alias
        mine = lookup.get(reference.pk, using=alias)
        theirs = _with_request().only(*ANSWERS_PAGE_COLUMNS).get(pk=reference.pk)
        assert mine is not None and mine.pk == theirs.pk
        assert mine._state.db == theirs._state.db == alias
        assert mine.get_deferred_fields() == theirs.get_deferred_fields() != set()
        for name in ("status", "confirmed_at", "started_at", "saved_at", "answers", "request_id"):
            assert getattr(mine, name) == getattr(theirs, name), name
        assert mine.answers and mine.saved_at is not None  # opened, not ciphertext
        for name in ("status", "role", "deadline", "candidate_id", "questionnaire_version_id"):
            assert getattr(mine.request, name) == getattr(theirs.request, name), name
        assert mine.request.candidate.name == theirs.request.candidate.name != ""
        assert mine.request.questionnaire_version.questions == theirs.request.questionnaire_version.questions
        # A column left out is loaded on first use, as the ORM does it.
        assert mine.name == theirs.name == REFEREES[0]["name"]


def test_a_prepared_read_is_one_query_and_none_for_a_missing_key(company, answered):
    reference, _ = answered
    lookup = PreparedLookup(lambda: _with_request().only(*ANSWERS_PAGE_COLUMNS))
    with company_context(company) as context:
        lookup.get(reference.pk, using=context.alias)  # compiled
        with CaptureQueriesContext(connections[context.alias]) as queries:
            found = lookup.get(reference.pk, using=context.alias)
            missing = lookup.get(uuid.uuid4(), using=context.alias)
        assert found.pk == reference.pk and missing is None
        assert len(queries) == 2, [q["sql"] for q in queries]


def test_the_link_read_by_token_hash(company, answered):
    _, token = answered
    lookup = PreparedLookup(
        lambda: Link.objects.select_related("company").only(*RESOLVE_COLUMNS), key="token_hash", sentinel="(none)"
    )
    mine = lookup.get(hash_token(token), using=router.db_for_read(Link))
    theirs = Link.objects.select_related("company").get(token_hash=hash_token(token))
    assert (mine.pk, mine.purpose, mine.subject_id, mine.expires_at, mine.revoked_at) == (
        theirs.pk,
        theirs.purpose,
        theirs.subject_id,
        theirs.expires_at,
        theirs.revoked_at,
    )
    assert (mine.company.pk, mine.company.name, mine.company.region) == (company.pk, company.name, company.region)
    assert lookup.get(hash_token(token + "x"), using=router.db_for_read(Link)) is None


def test_a_key_that_is_not_a_single_parameter_is_refused(company, answered):
    reference, _ = answered
    # The sentinel must land in exactly one place of the compiled SQL's parameters.
    twice = PreparedLookup(lambda: _with_request().filter(request__candidate_id=uuid.UUID(int=0x5E171E1)))
    with company_context(company) as context, pytest.raises(ValueError, match="exactly once"):
        twice.get(reference.pk, using=context.alias)


# --- PreparedRows: value rows by several parameters, a page at a time -----------------

_OWNER_SENTINEL = -0x5E171E1


def _requests_by(creator, reference_request):
    # Two parameters of two kinds (an int and a UUID), values of every converted kind:
    # UUIDs, datetimes, ints, a joined column and encrypted ones (which stay Sealed).
    return (
        ReferenceRequest.objects.filter(created_by_id=creator)
        .exclude(pk=reference_request)
        .order_by("-created_at", "-id")
        .values_list("id", "created_at", "referees_required", "status", "role", "candidate_id", "candidate__name")
    )


@pytest.fixture
def five_requests(company, members):
    made = [make_request(company, members[Role.RECRUITER].user, role=f"Role {n}")[0] for n in range(5)]
    make_request(company, members[Role.ADMIN].user)  # someone else's: never in the rows
    return made


def test_prepared_rows_are_the_orm_rows_page_by_page(company, members, five_requests):
    creator = members[Role.RECRUITER].user.pk
    left_out = five_requests[2].pk
    rows = PreparedRows(
        lambda creator, reference_request: _requests_by(creator, reference_request),
        paged=True,
        creator=_OWNER_SENTINEL,
        reference_request=uuid.UUID(int=0x5E171E1),
    )
    with company_context(company) as context:
        theirs = list(_requests_by(creator, left_out))
        assert len(theirs) == 4
        for offset in range(5):
            mine = rows.fetch(using=context.alias, limit=2, offset=offset, creator=creator, reference_request=left_out)
            assert mine == theirs[offset : offset + 2]
        # Encrypted values come back Sealed, as values_list gives them, and open with their row's key.
        role_field = ReferenceRequest._meta.get_field("role")
        first = rows.fetch(using=context.alias, limit=1, offset=0, creator=creator, reference_request=left_out)[0]
        assert type(first[4]) is Sealed and role_field.open(first[4], first[0]) in {f"Role {n}" for n in range(5)}
        # Another key in the same compiled SQL: another member's rows.
        other = rows.fetch(
            using=context.alias, limit=10, offset=0, creator=members[Role.ADMIN].user.pk, reference_request=left_out
        )
        assert len(other) == 1


def _ids_by(creator):
    return ReferenceRequest.objects.filter(created_by_id=creator).values_list("pk")


def _ids_by_either(creator):
    return ReferenceRequest.objects.filter(Q(created_by_id=creator) | Q(closed_at=None, created_by_id=creator))


def test_prepared_rows_are_one_query_each(company, members, five_requests):
    creator = members[Role.RECRUITER].user.pk
    rows = PreparedRows(_ids_by, creator=_OWNER_SENTINEL)
    with company_context(company) as context:
        rows.fetch(using=context.alias, creator=creator)  # compiled
        with CaptureQueriesContext(connections[context.alias]) as queries:
            found = rows.fetch(using=context.alias, creator=creator)
            none = rows.fetch(using=context.alias, creator=-1)
        assert {pk for (pk,) in found} == {reference_request.pk for reference_request in five_requests} and none == []
        assert len(queries) == 2


def test_prepared_rows_refuse_what_they_cannot_bind(company, members, five_requests):
    by_creator = PreparedRows(_ids_by, creator=_OWNER_SENTINEL)
    unpaged_all = PreparedRows(lambda: ReferenceRequest.objects.values_list("pk"), paged=True)
    twice = PreparedRows(lambda creator: _ids_by_either(creator).values_list("pk"), creator=_OWNER_SENTINEL)
    with company_context(company) as context:
        with pytest.raises(TypeError, match="exactly these parameters"):
            by_creator.fetch(using=context.alias)
        with pytest.raises(TypeError, match="exactly these parameters"):
            by_creator.fetch(using=context.alias, creator=1, other=2)
        with pytest.raises(TypeError, match="needs a limit"):
            unpaged_all.fetch(using=context.alias)
        with pytest.raises(ValueError, match="exactly once"):
            twice.fetch(using=context.alias, creator=1)


def test_a_datetime_parameter_binds_as_the_orm_binds_it(company, members, five_requests):
    # On SQLite Django sends an aware datetime as naive UTC text, on PostgreSQL as itself:
    # the prepared query must find its place and bind a new value the same way, across
    # time zones (a boundary given in another zone is the same instant).
    since = PreparedRows(
        lambda since: ReferenceRequest.objects.filter(created_at__gte=since).order_by("created_at").values_list("pk"),
        since=datetime(1901, 1, 1, 0, 0, 0, 517_101, tzinfo=UTC),
    )
    with company_context(company) as context:
        ordered = list(ReferenceRequest.objects.order_by("created_at").values_list("pk", "created_at"))
        middle = ordered[3][1].astimezone(timezone(timedelta(hours=-5)))
        later = ReferenceRequest.objects.filter(created_at__gte=middle)
        expected = list(later.order_by("created_at").values_list("pk"))
        assert since.fetch(using=context.alias, since=middle) == expected == [(pk,) for pk, _ in ordered[3:]]
        assert since.fetch(using=context.alias, since=ordered[-1][1] + timedelta(microseconds=1)) == []
