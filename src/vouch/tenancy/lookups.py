"""Loading the object a URL names, for the current company only.

Every URL that carries an object id goes through :func:`company_object_or_404`. A
miss is answered with 404 whatever the reason (no such row, or another company's
row): the answer must not tell the two apart. A miss on an object URL is also what
an id-guessing attack looks like (an IDOR probe), so each one is recorded as a
blocked ``authz_fail`` security event naming the route, never the raw path.

Company-app models (``VOUCH_COMPANY_APPS``) are scoped by the company context: the
query can only reach the current company's database. Control-database models hold
every company's rows side by side, so they must come as a queryset the caller has
already narrowed to the current company; a bare control model is refused."""

from __future__ import annotations

import logging
from typing import TypeVar

from django.core.exceptions import ValidationError
from django.db import models
from django.http import Http404
from django.shortcuts import get_object_or_404

from vouch.audit import record
from vouch.audit.models import EventAction, Outcome
from vouch.core.requests import VouchRequest
from vouch.tenancy.router import is_company_app

log = logging.getLogger("vouch.tenancy")


def _model_of(model_or_queryset) -> type[models.Model]:
    if isinstance(model_or_queryset, models.QuerySet):
        return model_or_queryset.model
    if isinstance(model_or_queryset, models.Manager):
        return model_or_queryset.model
    return model_or_queryset


def record_miss(request: VouchRequest, model: type[models.Model]) -> None:
    """Record a refused object lookup (``authz_fail``, blocked) for ``request``'s route.

    Never raises: the caller answers 404 whatever happens here. Call it outside a
    transaction on the control database, or the event rolls back with the request."""

    match = getattr(request, "resolver_match", None)
    route = (match.view_name if match else "") or "unknown"
    try:
        record(
            EventAction.AUTHZ_FAIL,
            request=request,
            target=f"route:{route}",
            outcome=Outcome.BLOCKED,
            details={"object": model._meta.label, "method": request.method[:10]},  # type: ignore[index]  # typing debt: an Optional not narrowed here
        )
    except Exception:  # noqa: BLE001 - the 404 must still be answered
        log.exception("could not record a refused object lookup")


_M = TypeVar("_M", bound=models.Model)


def company_object_or_404(request: VouchRequest, model_or_queryset: type[_M] | models.QuerySet[_M], /, **lookup) -> _M:
    """``get_object_or_404`` for an object URL of the current company.

    ``model_or_queryset`` is a company-app model (or queryset of one), or a
    control-database queryset already filtered to ``request.company``."""
    model = _model_of(model_or_queryset)
    if not is_company_app(model._meta.app_label) and not isinstance(model_or_queryset, models.QuerySet):
        # A control model's rows belong to every company: only a queryset the caller
        # narrowed to the current company may be searched.
        raise TypeError(f"{model._meta.label} is a control-database model: pass a queryset scoped to the company")
    if request.company is None:
        raise Http404
    try:
        return get_object_or_404(model_or_queryset, **lookup)
    except (Http404, ValueError, ValidationError):
        # A malformed id (a value the field cannot hold) is a miss too, not a 500.
        record_miss(request, model)
        raise Http404 from None
