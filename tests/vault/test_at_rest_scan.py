"""At rest, no personal data in the clear: the raw bytes of every database (SQLite
files with their -wal, or a PostgreSQL dump) and every stored file are searched for
known candidate and referee data, written through Vouch's real code paths: candidates
and their attachments (``references.services``), activity entries, encrypted files.

Boundary of this issue, documented here on purpose: the accounts of the people who
use Vouch (a recruiter's name and sign-in email, ``accounts.User`` in the control
database) are not encrypted; only company data is. The test therefore uses a
recruiter's name as a canary that must be found in the control database, and must
not be found in any company's database or files, where it is copied into encrypted
activity entries."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from tests.conftest import make_company, make_user
from tests.references.helpers import pdf_with
from tests.vault.attack import (
    company_database_bytes,
    connection_is_sqlite,
    control_database_bytes,
    everything_stored,
    files_bytes,
    scan,
    scan_start,
    sqlite_database_files,
    unique,
    write_raw,
)
from vouch.activity.models import Entry
from vouch.activity.services import log
from vouch.core.context import company_context
from vouch.references.candidates.services import add_attachment, create_candidate, find_candidates
from vouch.references.models import Attachment, Candidate
from vouch.vault.files import CHUNK_BYTES, encrypted_storage

pytestmark = pytest.mark.django_db


def persona(tag: str) -> dict[str, str]:
    """A candidate and a referee with distinctive data: any hit is this test's data."""
    surname = unique(f"Quasthoff{tag}")
    referee = unique(f"Vandermeulen{tag}")
    digits = f"{secrets.randbelow(10**5):05d}"
    return {
        "name": f"Ottoline Zoë {surname}",
        "surname": surname,
        "email": f"ottoline.{surname.lower()}@example.org",
        "phone": f"+44 7700 9{digits}",
        "phone_national": f"07700 9{digits}",
        "phone_digits": f"7700 9{digits}".replace(" ", ""),
        "referee": f"Bartholomew Ångström {referee}",
        "referee_email": f"b.{referee.lower()}@globex.example",
        "answer": f"She rebuilt the payroll system at Globex {surname} and left after the merger",
        "note": f"Salary expectation 87,500; asked us not to contact {referee} before Friday",
    }


def secrets_of(p: dict[str, str]) -> list[str]:
    # Every value, and the pieces someone would grep for on their own.
    return [*p.values(), p["phone"].replace(" ", ""), p["phone_national"].replace(" ", "")]


