"""vouch.references.requests.listing_html: the dashboard's rows, drawn in Python for
speed, must be exactly what a Django template gives for the same rows (the markup the
page had before it was drawn by hand, every value escaped as ``{{ value }}`` escapes
it), so drawing them by hand changes nothing a browser sees. Run on both paths."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.paginator import Paginator
from django.template import engines
from django.urls import reverse
from django.utils import timezone

from tests.references.workflow import make_request
from vouch.accounts.policy import Role
from vouch.core.context import company_context
from vouch.references.desk.status import short_line
from vouch.references.models import Candidate
from vouch.references.request_models import ReferenceRequest, RequestStatus
from vouch.references.requests import listing, listing_html
from vouch.references.requests.access import Visibility

pytestmark = pytest.mark.django_db

# The dashboard's row as a Django template (the loop it replaced), one row per item.
ROWS_TEMPLATE = """{% for item in rows %}<tr id="request-{{ item.pk }}">
  <td data-label="Candidate"><a href="{{ item.url }}">{{ item.candidate }}</a>\
{% if item.marked %} <span class="badge action">Action needed</span>{% endif %}</td>
  <td data-label="Role">{{ item.role }}</td>
  <td data-label="Status"><span class="badge status-{{ item.status }}">{{ item.status_label }}</span>\
{% if item.hint %}<br><span class="hint">{{ item.hint }}</span>{% endif %}</td>
  <td data-label="Requested by">{{ item.requested_by|default:"—" }}</td>
  <td data-label="Progress"><progress max="{{ item.required }}" value="{{ item.completed }}" \
aria-label="References completed"></progress>
    {{ item.completed }}/{{ item.required }}</td>
  <td data-label="Open flags">{% if item.flags %}<span class="badge flag">{{ item.flags }}</span>\
{% else %}0{% endif %}</td>
  <td data-label="Deadline">{{ item.deadline|date:"j M Y" }}</td>
  <td data-label="Created">{{ item.created|date:"j M Y" }}</td>
</tr>
{% endfor %}"""


def _template_rows(rows, names, marked=()) -> str:
    role_field, name_field = ReferenceRequest._meta.get_field("role"), Candidate._meta.get_field("name")
    labels = dict(RequestStatus.choices)
    items = [
        {
            "pk": pk,
            "marked": pk in marked,
            "hint": short_line(status, completed, required),
            "url": reverse("request_detail", args=[pk]),
            "candidate": name_field.open(name, candidate_id),
            "role": role_field.open(role, pk),
            "status": status,
            "status_label": labels[status],
            "requested_by": names.get(created_by_id),
            "required": required,
            "completed": completed,
            "flags": flags,
            "deadline": deadline,
            "created": created,
        }
        for pk, created, created_by_id, role, status, completed, required, flags, deadline, candidate_id, name in rows
    ]
    return engines["django"].from_string(ROWS_TEMPLATE).render({"rows": items})


@pytest.fixture
def awkward_requests(company, members):
    """Requests whose values need escaping, with flags, and one by a creator with no name."""
    recruiter, admin = members[Role.RECRUITER].user, members[Role.ADMIN].user
    made = [
        make_request(company, recruiter, name='Zoë <b>"O\'Brien"</b> & Co', role="<script>alert(1)</script>")[0],
        make_request(company, admin, name="Plain Name", role="Head of R&D", email="plain@example.org")[0],
        make_request(company, recruiter, name="Third", role="Ops", email="third@example.org")[0],
    ]
    with company_context(company):
        ReferenceRequest.objects.filter(pk=made[0].pk).update(open_flags=3, references_completed=1)
        ReferenceRequest.objects.filter(pk=made[2].pk).update(
            status=RequestStatus.CANCELLED, deadline=timezone.now() + timedelta(days=400)
        )
    return made


def test_the_hand_drawn_rows_are_the_templates_rows(company, members, awkward_requests):
    recruiter = members[Role.RECRUITER].user
    names = {recruiter.pk: "Rae <Recruiter> & 'Co'"}  # the admin has no name here: "—"
    with company_context(company):
        page = listing.dashboard_page(Visibility(everything=True), listing.Filters(), "1", names)
        rows = page.page.object_list
        assert len(rows) == 3
        marked = {rows[0][0]}
        mine = listing_html.rows_html(rows, page.names | {members[Role.ADMIN].user.pk: ""}, marked)
        theirs = _template_rows(rows, page.names | {members[Role.ADMIN].user.pk: ""}, marked)
    assert mine == theirs
    assert mine.count("Action needed") == 1
    assert "&lt;script&gt;" in mine and "<script>" not in mine and "&#x27;" in mine and "—" in mine
    assert '<span class="badge flag">3</span>' in mine and "status-cancelled" in mine


def test_the_options_and_pagination_are_the_templates():
    choices = [(1, "A & <B>"), ("x'y", 'Q "R"')]
    template = engines["django"].from_string(
        '{% for value, label in choices %}<option value="{{ value }}"{% if value|stringformat:"s" == selected %}'
        " selected{% endif %}>{{ label }}</option>{% endfor %}"
    )
    for selected in ("1", "x'y", ""):
        assert listing_html.options_html(choices, selected) == template.render(
            {"choices": choices, "selected": selected}
        )
    pagination = engines["django"].from_string(
        '<nav class="pagination" aria-label="Pages">\n    '
        '{% if page.has_previous %}<a href="?{% if qs %}{{ qs }}&amp;{% endif %}page={{ page.previous_page_number }}" '
        'rel="prev">Newer</a>{% endif %}\n'
        "    <span>Page {{ page.number }} of {{ page.paginator.num_pages }} · {{ summary }}</span>\n    "
        '{% if page.has_next %}<a href="?{% if qs %}{{ qs }}&amp;{% endif %}page={{ page.next_page_number }}" '
        'rel="next">Older</a>{% endif %}\n  </nav>'
    )
    for number in (1, 2, 3):
        for qs in ("", "q=a&b=<c>"):
            page = Paginator(range(60), 25).page(number)
            summary = f"{page.start_index()}–{page.end_index()} of 60 <&>"
            assert listing_html.pagination_html(page, qs, summary) == pagination.render(
                {"page": page, "qs": qs, "summary": summary}
            )
