"""The recruiter's desk: the dashboard's counts, "needs your action", turnaround and
views (a recruiter limited to their own requests attacks the company view), the request
list's marker, status line and CSV export, and the recruiter's email notices (each
event, preferences, the daily digest, nothing sent twice)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connections
from django.db.models import Count
from django.template import engines
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.conftest import add_member, make_company
from tests.references.test_workflow_core import answers_for
from tests.references.workflow import IDENTITY, REFEREES, make_request, nominate
from vouch.accounts.models import Membership
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.references.desk import export, figures, notices, reads
from vouch.references.fraud import checks as fraud
from vouch.references.fraud import flows as fraud_flows
from vouch.references.mailing import outgoing
from vouch.references.referees import flows as referee_flows
from vouch.references.request_models import (
    Flag,
    Notice,
    NoticeDelivery,
    NoticeEvent,
    OutgoingMail,
    Reference,
    ReferenceRequest,
    ReportView,
    RequestStatus,
    Severity,
    TimelineEvent,
    WorkflowSettings,
)
from vouch.references.requests import flows as request_flows
from vouch.references.requests.access import Visibility
from vouch.references.templatetags import desk_tags

pytestmark = pytest.mark.django_db

AWKWARD = "Siobhán O'Brien, Smith & Jones 山田"


def sent_to(address: str) -> list:
    return [message for message in mail.outbox if address in message.to]


def complete(company, reference) -> None:
    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):
        reference = Reference.objects.select_related("request__questionnaire_version").get(pk=reference.pk)
        referee_flows.referee_opened(reference)
        referee_flows.confirm_referee(reference, **IDENTITY)
        assert referee_flows.submit_answers(reference, answers_for(reference.request)) == {}


def decline(company, reference) -> None:
    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):
        referee_flows.decline(Reference.objects.get(pk=reference.pk), "We never worked together.")


def evaluate(company, reference_request) -> list[Flag]:
    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):
        return fraud.evaluate(reference_request)


def high_flagged(company, recruiter, **overrides):
    """A request whose first referee gave the candidate's own phone number (a High signal)."""
    reference_request, _ = make_request(company, recruiter, **overrides)
    cheat, _ = nominate(company, reference_request, {**REFEREES[0], "phone": "+44 7700 900456"})
    honest, _ = nominate(company, reference_request, REFEREES[1])
    return reference_request, cheat, honest


def choose(company, user, **choices) -> None:
    with company_context(company):
        notices.set_preferences(user.pk, choices)


def load(company, reference_request) -> ReferenceRequest:
    with company_context(company):
        return ReferenceRequest.objects.get(pk=reference_request.pk)


# --- notices ---------------------------------------------------------------------------


def test_each_event_mails_the_requests_recruiter_once_with_names_rendered_safely(company, members):
    recruiter = members[Role.RECRUITER].user
    reference_request, cheat, quitter = high_flagged(company, recruiter, name=AWKWARD, role="Chef de partie")
    mail.outbox.clear()

    raised = evaluate(company, reference_request)
    assert any(flag.severity == Severity.HIGH for flag in raised)
    [flag_mail] = sent_to(recruiter.email)
    assert "high fraud signal" in flag_mail.body and AWKWARD in flag_mail.body
    assert "\n" not in flag_mail.subject and AWKWARD in flag_mail.subject
    html = flag_mail.alternatives[0][0]
    assert "Siobhán O&#x27;Brien, Smith &amp; Jones 山田" in html and "O'Brien" not in html
    # No personal data beyond the page: not the referee's phone nor email.
    assert "7700" not in flag_mail.body and REFEREES[0]["email"] not in flag_mail.body
    evaluate(company, reference_request)  # the checks again: no new flag, no new mail
    assert len(sent_to(recruiter.email)) == 1

    decline(company, quitter)
    declined = sent_to(recruiter.email)[1]
    assert "declined" in declined.body and REFEREES[1]["name"] in declined.body
    assert "We never worked together" not in declined.body  # the reason stays on the page

    third, _ = nominate(company, reference_request, REFEREES[2])
    complete(company, cheat)
    complete(company, third)
    bodies = [message.body for message in sent_to(recruiter.email)[2:]]
    assert sum("submitted their reference" in body for body in bodies) == 2
    assert sum("the report is ready" in body for body in bodies) == 1
    assert load(company, reference_request).status == RequestStatus.COMPLETED
    # Nobody else in the company was told.
    for role in (Role.OWNER, Role.ADMIN, Role.VIEWER):
        assert not [m for m in sent_to(members[role].user.email) if "reference" in m.subject.lower()]

    # A request that reaches its deadline.
    late, _ = make_request(company, recruiter, name="Zoë Late", email="zoe@example.org")
    with company_context(company):
        ReferenceRequest.objects.filter(pk=late.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):
        assert request_flows.expire_request(late)
        assert not request_flows.expire_request(late)  # once
    [expired] = sent_to(recruiter.email)
    assert "expired at its deadline with 0 of 2" in expired.body and "Zoë Late" in expired.body


