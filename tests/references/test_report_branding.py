"""The report PDF (issue 20): the company's name and logo on it, one font family
throughout (DejaVu Sans, which `make pdf-libs` installs), and tagged for screen
readers (WeasyPrint's PDF/UA-1: a structure tree, marked content, a title and a
language). Read back with pypdf."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader
from pypdf.generic import DictionaryObject, IndirectObject

from tests.references import branding_helpers as logos
from tests.references.workflow import REFEREES, make_request, nominate
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.references.branding import services as branding
from vouch.references.reports import pdf as report_pdf
from vouch.references.request_models import ReferenceRequest

pytestmark = pytest.mark.django_db


STYLES = {"Bold", "Oblique", "Italic", "BoldOblique", "BoldItalic", "Regular"}


def _resolve(value):
    return value.get_object() if isinstance(value, IndirectObject) else value


def _resources(reader: PdfReader):
    """Every resource dictionary of every page, and of the forms drawn on them."""
    seen: set[int] = set()
    pending = [_resolve(page.get("/Resources")) for page in reader.pages]
    while pending:
        resources = pending.pop()
        if not isinstance(resources, DictionaryObject) or id(resources) in seen:
            continue
        seen.add(id(resources))
        yield resources
        for xobject in (_resolve(resources.get("/XObject")) or {}).values():
            xobject = _resolve(xobject)
            if xobject.get("/Subtype") == "/Form":
                pending.append(_resolve(xobject.get("/Resources")))


def font_families(reader: PdfReader) -> set[str]:
    """The family of every font the PDF uses: its base name without the subset prefix
    (ABCDEF+) and the style (-Bold, -Oblique): "DejaVu-Sans", where the report used to
    draw its page numbers in "DejaVu-Serif"; a pre would be "DejaVu-Sans-Mono"."""
    families = set()
    for resources in _resources(reader):
        for font in (_resolve(resources.get("/Font")) or {}).values():
            font = _resolve(font)
            names = [font.get("/BaseFont")]
            names += [_resolve(d).get("/BaseFont") for d in _resolve(font.get("/DescendantFonts")) or []]
            for name in filter(None, names):
                parts = str(name).lstrip("/").split("+")[-1].split("-")
                while parts and parts[-1] in STYLES:
                    parts.pop()
                families.add("-".join(parts))
    return families


def images(reader: PdfReader) -> list:
    found = []
    for resources in _resources(reader):
        for xobject in (_resolve(resources.get("/XObject")) or {}).values():
            xobject = _resolve(xobject)
            if xobject.get("/Subtype") == "/Image":
                found.append(xobject)
    return found


def render(company, members) -> PdfReader:
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    nominate(company, reference_request, REFEREES[0])
    with company_context(company):
        content = report_pdf.generate_pdf(ReferenceRequest.objects.get(pk=reference_request.pk))
    return PdfReader(io.BytesIO(content))


def test_the_pdf_names_the_company_and_is_tagged_with_one_font_family(company, members):
    reader = render(company, members)
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Acme Hiring" in text and "Casey Candidate" in text
    root = reader.trailer["/Root"]
    assert "/StructTreeRoot" in root
    assert root["/MarkInfo"]["/Marked"] is True or root["/MarkInfo"]["/Marked"] == True  # noqa: E712
    assert str(root["/Lang"]) == "en"
    assert reader.metadata.title.startswith("Reference report ") and reader.metadata.title.endswith("Acme Hiring")
    assert font_families(reader) == {"DejaVu-Sans"}
    assert not images(reader)  # no logo set, no image


def test_cjk_names_fall_back_to_the_one_cjk_family_and_nothing_else(company, members):
    """DejaVu has no Chinese, Japanese or Korean characters: they are drawn in
    WenQuanYi Micro Hei (the stylesheet's only fallback), the rest still in DejaVu Sans;
    never a serif or monospaced face."""
    reference_request, _ = make_request(company, members[Role.RECRUITER].user, name="山田 花子 Hanako", role="経理")
    with company_context(company):
        reader = PdfReader(io.BytesIO(report_pdf.generate_pdf(ReferenceRequest.objects.get(pk=reference_request.pk))))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "山田" in text and "Hanako" in text
    families = font_families(reader)
    assert "DejaVu-Sans" in families
    assert families <= {"DejaVu-Sans", "WenQuanYi-Micro-Hei"}, families


def test_the_logo_is_in_the_pdf_once_set_and_the_stored_pdf_follows_the_brand(company, members):
    owner = members[Role.OWNER]
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    with company_context(company):
        first = report_pdf.report_file_for(reference_request)
        first_name = first.file.name
    logos.set_logo(company, owner, logos.png((300, 100)))
    with company_context(company):
        branding.set_accent(owner, "#0b5394")
        stored = report_pdf.report_file_for(ReferenceRequest.objects.get(pk=reference_request.pk))
        assert stored.file.name != first_name, "a new logo makes a new PDF"
        with stored.file.open("rb") as handle:
            reader = PdfReader(io.BytesIO(handle.read()))
    [logo] = images(reader)
    assert (int(logo["/Width"]), int(logo["/Height"])) == (300, 100)
    assert font_families(reader) == {"DejaVu-Sans"}
    assert "/StructTreeRoot" in reader.trailer["/Root"]
