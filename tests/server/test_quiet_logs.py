"""The running server's log keeps what an operator needs and nothing else (issue 14, item
17): no WeasyPrint or fontTools lines, at start or for a report PDF; nothing at info from
the sign-in throttle for a successful sign-in."""

from __future__ import annotations

import json

from tests.server import helpers


def parsed(text: str) -> list[dict]:
    lines = []
    for raw in text.splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue
    return lines


def test_start_sign_in_and_a_report_pdf_write_no_noise(live_vouch, live_member):
    offset = len(live_vouch.log())
    cookie = helpers.session_cookie(live_vouch, live_member["email"])
    request_id = helpers.run_django(
        live_vouch,
        f"""
        from datetime import timedelta
        from django.utils import timezone
        from vouch.accounts.models import Membership
        from vouch.references import workflow
        from vouch.core.context import company_context
        member = Membership.objects.get(user_id={live_member["user_id"]})
        with company_context(member.company):
            request = workflow.create_request(
                actor=member, name="Casey 陈 Ωμέγα Работает", email="casey@example.org", role="Head of Finance",
                questionnaire="builtin:general-professional", deadline=timezone.now() + timedelta(days=14),
            )
        print(request.pk)
        """,
    ).split()[-1]
    pdf = helpers.request(
        live_vouch, "GET", f"/requests/{request_id}/report.pdf", cookies={"__Host-vouch_session": cookie}
    )
    assert pdf.status == 200 and pdf.body.startswith(b"%PDF"), pdf.status

    whole = parsed(live_vouch.log())
    assert whole, "the server writes JSON log lines"
    noisy = [line for line in whole if line.get("logger", "").startswith(("weasyprint", "fontTools"))]
    assert noisy == [], noisy[:5]
    since = parsed(live_vouch.log()[offset:])
    throttle = [line for line in since if line.get("logger", "").startswith("vouch.guard.throttle")]
    assert throttle == [], throttle
    # The PDF request itself is logged, by route.
    assert any("report.pdf" in json.dumps(line) for line in since)
