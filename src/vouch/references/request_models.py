"""The reference-check workflow's records: a request for one candidate's references,
the referees the candidate nominates, what each of them does, the fraud flags raised
on them, the timeline, the generated report, and the company's workflow settings.

Company data (``VOUCH_COMPANY_APPS``): every field that says something about a person
(names, contact details, answers, reasons, addresses, device identifiers, review
comments, timeline summaries) is encrypted with the company's key; comparisons the
fraud checks need go through blind indexes. Statuses, dates and counts are plain so
the dashboard can filter and sort without decrypting. Members are referred to by
their control-plane user id (no cross-database foreign key)."""

from __future__ import annotations

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, router
from django.utils import timezone

from vouch.core.db import PreparedLookup
from vouch.vault.fields import (
    BlindIndexField,
    EncryptedCharField,
    EncryptedEmailField,
    EncryptedJSONField,
    EncryptedTextField,
)
from vouch.vault.files import encrypted_storage

MAX_REFEREES = 5


class RequestStatus(models.TextChoices):
    AWAITING_CANDIDATE = "awaiting_candidate", "Awaiting candidate"
    AWAITING_REFEREES = "awaiting_referees", "Awaiting referees"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


OPEN_REQUEST_STATUSES = (RequestStatus.AWAITING_CANDIDATE, RequestStatus.AWAITING_REFEREES, RequestStatus.IN_PROGRESS)
CLOSED_REQUEST_STATUSES = (RequestStatus.COMPLETED, RequestStatus.EXPIRED, RequestStatus.CANCELLED)


class ReferenceStatus(models.TextChoices):
    INVITED = "invited", "Invited"
    OPENED = "opened", "Opened"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    DECLINED = "declined", "Declined"
    REPLACED = "replaced", "Replaced"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


# A reference the referee can still act on.
OPEN_REFERENCE_STATUSES = (ReferenceStatus.INVITED, ReferenceStatus.OPENED, ReferenceStatus.IN_PROGRESS)
# A reference that counts towards the number the request asked for (not given up on).
ACTIVE_REFERENCE_STATUSES = (*OPEN_REFERENCE_STATUSES, ReferenceStatus.COMPLETED)


class Relationship(models.TextChoices):
    MANAGER = "manager", "Manager"
    PEER = "peer", "Peer"
    REPORT = "report", "Direct report"
    CLIENT = "client", "Client"


class ReferenceRequest(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed by the composite indexes below, which lead with these columns.
    created_at = models.DateTimeField(auto_now_add=True)
    # The member who asked (a recruiter sees "only their own" by this, when the company
    # is set so).
    created_by_id = models.BigIntegerField(null=True, blank=True)
    candidate = models.ForeignKey("references.Candidate", on_delete=models.PROTECT, related_name="requests")
    role = EncryptedCharField(max_length=200)
    questionnaire_version = models.ForeignKey(
        "references.QuestionnaireVersion", on_delete=models.PROTECT, related_name="requests"
    )
    referees_required = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1), MaxValueValidator(MAX_REFEREES)]
    )
    guidance = EncryptedTextField(blank=True, default="")
    work_email_required = models.BooleanField(default=False)
    deadline = models.DateTimeField(db_index=True)
    status = models.CharField(
        max_length=24, choices=RequestStatus.choices, default=RequestStatus.AWAITING_CANDIDATE, db_index=True
    )
    candidate_opened_at = models.DateTimeField(null=True, blank=True)
    candidate_confirmed_at = models.DateTimeField(null=True, blank=True)
    # When it reached completed, expired or cancelled: retention counts from here.
    closed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Kept in step by requests.flows.refresh_status so the dashboard lists without joins.
    references_completed = models.PositiveSmallIntegerField(default=0)
    open_flags = models.PositiveSmallIntegerField(default=0, db_index=True)
    flag_count = models.PositiveSmallIntegerField(default=0)
    candidate_reminders_sent = models.PositiveSmallIntegerField(default=0)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    # The applicant tracking system's own id and page for this check (vouch.api): an
    # integration finds its requests by them. Opaque ids of the ATS, not personal data.
    external_id = models.CharField(max_length=200, blank=True, default="")
    external_url = models.URLField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="request_status_created_idx"),
            models.Index(fields=["external_id"], name="request_external_id_idx"),
            # The dashboard's "deadline in the next two days": the open statuses' deadlines.
            models.Index(fields=["status", "deadline"], name="request_status_deadline_idx"),
            # Its "completed reports you have not opened", newest first.
            models.Index(fields=["status", "-closed_at", "-id"], name="request_status_closed_idx"),
            # The dashboard's order (and its recruiter filter, and a recruiter limited to
            # their own requests) read in index order: no sort of every matching row.
            models.Index(fields=["-created_at", "-id"], name="request_created_idx"),
            models.Index(fields=["created_by_id", "-created_at", "-id"], name="request_creator_created_idx"),
        ]

    def __str__(self) -> str:
        return f"Reference request {self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_REQUEST_STATUSES

    @property
    def candidate_has_acted(self) -> bool:
        """Once the candidate has confirmed or nominated, the request can only be cancelled."""
        return self.candidate_confirmed_at is not None or self.references.exists()


