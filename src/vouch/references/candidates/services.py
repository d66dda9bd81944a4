"""Adding, changing, finding and removing the current company's candidates and their
files. Every function needs a company context (the request's, or a command's).

Callers ask the role policy first (the views do, through ``company_action``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from django.core.files.uploadedfile import UploadedFile
from django.core.paginator import Page, Paginator
from django.db.models import Count, QuerySet

from vouch.activity import services as activity
from vouch.activity.services import Kind
from vouch.references.candidates import uploads
from vouch.references.candidates.name_index import candidates_named, has_short_word, index_name
from vouch.references.models import Attachment, Candidate
from vouch.tenancy import company_db
from vouch.vault.fields import blind_index
from vouch.vault.normalise import name_words

PER_PAGE = 50
MAX_PAGE = 100_000
EDITABLE = ("name", "email", "phone", "notes")
# What a typed phone number may contain; at least MIN_PHONE_DIGITS digits.
PHONE_QUERY = re.compile(r"\+?[\d\s().\-/]+")
MIN_PHONE_DIGITS = 6

# Activity entries name candidates and files by id only: the log outlives a deleted
# candidate, and their name or a file's name must not survive them there.


def create_candidate(name: str, email: str, phone: str = "", notes: str = "", created_by=None) -> Candidate:
    """Add a candidate; ``ValidationError`` for values a form would refuse."""
    candidate = Candidate(
        name=name.strip(),
        email=email.strip(),
        phone=phone.strip(),
        notes=notes,
        created_by_id=company_db.actor_id(created_by),
    )
    candidate.full_clean(validate_unique=False, validate_constraints=False)
    with company_db.atomic():
        candidate.save(force_insert=True)
        index_name(candidate)
        activity.log(
            Kind.CANDIDATE_ADDED, "A candidate was added.", actor=created_by, details={"candidate": str(candidate.pk)}
        )
    return candidate


def update_candidate(candidate: Candidate, *, actor=None, **values: str) -> list[str]:
    """Change some of name, email, phone and notes; returns the names of the fields
    that changed (nothing is written when none did)."""
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise TypeError(f"not editable: {sorted(unknown)}")
    cleaned = {field: value if field == "notes" else value.strip() for field, value in values.items()}
    changed = [field for field, value in cleaned.items() if getattr(candidate, field) != value]
    if not changed:
        return []
    for field in changed:
        setattr(candidate, field, cleaned[field])
    candidate.full_clean(validate_unique=False, validate_constraints=False)
    with company_db.atomic():
        candidate.save()
        if "name" in changed:
            index_name(candidate)
        activity.log(
            Kind.CANDIDATE_CHANGED,
            f"A candidate's {', '.join(changed)} changed.",
            actor=actor,
            details={"candidate": str(candidate.pk), "fields": changed},
        )
    return changed


class CandidateHasRequests(ValueError):
    """A candidate with reference requests is removed by erasure (privacy.erase_candidate),
    which takes the requests and everything under them too, not by a plain delete."""


def delete_candidate(candidate: Candidate, *, actor=None) -> int:
    """Delete a candidate with their attachments; their stored files are removed once
    the deletion commits. Returns the number of files removed."""
    if candidate.requests.exists():
        raise CandidateHasRequests(candidate.pk)
    with company_db.atomic():
        files = candidate.attachments.count()
        candidate_id = str(candidate.pk)
        candidate.delete()
        activity.log(
            Kind.CANDIDATE_DELETED,
            f"A candidate was deleted, with {files} file{'s' if files != 1 else ''}.",
            actor=actor,
            details={"candidate": candidate_id, "files": files},
        )
    return files


def add_attachment(candidate: Candidate, uploaded_file: UploadedFile, *, uploaded_by=None) -> Attachment:
    """Attach an uploaded file, stored encrypted under a random name. Raises
    ``uploads.AttachmentRefused`` (with a message for the person) for a type Vouch
    does not accept, contents that do not match the name, or a file too large."""
    kind, name = uploads.check(uploaded_file)
    attachment = Attachment(  # type: ignore[misc]  # typing debt: an Optional not narrowed here
        candidate=candidate,
        original_name=name,
        content_type=kind.content_type,
        size=uploaded_file.size,
        uploaded_by_id=company_db.actor_id(uploaded_by),
    )
    # Encrypted and written before the transaction, so the database is not held while
    # the file is; removed again if the row cannot be written.
    attachment.file.save(name, uploaded_file, save=False)
    try:
        with company_db.atomic():
            attachment.save(force_insert=True)
            activity.log(
                Kind.ATTACHMENT_ADDED,
                f"A {kind.label} was attached to a candidate.",
                actor=uploaded_by,
                details={"candidate": str(candidate.pk), "attachment": str(attachment.pk), "size": attachment.size},
            )
    except BaseException:
        attachment.file.storage.delete(attachment.file.name)
        raise
    return attachment


def delete_attachment(attachment: Attachment, *, actor=None) -> None:
    """Delete an attachment; its stored file is removed once the deletion commits."""
    with company_db.atomic():
        details = {"candidate": str(attachment.candidate_id), "attachment": str(attachment.pk)}
        attachment.delete()
        activity.log(Kind.ATTACHMENT_DELETED, "A file was removed from a candidate.", actor=actor, details=details)


def attachments_of(candidate: Candidate) -> QuerySet[Attachment]:
    return candidate.attachments.only("id", "candidate_id", "original_name", "content_type", "size", "uploaded_at")


def listing() -> QuerySet[Candidate]:
    """Candidates for a list: newest first, without the notes (not shown, not decrypted).
    Their files are counted for the rows shown only (``page_of_candidates``): counting
    them in this query grouped every candidate of the company for each page (about 15 ms
    of SQL at 10,000 candidates, on every keystroke of a search)."""
    return Candidate.objects.only("id", "created_at", "name", "email", "phone").order_by("-created_at", "-id")


def count_files(candidates: list[Candidate]) -> None:
    """Set ``file_count`` on each of these candidates, in one query."""
    counts = dict(
        Attachment.objects.filter(candidate_id__in=[candidate.pk for candidate in candidates])
        .order_by()
        .values_list("candidate_id")
        .annotate(files=Count("id"))
        .values_list("candidate_id", "files")
    )
    for candidate in candidates:
        candidate.file_count = counts.get(candidate.pk, 0)  # type: ignore[attr-defined]  # shown beside the row only


def query_kind(query: str) -> str | None:
    """How a query is looked up: "email" (a whole address), "phone" (a whole number),
    "name" (the starts of name words, ``name_index``), or None for nothing to look up.
    Every kind goes through keyed digests only; nothing is decrypted to search."""
    query = query.strip()
    if "@" in query:
        return "email"
    if PHONE_QUERY.fullmatch(query) and sum(ch.isdigit() for ch in query) >= MIN_PHONE_DIGITS:
        return "phone"
    if name_words(query, query=True):
        return "name"
    return None


def find_candidates(query: str) -> QuerySet[Candidate]:
    """Candidates whose email or phone number is exactly the query, however it is
    written (case, spaces, national or international form), or whose name the typed
    words find (``name_index.candidates_named``); none for anything else."""
    kind = query_kind(query)
    if kind == "name":
        named = candidates_named(query)
        return Candidate.objects.none() if named is None else listing().filter(pk__in=named)
    index = blind_index(kind, query) if kind else None
    if index is None:
        return Candidate.objects.none()
    return listing().filter(**{f"{kind}_index": index})


@dataclass
class CandidatePage:
    query: str
    kind: str | None  # how the query was looked up; None for no query or an unsearchable one
    page: Page

    @property
    def short_word(self) -> bool:
        """Whether a typed name has a word matched only as a whole word (under 3 characters)."""
        return self.kind == "name" and has_short_word(self.query)


def page_of_candidates(
    query: str,
    page_number: str,
    within: Callable[[QuerySet[Candidate]], QuerySet[Candidate]] | None = None,
) -> CandidatePage:
    """One page of the list, or of a search; ``within`` narrows it to the candidates the
    member reaches (``requests.access.Visibility.candidates``)."""
    query = query.strip()
    kind = query_kind(query) if query else None
    queryset = find_candidates(query) if query else listing()
    if within is not None:
        queryset = within(queryset)
    number = page_number if page_number.isascii() and page_number.isdigit() and 0 < len(page_number) <= 6 else "1"
    page = Paginator(queryset, PER_PAGE).get_page(min(int(number), MAX_PAGE))
    page.object_list = list(page.object_list)
    count_files(page.object_list)
    return CandidatePage(query=query, kind=kind, page=page)