def test_preferences_choose_off_or_the_daily_digest_and_nothing_is_sent_twice(company, members):
    recruiter = members[Role.RECRUITER].user
    choose(
        company,
        recruiter,
        high_flag=NoticeDelivery.OFF,
        reference_declined=NoticeDelivery.DIGEST,
        reference_completed=NoticeDelivery.DIGEST,
    )
    reference_request, cheat, honest = high_flagged(company, recruiter, name=AWKWARD, referees_required=3)
    third, _ = nominate(company, reference_request, REFEREES[2])
    mail.outbox.clear()
    evaluate(company, reference_request)
    decline(company, third)
    complete(company, cheat)
    # Nothing at once; the candidate still hears of the decline and the completion.
    assert sent_to(recruiter.email) == []
    assert sent_to(REQUEST_EMAIL)
    with company_context(company):
        waiting = list(Notice.objects.values_list("event", flat=True))
    assert sorted(waiting) == [NoticeEvent.REFERENCE_COMPLETED, NoticeEvent.REFERENCE_DECLINED]  # no high_flag

    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):
        assert notices.send_digests() == 1
    [digest] = sent_to(recruiter.email)
    assert "2 updates" in digest.subject
    assert "declined" in digest.body and "submitted a reference" in digest.body and AWKWARD in digest.body
    assert "Smith &amp; Jones" in digest.alternatives[0][0]
    # The next day's run: nothing new, nothing again; the sender again: nothing again.
    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):
        assert notices.send_digests() == 0
    outgoing.drain_all(now=timezone.now() + timedelta(hours=1))
    assert len(sent_to(recruiter.email)) == 1
    # A later event waits for the next digest only.
    complete(company, honest)
    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):
        assert notices.send_digests() == 1
    assert len(sent_to(recruiter.email)) == 2 and "1 update " in sent_to(recruiter.email)[1].subject + " "


REQUEST_EMAIL = "casey@example.org"


def test_the_daily_maintenance_sends_the_digests(company, members):
    from vouch.references import jobs

    recruiter = members[Role.RECRUITER].user
    choose(company, recruiter, reference_declined=NoticeDelivery.DIGEST)
    reference_request, _ = make_request(company, recruiter)
    reference, _ = nominate(company, reference_request, REFEREES[0])
    decline(company, reference)
    mail.outbox.clear()
    counts = jobs.maintain_company(company)
    assert counts["digests"] == 1
    assert len(sent_to(recruiter.email)) == 1 and "declined" in sent_to(recruiter.email)[0].body


def test_a_recruiter_who_left_is_not_told(company, members):
    membership = members[Role.RECRUITER]
    reference_request, _ = make_request(company, membership.user)
    reference, _ = nominate(company, reference_request, REFEREES[0])
    Membership.objects.filter(pk=membership.pk).update(is_active=False)
    mail.outbox.clear()
    decline(company, reference)
    assert sent_to(membership.user.email) == []
    with company_context(company):
        row = OutgoingMail.objects.get(kind="notice_reference_declined")
    assert row.sent_at is not None  # nothing to try again