class Reference(models.Model):
    """One referee nominated for one request, and what they answered."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.ForeignKey(ReferenceRequest, on_delete=models.CASCADE, related_name="references")
    # Indexed with nominated_at (Meta.indexes), which serves lookups by status alone too.
    status = models.CharField(max_length=16, choices=ReferenceStatus.choices, default=ReferenceStatus.INVITED)
    # As nominated by the candidate.
    name = EncryptedCharField(max_length=200)
    email = EncryptedEmailField()
    phone = EncryptedCharField(max_length=40, blank=True, default="")
    relationship = models.CharField(max_length=16, choices=Relationship.choices)
    organisation = EncryptedCharField(max_length=200)
    worked_from = EncryptedCharField(max_length=10)  # "YYYY-MM"
    worked_to = EncryptedCharField(max_length=10, blank=True, default="")  # "YYYY-MM"; blank: still together
    email_index = BlindIndexField(source="email", kind="email")
    phone_index = BlindIndexField(source="phone", kind="phone")
    nominated_at = models.DateTimeField(auto_now_add=True)
    # As confirmed by the referee: {"job_title", "organisation", "candidate_from",
    # "candidate_to", "candidate_title"}.
    identity = EncryptedJSONField(null=True, blank=True)
    # {question id: value}; saved as the referee goes, final once submitted.
    answers = EncryptedJSONField(null=True, blank=True)
    decline_reason = EncryptedTextField(blank=True, default="")
    opened_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)  # first answer saved
    saved_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    replaced_by = models.OneToOneField(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replaces"
    )
    reminders_sent = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["nominated_at", "id"]
        indexes = [
            # The dashboard's late referees: each waiting status's referees nominated
            # before the replacement time, a range rather than all of that status (with
            # an index on status alone as well, SQLite chose that one).
            models.Index(fields=["status", "nominated_at"], name="reference_status_nominated_idx"),
        ]

    def __str__(self) -> str:
        return f"Reference {self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_REFERENCE_STATUSES


class Actor(models.TextChoices):
    CANDIDATE = "candidate", "Candidate"
    REFEREE = "referee", "Referee"


class Touch(models.Model):
    """Where and when a candidate or referee did something through their link: the raw
    material of the fraud checks. The address and device are kept encrypted for the
    report and as blind indexes for comparison; the device id is a random cookie that
    says nothing about the person or their machine."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.ForeignKey(ReferenceRequest, on_delete=models.CASCADE, related_name="touches")
    reference = models.ForeignKey(Reference, on_delete=models.CASCADE, null=True, blank=True, related_name="touches")
    actor = models.CharField(max_length=16, choices=Actor.choices)
    action = models.CharField(max_length=32)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    ip = EncryptedCharField(max_length=64, blank=True, default="")
    device_family = EncryptedCharField(max_length=120, blank=True, default="")  # "Chrome Mobile on Android"
    ip_index = BlindIndexField(kind="text")
    network_index = BlindIndexField(kind="text")  # the address's /24 (IPv4) or /64 (IPv6)
    device_index = BlindIndexField(kind="text")

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} at {self.at:%Y-%m-%d %H:%M}"


class Severity(models.IntegerChoices):
    LOW = 10, "Low"
    MEDIUM = 20, "Medium"
    HIGH = 30, "High"


