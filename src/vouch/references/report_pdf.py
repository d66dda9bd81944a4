"""The report as a PDF: rendered by WeasyPrint from the same data as the page, stored
encrypted (``ReportFile`` on the encrypted storage) and rendered again only when the
report's fingerprint changes.

Needs a company context."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from django.contrib.staticfiles import finders
from django.core.files.base import ContentFile
from django.db import IntegrityError, router, transaction
from django.template.loader import render_to_string
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from vouch.references import report as report_data
from vouch.references.request_models import ReferenceRequest, ReportFile, report_file_name

log = logging.getLogger("vouch.references")

STYLESHEET = "vouch/report-print.css"
# The only address the print template may load; the fetcher maps it to the bundled file.
STYLESHEET_URL = "vouch-report:report-print.css"


class ReportRenderingError(RuntimeError):
    """The PDF could not be made (a missing stylesheet, a rendering failure)."""


@lru_cache(maxsize=1)
def _stylesheet() -> bytes:
    path = finders.find(STYLESHEET)
    if not path:
        raise ReportRenderingError(f"the report stylesheet {STYLESHEET} is missing")
    return Path(path).read_bytes()


class BundledOnlyFetcher(URLFetcher):
    """Serves the bundled report stylesheet and refuses every other address.

    The report holds what candidates and referees typed. Django escapes it, but a
    fetcher that followed addresses would still let a stray or crafted one (an image,
    a font, an @import) make the server call out: a request forgery from inside our
    network, and a leak of the report's existence or contents to whoever answers. A
    file: address could read the server's own files into the PDF. So nothing is
    fetched: not the network, not the disk, not data: URIs."""

    def __init__(self) -> None:
        super().__init__(allowed_protocols=(), allow_redirects=False, fail_on_errors=False)

    def fetch(self, url, headers=None):
        if url == STYLESHEET_URL:
            return URLFetcherResponse(url, body=_stylesheet(), headers={"Content-Type": "text/css; charset=utf-8"})
        raise ValueError("the report loads nothing but its own stylesheet")


def render_pdf(report: dict) -> bytes:
    """The PDF of report data made by :func:`report.build_report`."""
    html = render_to_string("references/report/print.html", {"report": report, "stylesheet_url": STYLESHEET_URL})
    return HTML(string=html, base_url=STYLESHEET_URL, url_fetcher=BundledOnlyFetcher()).write_pdf()


def generate_pdf(request_obj: ReferenceRequest) -> bytes:
    """The report of one request as PDF bytes, freshly rendered (nothing stored)."""
    return render_pdf(report_data.build_report(request_obj))


def _atomic():
    return transaction.atomic(using=router.db_for_write(ReportFile))


def _stored(report_file: ReportFile | None, fingerprint: str) -> bool:
    return (
        report_file is not None
        and report_file.fingerprint == fingerprint
        and report_file.file.storage.exists(report_file.file.name)
    )


def _remove_after_commit(storage, name: str) -> None:
    path = storage.stored_path(name)
    transaction.on_commit(lambda: path.unlink(missing_ok=True), using=router.db_for_write(ReportFile), robust=True)


def report_file_for(request_obj: ReferenceRequest) -> ReportFile:
    """The stored PDF of the request's current report: the one kept if the report has
    not changed since, else a new rendering that replaces it.

    Rendering happens outside any transaction (it takes a while); the row is swapped
    under a lock, and the replaced file is removed once that commits. Two members
    downloading at once may both render; one file wins, the other is removed."""
    report = report_data.build_report(request_obj)
    fingerprint = report_data.fingerprint(report)
    existing = ReportFile.objects.filter(request=request_obj).first()
    if _stored(existing, fingerprint):
        return existing
    pdf = render_pdf(report)
    storage = ReportFile._meta.get_field("file").storage
    name = storage.save(report_file_name(None, ""), ContentFile(pdf))
    try:
        with _atomic():
            current = ReportFile.objects.select_for_update().filter(request=request_obj).first()
            if current is None:
                current = ReportFile.objects.create(
                    request=request_obj, file=name, fingerprint=fingerprint, size=len(pdf)
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
        return ReportFile.objects.get(request=request_obj)
    except BaseException:
        storage.delete(name)
        raise
    return current
