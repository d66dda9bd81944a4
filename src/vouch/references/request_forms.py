"""Forms of the request pages, and the reading of a pasted or uploaded CSV of
candidates: what a member may type, checked before the workflow runs."""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import cast

from django import forms
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator, validate_email
from django.utils import timezone

from vouch.core import text
from vouch.core.text import SingleLineField, is_refused
from vouch.references import questionnaires
from vouch.references.forms import validate_phone
from vouch.references.request_models import MAX_REFEREES, RequestStatus
from vouch.references.workflow import MAX_DEADLINE_DAYS
from vouch.vault.normalise import NORMALISERS

NAME_MAX, EMAIL_MAX, PHONE_MAX, ROLE_MAX, GUIDANCE_MAX = 200, 254, 40, 200, 2000
CSV_MAX_BYTES = 1_000_000
CSV_MAX_ROWS = 500
CSV_COLUMNS = ("name", "email", "phone", "role")
CSV_REQUIRED = ("name", "email", "role")
CSV_EXAMPLE = (
    "name,email,phone,role\n"
    "Alex Example,alex@example.com,07700 900123,Finance Manager\n"
    '"Sam O\'Brien",sam.obrien@example.org,,"Engineer, Platform"\n'
)

printable = RegexValidator(r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$", "Remove the control characters from this text.")


class DateInput(forms.DateInput):
    input_type = "date"


def _deadline_limits(value: date) -> None:
    today = timezone.now().date()
    if value < today:
        raise ValidationError("The deadline must be in the future.")
    if value > today + timedelta(days=MAX_DEADLINE_DAYS):
        raise ValidationError(f"The deadline must be within {MAX_DEADLINE_DAYS} days.")


# --- the dashboard ---------------------------------------------------------------------


class FilterForm(forms.Form):
    """The dashboard's filters and search (GET). Invalid values are a 400 with the
    form's messages, not a silently ignored filter."""

    q = SingleLineField(
        max_length=254,
        required=False,
        label="Search",
        widget=forms.TextInput(attrs={"placeholder": "Candidate name or exact email", "type": "search"}),
    )
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *RequestStatus.choices])
    recruiter = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Requested by")
    flagged = forms.BooleanField(required=False, label="With open flags only")
    created_from = forms.DateField(required=False, label="Created from", widget=DateInput)
    created_to = forms.DateField(required=False, label="Created to", widget=DateInput)

    def __init__(self, *args, members: dict[int, str], show_recruiter: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["recruiter"]).choices = [("", "Anyone"), *members.items()]
        if not show_recruiter:
            del self.fields["recruiter"]

    def clean(self):
        data = super().clean()
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and start > end:
            raise ValidationError("The “created from” date is after the “created to” date.")
        return data


# --- one request -----------------------------------------------------------------------


class SharedFields(forms.Form):
    """What every request of a batch shares with a single one."""

    questionnaire = forms.ChoiceField(label="Questionnaire")
    referees_required = forms.TypedChoiceField(
        label="Number of referees",
        coerce=int,
        choices=[(n, str(n)) for n in range(1, MAX_REFEREES + 1)],
    )
    guidance = forms.CharField(
        max_length=GUIDANCE_MAX,
        required=False,
        label="Guidance for the candidate",
        validators=[printable],
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "For example: a manager from the last two years"}),
        help_text="Shown to the candidate when they nominate their referees.",
    )
    deadline = forms.DateField(label="Deadline", widget=DateInput, validators=[_deadline_limits])
    work_email_required = forms.BooleanField(
        required=False,
        label="Referees must use a work email address",
        help_text="Referees with a free-mail address (gmail.com and the like) are flagged.",
    )

    def __init__(self, *args, settings=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["questionnaire"].choices = [(c.value, c.label) for c in questionnaires.choices()]
        if settings is not None and not self.is_bound:
            self.initial.setdefault("referees_required", settings.default_referees)
            self.initial.setdefault("deadline", timezone.now().date() + timedelta(days=settings.default_deadline_days))


class RequestForm(SharedFields):
    name = SingleLineField(max_length=NAME_MAX, label="Candidate's full name")
    email = forms.EmailField(max_length=EMAIL_MAX, label="Candidate's email address")
    phone = forms.CharField(
        max_length=PHONE_MAX, required=False, label="Mobile number (optional)", validators=[validate_phone]
    )
    role = SingleLineField(max_length=ROLE_MAX, label="Role applied for")

    field_order = ["name", "email", "phone", "role"]


# --- many requests ---------------------------------------------------------------------


class BulkForm(SharedFields):
    csv_text = forms.CharField(
        required=False,
        label="Paste CSV",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "placeholder": CSV_EXAMPLE.splitlines()[0]}),
    )
    csv_file = forms.FileField(
        required=False, label="Or upload a CSV file", widget=forms.FileInput(attrs={"accept": ".csv,text/csv"})
    )

    field_order = ["csv_text", "csv_file"]

    def clean_csv_file(self):
        upload = self.cleaned_data.get("csv_file")
        if upload is not None and upload.size > CSV_MAX_BYTES:
            raise ValidationError(
                f"The file is larger than {CSV_MAX_BYTES // 1_000_000} MB: split it into smaller files."
            )
        return upload

    def clean_csv_text(self):
        text = self.cleaned_data.get("csv_text", "")
        if len(text.encode("utf-8", "surrogatepass")) > CSV_MAX_BYTES:
            raise ValidationError(
                f"The pasted text is larger than {CSV_MAX_BYTES // 1_000_000} MB: split it into smaller batches."
            )
        return text

    def clean(self):
        data = super().clean()
        text, upload = data.get("csv_text", ""), data.get("csv_file")
        if self.errors:
            return data
        if upload is not None and text.strip():
            raise ValidationError("Paste the CSV or upload a file, not both.")
        if upload is None and not text.strip():
            raise ValidationError("Paste the CSV or choose a file to upload.")
        if upload is not None:
            raw = upload.read(CSV_MAX_BYTES + 1)
            try:
                data["batch"] = parse_csv(raw)
            except CsvRefused as exc:
                self.add_error("csv_file", str(exc))
        else:
            try:
                data["batch"] = parse_csv(text)
            except CsvRefused as exc:
                self.add_error("csv_text", str(exc))
        return data


