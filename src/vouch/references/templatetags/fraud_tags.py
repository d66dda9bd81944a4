"""Template helpers for the fraud flags partial (``references/requests/_flags.html``)."""

from __future__ import annotations

from django import template

from vouch.accounts import user_service
from vouch.references.fraud import checks as fraud
from vouch.references.request_models import Severity

register = template.Library()


@register.filter
def flag_title(flag) -> str:
    """What the flag's kind is called ("Same device as the candidate")."""
    return fraud.title_of(flag.kind)


@register.filter
def flag_reviewer(flag) -> str:
    """The name (or email) of the member who reviewed the flag; "" if unknown. Flags
    from :func:`fraud.flags_of` carry it already; any other flag costs one lookup."""
    if not flag.reviewed_by_id:
        return ""
    known = getattr(flag, "reviewer_name", None)
    if known is not None:
        return known
    return user_service.member_names([flag.reviewed_by_id]).get(flag.reviewed_by_id, "")


@register.filter
def severity_label(value) -> str:
    """ "High", "Medium" or "Low" for a severity number."""
    return Severity(value).label if value in Severity.values else ""


@register.filter
def group_referees(group) -> str:
    """The names of the referees a group between referees is about ("Ann, Bob and Cem")."""
    names = getattr(group, "referee_names", None) or []
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + (f" and {names[-1]}" if names else "")