def test_the_preferences_page(client, company, members):
    recruiter, viewer = members[Role.RECRUITER].user, members[Role.VIEWER].user
    client.force_login(recruiter)
    url = reverse("notice_preferences")
    page = client.get(url)
    assert page.status_code == 200
    assert (
        page.content.decode().count('value="immediately" checked')
        + page.content.decode().count('checked value="immediately"')
        >= 0
    )
    for event in NoticeEvent.values:
        assert f'name="{event}"' in page.content.decode()
    data = {event: NoticeDelivery.IMMEDIATELY for event in NoticeEvent.values} | {"high_flag": "digest"}
    assert client.post(url, data).status_code == 302
    # A value that is not a choice, or a missing event, is a 400 and saves nothing.
    assert client.post(url, data | {"request_expired": "hourly"}).status_code == 400
    assert client.post(url, {"high_flag": "off"}).status_code == 400
    with company_context(company):
        assert notices.preferences(recruiter.pk)["high_flag"] == NoticeDelivery.DIGEST
        assert notices.preferences(recruiter.pk)["request_expired"] == NoticeDelivery.IMMEDIATELY
        assert notices.preferences(viewer.pk)["high_flag"] == NoticeDelivery.IMMEDIATELY  # each member their own
    # The choice is per company: the same person in another company chose nothing there.
    other = make_company("Other Hiring")
    add_member(other, Role.RECRUITER, user=recruiter)
    with company_context(other):
        assert notices.preferences(recruiter.pk)["high_flag"] == NoticeDelivery.IMMEDIATELY


# --- the dashboard -------------------------------------------------------------------


def desk_of(company, user_id, seen=None, *, company_view=True):
    with company_context(company):
        return figures.build(seen or Visibility(everything=True), user_id, want_company=company_view)


def action(desk, kind) -> set:
    [found] = [item for item in desk.actions if item.kind == kind]
    assert found.count == len(found.rows)  # fewer than a page in these tests
    return {row.pk for row in found.rows}


def test_counts_by_status_and_the_action_rules(company, members):
    recruiter, admin = members[Role.RECRUITER].user, members[Role.ADMIN].user
    flagged, cheat, honest = high_flagged(company, recruiter)
    evaluate(company, flagged)
    declined_request, _ = make_request(company, recruiter, email="d@example.org")
    declined_ref, _ = nominate(company, declined_request, REFEREES[0])
    decline(company, declined_ref)
    slow_request, _ = make_request(company, recruiter, email="s@example.org")
    slow_ref, _ = nominate(company, slow_request, REFEREES[0])
    near, _ = make_request(company, admin, email="n@example.org", deadline=timezone.now() + timedelta(days=1))
    calm, _ = make_request(company, admin, email="c@example.org")
    done, _ = make_request(company, admin, email="done@example.org", referees_required=1)
    done_ref, _ = nominate(company, done, REFEREES[1])
    complete(company, done_ref)

    desk = desk_of(company, recruiter.pk)
    counts = {status: count for status, _, count in desk.by_status}
    assert desk.total == 6
    assert counts[RequestStatus.COMPLETED] == 1 and counts[RequestStatus.AWAITING_CANDIDATE] == 4
    assert counts[RequestStatus.AWAITING_REFEREES] == 1
    assert action(desk, figures.ActionKind.HIGH_FLAG) == {flagged.pk}
    assert action(desk, figures.ActionKind.REFEREE) == {declined_request.pk}  # slow_ref is not late yet
    assert action(desk, figures.ActionKind.DEADLINE) == {near.pk}
    assert action(desk, figures.ActionKind.UNREAD_REPORT) == {done.pk}
    assert calm.pk not in set().union(*(action(desk, kind) for kind in figures.ACTION_TITLES))

    # Past the replacement time, the unanswered referee needs action too.
    with company_context(company):
        days = WorkflowSettings.current().replace_after_days
        Reference.objects.filter(pk=slow_ref.pk).update(nominated_at=timezone.now() - timedelta(days=days, hours=1))
    assert action(desk_of(company, recruiter.pk), figures.ActionKind.REFEREE) == {declined_request.pk, slow_request.pk}
    # Reviewing the High signals clears that rule.
    with company_context(company):
        for flag in Flag.objects.filter(request=flagged, severity=Severity.HIGH):
            fraud_flows.review_flag(flag, actor=recruiter, comment="Called them: it is their desk phone.")
    assert action(desk_of(company, recruiter.pk), figures.ActionKind.HIGH_FLAG) == set()


