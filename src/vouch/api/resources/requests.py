"""Reference requests: create one (with the ATS's own ids), read one with its references,
list with the dashboard's filters and a cursor, cancel, resend the candidate's link.
Scopes ``requests:read`` and ``requests:write``.

Input is checked by the member page's own form (``RequestForm``) and the work done by the
workflow's flows, so the API and the pages cannot drift apart."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, cast

from django.db.models import Q
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import ValidationError
from pydantic import BaseModel, ConfigDict

from vouch.accounts import policy
from vouch.accounts.policy import Action
from vouch.api import pagination
from vouch.api.auth import need
from vouch.core.db import PreparedRows
from vouch.references.flows import WorkflowError
from vouch.references.request_models import (
    MAX_REFEREES,
    Reference,
    ReferenceRequest,
    RequestStatus,
)
from vouch.references.requests import flows as request_flows
from vouch.references.requests import listing
from vouch.references.requests.access import prepared_per_view, request_or_404, visibility, visible_requests
from vouch.references.requests.forms import RequestForm
from vouch.tenancy import company_db
from vouch.vault.fields import EncryptedField

router = Router()
READ, WRITE = "requests:read", "requests:write"
PAGE_MAX = 100


class CandidateIn(Schema):
    name: str = Field(max_length=200)
    email: str = Field(max_length=254)
    phone: str = Field("", max_length=40)


class RequestIn(Schema):
    candidate: CandidateIn
    role: str = Field(max_length=200)
    questionnaire: str = Field(max_length=100, description="An id from GET /questionnaires")
    deadline: date
    referees_required: int = Field(2, ge=1, le=MAX_REFEREES)
    guidance: str = Field("", max_length=2000)
    work_email_required: bool = False
    external_id: str = Field("", max_length=200, description="The ATS's own id of this check")
    external_url: str = Field("", max_length=500, description="The ATS's page of this check (https)")


class Out(BaseModel):
    """An answer's schema: plain pydantic, as the views answer plain dicts. ninja's
    ``Schema`` wraps every object it validates (each row of a list, each nested one) to
    read Django model attributes, which a dict does not need: a third of a list's
    validation went there."""

    model_config = ConfigDict(from_attributes=True)


class CandidateOut(Out):
    id: uuid.UUID
    name: str
    email: str


class ReferenceOut(Out):
    id: uuid.UUID
    status: str
    name: str
    relationship: str
    organisation: str
    nominated_at: datetime
    submitted_at: datetime | None
    declined_at: datetime | None


class RequestOut(Out):
    id: uuid.UUID
    status: str
    role: str
    candidate: CandidateOut
    referees_required: int
    references_completed: int
    open_flags: int
    deadline: datetime
    created_at: datetime
    closed_at: datetime | None
    external_id: str
    external_url: str
    references: list[ReferenceOut]


class RequestSummary(Out):
    id: uuid.UUID
    status: str
    references_completed: int
    referees_required: int
    open_flags: int
    deadline: datetime
    created_at: datetime
    external_id: str


SUMMARY_FIELDS = tuple(RequestSummary.model_fields)
# The list's first page without a filter (what an ATS polls), for everyone or for one
# creator: its SQL compiled once per engine (vouch.core.db). Compiling the queryset was
# about a sixth of the call.
_FIRST_PAGE = prepared_per_view(
    lambda reference_requests: reference_requests.order_by(*listing.ORDER).values_list(*SUMMARY_FIELDS), paged=True
)


class RequestPage(Out):
    items: list[RequestSummary]
    next_cursor: str | None


BATCH_MAX = 50


class BatchIn(Schema):
    requests: list[RequestIn] = Field(min_length=1, max_length=BATCH_MAX)


class BatchItem(Schema):
    index: int
    status: int
    request: RequestOut | None
    errors: list[dict[str, Any]]


class BatchOut(Schema):
    created: int
    results: list[BatchItem]


class CancelIn(Schema):
    reason: str = Field("", max_length=500)


REFERENCE_FIELDS = (
    "id",
    "status",
    "name",
    "relationship",
    "organisation",
    "nominated_at",
    "submitted_at",
    "declined_at",
)
SEALED_FIELDS = ("name", "organisation")  # encrypted: read as ciphertext, opened below
# Compiled once (vouch.core.db): every read of a request lists its references.
_references_of = PreparedRows(
    lambda request: (
        Reference.objects.filter(request_id=request).order_by("nominated_at", "id").values_list(*REFERENCE_FIELDS)
    ),
    request=uuid.UUID(int=0x5E171E1),
)


def _references(reference_request: ReferenceRequest) -> list[dict[str, Any]]:
    rows = _references_of.fetch(using=company_db.alias(), request=reference_request.pk)
    sealed = {name: cast(EncryptedField, Reference._meta.get_field(name)) for name in SEALED_FIELDS}
    found = []
    for row in rows:
        item = dict(zip(REFERENCE_FIELDS, row, strict=True))
        for name, field in sealed.items():
            item[name] = field.open(item[name], item["id"])
        found.append(item)
    return found


def _out(reference_request: ReferenceRequest, *, new: bool = False) -> dict[str, Any]:
    """The request as ``RequestOut`` reads it: a plain dict, which ninja validates once
    against the schema (a ``RequestOut`` made here would be validated twice)."""
    candidate = reference_request.candidate
    return {
        "id": reference_request.pk,
        "status": reference_request.status,
        "role": reference_request.role,
        "candidate": {"id": candidate.pk, "name": candidate.name, "email": candidate.email},
        "referees_required": reference_request.referees_required,
        "references_completed": reference_request.references_completed,
        "open_flags": reference_request.open_flags,
        "deadline": reference_request.deadline,
        "created_at": reference_request.created_at,
        "closed_at": reference_request.closed_at,
        "external_id": reference_request.external_id,
        "external_url": reference_request.external_url,
        # A request just created has no references yet: nothing to read.
        "references": [] if new else _references(reference_request),
    }


def _invalid(errors: dict[str, list[str]]) -> ValidationError:
    return ValidationError(
        [
            {"loc": ["body", field], "msg": message, "type": "invalid"}
            for field, messages in errors.items()
            for message in messages
        ]
    )


def create(request: HttpRequest, data: RequestIn) -> ReferenceRequest:
    """Check ``data`` with the member page's form and create through the flow."""
    policy.require(policy.can(request.membership, Action.CREATE_REQUEST))  # type: ignore[attr-defined]
    if data.external_url and not data.external_url.startswith("https://"):
        raise _invalid({"external_url": ["Give an https:// address."]})
    form = RequestForm(
        {
            "name": data.candidate.name,
            "email": data.candidate.email,
            "phone": data.candidate.phone,
            "role": data.role,
            "questionnaire": data.questionnaire,
            "deadline": data.deadline.isoformat(),
            "referees_required": str(data.referees_required),
            "guidance": data.guidance,
            "work_email_required": "on" if data.work_email_required else "",
        },
        # No settings: they only fill a blank form's initial values, and this one is bound.
    )
    if not form.is_valid():
        raise _invalid({field: [str(error) for error in errors] for field, errors in form.errors.items()})
    try:
        return request_flows.create_request(
            actor=request.user,
            **form.cleaned_data,
            external_id=data.external_id,
            external_url=data.external_url,
            # The candidate's email and the request's reminders by the background worker:
            # an ATS creating in bulk does not wait for a mail server (nothing is lost:
            # the email is recorded with the request).
            in_background=True,
        )
    except WorkflowError as exc:
        raise _invalid({"__all__": [str(exc)]}) from None