class Flag(models.Model):
    """A fraud signal on a reference (or the request), with a plain explanation, until a
    member reviews it with a comment."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.ForeignKey(ReferenceRequest, on_delete=models.CASCADE, related_name="flags")
    reference = models.ForeignKey(Reference, on_delete=models.CASCADE, null=True, blank=True, related_name="flags")
    kind = models.CharField(max_length=40)
    # What makes this flag one of a kind (kind plus the other party), so re-running the
    # checks never raises the same flag twice.
    key = models.CharField(max_length=120)
    severity = models.PositiveSmallIntegerField(choices=Severity.choices)
    explanation = EncryptedTextField()
    raised_at = models.DateTimeField(auto_now_add=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by_id = models.BigIntegerField(null=True, blank=True)
    review_comment = EncryptedTextField(blank=True, default="")

    class Meta:
        ordering = ["-severity", "raised_at", "id"]
        constraints = [models.UniqueConstraint(fields=["request", "key"], name="flag_unique_key_per_request")]
        # The dashboard reads the open flags of a severity (few) among every flag ever raised.
        indexes = [
            models.Index(
                fields=["severity"], name="flag_open_severity_idx", condition=models.Q(reviewed_at__isnull=True)
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} flag {self.pk}"


class TimelineEvent(models.Model):
    """One line of a request's timeline: sent, opened, nominated, reminded, answered,
    flagged, reviewed, cancelled... ``summary`` may name people, so it is encrypted."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.ForeignKey(ReferenceRequest, on_delete=models.CASCADE, related_name="timeline")
    reference = models.ForeignKey(Reference, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=40)
    actor_id = models.BigIntegerField(null=True, blank=True)  # a member, when one did it
    summary = EncryptedTextField()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%Y-%m-%d %H:%M}"


def report_file_name(instance: ReportFile, filename: str) -> str:
    return f"reports/{uuid.uuid4().hex}"


class ReportFile(models.Model):
    """The last generated PDF of a request's report, stored encrypted. ``fingerprint``
    is a digest of what the report showed, so an unchanged report is not regenerated."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.OneToOneField(ReferenceRequest, on_delete=models.CASCADE, related_name="report_file")
    file = models.FileField(storage=encrypted_storage, upload_to=report_file_name, max_length=100)
    fingerprint = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    generated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Report {self.pk}"


class SearchTerm(models.Model):
    """Blind indexes of each word of a candidate's name, so the dashboard can find
    "smith" without decrypting every name (the full email has its own index)."""

    candidate = models.ForeignKey("references.Candidate", on_delete=models.CASCADE, related_name="search_terms")
    term = models.CharField(max_length=32, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["candidate", "term"], name="search_term_unique")]

    def __str__(self) -> str:
        return f"search term {self.term[:8]}"


class NamePrefix(models.Model):
    """Keyed digests of the starts (3 to 12 characters) of each word of a candidate's
    name (``vault.prefixes``), so both lists find "Maria" as "Mar" is typed without a
    name in the clear. Looked up by digest (the unique index leads with it, and holds
    the candidate too); removed with the candidate (the cascade, on every delete and
    erasure path)."""

    candidate = models.ForeignKey("references.Candidate", on_delete=models.CASCADE, related_name="name_prefixes")
    digest = models.CharField(max_length=32)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["digest", "candidate"], name="name_prefix_unique")]

    def __str__(self) -> str:
        return f"name prefix {self.digest[:8]}"


def default_reminder_days() -> list[int]:
    return [2, 4, 6]


class WorkflowSettings(models.Model):
    """The company's workflow choices: one row (pk 1) in its database."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    # Days after a link is sent on which the candidate or referee is reminded.
    reminder_days = models.JSONField(default=default_reminder_days)
    # A referee who has not answered this many days after nomination can be replaced.
    replace_after_days = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1)])
    # How long completed, expired and cancelled requests are kept.
    retention_months = models.PositiveSmallIntegerField(
        default=12, validators=[MinValueValidator(1), MaxValueValidator(120)]
    )
    # False: a recruiter sees only the requests they created.
    recruiters_see_all = models.BooleanField(default=True)
    default_deadline_days = models.PositiveSmallIntegerField(
        default=14, validators=[MinValueValidator(1), MaxValueValidator(90)]
    )
    default_referees = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1), MaxValueValidator(MAX_REFEREES)]
    )
    # The company's own office networks (CIDRs, as text): a referee and the candidate
    # on one of them are colleagues in an office, so the fraud signals of a shared
    # network weigh less there (``fraud.context``).
    known_office_networks = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by_id = models.BigIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return "Workflow settings"

    @classmethod
    def current(cls) -> WorkflowSettings:
        settings, _ = cls.objects.get_or_create(pk=1)
        return settings

    @classmethod
    def for_reading(cls) -> WorkflowSettings:
        """The saved settings, or the defaults (unsaved) when none were saved yet: for pages
        that only read, which must keep working where a write fails (a full disk).
        Read through SQL compiled once (vouch.core.db): every dashboard page reads them."""
        return _SAVED_SETTINGS.get(1, using=router.db_for_read(cls)) or cls(pk=1)


