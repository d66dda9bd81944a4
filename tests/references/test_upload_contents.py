"""Uploads are checked whole, not by their first bytes: a PDF must parse and an image
decode, with nothing after its end. Polyglots (a PNG or PDF header followed by HTML or
PHP, HTML after a valid image's end), broken files and decompression bombs are refused
through the real upload page with a clear message and a 400, and nothing is stored."""

from __future__ import annotations

import io
import logging
import re
import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image
from pypdf import PdfWriter

from tests.references.helpers import add_candidate, image_bytes, pdf_bytes
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.references import file_contents
from vouch.references.models import Attachment
from vouch.tenancy import provisioning

pytestmark = pytest.mark.django_db

HTML = b"<html><body><script>alert(document.domain)</script></body></html>\n"
PHP = b"<?php system($_GET['c']); ?>\n"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NOT_A_PNG = "named like a PNG image, but its contents are not one"
NOT_A_JPEG = "named like a JPEG image, but its contents are not one"
NOT_A_PDF = "named like a PDF document, but its contents are not one"
TRAILING = "has data after its end"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """A well-formed 1-bit PNG of ``width`` × ``height`` white pixels: a few kilobytes
    that decode to ``width * height`` pixels."""
    packer = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * ((width + 7) // 8)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header claims ``width`` × ``height``."""
    data = bytearray(image_bytes("JPEG"))
    frame = data.index(b"\xff\xc0")  # baseline frame: length(2) precision(1) height(2) width(2)
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def with_comment(jpeg: bytes, comment: bytes) -> bytes:
    """``jpeg`` with a comment segment (FF FE) right after its start marker."""
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + jpeg[2:]


def flipped(data: bytes, at: int) -> bytes:
    changed = bytearray(data)
    changed[at] ^= 0xFF
    return bytes(changed)


def encrypted_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(72, 72)
    writer.encrypt(user_password="secret", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def progressive_jpeg() -> bytes:
    out = io.BytesIO()
    Image.effect_noise((320, 240), 64).convert("RGB").save(out, "JPEG", progressive=True, quality=90)
    return out.getvalue()


PNG = image_bytes("PNG")
JPEG = image_bytes("JPEG")
PDF = pdf_bytes(2000)


def upload(client, candidate, name: str, content: bytes):
    return client.post(reverse("attachment_upload", args=[candidate.pk]), {"file": SimpleUploadedFile(name, content)})


REFUSED = {
    "png_header_then_html": ("photo.png", PNG_SIGNATURE + HTML, NOT_A_PNG),
    "png_header_then_php": ("photo.png", PNG_SIGNATURE + PHP, NOT_A_PNG),
    "png_then_html_after_iend": ("photo.png", PNG + HTML, TRAILING),
    "png_then_php_after_iend": ("photo.png", PNG + PHP, TRAILING),
    "png_then_a_second_png": ("photo.png", PNG + PNG, TRAILING),
    "png_truncated": ("photo.png", PNG[: len(PNG) // 2], NOT_A_PNG),
    "png_damaged_pixel_data": ("photo.png", flipped(PNG, len(PNG) // 2), NOT_A_PNG),
    "jpeg_header_then_html": ("photo.jpg", b"\xff\xd8\xff\xe0" + HTML, NOT_A_JPEG),
    "jpeg_then_html_after_eoi": ("photo.jpg", JPEG + HTML, TRAILING),
    "jpeg_then_zip_after_eoi": ("photo.jpg", JPEG + b"PK\x03\x04" + b"\x00" * 60, TRAILING),
    "jpeg_truncated": ("photo.jpg", JPEG[: len(JPEG) // 2], NOT_A_JPEG),
    "pdf_header_then_html": ("cv.pdf", b"%PDF-1.7\n" + HTML, NOT_A_PDF),
    "pdf_header_then_html_and_eof": ("cv.pdf", b"%PDF-1.7\n" + HTML + b"%%EOF\n", NOT_A_PDF),
    "pdf_then_html_after_eof": ("cv.pdf", PDF + HTML, TRAILING),
    "pdf_truncated": ("cv.pdf", PDF[: len(PDF) // 2], NOT_A_PDF),
    "pdf_with_a_password": ("cv.pdf", encrypted_pdf(), "protected by a password"),
    # Decompression bombs: refused from the header, before anything is decoded. One
    # above Vouch's limit only, one above Pillow's own too.
    "png_bomb_64_megapixels": ("photo.png", png_bomb(8000, 8000), "The image is 8000 × 8000 pixels"),
    "png_bomb_100_megapixels": ("photo.png", png_bomb(10000, 10000), "images can be at most 50 megapixels"),
    "png_bomb_900_megapixels": ("photo.png", png_bomb(30000, 30000), "images can be at most 50 megapixels"),
    "jpeg_claiming_4_gigapixels": ("photo.jpg", jpeg_claiming(65000, 65000), "images can be at most 50 megapixels"),
    "jpeg_claiming_64_megapixels": ("photo.jpg", jpeg_claiming(8000, 8000), "The image is 8000 × 8000 pixels"),
}


@pytest.mark.parametrize(("name", "content", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_polyglots_broken_files_and_bombs_are_refused_with_a_clear_message(
    client, members, company, name, content, message
):
    candidate = add_candidate(company)
    client.force_login(members[Role.RECRUITER].user)
    response = upload(client, candidate, name, content)
    assert response.status_code == 400
    assert message in response.content.decode()
    with company_context(company):
        assert not Attachment.objects.exists()
    files = provisioning.files_dir(company.pk, company.region)
    assert not [path for path in files.rglob("*") if path.is_file()]


ACCEPTED = {
    "png": ("photo.png", PNG),
    "jpeg": ("photo.jpg", JPEG),
    "progressive_jpeg": ("photo.jpg", progressive_jpeg()),
    # An end-of-image marker inside the metadata (as an embedded thumbnail has) is not
    # the end of the image.
    "jpeg_with_an_end_marker_in_a_comment": ("photo.jpg", with_comment(JPEG, b"thumb \xff\xd9 " + HTML)),
    "pdf": ("cv.pdf", PDF),
    "pdf_ending_in_newlines_and_nul_padding": ("cv.pdf", PDF + b"\r\n\x00\x00"),
    "png_of_50_megapixels": ("scan.png", png_bomb(10000, 5000)),
}


@pytest.mark.parametrize(("name", "content"), ACCEPTED.values(), ids=ACCEPTED.keys())
def test_sound_files_are_accepted(client, members, company, name, content):
    candidate = add_candidate(company)
    client.force_login(members[Role.RECRUITER].user)
    assert upload(client, candidate, name, content).status_code == 302
    with company_context(company):
        assert Attachment.objects.get().size == len(content)


def test_the_limit_is_checked_before_decoding(monkeypatch):
    """An image over the limit never reaches the decoder."""
    loads = []
    monkeypatch.setattr(Image.Image, "load", lambda self: loads.append(self.size))
    with pytest.raises(file_contents.Unacceptable, match="at most 50 megapixels"):
        file_contents.check_png(png_bomb(8000, 8000))
    assert loads == []


def test_a_pdf_with_a_flaw_readers_work_around_is_accepted_without_log_noise(caplog):
    """Real PDFs are often slightly off (here the cross-reference pointer); pypdf reads
    them as every viewer does, and its warnings stay out of the logs."""
    pointer = re.search(rb"startxref\n(\d+)", PDF)
    flawed = PDF[: pointer.start(1)] + str(int(pointer.group(1)) + 7).encode() + PDF[pointer.end(1) :]
    with caplog.at_level(logging.INFO, logger="vouch"):
        file_contents.check_pdf(flawed)
    assert not logging.getLogger("pypdf").isEnabledFor(logging.WARNING)
    assert not [record for record in caplog.records if record.name.startswith("pypdf")]