def test_an_opened_report_is_no_longer_unread_for_that_member_only(client, company, members):
    recruiter, admin = members[Role.RECRUITER].user, members[Role.ADMIN].user
    done, _ = make_request(company, recruiter, referees_required=1)
    reference, _ = nominate(company, done, REFEREES[1])
    complete(company, reference)
    client.force_login(recruiter)
    assert client.get(reverse("request_report", args=[done.pk])).status_code == 200
    assert action(desk_of(company, recruiter.pk), figures.ActionKind.UNREAD_REPORT) == set()
    assert action(desk_of(company, admin.pk), figures.ActionKind.UNREAD_REPORT) == {done.pk}


LOG_TEMPLATE = """{% for entry in entries %}<li><time datetime="{{ entry.occurred_at|date:'c' }}">\
{{ entry.occurred_at|date:"j M, H:i" }}</time> · {{ entry.summary }}</li>{% endfor %}"""


def test_the_activity_logs_latest_lines_are_the_templates_lines(company):
    from vouch.activity import services as activity

    with company_context(company):
        for summary in ("Role changed", f"Candidate {AWKWARD} added", 'Settings <script>alert("x")</script> & more'):
            activity.log("settings_changed", summary)
        lines = activity.latest_lines(5)
        entries = list(activity.entries()[:5])
        assert [summary for _, summary in lines] == [entry.summary for entry in entries]
        expected = engines["django"].from_string(LOG_TEMPLATE).render({"entries": entries})
        drawn = desk_tags.log_rows(lines)
    assert drawn == expected
    assert "&lt;script&gt;" in drawn and "<script>" not in drawn and "O&#x27;Brien, Smith &amp; Jones 山田" in drawn
    assert len(activity_lines_of(company, 2)) == 2


def activity_lines_of(company, limit: int) -> list:
    from vouch.activity import services as activity

    with company_context(company):
        return activity.latest_lines(limit)


def test_the_dashboard_page_with_data_and_empty(client, company, members):
    recruiter, admin = members[Role.RECRUITER].user, members[Role.ADMIN].user
    client.force_login(recruiter)
    empty = client.get(reverse("dashboard")).content.decode()
    assert 'id="desk-empty"' in empty and "No reference requests yet" in empty
    flagged, *_ = high_flagged(company, recruiter, name=AWKWARD)
    evaluate(company, flagged)
    make_request(company, admin, name="Admin Own", email="own@example.org")
    page = client.get(reverse("dashboard")).content.decode()
    # A recruiter starts on their own requests (the company lets recruiters see all).
    assert "My requests: 1" in page and "Admin Own" not in page
    assert "Open high fraud signals (1)" in page and "Siobhán O&#x27;Brien, Smith &amp; Jones 山田" in page
    assert "Last 30 days" in page and "Last 90 days" in page and 'id="desk-recent"' in page
    company_page = client.get(reverse("dashboard") + "?view=company").content.decode()
    assert "All requests: 2" in company_page and "Admin Own" in company_page
    assert client.get(reverse("dashboard") + "?view=everyone").status_code == 400
    # Admins start on the company and see the activity log's latest entries.
    client.force_login(admin)
    admin_page = client.get(reverse("dashboard")).content.decode()
    assert "All requests: 2" in admin_page and 'id="desk-log"' in admin_page
    client.force_login(recruiter)
    assert 'id="desk-log"' not in client.get(reverse("dashboard")).content.decode()