# The sentinel is within the small integer range of the key (outside it, no SQL is made).
_SAVED_SETTINGS = PreparedLookup(lambda: WorkflowSettings.objects.all(), sentinel=31_717)


class BulkImport(models.Model):
    """Many requests being created in the background from a confirmed CSV, with its
    progress for the page that shows it. The rows (names, emails) are encrypted like
    any personal data and cleared once the import has finished; the task queue only
    ever holds this row's id."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    rows = EncryptedJSONField(default=list)  # [[line, name, email, phone, role], ...]
    shared = EncryptedJSONField(default=dict)  # questionnaire, referees, guidance, deadline, work email
    skipped_at_preview = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    problems = EncryptedJSONField(default=list)  # ["Row 4: ...", ...]
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Bulk import {self.pk} ({self.done}/{self.total})"

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(100 * self.done / self.total)


class OutgoingMail(models.Model):
    """A workflow email to send, written in the same transaction as the change it
    announces (``references.outgoing``): a change that commits has its mail recorded,
    one that rolls back has none. A sender claims a row (``claimed_at``: taken over once older than the lease),
    sends it, and marks it sent; a failure is tried again later. The link's raw token
    is kept (encrypted) only until the mail is sent or given up."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=40)  # a function of references.mail
    subject_id = models.UUIDField()  # the request or reference it is about
    number = models.PositiveSmallIntegerField(default=0)  # the reminder's number
    token = EncryptedCharField(max_length=200, null=True, blank=True)  # None once sent or given up
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim = models.UUIDField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    gave_up_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="outgoing_mail_pending",
                condition=models.Q(sent_at__isnull=True, gave_up_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject_id}"


class NoticeEvent(models.TextChoices):
    """What a request's recruiter can be told of by email."""

    REFERENCE_COMPLETED = "reference_completed", "A referee submits a reference"
    REFERENCE_DECLINED = "reference_declined", "A referee declines"
    HIGH_FLAG = "high_flag", "A high fraud signal is raised"
    REQUEST_COMPLETED = "request_completed", "A request is complete"
    REQUEST_EXPIRED = "request_expired", "A request expires"


class NoticeDelivery(models.TextChoices):
    IMMEDIATELY = "immediately", "At once"
    DIGEST = "digest", "In a daily digest"
    OFF = "off", "Never"


class NoticePreference(models.Model):
    """How one member wants to hear of one kind of event; no row: at once. In the
    company's database, keyed by the member's control-plane user id, so a member of
    two companies chooses for each."""

    user_id = models.BigIntegerField()
    event = models.CharField(max_length=32, choices=NoticeEvent.choices)
    delivery = models.CharField(max_length=16, choices=NoticeDelivery.choices, default=NoticeDelivery.IMMEDIATELY)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user_id", "event"], name="notice_preference_unique")]

    def __str__(self) -> str:
        return f"{self.event}: {self.delivery}"


class Notice(models.Model):
    """An event waiting for its member's daily digest. ``batch`` is set, in one
    conditional update, when a digest takes it: a notice is in one digest only.
    Nothing personal is stored: the digest reads the request and reference when sent,
    and a notice goes with its request."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    user_id = models.BigIntegerField()
    event = models.CharField(max_length=32, choices=NoticeEvent.choices)
    request = models.ForeignKey(ReferenceRequest, on_delete=models.CASCADE, related_name="+")
    reference = models.ForeignKey(Reference, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    batch = models.UUIDField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["user_id"], name="notice_waiting", condition=models.Q(batch__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.event} for {self.user_id}"


class ReportView(models.Model):
    """When a member last opened a request's report: the dashboard lists completed
    reports nobody (in the member's view: the member) has read yet."""

    request = models.ForeignKey(ReferenceRequest, on_delete=models.CASCADE, related_name="report_views")
    user_id = models.BigIntegerField()
    viewed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["request", "user_id"], name="report_view_unique")]
        # The dashboard counts a member's read reports from their own views.
        indexes = [models.Index(fields=["user_id", "request"], name="report_view_user_idx")]

    def __str__(self) -> str:
        return f"report of {self.request_id} viewed by {self.user_id}"
