"""Candidates and files for the reference tests, made through the services."""

from __future__ import annotations

import os

from django.core.files.uploadedfile import SimpleUploadedFile

from vouch.references import services
from vouch.tenancy.context import company_context

# Starts like a PDF; the rest random, so no run of it can appear in ciphertext by chance.
PDF_HEAD = b"%PDF-1.7\n"


def pdf_bytes(size: int) -> bytes:
    return PDF_HEAD + os.urandom(size - len(PDF_HEAD))


def add_candidate(company, name: str = "Alice Example", email: str = "alice@example.com", phone: str = "", **extra):
    with company_context(company):
        return services.create_candidate(name, email, phone, **extra)


def add_file(company, candidate, name: str = "cv.pdf", content: bytes | None = None):
    content = pdf_bytes(1000) if content is None else content
    with company_context(company):
        return services.add_attachment(candidate, SimpleUploadedFile(name, content, content_type="application/pdf"))