def test_a_recruiter_limited_to_their_own_never_sees_others_counts_rows_or_export(client, company, members):
    recruiter, admin = members[Role.RECRUITER].user, members[Role.ADMIN].user
    make_request(company, recruiter, name="Mine Only")
    theirs, *_ = high_flagged(company, admin, name="Secret Other", email="secret@example.org")
    evaluate(company, theirs)
    with company_context(company):
        WorkflowSettings.objects.update_or_create(pk=1, defaults={"recruiters_see_all": False})
    outsider = make_company("Elsewhere Ltd")
    outsider_recruiter = add_member(outsider, Role.RECRUITER).user
    make_request(outsider, outsider_recruiter, name="Other Company Person", email="ocp@example.org")

    client.force_login(recruiter)
    for query in ("", "?view=company", "?view=mine"):
        page = client.get(reverse("dashboard") + query).content.decode()
        assert "My requests: 1" in page and "All requests" not in page and "Whole company" not in page
        assert "Secret Other" not in page and "Other Company Person" not in page
        assert "Open high fraud signals" not in page  # the other recruiter's flags are not counted
    rows = exported(client, "")
    assert [row[0] for row in rows] == ["Mine Only"]
    # Asking for the other member's requests by filter: still only their own.
    assert [row[0] for row in exported(client, f"?recruiter={admin.pk}")] == ["Mine Only"]
    assert [row[0] for row in exported(client, "?q=Secret")] == []
    # The admin sees both, never the other company's.
    client.force_login(admin)
    assert sorted(row[0] for row in exported(client, "")) == ["Mine Only", "Secret Other"]


def exported(client, query: str) -> list[list[str]]:
    response = client.get(reverse("requests_export") + query)
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.streaming
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == list(export.HEADER)
    return rows[1:]


def test_the_csv_export_is_injection_safe_and_filtered(client, company, members):
    recruiter = members[Role.RECRUITER].user
    evil = [
        ('=HYPERLINK("http://x.example","y")', "+SUM(1)"),
        ("@cmd", "-2+3"),
        ("Plain Person", "Head of R&D"),
    ]
    made = [
        make_request(company, recruiter, name=name, role=role, email=f"e{i}@example.org")[0]
        for i, (name, role) in enumerate(evil)
    ]
    with company_context(company):
        ReferenceRequest.objects.filter(pk=made[2].pk).update(status=RequestStatus.CANCELLED)
    client.force_login(recruiter)
    rows = exported(client, "")
    by_name = {row[0]: row for row in rows}
    assert set(by_name) == {'\'=HYPERLINK("http://x.example","y")', "'@cmd", "Plain Person"}
    assert by_name["'@cmd"][2] == "'-2+3" and by_name['\'=HYPERLINK("http://x.example","y")'][2] == "'+SUM(1)"
    assert by_name["Plain Person"][2] == "Head of R&D" and by_name["Plain Person"][3] == "Cancelled"
    for row in rows:
        assert not row[0].startswith(export.FORMULA_STARTS) and not row[2].startswith(export.FORMULA_STARTS)
    assert export.safe_cell("\tx") == "'\tx" and export.safe_cell("\rx") == "'\rx" and export.safe_cell(3) == "3"
    # The list's filters apply.
    assert [row[0] for row in exported(client, "?status=cancelled")] == ["Plain Person"]
    assert [row[0] for row in exported(client, "?q=plain")] == ["Plain Person"]
    assert client.get(reverse("requests_export") + "?status=nonsense").status_code == 400
    assert client.get(reverse("requests_export") + "?created_from=2026-13-40").status_code == 400
    # A viewer may read the list, so may export it; someone signed out may not.
    client.logout()
    assert client.get(reverse("requests_export")).status_code == 302


