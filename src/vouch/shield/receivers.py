"""Refusals noticed elsewhere, fed into intrusion detection: the security events other
apps already record (CSRF failures, refused object lookups, refused pages, refused
private links, sign-in holds) reach ``detection.detect`` through ``vouch.audit.observers``,
occurrence by occurrence, even those the sampling only counts."""

from __future__ import annotations

from vouch.audit.models import EventAction
from vouch.audit.observers import Occurrence, observe
from vouch.shield import detection


def point_for(occurrence: Occurrence) -> str | None:
    details = occurrence.details
    if occurrence.action == EventAction.AUTHZ_FAIL:
        if details.get("reason") == "csrf":
            return "csrf"
        if "object" in details:  # vouch.tenancy.lookups: an id not in the company (IDOR probe)
            return "cross_company"
        return "forbidden"
    if occurrence.action == EventAction.LINK_INVALID and details.get("reason") == "unknown":
        return "token_guess"  # a real link that ended is not a guess
    if occurrence.action in (EventAction.AUTHN_LOGIN_LOCK, EventAction.AUTHN_TOKEN_REUSE):
        return "guessing"
    return None


def heard(occurrence: Occurrence) -> None:
    if occurrence.request is None:
        return
    point = point_for(occurrence)
    if point is not None:
        detection.detect(occurrence.request, point)


def connect() -> None:
    observe(heard)