class ConfirmBulkForm(forms.Form):
    payload = forms.CharField(widget=forms.HiddenInput, max_length=CSV_MAX_BYTES * 2)


class DeadlineForm(forms.Form):
    deadline = forms.DateField(label="New deadline", widget=DateInput, validators=[_deadline_limits])


class CancelForm(forms.Form):
    reason = SingleLineField(
        max_length=500,
        required=False,
        label="Reason (optional)",
        help_text="Kept on the request's timeline.",
    )
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)


class DeleteForm(forms.Form):
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)


# --- the CSV ---------------------------------------------------------------------------


class CsvRefused(ValueError):
    """The CSV as a whole cannot be read; the message says why, for the person."""


@dataclass
class Row:
    line: int  # the row's number in the file, counting the header as 1
    name: str = ""
    email: str = ""
    phone: str = ""
    role: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    def values(self) -> dict[str, str]:
        return {"name": self.name, "email": self.email, "phone": self.phone, "role": self.role}


@dataclass
class Batch:
    rows: list[Row]

    @property
    def valid_rows(self) -> list[Row]:
        return [row for row in self.rows if row.valid]

    @property
    def invalid_count(self) -> int:
        return sum(1 for row in self.rows if not row.valid)


LIMITS = {"name": NAME_MAX, "email": EMAIL_MAX, "phone": PHONE_MAX, "role": ROLE_MAX}
LABELS = {"name": "Name", "email": "Email", "phone": "Phone", "role": "Role"}