def test_a_request_with_a_decline_says_what_is_needed(client, company, members):
    recruiter = members[Role.RECRUITER].user
    reference_request, _ = make_request(company, recruiter, referees_required=3)
    refs = [nominate(company, reference_request, referee)[0] for referee in REFEREES]
    complete(company, refs[0])
    complete(company, refs[1])
    decline(company, refs[2])
    assert load(company, reference_request).status == RequestStatus.AWAITING_CANDIDATE
    client.force_login(recruiter)
    page = client.get(reverse("request_detail", args=[reference_request.pk])).content.decode()
    assert "2 of 3 references in, 1 declined: waiting for the candidate to nominate 1 more referee." in page
    listed = client.get(reverse("requests")).content.decode()
    assert "2 of 3 in: the candidate must nominate another referee" in listed
    assert '<span class="badge action">Action needed</span>' in listed  # the decline needs action


def test_turnaround_figures(company, members):
    recruiter = members[Role.RECRUITER].user
    now = timezone.now()
    fast, _ = make_request(company, recruiter, referees_required=1)
    ref_fast, _ = nominate(company, fast, REFEREES[0])
    complete(company, ref_fast)
    slow, _ = make_request(company, recruiter, email="slow@example.org")
    ref_slow, _ = nominate(company, slow, REFEREES[1])
    decline(company, ref_slow)
    old, _ = make_request(company, recruiter, email="old@example.org")
    nominate(company, old, REFEREES[2])
    with company_context(company):
        ReferenceRequest.objects.filter(pk=fast.pk).update(created_at=now - timedelta(days=2), closed_at=now)
        Reference.objects.filter(pk=ref_fast.pk).update(nominated_at=now - timedelta(days=2) + timedelta(hours=4))
        ReferenceRequest.objects.filter(pk=slow.pk).update(created_at=now - timedelta(days=5))
        Reference.objects.filter(pk=ref_slow.pk).update(nominated_at=now - timedelta(days=5) + timedelta(hours=10))
        ReferenceRequest.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=60))
        Reference.objects.filter(request=old).update(nominated_at=now - timedelta(days=59))
    month, quarter = desk_of(company, recruiter.pk, company_view=False).turnaround
    assert (month.days, month.requests, quarter.requests) == (30, 2, 3)
    assert month.median_first_nomination == timedelta(hours=7)  # the median of 4 and 10 hours
    assert month.median_completion == timedelta(days=2)
    assert (month.nominated, month.response_rate, month.decline_rate) == (2, 1.0, 0.5)
    assert quarter.median_first_nomination == timedelta(hours=10)
    assert (quarter.nominated, quarter.response_rate) == (3, pytest.approx(2 / 3))


def test_turnaround_is_kept_a_while_per_view(company, members):
    recruiter, admin = members[Role.RECRUITER].user, members[Role.ADMIN].user
    first, _ = make_request(company, recruiter)
    assert desk_of(company, recruiter.pk, company_view=False).turnaround[0].requests == 1
    make_request(company, admin, email="third@example.org")
    # A nomination changes no status: the member's view is kept a while.
    nominate(company, first, REFEREES[0])
    assert desk_of(company, recruiter.pk, company_view=False).turnaround[0].nominated == 0
    # The company's view is its own, worked out now.
    assert desk_of(company, admin.pk).turnaround[0].requests == 2
    assert desk_of(company, admin.pk).turnaround[0].nominated == 1
    # A new request is a new state: worked out again at once.
    make_request(company, recruiter, email="second@example.org")
    assert desk_of(company, recruiter.pk, company_view=False).turnaround[0].requests == 2
    assert desk_of(company, recruiter.pk, company_view=False).turnaround[0].nominated == 1


def all_queries(company, function) -> int:
    with company_context(company) as context:
        watched = [CaptureQueriesContext(connection) for connection in connections.all()]
        watched.append(CaptureQueriesContext(connections[context.alias]))
        for capture in watched:
            capture.__enter__()
        try:
            function()
        finally:
            for capture in watched:
                capture.__exit__(None, None, None)
    return sum(len(capture) for capture in watched)


def _copies(company, template: ReferenceRequest, count: int, **values) -> None:
    base = {
        "candidate_id": template.candidate_id,
        "role": "Copied role",
        "questionnaire_version_id": template.questionnaire_version_id,
        "deadline": template.deadline,
        "created_by_id": template.created_by_id,
    }
    with company_context(company):
        ReferenceRequest.objects.bulk_create(ReferenceRequest(**(base | values)) for _ in range(count))


