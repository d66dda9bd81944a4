"""Rendering a report PDF leaves the operator's log quiet (issue 14, item 17): WeasyPrint's
progress steps and font warnings (fontTools, HarfBuzz, missing glyphs, which quote the
text being printed) are not written at info or warning."""

from __future__ import annotations

import json

from tests.references.test_report import RITA_ANSWERS, RITA_IDENTITY, answered
from tests.references.workflow import REFEREES, make_request, nominate
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.references.reports import pdf as report_pdf
from vouch.references.request_models import ReferenceRequest

QUIET = ("weasyprint", "fontTools", "fontTools.subset", "fontTools.ttLib")


def lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def test_rendering_a_report_pdf_writes_no_weasyprint_or_font_lines(company, members, logs):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    # Names in scripts the bundled fonts may lack: WeasyPrint warns of each missing glyph.
    reference, _ = nominate(company, reference_request, {**REFEREES[0], "name": "Rita 陈 Ωμέγα"})
    answered(company, reference, RITA_IDENTITY, {**RITA_ANSWERS, "strengths": "Работает быстро. 非常可靠。 ✓"})
    with company_context(company):
        content = report_pdf.generate_pdf(ReferenceRequest.objects.get(pk=reference_request.pk))
        content += report_pdf.generate_pdf(ReferenceRequest.objects.get(pk=reference_request.pk))
    assert content.startswith(b"%PDF")
    noisy = [
        line
        for line in lines(logs)
        if line.get("logger", "").startswith(QUIET) and line.get("level") in ("info", "warning")
    ]
    assert noisy == [], "\n".join(json.dumps(n)[:160] for n in noisy)
