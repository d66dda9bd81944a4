"""vouch.references.candidates.listing_html: the Candidates list's rows, drawn in Python
for speed, must be exactly what the template they replaced gives for the same
candidates (every value escaped as ``{{ value }}`` escapes it), and the files are
counted for the rows shown. Run on both paths."""

from __future__ import annotations

import pytest
from django.template import engines

from tests.references.helpers import add_candidate, add_file
from vouch.core.context import company_context
from vouch.references.candidates import listing_html, services

pytestmark = pytest.mark.django_db

# The loop the list's template had.
ROWS_TEMPLATE = """{% for candidate in candidates %}<tr id="candidate-{{ candidate.pk }}">
  <td data-label="Name"><a href="{% url 'candidate_detail' candidate.pk %}">{{ candidate.name }}</a></td>
  <td data-label="Email">{{ candidate.email }}</td>
  <td data-label="Phone">{{ candidate.phone|default:"—" }}</td>
  <td data-label="Files">{{ candidate.file_count }}</td>
  <td data-label="Added">{{ candidate.created_at|date:"Y-m-d H:i" }}</td>
</tr>
{% endfor %}"""


def test_the_rows_are_the_templates_rows(company):
    first = add_candidate(company, '<b>Zoë</b> & "O\'Brien"', "zoe.o'brien@example.org", "07700 900123")
    add_candidate(company, "Maria Kowalska", "maria@example.org")
    add_file(company, first)
    add_file(company, first, name="second.pdf")
    with company_context(company):
        page = services.page_of_candidates("", "1")
        candidates = page.page.object_list
        assert [c.file_count for c in candidates] == [0, 2]
        expected = engines["django"].from_string(ROWS_TEMPLATE).render({"candidates": candidates})
        drawn = listing_html.rows_html(candidates)
    assert drawn == expected
    assert "&lt;b&gt;Zoë&lt;/b&gt; &amp; &quot;O&#x27;Brien&quot;" in drawn and "<b>" not in drawn
