"""At rest, the reference-check workflow keeps no personal data in the clear (P10,
issue #5 "every personal field is encrypted at rest").

A whole reference check runs through the real pages for two companies: a recruiter
creates the request, the candidate corrects their details and nominates referees from
their own address, one referee answers from the candidate's address (so a fraud flag
is raised), one declines with a reason and is replaced, the replacement answers; the
recruiter reviews the flags with comments and downloads the PDF report (stored
encrypted). Then the raw bytes of everything stored (SQLite files with their -wal, or
a pg_dump of each company database; the control database; every stored file and file
name) are searched with the vault tests' scanner for every personal value, in UTF-8,
UTF-16 and hex. Canaries prove the scan reads real stored bytes: plain columns written
by the same run are found."""

from __future__ import annotations

import io
import secrets
from datetime import timedelta

import pytest
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from tests.accounts.helpers import fast_company
from tests.conftest import HTTPSClient
from tests.references.workflow import last_token
from tests.vault.attack import (
    company_database_bytes,
    control_database_bytes,
    everything_stored,
    files_bytes,
    scan,
    scan_start,
    unique,
)
from vouch.accounts.policy import Role
from vouch.activity.models import Entry
from vouch.activity.services import log
from vouch.core.context import company_context
from vouch.references.request_models import (
    BulkImport,
    Flag,
    Reference,
    ReferenceRequest,
    ReportFile,
    RequestStatus,
    Touch,
)
from vouch.vault.files import encrypted_storage

pytestmark = pytest.mark.django_db

PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36"
)
DESKTOP_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0"


def _phone() -> str:
    return f"07700 9{secrets.randbelow(10**5):05d}"


def people(tag: str) -> dict:
    """A candidate and three referees with distinctive details: any hit is this test's."""

    def referee(label: str) -> dict:
        surname = unique(f"{label}{tag}")
        org = unique(f"Quillfeather{tag}")
        return {
            "name": f"Perpetua {surname}",
            "email": f"p.{surname.lower()}@{org.lower()}.example",
            "phone": _phone(),
            "relationship": "manager",
            "organisation": f"{org} Holdings",
            "worked_from": "2019-04",
            "worked_to": "2023-09",
        }

    surname = unique(f"Featherstonhaugh{tag}")
    return {
        "candidate": {
            "name": f"Ottilie {surname}",
            "email": f"ottilie.{surname.lower()}@example.org",
            "phone": _phone(),
        },
        "corrected_name": f"Ottilie Zoë {surname}",
        "corrected_phone": _phone(),
        "role": f"Director of {unique('Marmalade')}",
        "guidance": f"Someone from {unique('Brackenbury')} who saw the audit",
        "referees": [referee("Vandermeulen"), referee("Okonkwo"), referee("Lindqvist")],
        "titles": [f"Head of {unique('Pemberton')}", f"Chief {unique('Ashgrove')}"],
        "answers": {
            "dates": f"From the {unique('Winterbourne')} merger to its close",
            "strengths": f"Untangled the {unique('Ravensworth')} ledgers in a week",
            "develop": f"Delegating the {unique('Tillingham')} reports",
            "anything_else": f"Left after the {unique('Coldharbour')} restructure",
        },
        "second_answers": {"strengths": f"Calm during the {unique('Marchbank')} outage"},
        "decline": f"I only met them at the {unique('Gloucestershire')} conference",
        "review": f"Phoned {unique('Abernethy')}: they share an office",
        "bulk_row": [f"Barnaby {unique('Quixwell')}", f"b.{unique('quixwell')}@example.org", _phone()],
        "ips": [f"198.51.100.{secrets.randbelow(200) + 20}", f"203.0.113.{secrets.randbelow(200) + 20}"],
    }