@router.post("", response={201: RequestOut}, summary="Create a reference request (requests:write)")
def create_request(request: HttpRequest, data: RequestIn):
    """Creates the request; the candidate is emailed their link, as by the dashboard's
    form, by the background worker within seconds of the answer. Send an
    ``Idempotency-Key`` so that a retry does not create it twice."""
    need(request, WRITE)
    return Status(201, _out(create(request, data), new=True))


@router.post("/batch", response=BatchOut, summary="Create many reference requests (requests:write)")
def create_many(request: HttpRequest, data: BatchIn):
    """Each item is created as by ``POST /requests`` (its own transaction, its own email),
    or refused with its errors; one refused item does not stop the others. Answers 200
    with one result per item, in order."""
    need(request, WRITE)
    results = []
    for index, item in enumerate(data.requests):
        try:
            created = create(request, item)
        except ValidationError as refused:
            results.append(BatchItem(index=index, status=422, request=None, errors=refused.errors))
        else:
            results.append(BatchItem(index=index, status=201, request=RequestOut(**_out(created, new=True)), errors=[]))
    return BatchOut(created=sum(1 for result in results if result.status == 201), results=results)


class ListFilters(Schema):
    status: RequestStatus | None = None
    external_id: str | None = Field(None, max_length=200)
    flagged: bool = False
    created_from: date | None = None
    created_to: date | None = None
    q: str = Field("", max_length=200, description="A candidate's email or name (as on the dashboard)")
    cursor: str | None = Field(None, max_length=200)
    limit: int = Field(25, ge=1, le=PAGE_MAX)