def test_the_dashboard_makes_a_bounded_number_of_queries(client, company, members, monkeypatch):
    # Turnaround worked out on every page (not from the cache), to count its queries too.
    monkeypatch.setattr(figures, "TURNAROUND_CACHE", timedelta(0))
    recruiter = members[Role.RECRUITER].user
    template, _ = make_request(company, recruiter)
    client.force_login(recruiter)

    def page():
        assert client.get(reverse("dashboard") + "?view=company").status_code == 200

    def more(count: int) -> None:
        # Every list fuller than it shows, and completed requests for the medians.
        _copies(company, template, count, deadline=timezone.now() + timedelta(hours=5))
        _copies(company, template, count, status=RequestStatus.COMPLETED, closed_at=timezone.now())

    more(10)
    page()  # the first page of a process reads what is then cached (the settings row, the session)
    few = all_queries(company, page)
    more(300)
    many = all_queries(company, page)
    assert many <= few, (few, many)  # the same queries (one fewer: a first read cached meanwhile)
    assert many <= 30


def test_the_prepared_lists_are_the_rules_own_querysets(company, members):
    # The dashboard runs each rule's SQL compiled once (desk/reads.py): on the same data
    # it must find what the rule's queryset finds, first rows in order and count, in
    # the company's view and in each creator's, past a page of rows.
    recruiter, admin = members[Role.RECRUITER].user, members[Role.ADMIN].user
    soon = timezone.now() + timedelta(days=1)
    for n in range(7):
        owner = recruiter if n % 2 else admin
        flagged, *_ = high_flagged(company, owner, email=f"f{n}@example.org", deadline=soon + timedelta(hours=n))
        evaluate(company, flagged)
        done, _ = make_request(company, owner, email=f"d{n}@example.org", referees_required=1)
        complete(company, nominate(company, done, REFEREES[1])[0])
    now = timezone.now()
    values = {
        figures.ActionKind.HIGH_FLAG: {},
        figures.ActionKind.DEADLINE: {"soon": now + figures.NEAR_DEADLINE},
        figures.ActionKind.UNREAD_REPORT: {"user_id": recruiter.pk},
    }
    with company_context(company):
        for creator in (None, recruiter.pk, admin.pk):
            requests = ReferenceRequest.objects.all()
            if creator is not None:
                requests = requests.filter(created_by_id=creator)
            for kind, rule in figures.RULES.items():
                matching = requests.filter(rule.condition(**values[kind])).order_by(*rule.order)
                expected = list(matching.values_list("pk", flat=True))
                assert len(expected) >= 3, (kind, creator)
                assert rule.first_ids(creator, 5, **values[kind]) == expected[:5]
                assert rule.count(creator, **values[kind]) == len(expected)
            counts = dict(requests.order_by().values_list("status").annotate(n=Count("*")))
            assert reads.counts_by_status(creator) == counts
        # Another member's id in the same prepared SQL: their reports, not the recruiter's.
        unread = figures.RULES[figures.ActionKind.UNREAD_REPORT]
        assert unread.count(None, user_id=admin.pk) == 7
        # The dashboard counts a full list of unread reports as the completed requests
        # less the member's views of them: the rule's count, whoever viewed what.
        completed = list(ReferenceRequest.objects.filter(status=RequestStatus.COMPLETED).order_by("created_at"))
        still_open = ReferenceRequest.objects.exclude(status=RequestStatus.COMPLETED).first()
        for viewer, opened in ((recruiter, [completed[0], still_open]), (admin, completed[2:4])):
            for request in opened:
                ReportView.objects.create(request=request, user_id=viewer.pk)
        for creator in (None, recruiter.pk, admin.pk):
            done = reads.counts_by_status(creator).get(RequestStatus.COMPLETED, 0)
            for viewer in (recruiter, admin):
                expected = unread.count(creator, user_id=viewer.pk)
                assert done - reads.viewed_completed(creator, viewer.pk) == expected, (creator, viewer)
    for viewer, left in ((recruiter, 6), (admin, 5)):
        [listed] = [a for a in desk_of(company, viewer.pk).actions if a.kind == figures.ActionKind.UNREAD_REPORT]
        assert (listed.count, len(listed.rows)) == (left, min(left, figures.ACTION_ROWS)), viewer