def personal_values(p: dict) -> list[str]:
    values = [*p["candidate"].values(), p["corrected_name"], p["corrected_phone"], p["role"], p["guidance"]]
    for referee in p["referees"]:
        values += [referee["name"], referee["email"], referee["phone"], referee["organisation"]]
    values += [*p["titles"], *p["answers"].values(), *p["second_answers"].values(), p["decline"], p["review"]]
    values += p["ips"] + p["bulk_row"]
    # The pieces someone would grep for on their own.
    values += [value.replace(" ", "") for value in values if value.startswith("07700")]
    values += [p["candidate"]["name"].split()[-1]] + [r["name"].split()[-1] for r in p["referees"]]
    return values


def referee_answers(p: dict, second: bool = False) -> dict:
    answers = {**p["answers"], **(p["second_answers"] if second else {})}
    return {
        **{f"q-{key}": value for key, value in answers.items()},
        "q-relationship": "I managed them",
        "q-reliability": "5",
        "q-quality": "4",
        "q-rehire": "yes",
    }


def identity(p: dict, index: int) -> dict:
    referee = p["referees"][index]
    return {
        "job_title": p["titles"][min(index, 1)],
        "organisation": referee["organisation"],
        "candidate_title": p["role"],
        "candidate_from": referee["worked_from"],
        "candidate_to": referee["worked_to"],
    }


def run_reference_check(company, p: dict) -> ReferenceRequest:
    """The whole check through the pages; returns the completed request."""
    recruiter = HTTPSClient()
    recruiter.force_login(company.memberships.get(role=Role.OWNER).user)
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = recruiter.post(
            reverse("request_new"),
            {
                **p["candidate"],
                "role": p["role"],
                "questionnaire": "builtin:general-professional",
                "referees_required": "2",
                "guidance": p["guidance"],
                "deadline": (timezone.now() + timedelta(days=20)).date().isoformat(),
            },
        )
    assert response.status_code == 302, response.content[:2000]
    candidate_ip, other_ip = p["ips"]
    as_candidate = {"REMOTE_ADDR": candidate_ip, "HTTP_USER_AGENT": PHONE_UA}
    as_other = {"REMOTE_ADDR": other_ip, "HTTP_USER_AGENT": DESKTOP_UA}

    candidate = HTTPSClient()
    c_token = last_token(p["candidate"]["email"], "c")
    assert candidate.get(f"/c/{c_token}/", **as_candidate).status_code == 200
    details = {"name": p["corrected_name"], "email": p["candidate"]["email"], "phone": p["corrected_phone"]}
    assert candidate.post(f"/c/{c_token}/details/", details, **as_candidate).status_code == 302
    for referee in p["referees"][:2]:
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = candidate.post(f"/c/{c_token}/nominate/", referee, **as_candidate)
        assert response.status_code == 302, response.content[:2000]
    first, second, third = p["referees"]

    # The first referee answers from the candidate's own address: a fraud flag.
    one = HTTPSClient()
    r1 = last_token(first["email"], "r")
    assert one.get(f"/r/{r1}/", **as_candidate).status_code == 200
    assert one.post(f"/r/{r1}/confirm/", identity(p, 0), **as_candidate).status_code == 302
    save = {**referee_answers(p), "action": "save"}
    assert one.post(f"/r/{r1}/answers/", save, **as_candidate).status_code == 302
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = one.post(f"/r/{r1}/answers/", {**referee_answers(p), "action": "submit"}, **as_candidate)
    assert response.status_code == 302

    # The second declines with a reason, and is replaced by the third.
    two = HTTPSClient()
    r2 = last_token(second["email"], "r")
    assert two.get(f"/r/{r2}/", **as_other).status_code == 200
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert two.post(f"/r/{r2}/decline/", {"reason": p["decline"]}, **as_other).status_code == 302
    with company_context(company):
        declined = Reference.objects.get(status="declined")
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = candidate.post(f"/c/{c_token}/replace/{declined.pk}/", third, **as_candidate)
    assert response.status_code == 302, response.content[:2000]
    three = HTTPSClient()
    r3 = last_token(third["email"], "r")
    assert three.get(f"/r/{r3}/", **as_other).status_code == 200
    assert three.post(f"/r/{r3}/confirm/", identity(p, 2), **as_other).status_code == 302
    with TestCase.captureOnCommitCallbacks(execute=True):
        submit = {**referee_answers(p, second=True), "action": "submit"}
        assert three.post(f"/r/{r3}/answers/", submit, **as_other).status_code == 302

    with company_context(company):
        reference_request = ReferenceRequest.objects.get()
        flags = list(Flag.objects.filter(request=reference_request))
    assert reference_request.status == RequestStatus.COMPLETED
    assert flags, "answering from the candidate's address raised no flag"
    for flag in flags:
        url = reverse("flag_review", kwargs={"request_id": reference_request.pk, "flag_id": flag.pk})
        assert recruiter.post(url, {"comment": p["review"]}).status_code in (200, 302)
    pdf = recruiter.get(reverse("request_report_pdf", kwargs={"request_id": reference_request.pk}))
    assert pdf.status_code == 200, pdf.content[:500]
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(b"".join(pdf.streaming_content))).pages)
    assert p["answers"]["strengths"] in " ".join(text.split())  # the report holds personal data
    return reference_request


