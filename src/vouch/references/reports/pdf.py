"""The report as a PDF: rendered by WeasyPrint from the same data as the page, stored
encrypted (``ReportFile`` on the encrypted storage) and rendered again only when the
report's fingerprint changes.

Needs a company context."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import IntegrityError, router, transaction
from django.template.loader import render_to_string
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from vouch.core.context import current
from vouch.references.branding import services as branding
from vouch.references.flows import current_company
from vouch.references.reports import data as report_data
from vouch.references.request_models import ReferenceRequest, ReportFile, report_file_name
from vouch.shield import admission
from vouch.tenancy import company_db
from vouch.vault.errors import VaultError

log = logging.getLogger("vouch.references")

STYLESHEET = "vouch/report-print.css"
# The only addresses the print template may load; the fetcher maps them to the bundled
# stylesheet and to the company's logo (a PNG Vouch drew itself: branding.images).
STYLESHEET_URL = "vouch-report:report-print.css"
LOGO_URL = "vouch-report:logo.png"
# Tagged for screen readers (a structure tree, marked content, the title and language
# in the metadata): WeasyPrint's PDF/UA-1 variant.
PDF_VARIANT = "pdf/ua-1"


# Rendering takes about a second of CPU (P3): a stored, unchanged PDF costs nothing,
# but a fresh one is refused cheaply when the same report is already being rendered,
# or when one member has had this many rendered within the window.
RENDERS_PER_WINDOW = 30
RENDER_WINDOW = 600  # seconds
RENDER_LOCK_SECONDS = 120


class ReportRenderingError(RuntimeError):
    """The PDF could not be made (a missing stylesheet, a rendering failure)."""


class RenderRefused(RuntimeError):
    """Not rendered now (too many renders, or this one already under way); the message
    is safe to show, ``retry_after`` in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@lru_cache(maxsize=1)
def _stylesheet() -> bytes:
    path = finders.find(STYLESHEET)
    if not path:
        raise ReportRenderingError(f"the report stylesheet {STYLESHEET} is missing")
    return Path(path).read_bytes()


class BundledOnlyFetcher(URLFetcher):
    """Serves the bundled report stylesheet (and the company's logo, given as bytes)
    and refuses every other address.

    The report holds what candidates and referees typed. Django escapes it, but a
    fetcher that followed addresses would still let a stray or crafted one (an image,
    a font, an @import) make the server call out: a request forgery from inside our
    network, and a leak of the report's existence or contents to whoever answers. A
    file: address could read the server's own files into the PDF. So nothing is
    fetched: not the network, not the disk, not data: URIs."""

    def __init__(self, logo: bytes | None = None) -> None:
        super().__init__(allowed_protocols=(), allow_redirects=False, fail_on_errors=False)
        self.logo = logo

    def fetch(self, url, headers=None):
        if url == STYLESHEET_URL:
            return URLFetcherResponse(url, body=_stylesheet(), headers={"Content-Type": "text/css; charset=utf-8"})
        if url == LOGO_URL and self.logo:
            return URLFetcherResponse(url, body=self.logo, headers={"Content-Type": "image/png"})
        raise ValueError("the report loads nothing but its own stylesheet and the company's logo")


def _logo(brand: dict) -> bytes | None:
    if not brand.get("logo_version"):
        return None
    try:
        return branding.logo_png(brand["logo_version"])
    except (OSError, VaultError):
        # The report still renders, with the company's name only.
        log.warning("references: the company logo could not be read for a report PDF")
        return None


def render_pdf(report: dict) -> bytes:
    """The PDF of report data made by :func:`report_with_brand`."""
    brand = report.get("brand") or {}
    logo = _logo(brand)
    context = {"report": report, "brand": brand, "stylesheet_url": STYLESHEET_URL, "logo_url": LOGO_URL if logo else ""}
    html = render_to_string("references/report/print.html", context)
    document = HTML(string=html, base_url=STYLESHEET_URL, url_fetcher=BundledOnlyFetcher(logo))
    return document.write_pdf(pdf_variant=PDF_VARIANT)