def _decode(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    if len(raw) > CSV_MAX_BYTES:
        raise CsvRefused(f"The file is larger than {CSV_MAX_BYTES // 1_000_000} MB: split it into smaller files.")
    # Undecodable bytes become U+FFFD, so the rows holding them are named one by one.
    return raw.decode("utf-8", errors="replace")


def _row_errors(row: Row, seen: dict[str, int]) -> None:
    for column in CSV_COLUMNS:
        value = getattr(row, column)
        if "\ufffd" in value:
            row.errors.append(f"{LABELS[column]} has characters that are not UTF-8: save the file as “CSV UTF-8”.")
        elif any(is_refused(ch) for ch in value):
            row.errors.append(f"{LABELS[column]}: {text.MESSAGE}")
        if len(value) > LIMITS[column]:
            row.errors.append(f"{LABELS[column]} is longer than {LIMITS[column]} characters.")
    for column in CSV_REQUIRED:
        if not getattr(row, column):
            row.errors.append(f"{LABELS[column]} is missing.")
    if row.email and len(row.email) <= EMAIL_MAX:
        try:
            validate_email(row.email)
        except ValidationError:
            row.errors.append("Email is not a valid email address.")
        else:
            key = NORMALISERS["email"](row.email)
            if key in seen:
                row.errors.append(f"Email appears again: row {seen[key]} has the same address.")
            else:
                seen[key] = row.line
    if row.phone and len(row.phone) <= PHONE_MAX:
        try:
            validate_phone(row.phone)
        except ValidationError:
            row.errors.append("Phone is not a phone number.")


def parse_csv(raw: bytes | str) -> Batch:
    """Read a CSV with a header row (name,email,phone,role in any order; phone may be
    left out) into rows, each with its own errors. Raises ``CsvRefused`` when the
    whole text cannot be used (no header, unknown columns, too many rows)."""
    text = _decode(raw).lstrip("\ufeff")
    if "\x00" in text:
        raise CsvRefused("This is not a text file: save the spreadsheet as CSV and try again.")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
        if header is None:
            raise CsvRefused("The CSV is empty: it needs a header row and one row per candidate.")
        columns = [cell.strip().casefold() for cell in header]
        unknown = [cell for cell in columns if cell not in CSV_COLUMNS]
        missing = [column for column in CSV_REQUIRED if column not in columns]
        if unknown or missing or len(set(columns)) != len(columns):
            raise CsvRefused(
                "The first row must name the columns: name,email,phone,role (phone may be left out)."
                + (f" Unknown: {', '.join(repr(c[:40]) for c in unknown[:5])}." if unknown else "")
                + (f" Missing: {', '.join(missing)}." if missing else "")
            )
        rows: list[Row] = []
        seen: dict[str, int] = {}
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) >= CSV_MAX_ROWS:
                raise CsvRefused(f"The CSV has more than {CSV_MAX_ROWS} rows: split it into batches of {CSV_MAX_ROWS}.")
            row = Row(line=reader.line_num)
            for column, cell in zip(columns, cells, strict=False):
                setattr(row, column, cell.strip())
            if len(cells) != len(columns):
                row.errors.append(f"This row has {len(cells)} values; the header has {len(columns)}.")
            _row_errors(row, seen)
            rows.append(row)
    except csv.Error as exc:
        raise CsvRefused(f"The CSV cannot be read near row {reader.line_num}: {exc}.") from None
    if not rows:
        raise CsvRefused("The CSV has a header row but no candidates.")
    return Batch(rows=rows)


# --- preview to confirm ------------------------------------------------------------------

BATCH_SALT = "vouch.references.bulk-requests"
BATCH_MAX_AGE = 60 * 60  # an hour between the preview and the confirmation


class BatchRefused(ValueError):
    """The confirmation's payload is forged, altered, expired, someone else's or
    already used."""


@dataclass
class SignedBatch:
    rows: list[Row]
    skipped: int  # rows with errors at the preview
    shared: dict
    nonce: str


def sign_batch(batch: Batch, shared: dict, *, user_id: int, company_id) -> str:
    """The valid rows and the shared fields, signed for the confirmation step (the
    CSV is never written anywhere; the page carries it back, and the signature
    proves it is what the preview showed, for this member in this company)."""
    return signing.dumps(
        {
            "u": user_id,
            "c": str(company_id),
            "n": secrets.token_hex(16),
            "rows": [[row.line, row.name, row.email, row.phone, row.role] for row in batch.valid_rows],
            "skipped": batch.invalid_count,
            "shared": {**shared, "deadline": shared["deadline"].isoformat()},
        },
        salt=BATCH_SALT,
        compress=True,
    )


def open_batch(payload: str, *, user_id: int, company_id) -> SignedBatch:
    """The contents of a signed batch; ``BatchRefused`` if anything about it is wrong."""
    try:
        data = signing.loads(payload, salt=BATCH_SALT, max_age=BATCH_MAX_AGE)
    except signing.SignatureExpired:
        raise BatchRefused("This preview is more than an hour old: check the CSV again.") from None
    except (signing.BadSignature, ValueError, TypeError):
        raise BatchRefused("This confirmation was altered or is not valid: check the CSV again.") from None
    if not isinstance(data, dict) or data.get("u") != user_id or data.get("c") != str(company_id):
        raise BatchRefused("This confirmation was made by someone else: check the CSV again.")
    try:
        rows = [Row(int(line), name, email, phone, role) for line, name, email, phone, role in data["rows"]]
        shared = dict(data["shared"])
        shared["deadline"] = dt.date.fromisoformat(shared["deadline"])
        return SignedBatch(rows=rows, skipped=int(data["skipped"]), shared=shared, nonce=str(data["n"]))
    except (KeyError, TypeError, ValueError):
        raise BatchRefused("This confirmation is not valid: check the CSV again.") from None


def claim_batch(batch: SignedBatch) -> None:
    """Mark a confirmation used, so a double click or a resubmitted page does not
    send every candidate a second request."""
    if not cache.add(f"vouch:bulk-requests:{batch.nonce}", 1, BATCH_MAX_AGE + 60):
        raise BatchRefused("These requests have already been sent: see the list of requests.")