# The rows as the dashboard's template drew them before they were drawn in Python.
ROWS_TEMPLATE = """{% for row in rows %}<li><a href="{% url 'request_detail' row.pk %}">{{ row.candidate.name }}</a> · \
{{ row.role }} · {% if row.closed_at %}completed {{ row.closed_at|date:"j M Y" }}{% else %}due \
{{ row.deadline|date:"j M Y" }}{% endif %}</li>
{% endfor %}"""
RECENT_TEMPLATE = """{% for event in events %}<li><time datetime="{{ event.at|date:'c' }}">\
{{ event.at|date:"j M, H:i" }}</time> · <a href="{% url 'request_detail' event.request_id %}">\
{{ event.request.candidate.name }}</a>: {{ event.summary }}</li>
{% endfor %}"""


def test_the_hand_drawn_rows_are_the_templates_rows(company, members):
    recruiter = members[Role.RECRUITER].user
    make_request(company, members[Role.ADMIN].user, name="Admin Own", email="own@example.org")
    flagged, cheat, _ = high_flagged(company, recruiter, name=AWKWARD, role='Head of R&D <script>alert("x")</script>')
    evaluate(company, flagged)
    decline(company, cheat)
    done, _ = make_request(company, recruiter, name="Zoë <b>Ünal</b>", email="z@example.org", referees_required=1)
    complete(company, nominate(company, done, REFEREES[1])[0])
    desk = desk_of(company, recruiter.pk)
    rows = [row for action in desk.actions for row in action.rows]
    assert {row.pk for row in rows} == {flagged.pk, done.pk} and len(desk.recent) >= 5
    engine = engines["django"]
    with company_context(company):  # the encrypted values open with the company's keys
        # The lines are read without instances: the template's were the ORM's events.
        events = TimelineEvent.objects.select_related("request__candidate").order_by("-at", "-id")
        assert [(e.pk, e.at, e.summary, e.request_id, e.request.candidate.name) for e in events[:10]] == desk.recent
        own_events = events.filter(request__created_by_id=recruiter.pk)
        own = desk_of(company, recruiter.pk, Visibility(everything=False, creator_id=recruiter.pk), company_view=False)
        assert [line.pk for line in own.recent] == [e.pk for e in own_events[:10]]
        everyone, mine = reads.recent_events(None, 50), reads.recent_events(recruiter.pk, 50)
        assert [line.pk for line in mine] == [e.pk for e in own_events[:50]]
        assert "Admin Own" in {line.name for line in everyone} - {line.name for line in mine}
        # So are the rows: the template's were the ORM's requests with their candidates.
        requests = ReferenceRequest.objects.select_related("candidate").in_bulk([row.pk for row in rows])
        assert [
            (r.pk, r.role, r.deadline, r.closed_at, r.candidate.name) for r in (requests[row.pk] for row in rows)
        ] == rows
        for template, tag, context, drawn_from in (
            (ROWS_TEMPLATE, desk_tags.action_rows, {"rows": [requests[row.pk] for row in rows]}, rows),
            (RECENT_TEMPLATE, desk_tags.recent_rows, {"events": list(events[: len(desk.recent)])}, desk.recent),
        ):
            expected = engine.from_string(template).render(context).rstrip("\n")
            assert tag(drawn_from) == expected
        drawn = desk_tags.action_rows(rows)
        assert "<script>" not in drawn and "&lt;script&gt;" in drawn and "&lt;b&gt;" in drawn
        assert "Siobhán O&#x27;Brien, Smith &amp; Jones 山田" in desk_tags.recent_rows(desk.recent)