def test_a_whole_reference_check_leaves_no_personal_data_in_the_clear():
    started = scan_start()
    companies = [fast_company(f"Canary Hiring {unique('')}"), fast_company(f"Canary Talent {unique('')}")]
    everyone = {company.pk: people(tag) for company, tag in zip(companies, "AB", strict=True)}
    canaries = {}
    for company in companies:
        p = everyone[company.pk]
        reference_request = run_reference_check(company, p)
        with company_context(company):
            # Read back through Vouch: the data is really stored.
            references = {ref.name: ref for ref in Reference.objects.filter(request=reference_request)}
            first = references[p["referees"][0]["name"]]
            assert first.answers["strengths"] == p["answers"]["strengths"]
            assert first.identity["job_title"] == p["titles"][0]
            assert references[p["referees"][1]["name"]].decline_reason == p["decline"]
            assert reference_request.candidate.name == p["corrected_name"]
            assert reference_request.role == p["role"]
            assert {touch.ip for touch in Touch.objects.filter(request=reference_request)} == set(p["ips"])
            assert {flag.review_comment for flag in Flag.objects.filter(request=reference_request)} == {p["review"]}
            report = ReportFile.objects.get(request=reference_request)
            with encrypted_storage.open(report.file.name) as handle:
                assert handle.read(5) == b"%PDF-"
            # A CSV import waiting for the background task keeps its rows (and problems).
            name, email, phone = p["bulk_row"]
            BulkImport.objects.create(
                rows=[[2, name, email, phone, p["role"]]],
                shared={"guidance": p["guidance"]},
                problems=[f"Row 3: {email} is already asked for"],
                total=1,
            )
            assert BulkImport.objects.get().rows[0][1] == name
            # A plain column of this run, for the canary below.
            canaries[company.pk] = unique("canaryaction")
            log(canaries[company.pk], "canary")
            assert Entry.objects.filter(action=canaries[company.pk]).exists()

    known = [value for p in everyone.values() for value in personal_values(p)]
    stored = everything_stored(companies, since=started)
    found = scan(stored, known)
    assert not found, f"personal data found in the clear at rest: {found[:10]}"
    for company in companies:
        files = files_bytes(company)
        reports = [blob for where, blob in files.items() if "/reports/" in where]
        assert reports and not any(b"%PDF" in blob for blob in reports), "a report PDF is stored in the clear"

    # Canaries: the scan reads what is really stored on this backend.
    control = control_database_bytes()
    for company in companies:
        assert scan(control, [company.name]), "the scan did not find a company's name in the control database"
        assert scan(company_database_bytes(company), [canaries[company.pk]]), "the scan missed a plain column"
