"""Files attached to candidates: checked by their contents, stored encrypted under a
random name, streamed back intact, removed with their rows."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.urls import reverse

from tests.references.helpers import add_candidate, add_file, image_bytes, pdf_bytes, pdf_with
from vouch.accounts.policy import Role
from vouch.activity.models import Entry
from vouch.audit.models import EventAction, SecurityEvent
from vouch.core.context import company_context
from vouch.references import services, uploads
from vouch.references.models import Attachment
from vouch.tenancy import provisioning
from vouch.vault.files import CHUNK_BYTES

pytestmark = pytest.mark.django_db

STORED_NAME = re.compile(r"attachments/[0-9a-f]{32}")


def stored_files(company) -> list:
    root = provisioning.files_dir(company.pk, company.region)
    return [p for p in root.rglob("*") if p.is_file()]


def upload(client, candidate, name: str, content: bytes):
    return client.post(reverse("attachment_upload", args=[candidate.pk]), {"file": SimpleUploadedFile(name, content)})


def download(client, attachment):
    return client.get(reverse("attachment_download", args=[attachment.candidate_id, attachment.pk]))


def test_round_trip_of_a_multi_chunk_file_and_nothing_readable_on_disk(client, members, company):
    candidate = add_candidate(company)
    marker = b"CONFIDENTIAL-REFERENCE-FOR-ALICE-EXAMPLE "
    payload = pdf_with(marker * (3 * CHUNK_BYTES // len(marker)) + b"tail")
    assert len(payload) > 2 * CHUNK_BYTES
    uploaded_name = "Alice Example - medical note.pdf"
    client.force_login(members[Role.RECRUITER].user)
    response = upload(client, candidate, uploaded_name, payload)
    assert response.status_code == 302
    with company_context(company) as ctx:
        attachment = Attachment.objects.get()
        assert attachment.original_name == uploaded_name
        assert attachment.size == len(payload)
        assert attachment.content_type == "application/pdf"
        assert STORED_NAME.fullmatch(attachment.file.name)
        with connections[ctx.alias].cursor() as cursor:
            cursor.execute("SELECT original_name, file FROM references_attachment")
            raw_name, file_column = cursor.fetchone()
        assert b"Alice" not in bytes(raw_name) and b"medical" not in bytes(raw_name)
        assert file_column == attachment.file.name
    files = stored_files(company)
    assert len(files) == 1
    on_disk = files[0]
    assert on_disk.as_posix().endswith(attachment.file.name)
    assert "Alice" not in on_disk.as_posix() and "medical" not in on_disk.as_posix()
    raw = on_disk.read_bytes()
    assert marker not in raw and b"%PDF" not in raw and b"ALICE" not in raw
    assert len(raw) > len(payload)  # header and a tag per chunk

    got = download(client, attachment)
    assert got.status_code == 200
    assert got.streaming
    body = b"".join(got.streaming_content)
    assert body == payload
    assert got["Content-Type"] == "application/pdf"
    assert got["Content-Length"] == str(len(payload))
    assert got["Content-Disposition"] == f'attachment; filename="{uploaded_name}"'
    assert got["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in got["Cache-Control"]
    with company_context(company):
        entry = Entry.objects.get(action="attachment_added")
        assert "Alice" not in entry.summary and "medical" not in str(entry.details)


def test_the_detail_page_lists_files_with_download_links(client, members, company):
    candidate = add_candidate(company)
    attachment = add_file(company, candidate, "Référence Zoë.pdf")
    client.force_login(members[Role.VIEWER].user)
    page = client.get(reverse("candidate_detail", args=[candidate.pk])).content.decode()
    assert "Référence Zoë.pdf" in page
    assert reverse("attachment_download", args=[candidate.pk, attachment.pk]) in page
    # A viewer downloads but is offered no upload form.
    assert 'enctype="multipart/form-data"' not in page
    got = download(client, attachment)
    assert got["Content-Disposition"] == "attachment; filename*=utf-8''R%C3%A9f%C3%A9rence%20Zo%C3%AB.pdf"


@pytest.mark.parametrize(
    ("uploaded", "expected"),
    [
        ('evil"\r\nSet-Cookie: a=b.pdf', 'evil" Set-Cookie: a=b.pdf'),
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("C:\\Users\\alice\\cv.pdf", "cv.pdf"),
        ("cv\u202efdp.exe.pdf", "cvfdp.exe.pdf"),
        ("tab\there.pdf", "tab here.pdf"),
        ("x" * 300 + ".pdf", "x" * 251 + ".pdf"),
    ],
    ids=["quotes_and_newlines", "path", "windows_path", "bidi_override", "tab", "too_long"],
)
def test_uploaded_names_are_made_safe(client, members, company, uploaded, expected):
    assert uploads.display_name(uploaded) == expected
    candidate = add_candidate(company)
    attachment = add_file(company, candidate, uploaded)
    client.force_login(members[Role.VIEWER].user)
    got = download(client, attachment)
    assert got.status_code == 200
    disposition = got["Content-Disposition"]
    assert disposition.startswith("attachment; ")
    assert "\r" not in disposition and "\n" not in disposition and "/" not in disposition


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


DOCX = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})
ODT = _zip({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<office:document/>"})
PNG = image_bytes("PNG")
JPEG = image_bytes("JPEG")
DOC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [
        ("cv.pdf", pdf_bytes(300), "application/pdf"),
        ("cv.docx", DOCX, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("cv.doc", DOC, "application/msword"),
        ("cv.odt", ODT, "application/vnd.oasis.opendocument.text"),
        ("notes.txt", "Référence: très bien\n".encode(), "text/plain; charset=utf-8"),
        ("photo.png", PNG, "image/png"),
        ("photo.JPG", JPEG, "image/jpeg"),
        ("photo.jpeg", JPEG, "image/jpeg"),
    ],
)
def test_accepted_types_round_trip(client, members, company, name, content, content_type):
    candidate = add_candidate(company)
    client.force_login(members[Role.RECRUITER].user)
    assert upload(client, candidate, name, content).status_code == 302
    with company_context(company):
        attachment = Attachment.objects.get()
    assert attachment.content_type == content_type
    got = download(client, attachment)
    assert b"".join(got.streaming_content) == content
    assert got["Content-Type"] == content_type


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("tool.exe", b"MZ" + b"\x00" * 100, "Vouch accepts PDF"),
        ("page.html", b"<script>alert(1)</script>", "Vouch accepts PDF"),
        ("image.svg", b"<svg onload=alert(1)>", "Vouch accepts PDF"),
        ("noextension", pdf_bytes(100), "Vouch accepts PDF"),
        (
            "cv.pdf",
            b"<html><script>alert(1)</script></html>",
            "named like a PDF document, but its contents are not one",
        ),
        ("cv.pdf", PNG, "named like a PDF document"),
        ("photo.png", JPEG, "named like a PNG image"),
        ("cv.docx", ODT, "named like a Word document"),
        ("cv.docx", _zip({"a.txt": b"x"}), "named like a Word document"),
        ("cv.odt", DOCX, "named like an OpenDocument text"),
        ("cv.docx", b"PK\x03\x04 not really a zip", "named like a Word document"),
        ("notes.txt", b"binary\x00data", "named like a plain text file"),
        ("notes.txt", b"\xff\xfe\xfa not utf-8", "named like a plain text file"),
        ("cv.pdf", b"", "The submitted file is empty."),
    ],
    ids=[
        "exe",
        "html",
        "svg",
        "no_extension",
        "html_named_pdf",
        "png_named_pdf",
        "jpeg_named_png",
        "odt_named_docx",
        "zip_named_docx",
        "docx_named_odt",
        "broken_zip",
        "binary_txt",
        "latin1_txt",
        "empty",
    ],
)
def test_forbidden_or_disguised_files_are_refused_with_a_clear_message(
    client, members, company, name, content, message
):
    candidate = add_candidate(company)
    client.force_login(members[Role.RECRUITER].user)
    response = upload(client, candidate, name, content)
    assert response.status_code == 400
    assert message in response.content.decode()
    with company_context(company):
        assert not Attachment.objects.exists()
    assert stored_files(company) == []


def test_a_missing_file_field_is_a_form_error(client, members, company):
    candidate = add_candidate(company)
    client.force_login(members[Role.RECRUITER].user)
    response = client.post(reverse("attachment_upload", args=[candidate.pk]), {})
    assert response.status_code == 400
    assert b"This field is required." in response.content
    assert client.get(reverse("attachment_upload", args=[candidate.pk])).status_code == 405


def test_a_file_over_the_limit_is_refused(client, members, company, settings):
    settings.VOUCH_MAX_BODY_BYTES = 100_000  # read by the middleware when the client first asks
    candidate = add_candidate(company)
    client.force_login(members[Role.RECRUITER].user)
    response = upload(client, candidate, "big.pdf", pdf_bytes(150_000))
    assert response.status_code == 413
    assert b"Too much data" in response.content
    assert b"larger than Vouch accepts" in response.content
    # The service refuses it too, for a body that arrived without a declared length.
    with company_context(company):
        with pytest.raises(uploads.AttachmentRefused, match=r"files can be at most 97\.7\xa0KB"):
            services.add_attachment(candidate, SimpleUploadedFile("big.pdf", pdf_bytes(100_001)))
        assert not Attachment.objects.exists()
    assert stored_files(company) == []


def test_deleting_an_attachment_or_candidate_removes_the_stored_files(client, members, company):
    candidate = add_candidate(company)
    first = add_file(company, candidate, "one.pdf")
    add_file(company, candidate, "two.pdf")
    other = add_candidate(company, "Bob", "bob@example.com")
    kept = add_file(company, other, "bob.pdf")
    assert len(stored_files(company)) == 3
    client.force_login(members[Role.ADMIN].user)
    response = client.post(reverse("attachment_delete", args=[candidate.pk, first.pk]))
    assert response.status_code == 302
    assert len(stored_files(company)) == 2
    with company_context(company):
        assert not first.file.storage.exists(first.file.name)
    response = client.post(reverse("candidate_delete", args=[candidate.pk]), {"confirm": "on"})
    assert response.status_code == 302 and response["Location"] == reverse("candidates")
    remaining = stored_files(company)
    assert [p.name for p in remaining] == [kept.file.name.rsplit("/", 1)[-1]]
    with company_context(company):
        assert list(Attachment.objects.values_list("pk", flat=True)) == [kept.pk]
        assert list(Entry.objects.order_by("occurred_at").values_list("action", flat=True))[-2:] == [
            "attachment_deleted",
            "candidate_deleted",
        ]
        assert Entry.objects.get(action="candidate_deleted").details["files"] == 1


def test_a_failed_insert_leaves_no_stored_file(company, monkeypatch):
    """The file is written before the row; if the row cannot be written, the file goes."""
    candidate = add_candidate(company)
    with company_context(company):
        Attachment.objects.all().delete()
        candidate.delete()  # the row the attachment points to is gone: the insert fails
        with pytest.raises(Exception):  # noqa: B017,PT011 - whichever integrity error the database raises
            services.add_attachment(candidate, SimpleUploadedFile("cv.pdf", pdf_bytes(2000)))
    assert stored_files(company) == []


def test_a_tampered_file_is_refused_with_a_clear_page_and_recorded(client, members, company):
    candidate = add_candidate(company)
    attachment = add_file(company, candidate, content=pdf_bytes(CHUNK_BYTES + 10))
    [path] = stored_files(company)
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))
    client.force_login(members[Role.VIEWER].user)
    before = SecurityEvent.objects.filter(action=EventAction.DATA_INTEGRITY_FAIL).count()
    response = download(client, attachment)
    assert response.status_code == 500
    assert not response.streaming
    assert b"failed its integrity check" in response.content
    assert SecurityEvent.objects.filter(action=EventAction.DATA_INTEGRITY_FAIL).count() == before + 1
