"""The request list as CSV: the rows the list's filters find, written as they are read
(a generator under a streamed response), safe to open in a spreadsheet.

A cell that starts with = + - @ or a tab or carriage return is a formula to Excel,
LibreOffice and Google Sheets ("CSV injection"): a candidate named
``=HYPERLINK(...)`` would run on the recruiter's machine. Such a cell gets a leading
apostrophe, which spreadsheets show as text (OWASP's advice)."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.db.models import QuerySet

from vouch.accounts import user_service
from vouch.references.desk.status import short_line
from vouch.references.request_models import ReferenceRequest, RequestStatus

HEADER = (
    "Candidate",
    "Candidate email",
    "Role",
    "Status",
    "What is needed",
    "Requested by",
    "References completed",
    "References asked for",
    "Open flags",
    "Deadline",
    "Created",
    "Closed",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 500


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


class _Line:
    """A file-like that hands back what csv.writer wrote (one row at a time)."""

    def write(self, value: str) -> str:
        return value


def lines(requests: QuerySet[ReferenceRequest], names: dict[int, str]) -> Iterator[str]:
    """The CSV's lines: the header, then a row per request, read ``CHUNK`` at a time."""
    writer = csv.writer(_Line())
    labels = dict(RequestStatus.choices)
    yield writer.writerow(HEADER)
    rows = requests.select_related("candidate").only(
        "id",
        "created_at",
        "created_by_id",
        "role",
        "status",
        "references_completed",
        "referees_required",
        "open_flags",
        "deadline",
        "closed_at",
        "candidate__id",
        "candidate__name",
        "candidate__email",
    )
    for row in rows.iterator(chunk_size=CHUNK):
        requested_by = names.get(row.created_by_id) if row.created_by_id else ""
        if row.created_by_id and requested_by is None:
            requested_by = user_service.member_names([row.created_by_id]).get(row.created_by_id, "")
            names[row.created_by_id] = requested_by
        cells = (
            row.candidate.name,
            row.candidate.email,
            row.role,
            labels.get(row.status, row.status),
            short_line(row.status, row.references_completed, row.referees_required),
            requested_by or "",
            row.references_completed,
            row.referees_required,
            row.open_flags,
            row.deadline.date().isoformat(),
            row.created_at.date().isoformat(),
            row.closed_at.date().isoformat() if row.closed_at else "",
        )
        yield writer.writerow([safe_cell(cell) for cell in cells])