def store_company_data(company, p: dict[str, str], recruiter, action: str) -> None:
    """Company data through the real paths: a candidate and a referee with notes and
    attachments (a PDF and a text file, uploaded under names holding personal data),
    activity entries (encrypted summary, actor name, details) and encrypted files, one
    of them UTF-16 and several chunks."""
    with company_context(company):
        candidate = create_candidate(
            p["name"], p["email"], p["phone"], notes=f"{p['answer']}\n{p['note']}", created_by=recruiter
        )
        create_candidate(p["referee"], p["referee_email"], p["phone_national"], notes=p["note"], created_by=recruiter)
        pdf = pdf_with(f"Reference letter for {p['name']} ({p['email']}): {p['answer']}".encode())
        add_attachment(
            candidate,
            SimpleUploadedFile(f"Reference {p['surname']}.pdf", pdf, content_type="application/pdf"),
            uploaded_by=recruiter,
        )
        text = f"{p['referee']} <{p['referee_email']}> {p['phone']}: {p['note']}".encode()
        add_attachment(
            candidate,
            SimpleUploadedFile(f"Notes from {p['referee']}.txt", text, content_type="text/plain"),
            uploaded_by=recruiter,
        )
        log(
            action,
            f"Reference from {p['referee']} received for {p['name']}",
            actor=recruiter,
            details={
                "candidate": p["name"],
                "email": p["email"],
                "phone": p["phone"],
                "referee": {"name": p["referee"], "email": p["referee_email"]},
                "answers": [p["answer"], p["note"]],
            },
        )
        document = "\n".join(f"{k}: {v}" for k, v in p.items())
        # Several chunks, so the personal data also straddles chunk boundaries.
        filler = "x" * (CHUNK_BYTES // 3 - 7)
        long_text = (document + filler) * 10
        encrypted_storage.save(f"reports/{uuid.uuid4()}.txt", ContentFile(long_text.encode()))
        encrypted_storage.save(f"reports/{uuid.uuid4()}.txt", ContentFile(document.encode("utf-16")))


def test_no_known_plaintext_at_rest_and_the_scan_finds_what_is_stored_in_the_clear():
    started = scan_start()
    recruiter_name = f"Rupert {unique('Recruiterson')}"
    recruiter = make_user(name=recruiter_name)
    company_names = [f"Canary Hiring {uuid.uuid4().hex[:10]}", f"Canary Talent {uuid.uuid4().hex[:10]}"]
    a, b = (make_company(name, owner=recruiter) for name in company_names)
    people = {a.pk: persona("A"), b.pk: persona("B")}
    actions = {a.pk: unique("canaryaction"), b.pk: unique("canaryaction")}
    for company in (a, b):
        store_company_data(company, people[company.pk], recruiter, actions[company.pk])
        with company_context(company):
            # Written and read back through Vouch: the data is really there.
            entry = Entry.objects.get(action=actions[company.pk])
            assert entry.details["email"] == people[company.pk]["email"]
            assert entry.actor_name == recruiter_name
            assert len(list(encrypted_storage.walk())) == 4  # two attachments, two reports
            assert find_candidates(people[company.pk]["email"].upper()).get().name == people[company.pk]["name"]
            assert Candidate.objects.count() == 2
            assert {a.original_name for a in Attachment.objects.all()} == {
                f"Reference {people[company.pk]['surname']}.pdf",
                f"Notes from {people[company.pk]['referee']}.txt",
            }

    known = [text for p in people.values() for text in secrets_of(p)]
    stored = everything_stored([a, b], since=started)
    assert not scan(stored, known), "personal data found in the clear at rest"
    # The recruiter's name is copied into each company's (encrypted) activity entries:
    # absent from every company database and file ...
    company_only = {where: blob for where, blob in stored.items() if "control database" not in where}
    assert not scan(company_only, [recruiter_name])

    # ... and present in the control database, where user accounts are not encrypted
    # in this issue. With the company names and the plaintext activity action column,
    # this proves the scan reads real stored data on this backend.
    control = control_database_bytes()
    for canary in [recruiter_name, *company_names]:
        assert scan(control, [canary]), f"scan did not find the unencrypted canary {canary!r} in the control database"
    for company in (a, b):
        hits = scan(company_database_bytes(company), [actions[company.pk]])
        assert hits, "scan did not find the unencrypted activity action in the company's database"


def test_no_two_factor_secret_in_the_clear_in_the_control_database():
    """ASVS 6.5.2: TOTP secrets and recovery-code seeds, set up through the real pages,
    are not in the control database's bytes (on SQLite its image and every database
    file on disk; on PostgreSQL the COPY dump), neither as text nor as the secret's raw
    bytes in hex. The recovery codes themselves are eight digits, which random
    ciphertext in hex holds by chance: the seed they are computed from stands for them.
    Canaries: the users' addresses, and a secret planted in plain text in a third
    user's row, are found by the same scan."""
    from allauth.mfa.models import Authenticator

    from tests.guard.b_helpers import activate_totp, give_totp
    from vouch.guard import mfa_secrets

    started = scan_start()
    users = [make_user(), make_user()]
    known = []
    for user in users:
        _, secret, codes = activate_totp(user)
        seed = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES).data["seed"]
        seed = mfa_secrets.decrypt(seed)  # read back through Vouch: the seed the codes come from
        assert len(codes) == 10 and len(seed) == 80
        known += [secret, base64.b32decode(secret).hex(), seed]
    planted_owner = make_user()
    give_totp(planted_owner)
    planted = "PLANTED" + base64.b32encode(secrets.token_bytes(15)).decode()
    Authenticator.objects.filter(user=planted_owner).update(data={"secret": planted})

    stored = control_database_bytes()
    if connection.vendor == "sqlite":
        stored.update(sqlite_database_files(since=started))
    found = scan(stored, known)
    assert not found, f"a two-factor secret is stored in the clear: {found[:5]}"
    assert scan(stored, [planted]), "the scan did not find a plain secret in the authenticator table"
    for user in users:
        assert scan(stored, [user.email]), "the scan did not find a user's address in the control database"


def test_the_scan_would_catch_plaintext_in_an_encrypted_column_or_file():
    """Self-check of the scanner against exactly the failures it exists to catch: a
    value written to an encrypted column without encryption (on PostgreSQL it appears
    hex-encoded in the dump, as bytea), a file stored unencrypted, UTF-16 text, and a
    different letter case."""
    company = make_company()
    leaked, leaked_file, wide = unique("LeakedValue"), unique("LeakedFile"), unique("WideText")
    with company_context(company) as ctx:
        entry = log("canary", "to be overwritten")
        write_raw(ctx.alias, Entry, "summary", entry.pk, leaked.encode())
        from vouch.regions import files_dir

        folder = files_dir(company.pk, company.region)
        (folder / "plain.txt").write_bytes(leaked_file.upper().encode())
        (folder / "wide.txt").write_bytes(wide.encode("utf-16"))
    stored = {**company_database_bytes(company), **files_bytes(company)}
    forms = {(text, form) for text, form, _ in scan(stored, [leaked, leaked_file, wide])}
    assert (leaked, "hex" if not connection_is_sqlite(company) else "utf-8") in forms
    assert (leaked_file, "utf-8") in forms
    assert (wide, "utf-16-le") in forms


def test_the_same_email_in_two_companies_has_unrelated_blind_indexes():
    """The stored index of an email reveals nothing on its own: keyed per company, so
    a copy of two companies' databases does not show they share a candidate, and not
    an unkeyed hash anyone could compute from a guessed address."""
    email = f"{unique('shared.person')}@example.org"
    indexes = []
    for company in (make_company(), make_company()):
        with company_context(company):
            candidate = create_candidate("Shared Person", email)
            indexes.append(Candidate.objects.values_list("email_index", flat=True).get(pk=candidate.pk))
            assert find_candidates(email.upper()).get().pk == candidate.pk
    assert indexes[0] != indexes[1]
    normalised = email.lower().encode()
    for index in indexes:
        assert len(index) == 32
        for unkeyed in (hashlib.sha256(normalised), hashlib.sha256(b"email\x00" + normalised), hashlib.md5(normalised)):  # noqa: S324
            assert unkeyed.hexdigest()[:32] != index
