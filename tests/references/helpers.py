"""Candidates and files for the reference tests, made through the services."""

from __future__ import annotations

import io
import os

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, NameObject

from vouch.core.context import company_context
from vouch.references import services

PDF_HEAD = b"%PDF-"


def pdf_with(payload: bytes) -> bytes:
    """A one-page PDF that parses, with ``payload`` stored as it is (no filter) in its
    page's content stream, so the bytes can be looked for in what is stored."""
    writer = PdfWriter()
    page = writer.add_blank_page(72, 72)
    stream = DecodedStreamObject()
    stream.set_data(payload)
    page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_bytes(size: int) -> bytes:
    """A PDF of exactly ``size`` bytes that parses, most of it random, so no run of it
    can appear in ciphertext by chance."""
    padding = size - len(pdf_with(b""))
    while True:
        pdf = pdf_with(os.urandom(max(padding, 0)))
        if len(pdf) == size or padding <= 0:
            return pdf
        padding -= len(pdf) - size  # the stream's /Length grew a digit


def image_bytes(image_format: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.effect_noise(size, 64).convert("RGB").save(out, image_format)
    return out.getvalue()


def add_candidate(company, name: str = "Alice Example", email: str = "alice@example.com", phone: str = "", **extra):
    with company_context(company):
        return services.create_candidate(name, email, phone, **extra)


def add_file(company, candidate, name: str = "cv.pdf", content: bytes | None = None):
    content = pdf_bytes(1000) if content is None else content
    with company_context(company):
        return services.add_attachment(candidate, SimpleUploadedFile(name, content, content_type="application/pdf"))
