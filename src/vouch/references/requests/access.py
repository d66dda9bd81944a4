"""Which requests and candidates a member may reach: the one place member-facing views
find them, so the "recruiters see only their own" setting cannot be forgotten by one
page. A request or candidate outside the member's view is a 404, recorded like any
other miss."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db import router
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from vouch.accounts import policy
from vouch.core.db import PreparedLookup, PreparedRows
from vouch.core.requests import CompanyRequest
from vouch.references.models import Candidate
from vouch.references.request_models import Reference, ReferenceRequest, WorkflowSettings
from vouch.tenancy.lookups import company_object_or_404, record_miss


@dataclass(frozen=True)
class Visibility:
    """Which of the company's requests a member's lists show: all of them
    (``everything``), only those ``creator_id`` created, or none (neither)."""

    everything: bool
    creator_id: int | None = None

    def of(self, reference_requests: QuerySet[ReferenceRequest]) -> QuerySet[ReferenceRequest]:
        if self.everything:
            return reference_requests
        if self.creator_id is None:
            return reference_requests.none()
        return reference_requests.filter(created_by_id=self.creator_id)

    def admits(self, reference_request: ReferenceRequest) -> bool:
        """Whether ``of`` would keep this request (one row in hand: no query)."""
        if self.everything:
            return True
        return self.creator_id is not None and reference_request.created_by_id == self.creator_id

    def candidates(self, candidates: QuerySet[Candidate]) -> QuerySet[Candidate]:
        """The candidates a member limited to their own requests reaches: those with at
        least one of their requests (shared ones included: it is one person, one record),
        and those with no request yet whom they added. A candidate whose every request
        is another member's, or nobody's yet but added by someone else, is out of reach."""
        if self.everything:
            return candidates
        if self.creator_id is None:
            return candidates.none()
        reference_requests = ReferenceRequest.objects.filter(candidate=OuterRef("pk"))
        own = Exists(reference_requests.filter(created_by_id=self.creator_id))
        added_unrequested = Q(created_by_id=self.creator_id) & ~Exists(reference_requests)
        return candidates.filter(own | added_unrequested)


# A value no user id has: where a prepared query takes the creator's id (vouch.core.db).
CREATOR_SENTINEL = -0x5E171E1


def prepared_per_view(
    query: Callable[..., QuerySet], *, paged: bool = False, **sentinels: Any
) -> dict[bool, PreparedRows]:
    """``query`` (of the requests a member sees, then of the parameters ``sentinels``
    names) prepared for the two views that are one query each: every request (False)
    and one creator's (True, with the parameter ``creator``)."""
    everything = Visibility(everything=True)
    return {
        False: PreparedRows(
            lambda **values: query(everything.of(ReferenceRequest.objects.all()), **values), paged=paged, **sentinels
        ),
        True: PreparedRows(
            lambda creator, **values: query(
                Visibility(everything=False, creator_id=creator).of(ReferenceRequest.objects.all()), **values
            ),
            paged=paged,
            creator=CREATOR_SENTINEL,
            **sentinels,
        ),
    }


def visibility(request: CompanyRequest, settings: WorkflowSettings | None = None) -> Visibility:
    membership = request.membership
    # The company's "recruiters see all" setting decides for recruiters only: anyone
    # else's view does not read it.
    if policy.sees_all_requests(membership, recruiters_see_all=False):
        return Visibility(everything=True)
    settings = settings or WorkflowSettings.for_reading()
    if policy.sees_all_requests(membership, settings.recruiters_see_all):
        return Visibility(everything=True)
    if not policy.can(membership, policy.Action.VIEW_REQUESTS):
        return Visibility(everything=False)
    return Visibility(everything=False, creator_id=membership.user_id)


def visible_requests(request: CompanyRequest, settings: WorkflowSettings | None = None) -> QuerySet[ReferenceRequest]:
    return visibility(request, settings).of(ReferenceRequest.objects.all())


def visible_candidates(request: CompanyRequest, settings: WorkflowSettings | None = None) -> QuerySet[Candidate]:
    return visibility(request, settings).candidates(Candidate.objects.all())


def candidate_or_404(request: CompanyRequest, candidate_id: UUID) -> Candidate:
    return company_object_or_404(request, visible_candidates(request), pk=candidate_id)


# Compiled once (vouch.core.db): the API reads a request by its id on every call.
_request_with_candidate = PreparedLookup(lambda: ReferenceRequest.objects.select_related("candidate"))


def request_or_404(request: CompanyRequest, request_id: UUID, *, questionnaire: bool = True) -> ReferenceRequest:
    """The request, with its candidate and questionnaire version, if the member may see
    it; otherwise a 404, recorded. ``questionnaire=False``: without the questionnaire (a
    reader that does not show the questions), read through SQL compiled once and the
    member's view applied to the row: the same answer as the queryset's."""
    if questionnaire:
        related = visible_requests(request).select_related("candidate", "questionnaire_version")
        return company_object_or_404(request, related, pk=request_id)
    found = None
    if request.company is not None:
        found = _request_with_candidate.get(request_id, using=router.db_for_read(ReferenceRequest))
    if found is None or not visibility(request).admits(found):
        record_miss(request, ReferenceRequest)
        raise Http404
    return found


def reference_or_404(request: CompanyRequest, request_id: UUID, reference_id: UUID) -> Reference:
    """A reference, reachable only under its own request (which the member must see)."""
    reference_request = request_or_404(request, request_id)
    return company_object_or_404(
        request, Reference.objects.select_related("request"), pk=reference_id, request=reference_request
    )