def report_with_brand(reference_request: ReferenceRequest) -> dict:
    """The report's data (:func:`report.build_report`) with the company's brand, which
    the PDF shows: a changed name, logo or colour changes the fingerprint too."""
    brand = branding.brand_of(current_company())
    return {
        **report_data.build_report(reference_request),
        "brand": {"name": brand.name, "accent": brand.accent, "logo_version": brand.logo_version},
    }


def generate_pdf(reference_request: ReferenceRequest) -> bytes:
    """The report of one request as PDF bytes, freshly rendered (nothing stored)."""
    return render_pdf(report_with_brand(reference_request))


def _stored(report_file: ReportFile | None, fingerprint: str) -> bool:
    return (
        report_file is not None
        and report_file.fingerprint == fingerprint
        and report_file.file.storage.exists(report_file.file.name)
    )


def _remove_after_commit(storage, name: str) -> None:
    transaction.on_commit(storage.remover(name), using=router.db_for_write(ReportFile), robust=True)


def _company_id():
    return current().company_id


def _reserve(reference_request: ReferenceRequest, member_id: int | None) -> str:
    """Take the report's render lock (its cache key is returned, to release) and count
    the render against the member's budget; ``RenderRefused`` otherwise."""
    lock = f"vouch:report-render:{current().company_id}:{reference_request.pk}"
    if not cache.add(lock, 1, RENDER_LOCK_SECONDS):
        raise RenderRefused("This report's PDF is being prepared: try again in a few seconds.", 5)
    if member_id is not None:
        budget = f"vouch:report-renders:{member_id}"
        cache.add(budget, 0, RENDER_WINDOW)
        try:
            used = cache.incr(budget)
        except ValueError:  # expired between add and incr
            cache.set(budget, 1, RENDER_WINDOW)
            used = 1
        if used > RENDERS_PER_WINDOW:
            cache.delete(lock)
            raise RenderRefused("Many PDFs were generated from your account just now: try again in a few minutes.", 60)
    return lock


def report_file_for(reference_request: ReferenceRequest, *, member_id: int | None = None) -> ReportFile:
    """The stored PDF of the request's current report: the one kept if the report has
    not changed since, else a new rendering that replaces it.

    Rendering happens outside any transaction (it takes a while); the row is swapped
    under a lock, and the replaced file is removed once that commits. A render is
    counted against ``member_id``'s budget, and only one render of a report runs at a
    time (``RenderRefused`` otherwise); should two still race, one file wins and the
    other is removed."""
    report = report_with_brand(reference_request)
    fingerprint = report_data.fingerprint(report)
    existing = ReportFile.objects.filter(request=reference_request).first()
    if _stored(existing, fingerprint):
        return existing  # type: ignore[return-value]  # typing debt: an Optional not narrowed here
    lock = _reserve(reference_request, member_id)
    try:
        # A few renders at once per company (P3): one more waits for a moment, not a thread.
        with admission.admitted("pdf", _company_id()):
            pdf = render_pdf(report)
    except admission.Busy as busy:
        raise RenderRefused(busy.message, busy.retry_after) from None
    finally:
        cache.delete(lock)
    storage = ReportFile._meta.get_field("file").storage
    name = storage.save(report_file_name(None, ""), ContentFile(pdf))  # type: ignore[arg-type]  # typing debt: an Optional not narrowed here
    try:
        with company_db.atomic():
            current = ReportFile.objects.select_for_update().filter(request=reference_request).first()
            if current is None:
                current = ReportFile.objects.create(
                    request=reference_request, file=name, fingerprint=fingerprint, size=len(pdf)
                )
            elif _stored(current, fingerprint):
                # Someone else stored this very report meanwhile: keep theirs.
                _remove_after_commit(storage, name)
            else:
                if current.file.name:
                    _remove_after_commit(storage, current.file.name)
                current.file.name = name
                current.fingerprint = fingerprint
                current.size = len(pdf)
                current.save(update_fields=["file", "fingerprint", "size", "generated_at"])
    except IntegrityError:
        # Another download created the row first: use it, drop ours.
        storage.delete(name)
        return ReportFile.objects.get(request=reference_request)
    except BaseException:
        storage.delete(name)
        raise
    return current