_NO_FILTER = ListFilters.model_validate({}).model_dump(exclude={"limit"})


def _cursor(row: dict[str, Any]) -> str:
    return pagination.encode(row["created_at"].isoformat(), row["id"])


def _after(cursor: str) -> Q:
    try:
        moment, pk = pagination.decode(cursor, 2)
        created, last = datetime.fromisoformat(moment), uuid.UUID(pk)
    except ValueError:
        raise _invalid({"cursor": ["Not a cursor this API gave."]}) from None
    return Q(created_at__lt=created) | Q(created_at=created, id__lt=last)


@router.get("", response=RequestPage, summary="List reference requests (requests:read)")
def list_requests(request: HttpRequest, filters: Query[ListFilters]):
    """Newest first, with the dashboard's filters; ``external_id`` finds an ATS's own
    check. Pass ``next_cursor`` back as ``cursor`` for the next page."""
    need(request, READ)
    if filters.model_dump(exclude={"limit"}) == _NO_FILTER:
        page, more = _first_page(request, filters.limit)
        return {"items": page, "next_cursor": _cursor(page[-1]) if more and page else None}
    chosen = listing.Filters(
        status=filters.status or "",
        flagged=filters.flagged,
        created_from=filters.created_from,
        created_to=filters.created_to,
        query=filters.q.strip(),
    )
    rows = listing.filtered(visible_requests(request), chosen)  # type: ignore[arg-type]
    if filters.external_id is not None:
        rows = rows.filter(external_id=filters.external_id)
    if filters.cursor:
        rows = rows.filter(_after(filters.cursor))
    # Only what a summary shows, as dicts (no model instances; the role and guidance are
    # not decrypted for a list), validated once by ninja against RequestPage.
    page, more = pagination.take(rows.values(*SUMMARY_FIELDS), filters.limit)
    return {
        "items": page,
        "next_cursor": _cursor(page[-1]) if more and page else None,
    }


def _first_page(request: HttpRequest, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """What ``pagination.take`` gives for the unfiltered list, through ``_FIRST_PAGE``."""
    seen = visibility(request)  # type: ignore[arg-type]
    if not seen.everything and seen.creator_id is None:
        return [], False
    own = not seen.everything
    creator = {"creator": seen.creator_id} if own else {}
    rows = _FIRST_PAGE[own].fetch(using=company_db.alias(), limit=limit + 1, offset=0, **creator)
    return [dict(zip(SUMMARY_FIELDS, row, strict=True)) for row in rows[:limit]], len(rows) > limit


@router.get("/{request_id}", response=RequestOut, summary="Read a reference request (requests:read)")
def read_request(request: HttpRequest, request_id: uuid.UUID):
    need(request, READ)
    return _out(request_or_404(request, request_id, questionnaire=False))  # type: ignore[arg-type]


@router.post("/{request_id}/cancel", response=RequestOut, summary="Cancel a reference request (requests:write)")
def cancel_request(request: HttpRequest, request_id: uuid.UUID, data: CancelIn | None = None):
    """Closes the request and its open references; their links stop working."""
    need(request, WRITE)
    policy.require(policy.can(request.membership, Action.CHANGE_REQUESTS))  # type: ignore[attr-defined]
    reference_request = request_or_404(request, request_id)  # type: ignore[arg-type]
    reason = " ".join((data.reason if data else "").split())
    request_flows.cancel_request(reference_request, actor=request.user, reason=reason)
    return _out(request_or_404(request, request_id, questionnaire=False))  # type: ignore[arg-type]


@router.post("/{request_id}/resend", response=RequestOut, summary="Resend the candidate's link (requests:write)")
def resend_request(request: HttpRequest, request_id: uuid.UUID):
    """Emails the candidate a new link; the earlier one stops working."""
    need(request, WRITE)
    policy.require(policy.can(request.membership, Action.CHANGE_REQUESTS))  # type: ignore[attr-defined]
    reference_request = request_or_404(request, request_id)  # type: ignore[arg-type]
    with company_db.atomic():
        request_flows.send_candidate_link(reference_request, actor=request.user)
    return _out(request_or_404(request, request_id, questionnaire=False))  # type: ignore[arg-type]
