"""Many requests at once: a pasted or uploaded CSV is previewed with each row's
problems, and only the valid rows are created, from a signed confirmation."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail, signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from freezegun import freeze_time

from tests.accounts.helpers import fast_company
from tests.references.workflow import last_token
from vouch.accounts.policy import Role
from vouch.activity.models import Entry
from vouch.core.context import company_context
from vouch.links import services as links
from vouch.references.models import Candidate, ReferenceRequest
from vouch.references.requests.forms import BATCH_SALT, CSV_MAX_ROWS, BatchRefused, open_batch, parse_csv

pytestmark = pytest.mark.django_db

PAYLOAD = re.compile(r'name="payload" value="([^"]+)"')

GOOD = (
    "name,email,phone,role\nAda Lovelace,ada@example.com,07700 900001,Analyst\nAlan Turing,alan@example.com,,Engineer\n"
)


def shared(**overrides) -> dict:
    return {
        "questionnaire": "builtin:people-manager",
        "referees_required": "3",
        "guidance": "Recent managers",
        "deadline": (timezone.now() + timedelta(days=20)).date().isoformat(),
        "work_email_required": "on",
        **overrides,
    }


def preview(client, text: str | None = None, upload=None, **overrides):
    data = {"step": "preview", **shared(**overrides)}
    if text is not None:
        data["csv_text"] = text
    if upload is not None:
        data["csv_file"] = upload
    return client.post(reverse("request_bulk"), data)


def payload_of(response) -> str:
    found = PAYLOAD.search(response.content.decode())
    assert found, "no confirmation form on the page"
    return found.group(1)


def confirm(client, payload: str):
    return client.post(reverse("request_bulk"), {"step": "confirm", "payload": payload})


@pytest.fixture
def recruiter(client, members):
    client.force_login(members[Role.RECRUITER].user)
    return members[Role.RECRUITER].user


def test_the_page_explains_the_format_and_offers_an_example(client, recruiter):
    page = client.get(reverse("request_bulk")).content.decode()
    assert "name,email,phone,role" in page and f"Up to {CSV_MAX_ROWS} rows" in page
    example = client.get(reverse("request_bulk"), {"example": "1"})
    assert example["Content-Type"].startswith("text/csv") and "attachment" in example["Content-Disposition"]
    batch = parse_csv(example.content)
    assert len(batch.rows) == 2 and all(row.valid for row in batch.rows)


def test_preview_shows_each_rows_problems_and_creates_nothing(client, recruiter, company):
    text = (
        "Name , EMAIL,role,phone\n"  # any order, any case
        "Ada Lovelace,ada@example.com,Analyst,07700 900001\n"
        ",nobody@example.com,Analyst,\n"  # 3: missing name
        "Bob Builder,,Builder,\n"  # 4: missing email
        "Carol Chef,carol@example.com,,\n"  # 5: missing role
        "Dan Dodgy,not-an-email,Analyst,\n"  # 6: invalid email
        "Ada Again,ADA@Example.com ,Analyst,\n"  # 7: duplicate email in the batch
        f"{'L' * 201},long@example.com,Analyst,\n"  # 8: overlong name
        "Phil Phone,phil@example.com,Analyst,call me\n"  # 9: not a phone number
        "Too,many,values,here,extra\n"  # 10: more values than the header
        "\n"
        '"Quoted, Name",quoted@example.com,"Role, with comma",\n'  # 12: fine
    )
    response = preview(client, text)
    assert response.status_code == 200
    page = response.content.decode()
    assert "<strong>2</strong> rows ready to send" in page
    assert "<strong>8</strong> rows with errors will be skipped" in page
    expected = {
        3: "Name is missing.",
        4: "Email is missing.",
        5: "Role is missing.",
        6: "Email is not a valid email address.",
        7: "Email appears again: row 2 has the same address.",
        8: "Name is longer than 200 characters.",
        9: "Phone is not a phone number.",
        10: "This row has 5 values; the header has 4.",
    }
    for line, message in expected.items():
        row = page.split(f'<tr id="row-{line}"')[1].split("</tr>")[0]
        assert 'class="row-error"' in row and message in row, (line, row)
    assert 'id="row-2" class="row-ok"' in page and 'id="row-12" class="row-ok"' in page
    assert "Send 2 requests" in page
    assert mail.outbox == []
    with company_context(company):
        assert not ReferenceRequest.objects.exists() and not Candidate.objects.exists()


def test_confirm_creates_exactly_the_valid_rows(client, recruiter, company):
    text = GOOD + ",missing@example.com,Analyst,\nDup,ADA@example.com,,Analyst\n"
    response = preview(client, text)
    payload = payload_of(response)
    done = confirm(client, payload)
    assert done.status_code == 302 and done["Location"] == reverse("requests")
    with company_context(company):
        reference_requests = ReferenceRequest.objects.select_related(
            "candidate", "questionnaire_version__questionnaire"
        )
        made = {r.candidate.email: r for r in reference_requests}
        assert set(made) == {"ada@example.com", "alan@example.com"}
        ada = made["ada@example.com"]
        assert (ada.candidate.name, ada.candidate.phone, ada.role) == ("Ada Lovelace", "07700 900001", "Analyst")
        assert ada.referees_required == 3 and ada.work_email_required and ada.guidance == "Recent managers"
        assert ada.questionnaire_version.questionnaire.builtin_key == "people-manager"
        assert ada.created_by_id == recruiter.pk
        assert Entry.objects.filter(action="request_created").count() == 2
    for address in ("ada@example.com", "alan@example.com"):
        reference_request = made[address]
        assert links.resolve(last_token(address, "c"), "candidate").subject_id == reference_request.pk
    listing = client.get(reverse("requests")).content.decode()
    assert "Created 2 requests; 2 rows skipped." in listing
    # A double click or a resubmitted page sends nobody a second request.
    again = confirm(client, payload)
    assert again.status_code == 400 and b"already been sent" in again.content
    with company_context(company):
        assert ReferenceRequest.objects.count() == 2 and Candidate.objects.count() == 2


def test_an_upload_is_read_and_bad_encoding_is_named_per_row(client, recruiter):
    content = GOOD.encode() + "Zoë Müller,zoe@example.com,,Designer\n".encode("latin-1")
    response = preview(client, upload=SimpleUploadedFile("people.csv", content, content_type="text/csv"))
    assert response.status_code == 200
    page = response.content.decode()
    row = page.split('<tr id="row-4"')[1].split("</tr>")[0]
    assert "not UTF-8" in row
    assert "<strong>2</strong> rows ready to send" in page
    bom = preview(client, upload=SimpleUploadedFile("bom.csv", b"\xef\xbb\xbf" + GOOD.encode()))
    assert "<strong>2</strong> rows ready to send" in bom.content.decode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Paste the CSV or choose a file"),
        ("   \n\n", "Paste the CSV or choose a file"),
        ("Ada,ada@example.com,Analyst\n", "The first row must name the columns"),
        ("name,email,role,salary\nAda,ada@example.com,Analyst,1\n", "Unknown: &#x27;salary&#x27;"),
        ("name,email\nAda,ada@example.com\n", "Missing: role"),
        ("name,email,email,role\n", "The first row must name the columns"),
        ("name,email,role\n", "no candidates"),
        ("name,email,role\n" + "Ada,a{}@example.com,X\n" * (CSV_MAX_ROWS + 1), "more than 500 rows"),
        ("name,email,role\nA\x00da,ada@example.com,X\n", "Null characters are not allowed"),
        ('name,email,role\n"Ada,ada@example.com,X\n', ""),
    ],
)
def test_unreadable_csv_is_a_400_with_a_clear_message(client, recruiter, company, text, message):
    if "{}" in text:
        text = "name,email,role\n" + "".join(f"Ada,a{n}@example.com,X\n" for n in range(CSV_MAX_ROWS + 1))
    response = preview(client, text)
    page = response.content.decode()
    if not message:  # an unterminated quote swallows the rest: one row with the wrong count, not a 500
        assert response.status_code in (200, 400)
        return
    assert response.status_code == 400
    assert message in page, page[page.find("errorlist") - 200 : page.find("errorlist") + 400]
    assert 'name="payload"' not in page


def test_a_file_over_one_megabyte_is_refused(client, recruiter):
    big = GOOD.encode() + b"x" * 1_000_001
    response = preview(client, upload=SimpleUploadedFile("big.csv", big, content_type="text/csv"))
    assert response.status_code == 400 and b"larger than 1 MB" in response.content
    pasted = preview(client, GOOD + "x" * 1_000_001)
    assert pasted.status_code == 400 and b"larger than 1 MB" in pasted.content


def test_paste_and_upload_together_is_refused(client, recruiter):
    response = preview(client, GOOD, upload=SimpleUploadedFile("a.csv", GOOD.encode()))
    assert response.status_code == 400 and b"not both" in response.content


@pytest.mark.parametrize(
    "overrides",
    [
        {"questionnaire": "nope"},
        {"referees_required": "9"},
        {"deadline": "2001-01-01"},
        {"deadline": ""},
        {"guidance": "x" * 2001},
    ],
)
def test_invalid_shared_fields_are_a_400(client, recruiter, overrides):
    response = preview(client, GOOD, **overrides)
    assert response.status_code == 400 and b"errorlist" in response.content
    assert b'name="payload"' not in response.content


def test_a_tampered_payload_is_refused_and_creates_nothing(client, recruiter, company):
    payload = payload_of(preview(client, GOOD))
    data = signing.loads(payload, salt=BATCH_SALT)
    data["rows"].append([9, "Eve Evil", "eve@example.com", "", "Spy"])
    forged_with_another_key = signing.dumps(data, salt=BATCH_SALT, key="not the secret key", compress=True)
    flipped = payload[:-3] + ("A" if payload[-3] != "A" else "B") + payload[-2:]
    wrong_salt = signing.dumps(data, salt="something else", compress=True)
    for bad in (flipped, forged_with_another_key, wrong_salt, "garbage", payload + "x", ""):
        response = confirm(client, bad)
        assert response.status_code == 400, bad[:40]
        assert b'id="refused"' in response.content
    with company_context(company):
        assert not ReferenceRequest.objects.exists()
    assert mail.outbox == []


def test_a_payload_is_bound_to_its_member_and_company_and_expires(client, members, company):
    client.force_login(members[Role.RECRUITER].user)
    payload = payload_of(preview(client, GOOD))
    # Another member of the same company cannot replay it.
    client.force_login(members[Role.ADMIN].user)
    assert confirm(client, payload).status_code == 400
    # Nor can the same person in another company they belong to.
    other = fast_company("Elsewhere")
    with pytest.raises(BatchRefused):
        open_batch(payload, user_id=members[Role.RECRUITER].user_id, company_id=other.pk)
    assert open_batch(payload, user_id=members[Role.RECRUITER].user_id, company_id=company.pk).rows
    with freeze_time(timezone.now() + timedelta(hours=1, minutes=1)), pytest.raises(BatchRefused, match="an hour old"):
        open_batch(payload, user_id=members[Role.RECRUITER].user_id, company_id=company.pk)
    with company_context(company):
        assert not ReferenceRequest.objects.exists()


def test_a_binary_upload_is_refused(client, recruiter):
    upload = SimpleUploadedFile("sheet.xlsx", b"PK\x03\x04\x00\x00name,email,role\n", content_type="text/csv")
    response = preview(client, upload=upload)
    assert response.status_code == 400 and b"not a text file" in response.content


def test_viewers_cannot_preview_or_confirm(client, members, company):
    client.force_login(members[Role.RECRUITER].user)
    payload = payload_of(preview(client, GOOD))
    client.force_login(members[Role.VIEWER].user)
    assert preview(client, GOOD).status_code == 403
    assert confirm(client, payload).status_code == 403
    with company_context(company):
        assert not ReferenceRequest.objects.exists()


def test_a_batch_with_no_valid_row_offers_no_confirmation(client, recruiter):
    response = preview(client, "name,email,role\n,x@example.com,A\nB,bad,C\n")
    assert response.status_code == 200
    assert b'id="nothing-valid"' in response.content and b'name="payload"' not in response.content


def test_parse_csv_accepts_exactly_the_row_limit_and_names_rows_by_their_line():
    text = "name,email,role\n" + "".join(f"Person {n},p{n}@example.com,Role\n" for n in range(CSV_MAX_ROWS))
    batch = parse_csv(text)
    assert len(batch.valid_rows) == CSV_MAX_ROWS and batch.invalid_count == 0
    quoted = parse_csv('name,email,role\n"Two\nLines",two@example.com,Role\nNext,next@example.com,Role\n')
    assert quoted.rows[0].errors == ["Name: Type this on one line, without line breaks or control characters."]
    assert quoted.rows[1].line == 4 and quoted.rows[1].valid
