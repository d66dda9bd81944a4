"""The member pages of reference requests: the dashboard (filters, blind-index search,
pages), a new request, a request's page, and its changes, per role and per company."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from tests.accounts.helpers import fast_company, fast_member, fast_user
from tests.references.workflow import REFEREES, last_token, make_request, nominate, tokens_sent_to
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.links import services as links
from vouch.references import flows
from vouch.references.candidates import flows as candidate_flows
from vouch.references.models import ReferenceRequest
from vouch.references.referees import flows as referee_flows
from vouch.references.request_models import RequestStatus, TimelineEvent, WorkflowSettings

pytestmark = pytest.mark.django_db

ROW = re.compile(r'<tr id="request-([0-9a-f-]{36})"')


def listed(response) -> list[str]:
    assert response.status_code == 200, response.content.decode()[:500]
    return ROW.findall(response.content.decode())


def new_values(**overrides) -> dict:
    deadline = (timezone.now() + timedelta(days=10)).date().isoformat()
    return {
        "name": "Dana Doe",
        "email": "dana@example.com",
        "phone": "07700 900777",
        "role": "Head Chef",
        "questionnaire": "builtin:general-professional",
        "referees_required": "3",
        "guidance": "Two managers please",
        "deadline": deadline,
        **overrides,
    }


@pytest.fixture
def three(company, members):
    """Three requests by different members, with different names and statuses."""
    recruiter, admin = members[Role.RECRUITER].user, members[Role.ADMIN].user
    a, _ = make_request(company, recruiter, name="Casey Candidate", email="casey@example.org")
    b, _ = make_request(company, admin, name="Robin Casey-Smith", email="robin@example.org", role="Chef")
    c, _ = make_request(company, recruiter, name="Alex Other", email="alex@example.org", role="Driver")
    return a, b, c


def test_the_dashboard_lists_requests_with_their_columns(client, members, company, three):
    a, b, c = three
    members[Role.RECRUITER].user.full_name = "Rae Recruiter"
    members[Role.RECRUITER].user.save()
    client.force_login(members[Role.VIEWER].user)
    response = client.get(reverse("requests"))
    assert listed(response) == [str(c.pk), str(b.pk), str(a.pk)]  # newest first
    page = response.content.decode()
    assert "Casey Candidate" in page and "Head of Finance" in page and "Driver" in page
    assert "Rae Recruiter" in page  # the requester's name, from the control database
    assert 'class="badge status-awaiting_candidate"' in page
    assert '<progress max="2" value="0"' in page
    assert "1–3 of 3" in page
    # A viewer is not offered new requests.
    assert reverse("request_new") not in page


def test_the_dashboard_shows_the_utc_days_of_moments_next_to_midnight(client, members, company, three):
    a, _, _ = three
    with company_context(company):
        ReferenceRequest.objects.filter(pk=a.pk).update(
            created_at=datetime(2027, 3, 5, 23, 59, 59, 999_000, tzinfo=UTC),
            deadline=datetime(2027, 3, 7, 0, 0, 1, tzinfo=UTC),
        )
    client.force_login(members[Role.OWNER].user)
    row = re.search(rf'<tr id="request-{a.pk}">(.*?)</tr>', client.get(reverse("requests")).content.decode(), re.S)
    assert '<td data-label="Deadline">7 Mar 2027</td>' in row.group(1)
    assert '<td data-label="Created">5 Mar 2027</td>' in row.group(1)


def test_the_dashboard_reads_the_requester_names_in_one_query(client, members, company, three):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(members[Role.OWNER].user)
    client.get(reverse("requests"))  # warm the session and settings
    with CaptureQueriesContext(connection) as control:
        response = client.get(reverse("requests"))
    assert len(listed(response)) == 3
    user_queries = [q["sql"] for q in control.captured_queries if "accounts_user" in q["sql"]]
    # One for the signed-in user (the session), one for the members' names.
    assert len(user_queries) <= 2, user_queries


def test_filters_by_status_recruiter_flags_and_dates(client, members, company, three):
    a, b, c = three
    with company_context(company):
        ReferenceRequest.objects.filter(pk=b.pk).update(status=RequestStatus.IN_PROGRESS, open_flags=2)
        ReferenceRequest.objects.filter(pk=a.pk).update(created_at=timezone.now() - timedelta(days=40))
    client.force_login(members[Role.ADMIN].user)
    url = reverse("requests")
    assert listed(client.get(url, {"status": "in_progress"})) == [str(b.pk)]
    assert listed(client.get(url, {"flagged": "on"})) == [str(b.pk)]
    assert set(listed(client.get(url, {"recruiter": members[Role.RECRUITER].user_id}))) == {str(a.pk), str(c.pk)}
    recent = (timezone.now() - timedelta(days=5)).date().isoformat()
    assert set(listed(client.get(url, {"created_from": recent}))) == {str(b.pk), str(c.pk)}
    old = (timezone.now() - timedelta(days=30)).date().isoformat()
    assert listed(client.get(url, {"created_to": old})) == [str(a.pk)]
    combined = client.get(url, {"status": "awaiting_candidate", "recruiter": members[Role.RECRUITER].user_id})
    assert set(listed(combined)) == {str(a.pk), str(c.pk)}
    nothing = client.get(url, {"status": "completed"})
    assert listed(nothing) == [] and b'id="no-match"' in nothing.content


@pytest.mark.parametrize(
    "params",
    [
        {"status": "deleted"},
        {"recruiter": "999999"},
        {"recruiter": "abc"},
        {"created_from": "2026-13-45"},
        {"created_from": "2026-05-02", "created_to": "2026-05-01"},
        {"q": "casey\x00"},
        {"q": "x" * 300},
    ],
)
def test_invalid_filters_are_a_400_with_a_message(client, members, company, three, params):
    client.force_login(members[Role.VIEWER].user)
    response = client.get(reverse("requests"), params)
    assert response.status_code == 400
    assert b'id="invalid-filters"' in response.content
    assert not ROW.findall(response.content.decode())


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("casey", {"a", "b"}),  # "Casey-Smith" is found by each of its parts
        ("CASEY", {"a", "b"}),
        ("casey-smith", {"b"}),
        ("  Casey   Candidate ", {"a"}),  # every word must match
        ("candidate casey", {"a"}),  # in any order
        ("casey other", set()),
        ("cas", {"a", "b"}),  # the start of a word (search as you type)
        ("ca", set()),  # under 3 letters: whole words only
        ("cas smi", {"b"}),
        ("Robin Casey-Smith", {"b"}),
        ("casey@example.org", {"a"}),
        ("  CASEY@Example.org ", {"a"}),
        ("casey@example.com", set()),
        ("nobody", set()),
    ],
)
def test_search_by_name_words_or_whole_email(client, members, company, three, query, expected):
    ids = dict(zip("abc", (str(r.pk) for r in three), strict=True))
    client.force_login(members[Role.VIEWER].user)
    response = client.get(reverse("requests"), {"q": query})
    assert set(listed(response)) == {ids[key] for key in expected}
    if not expected:
        assert b'id="no-match"' in response.content


def test_search_reads_no_name_and_the_query_leaves_no_plaintext_in_sql(client, members, company, three):
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    client.force_login(members[Role.VIEWER].user)
    with company_context(company) as ctx, CaptureQueriesContext(connections[ctx.alias]) as queries:
        response = client.get(reverse("requests"), {"q": "Casey Candidate"})
    assert len(listed(response)) == 1
    sql = " ".join(q["sql"] for q in queries.captured_queries).casefold()
    assert "casey" not in sql and "references_nameprefix" in sql
    # The page's count reads the requests table alone (the search is an IN subquery).
    counts = [q["sql"] for q in queries.captured_queries if q["sql"].upper().startswith("SELECT COUNT(*)")]
    assert counts and all("JOIN" not in q.upper() for q in counts), counts


def test_pages_of_25_with_counts(client, members, company):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    with company_context(company):
        template = ReferenceRequest.objects.get(pk=reference_request.pk)
        copies = []
        for n in range(29):
            copies.append(
                ReferenceRequest(
                    candidate=template.candidate,
                    role=f"Role {n}",
                    questionnaire_version=template.questionnaire_version,
                    deadline=template.deadline,
                    created_by_id=template.created_by_id,
                )
            )
        ReferenceRequest.objects.bulk_create(copies)
    client.force_login(members[Role.VIEWER].user)
    first = client.get(reverse("requests"))
    assert len(listed(first)) == 25
    assert "1–25 of 30" in first.content.decode()
    second = client.get(reverse("requests"), {"page": "2"})
    assert len(listed(second)) == 5 and "26–30 of 30" in second.content.decode()
    assert set(listed(first)).isdisjoint(listed(second))
    # Odd page numbers are answered with a page, never an error.
    for odd in ("999", "0", "-1", "abc", "1e9", "٣"):
        assert client.get(reverse("requests"), {"page": odd}).status_code == 200
    # Filters are kept in the page links.
    filtered = client.get(reverse("requests"), {"status": "awaiting_candidate"}).content.decode()
    assert "status=awaiting_candidate&amp;page=2" in filtered


def _copies(template, count: int, **values) -> list[ReferenceRequest]:
    """``count`` more requests like ``template`` (same candidate), oldest first."""
    now = timezone.now()
    values = {"created_by_id": template.created_by_id, **values}
    copies = [
        ReferenceRequest(
            candidate=template.candidate,
            role=f"Role {n}",
            questionnaire_version=template.questionnaire_version,
            deadline=template.deadline,
            **values,
        )
        for n in range(count)
    ]
    ReferenceRequest.objects.bulk_create(copies)
    for n, copy in enumerate(copies):  # distinct times, so the order is known
        ReferenceRequest.objects.filter(pk=copy.pk).update(created_at=now - timedelta(hours=count - n))
    return copies


def _dashboard_queries(client, company, params=None) -> tuple[int, int, int]:
    """(rows shown, company database queries, control database queries) of one page."""
    from django.db import connection, connections
    from django.test.utils import CaptureQueriesContext

    with (
        company_context(company) as ctx,
        CaptureQueriesContext(connections[ctx.alias]) as company_db,
        CaptureQueriesContext(connection) as control,
    ):
        response = client.get(reverse("requests"), params or {})
    return len(listed(response)), len(company_db.captured_queries), len(control.captured_queries)


@pytest.mark.parametrize("role", [Role.OWNER, Role.RECRUITER], ids=["owner", "recruiter"])
def test_the_dashboard_asks_the_same_few_queries_however_many_requests(client, members, company, role, monkeypatch):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    client.force_login(members[role].user)
    client.get(reverse("requests"))  # warm the session
    one = _dashboard_queries(client, company)
    with company_context(company):
        template = ReferenceRequest.objects.get(pk=reference_request.pk)
        _copies(template, 40)
    many = _dashboard_queries(client, company)
    assert one[0] == 1 and many[0] == 25
    assert one[1:] == many[1:]
    # The count and one page of rows with their candidates, the workflow settings (whether
    # the company lets recruiters see every request; when a referee is late), and which
    # of the page's rows need action (the marker).
    assert many[1] == 4
    from vouch.references.requests import listing

    monkeypatch.setattr(listing, "DEEP_OFFSET", 1)
    # Deep pages read their ids from the index first, then those rows: one query more,
    # however deep; filtered, the ids are a subquery of the same statement.
    assert _dashboard_queries(client, company, {"page": "2"})[1:] == (many[1] + 1, many[2])
    filtered = _dashboard_queries(client, company, {"page": "2", "status": template.status})
    assert filtered == (16, many[1], many[2])


def test_deep_pages_show_the_same_rows_and_only_what_the_member_may_see(client, members, company, monkeypatch):
    from vouch.references.requests import listing

    recruiter, admin = members[Role.RECRUITER].user, members[Role.ADMIN].user
    reference_request, _ = make_request(company, recruiter)
    with company_context(company):
        template = ReferenceRequest.objects.get(pk=reference_request.pk)
        _copies(template, 30)
        _copies(template, 30, created_by_id=admin.pk)
        settings = WorkflowSettings.current()
        settings.recruiters_see_all = False
        settings.save()

    def pages(user, **filters) -> list[list[str]]:
        client.force_login(user)
        return [listed(client.get(reverse("requests"), {"page": str(n), **filters})) for n in (1, 2, 3)]

    shallow = {user.pk: pages(user) for user in (recruiter, admin)}
    monkeypatch.setattr(listing, "DEEP_OFFSET", 1)  # every page after the first
    deep = {user.pk: pages(user) for user in (recruiter, admin)}
    assert deep == shallow
    # Filtered (through the ORM rather than prepared SQL), the same rows in the same order.
    assert {user.pk: pages(user, status=template.status) for user in (recruiter, admin)} == shallow
    assert [len(page) for page in deep[admin.pk]] == [25, 25, 11]
    # The recruiter's own 31 requests only, on two pages (the third is the last again).
    assert [len(page) for page in deep[recruiter.pk]] == [25, 6, 6]
    with company_context(company):
        own = {
            str(pk) for pk in ReferenceRequest.objects.filter(created_by_id=recruiter.pk).values_list("pk", flat=True)
        }
    assert set(deep[recruiter.pk][0]) | set(deep[recruiter.pk][1]) == own


def test_the_dashboard_escapes_names_roles_and_member_names(client, members, company):
    recruiter = members[Role.RECRUITER].user
    recruiter.full_name = 'Rae <i>"Recruiter"</i>'
    recruiter.save()
    reference_request, _ = make_request(company, recruiter)
    with company_context(company):
        row = ReferenceRequest.objects.select_related("candidate").get(pk=reference_request.pk)
        row.role = "Chef & <b>Cook</b>"
        row.save()
        row.candidate.name = "<script>alert(1)</script> O'Neil"
        row.candidate.save()
    client.force_login(members[Role.OWNER].user)
    page = client.get(reverse("requests")).content.decode()
    assert "<script>alert(1)" not in page and "<b>Cook" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; O&#x27;Neil" in page
    assert "Chef &amp; &lt;b&gt;Cook&lt;/b&gt;" in page
    # In the row and in the recruiter filter's options.
    assert page.count("Rae &lt;i&gt;&quot;Recruiter&quot;&lt;/i&gt;") == 2
    chosen = client.get(reverse("requests"), {"recruiter": recruiter.pk, "status": "awaiting_candidate"})
    text = chosen.content.decode()
    assert f'<option value="{recruiter.pk}" selected>' in text
    assert '<option value="awaiting_candidate" selected>' in text


def test_empty_states(client, members, company):
    client.force_login(members[Role.RECRUITER].user)
    empty = client.get(reverse("requests"))
    assert b'id="no-requests"' in empty.content and reverse("request_new").encode() in empty.content
    client.force_login(members[Role.VIEWER].user)
    assert reverse("request_new").encode() not in client.get(reverse("requests")).content
    make_request(company, members[Role.RECRUITER].user)
    none = client.get(reverse("requests"), {"q": "nobody"})
    assert b'id="no-match"' in none.content and b'id="no-requests"' not in none.content


def test_recruiters_limited_to_their_own_requests(client, members, company, three):
    a, b, c = three
    with company_context(company):
        settings = WorkflowSettings.current()
        settings.recruiters_see_all = False
        settings.save()
    client.force_login(members[Role.RECRUITER].user)
    own = client.get(reverse("requests"))
    assert set(listed(own)) == {str(a.pk), str(c.pk)}
    assert 'name="recruiter"' not in own.content.decode()  # no one else's requests to choose from
    assert client.get(reverse("request_detail", args=[b.pk])).status_code == 404
    assert client.post(reverse("request_cancel", args=[b.pk]), {"confirm": "True"}).status_code == 404
    assert set(listed(client.get(reverse("requests"), {"q": "robin@example.org"}))) == set()
    client.force_login(members[Role.VIEWER].user)  # viewers and admins still see all
    assert len(listed(client.get(reverse("requests")))) == 3
    client.force_login(members[Role.ADMIN].user)
    assert len(listed(client.get(reverse("requests")))) == 3


def test_a_request_page_shows_details_referees_and_timeline_but_no_answers(client, members, company):
    recruiter = members[Role.RECRUITER].user
    recruiter.full_name = "Rae Recruiter"
    recruiter.save()
    reference_request, _ = make_request(company, recruiter)
    first, _ = nominate(company, reference_request, REFEREES[0])
    with company_context(company):
        referee_flows.decline(first, "I barely know them.")
    second, _ = nominate(company, reference_request, REFEREES[1], replacing=first)
    with company_context(company):
        referee_flows.save_answers(second, {})
        flows.note(reference_request, "note", "Phoned the candidate.", actor=recruiter)
    client.force_login(members[Role.VIEWER].user)
    response = client.get(reverse("request_detail", args=[reference_request.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    for text in ("Casey Candidate", "casey@example.org", "07700 900456", "Head of Finance", "General professional"):
        assert text in page
    assert "(version 1)" in page and "A manager from the last two years" in page
    assert "Rita Referee" in page and "replaced by Pat Peer" in page and "Acme Widgets" in page
    assert "I barely know them." not in page
    with company_context(company):
        events = list(TimelineEvent.objects.filter(request=reference_request))
    assert len(events) >= 6
    for event in events:
        assert f'id="event-{event.pk}"' in page
    assert "Phoned the candidate." in page and "— Rae Recruiter" in page
    assert reverse("request_report", args=[reference_request.pk]) in page
    assert reverse("request_report_pdf", args=[reference_request.pk]) in page


def test_the_report_links_appear_once_a_referee_has_answered_or_declined(client, members, company):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    first, _ = nominate(company, reference_request, REFEREES[0])
    client.force_login(members[Role.VIEWER].user)
    report, pdf = (reverse(name, args=[reference_request.pk]) for name in ("request_report", "request_report_pdf"))
    page = client.get(reverse("request_detail", args=[reference_request.pk])).content.decode()
    assert report not in page and pdf not in page  # nothing in them yet
    assert "appear here once a referee has answered or declined" in page
    with company_context(company):
        referee_flows.decline(first, "I barely know them.")
    page = client.get(reverse("request_detail", args=[reference_request.pk])).content.decode()
    assert report in page and pdf in page
    assert "appear here once" not in page


def test_viewer_sees_no_actions_and_every_change_is_refused(client, members, company):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    client.force_login(members[Role.VIEWER].user)
    page = client.get(reverse("request_detail", args=[reference_request.pk])).content.decode()
    assert 'id="request-actions"' not in page
    for name in ("request_resend", "request_deadline", "request_cancel", "request_delete"):
        assert reverse(name, args=[reference_request.pk]) not in page
        response = client.post(
            reverse(name, args=[reference_request.pk]), {"confirm": "True", "deadline": "2099-01-01", "reason": "x"}
        )
        assert response.status_code == 403, name
    sent = len(mail.outbox)
    assert client.post(reverse("request_new"), new_values()).status_code == 403
    assert client.get(reverse("request_new")).status_code == 403
    assert client.get(reverse("request_bulk")).status_code == 403
    assert len(mail.outbox) == sent
    with company_context(company):
        kept = ReferenceRequest.objects.get()
        assert kept.status == RequestStatus.AWAITING_CANDIDATE and kept.deadline == reference_request.deadline


def test_a_recruiter_sees_the_actions(client, members, company):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    client.force_login(members[Role.RECRUITER].user)
    page = client.get(reverse("request_detail", args=[reference_request.pk])).content.decode()
    for name in ("request_resend", "request_deadline", "request_cancel", "request_delete"):
        assert reverse(name, args=[reference_request.pk]) in page
    # The cancel reason's description points at an element that is there.
    (described,) = re.findall(r'<input[^>]*name="reason"[^>]*aria-describedby="([^"]+)"', page)
    assert f'id="{described}"' in page


def test_another_companys_request_is_404_everywhere(client, members, company):
    other = fast_company("Other Co")
    outsider = fast_member(other, Role.RECRUITER)
    theirs, _ = make_request(other, outsider.user, email="theirs@example.org")
    client.force_login(members[Role.OWNER].user)
    assert client.get(reverse("request_detail", args=[theirs.pk])).status_code == 404
    for name in ("request_resend", "request_deadline", "request_cancel", "request_delete"):
        assert client.post(reverse(name, args=[theirs.pk]), {"confirm": "True"}).status_code == 404
    assert client.get(reverse("request_detail", args=[uuid.uuid4()])).status_code == 404
    assert listed(client.get(reverse("requests"), {"q": "theirs@example.org"})) == []
    with company_context(other):
        assert ReferenceRequest.objects.get().status == RequestStatus.AWAITING_CANDIDATE


def test_creating_a_request_emails_the_candidate_a_link(client, members, company):
    client.force_login(members[Role.RECRUITER].user)
    form = client.get(reverse("request_new")).content.decode()
    default_day = (timezone.now() + timedelta(days=14)).date().isoformat()
    assert f'value="{default_day}"' in form and '<option value="2" selected>' in form
    response = client.post(reverse("request_new"), new_values(work_email_required="on"))
    assert response.status_code == 302
    with company_context(company):
        reference_request = ReferenceRequest.objects.select_related("candidate").get()
        assert response["Location"] == reverse("request_detail", args=[reference_request.pk])
        assert (reference_request.candidate.name, reference_request.candidate.email, reference_request.role) == (
            "Dana Doe",
            "dana@example.com",
            "Head Chef",
        )
        assert reference_request.referees_required == 3 and reference_request.work_email_required
        assert reference_request.guidance == "Two managers please"
        assert reference_request.created_by_id == members[Role.RECRUITER].user_id
    token = last_token("dana@example.com", "c")
    assert links.resolve(token, "candidate").subject_id == reference_request.pk
    followed = client.get(response["Location"])
    assert b"Dana Doe has been emailed their link" in followed.content


@pytest.mark.parametrize(
    "overrides",
    [
        {"name": ""},
        {"email": "not-an-email"},
        {"role": ""},
        {"questionnaire": "builtin:nope"},
        {"questionnaire": str(uuid.uuid4())},
        {"referees_required": "6"},
        {"referees_required": "0"},
        {"referees_required": "two"},
        {"deadline": "2020-01-01"},
        {"deadline": "tomorrow"},
        {"deadline": "2999-01-01"},
        {"phone": "call me"},
        {"name": "x" * 201},
        {"name": "Tab\tName"},
    ],
)
def test_invalid_new_requests_are_a_400_and_send_nothing(client, members, company, overrides):
    client.force_login(members[Role.RECRUITER].user)
    response = client.post(reverse("request_new"), new_values(**overrides))
    assert response.status_code == 400
    assert b"errorlist" in response.content
    assert mail.outbox == []
    with company_context(company):
        assert not ReferenceRequest.objects.exists()


def test_resend_issues_a_new_link_and_the_old_one_stops(client, members, company):
    reference_request, old = make_request(company, members[Role.RECRUITER].user)
    client.force_login(members[Role.RECRUITER].user)
    response = client.post(reverse("request_resend", args=[reference_request.pk]))
    assert response.status_code == 302 and response["Location"] == reverse(
        "request_detail", args=[reference_request.pk]
    )
    tokens = tokens_sent_to("casey@example.org", "c")
    assert len(tokens) == 2 and tokens[-1] != old
    assert links.resolve(old, "candidate") is None
    assert links.resolve(tokens[-1], "candidate").subject_id == reference_request.pk
    assert client.get(reverse("request_resend", args=[reference_request.pk])).status_code == 405


def test_changing_the_deadline(client, members, company):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    client.force_login(members[Role.RECRUITER].user)
    day = (timezone.now() + timedelta(days=30)).date()
    response = client.post(reverse("request_deadline", args=[reference_request.pk]), {"deadline": day.isoformat()})
    assert response.status_code == 302
    months = ["January", "February", "March", "April", "May", "June", "July", "August", "September"]
    months += ["October", "November", "December"]
    confirmation = client.get(response["Location"]).content.decode()
    assert f"Deadline moved to {day.day:02d} {months[day.month - 1]} {day.year}." in confirmation
    with company_context(company):
        moved = ReferenceRequest.objects.get()
        assert moved.deadline.date() == day
        [note] = moved.timeline.filter(kind="deadline_changed", actor_id=members[Role.RECRUITER].user_id)
        assert note.summary == f"Deadline moved to {day.day:02d} {months[day.month - 1]} {day.year}."
    for bad in ("2020-01-01", "not a date", "", "2999-12-31"):
        refused = client.post(reverse("request_deadline", args=[reference_request.pk]), {"deadline": bad})
        assert refused.status_code == 400, bad
    with company_context(company):
        assert ReferenceRequest.objects.get().deadline.date() == day


def test_cancel_asks_for_confirmation_then_closes_the_request(client, members, company):
    reference_request, token = make_request(company, members[Role.RECRUITER].user)
    client.force_login(members[Role.RECRUITER].user)
    url = reverse("request_cancel", args=[reference_request.pk])
    step = client.post(url, {"reason": "Role filled"})
    assert step.status_code == 200 and b'id="confirm-cancel"' in step.content
    assert b'value="Role filled"' in step.content
    with company_context(company):
        assert ReferenceRequest.objects.get().status == RequestStatus.AWAITING_CANDIDATE
    done = client.post(url, {"reason": "Role filled", "confirm": "True"})
    assert done.status_code == 302
    with company_context(company):
        cancelled = ReferenceRequest.objects.get()
        assert cancelled.status == RequestStatus.CANCELLED
        assert cancelled.timeline.filter(kind="request_cancelled", summary__isnull=False).exists()
    assert links.resolve(token, "candidate") is None
    page = client.get(reverse("request_detail", args=[reference_request.pk])).content.decode()
    assert "Request cancelled. Role filled" in page
    assert reverse("request_resend", args=[reference_request.pk]) not in page  # a closed request offers no changes
    again = client.post(url, {"confirm": "True"})
    assert again.status_code == 400 and b"already closed" in again.content
    for name, data in (("request_resend", {}), ("request_deadline", {"deadline": "2099-01-01"})):
        assert client.post(reverse(name, args=[reference_request.pk]), data).status_code == 400


def test_delete_only_before_the_candidate_acts(client, members, company):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    acted, _ = make_request(company, members[Role.RECRUITER].user, email="acted@example.org")
    with company_context(company):
        candidate_flows.confirm_candidate(acted, name="Casey Candidate", email="acted@example.org")
    client.force_login(members[Role.RECRUITER].user)
    page = client.get(reverse("request_detail", args=[acted.pk])).content.decode()
    assert reverse("request_delete", args=[acted.pk]) not in page
    refused = client.post(reverse("request_delete", args=[acted.pk]), {"confirm": "True"})
    assert refused.status_code == 400 and b"cancel it instead" in refused.content
    url = reverse("request_delete", args=[reference_request.pk])
    step = client.post(url)
    assert step.status_code == 200 and b'id="confirm-delete"' in step.content
    done = client.post(url, {"confirm": "True"})
    assert done.status_code == 302 and done["Location"] == reverse("requests")
    with company_context(company):
        assert list(ReferenceRequest.objects.values_list("pk", flat=True)) == [acted.pk]
    assert b"was deleted" in client.get(reverse("requests")).content
    assert client.get(reverse("request_detail", args=[reference_request.pk])).status_code == 404


def test_changes_need_a_post(client, members, company):
    reference_request, _ = make_request(company, members[Role.OWNER].user)
    client.force_login(members[Role.OWNER].user)
    for name in ("request_resend", "request_deadline", "request_cancel", "request_delete"):
        assert client.get(reverse(name, args=[reference_request.pk])).status_code == 405


def test_a_member_of_no_company_is_not_shown_requests(client, company):
    stranger = fast_user()
    client.force_login(stranger)
    response = client.get(reverse("requests"))
    assert response.status_code in (302, 403)


def test_the_request_page_shows_its_flags_and_only_reviewers_get_the_form(client, members, company):
    from vouch.references.request_models import Flag, Severity

    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    reference, _ = nominate(company, reference_request, REFEREES[0])
    with company_context(company):
        flag = Flag.objects.create(
            request=reference_request,
            reference=reference,
            kind="shared_device",
            key="shared_device:test",
            severity=Severity.HIGH,
            explanation="The referee used the candidate's device.",
        )
        ReferenceRequest.objects.filter(pk=reference_request.pk).update(open_flags=1, flag_count=1)
    review = reverse("flag_group_review", args=[reference_request.pk])  # one form per group of signals
    client.force_login(members[Role.RECRUITER].user)
    page = client.get(reverse("request_detail", args=[reference_request.pk])).content.decode()
    assert f'id="flag-{flag.pk}"' in page and "used the candidate&#x27;s device" in page
    assert review in page and f'name="flag" value="{flag.pk}"' in page
    flagged = client.get(reverse("requests"), {"flagged": "on"})
    assert listed(flagged) == [str(reference_request.pk)] and 'class="badge flag">1<' in flagged.content.decode()
    client.force_login(members[Role.VIEWER].user)
    page = client.get(reverse("request_detail", args=[reference_request.pk])).content.decode()
    assert f'id="flag-{flag.pk}"' in page and review not in page


@pytest.mark.parametrize("reason", ["x" * 501, "line one\nline two", "nul\x00"])
def test_an_invalid_cancel_reason_is_a_400_and_cancels_nothing(client, members, company, reason):
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    client.force_login(members[Role.RECRUITER].user)
    response = client.post(
        reverse("request_cancel", args=[reference_request.pk]), {"reason": reason, "confirm": "True"}
    )
    assert response.status_code == 400 and b'id="action-error"' in response.content
    with company_context(company):
        assert ReferenceRequest.objects.get().status == RequestStatus.AWAITING_CANDIDATE
