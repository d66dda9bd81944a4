"""Writing and reading the current company's activity log."""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.core.paginator import Page, Paginator
from django.db import models, router

from vouch.activity.models import Entry
from vouch.core.context import company_context
from vouch.core.db import PreparedRows
from vouch.core.filters import DateRangeForm, within_days
from vouch.tenancy import company_db

PER_PAGE = 50
MAX_PAGE = 100_000


class Kind(models.TextChoices):
    """What happened. Entries store the value; the filter offers these."""

    MEMBER_INVITED = "member_invited", "Member invited"
    INVITATION_REVOKED = "invitation_revoked", "Invitation withdrawn"
    INVITATION_ACCEPTED = "invitation_accepted", "Invitation accepted"
    ROLE_CHANGED = "role_changed", "Role changed"
    MEMBER_DEACTIVATED = "member_deactivated", "Member deactivated"
    MEMBER_REACTIVATED = "member_reactivated", "Member reactivated"
    SETTINGS_CHANGED = "settings_changed", "Company settings changed"
    CANDIDATE_ADDED = "candidate_added", "Candidate added"
    CANDIDATE_CHANGED = "candidate_changed", "Candidate changed"
    CANDIDATE_DELETED = "candidate_deleted", "Candidate deleted"
    ATTACHMENT_ADDED = "attachment_added", "File attached"
    ATTACHMENT_DELETED = "attachment_deleted", "File removed"
    QUESTIONNAIRE_CREATED = "questionnaire_created", "Questionnaire created"
    QUESTIONNAIRE_VERSION_ADDED = "questionnaire_version_added", "Questionnaire version saved"
    QUESTIONNAIRE_CHANGED = "questionnaire_changed", "Questionnaire renamed"
    QUESTIONNAIRE_ARCHIVED = "questionnaire_archived", "Questionnaire archived"
    QUESTIONNAIRE_RESTORED = "questionnaire_restored", "Questionnaire restored"
    REQUEST_CREATED = "request_created", "Reference request created"
    REQUEST_DELETED = "request_deleted", "Reference request deleted"
    REQUEST_CANCELLED = "request_cancelled", "Reference request cancelled"
    FLAG_REVIEWED = "flag_reviewed", "Fraud flag reviewed"
    REPORT_DOWNLOADED = "report_downloaded", "Report downloaded"
    REQUESTS_EXPORTED = "requests_exported", "Request list exported"
    CANDIDATE_EXPORTED = "candidate_exported", "Candidate data exported"
    CANDIDATE_ERASED = "candidate_erased", "Candidate data erased"
    WORKFLOW_SETTINGS_CHANGED = "workflow_settings_changed", "Workflow settings changed"
    RETENTION_DELETED = "retention_deleted", "Old requests deleted"
    DATA_RESTORED = "data_restored", "Company data restored from a backup"
    DATA_RESTORE_ROLLED_BACK = "data_restore_rolled_back", "Restore rolled back"


def log(action: str, summary: str, *, actor=None, details: dict | None = None) -> Entry:
    """Add an entry to the current company's log (needs a company context)."""
    return Entry.objects.create(
        action=str(action),
        summary=summary[:300],
        actor_id=company_db.actor_id(actor),
        actor_name=(getattr(actor, "full_name", "") or getattr(actor, "email", "") or "")[:150],
        details=details or {},
    )


def log_for(company, action: str, summary: str, *, actor=None, details: dict | None = None) -> Entry:
    """:func:`log` into ``company``'s log, whatever company is current (if any).

    For control-plane flows that act on a company named by their data (an accepted
    invitation) rather than by the request's current company."""

    with company_context(company):
        return log(action, summary, actor=actor, details=details)


def log_after_commit(company, action: str, summary: str, *, actor=None, details: dict | None = None) -> None:
    """:func:`log_for` once the control-database transaction in progress commits.

    Member and invitation changes live in the control database, the log in the
    company's: writing the entry only after the change has committed means a rolled
    back change never shows up as done. A failure to write the entry is logged, not
    raised: the change itself has already happened."""
    from django.db import transaction

    transaction.on_commit(
        lambda: log_for(company, action, summary, actor=actor, details=details),
        robust=True,
    )


def entries():
    return Entry.objects.all()


# The dashboard's latest lines: the queryset and five instances with three encrypted
# columns each cost more than a page's other reads together (`make bench`).
_LATEST = PreparedRows(lambda: Entry.objects.values_list("pk", "occurred_at", "summary"), paged=True)


def latest_lines(limit: int) -> list[tuple[datetime, str]]:
    """The moment and summary of the current company's latest ``limit`` entries, newest
    first (the model's order)."""
    rows = _LATEST.fetch(limit=limit, using=router.db_for_read(Entry))
    summary = Entry._meta.get_field("summary")
    return [(at, summary.open(sealed, pk)) for pk, at, sealed in rows]


def label(action: str) -> str:
    try:
        return Kind(action).label
    except ValueError:
        return action


class EntryFilterForm(DateRangeForm):
    action = forms.ChoiceField(required=False, choices=[("", "Any action"), *Kind.choices])
    field_order = ["action", "date_from", "date_to"]


def filtered(form: EntryFilterForm):
    """The current company's entries narrowed by a valid filter form."""
    queryset = entries()
    data = form.cleaned_data
    if data.get("action"):
        queryset = queryset.filter(action=data["action"])
    return within_days(queryset, data)


def page_of_entries(params) -> tuple[EntryFilterForm, Page | None]:
    """The filter form and the requested page, or None when the filters are invalid.

    The scope is the current company's database; the parameters can only narrow it."""
    form = EntryFilterForm(params)
    if not form.is_valid():
        return form, None
    paginator = Paginator(filtered(form).order_by("-occurred_at", "-id"), PER_PAGE)
    number = params.get("page", "1")
    number = int(number) if number.isascii() and number.isdigit() and 0 < len(number) <= 6 else 1
    return form, paginator.get_page(min(number, MAX_PAGE))
