"""Expensive work admitted a few at once per company (P3, vouch.shield.admission): report
PDFs, CSV imports, data exports and searches; one more gets "busy, try again in a moment"."""

from __future__ import annotations

import time
from contextlib import ExitStack

import pytest
from django.urls import reverse

from tests.conftest import make_company, make_user
from tests.references.workflow import make_request
from vouch.accounts.policy import Role
from vouch.references.reports import pdf as report_pdf
from vouch.shield import admission

pytestmark = pytest.mark.django_db


def _hold(stack: ExitStack, kind: str, company_id, count: int) -> None:
    for _ in range(count):
        stack.enter_context(admission.admitted(kind, company_id))


def test_n_are_admitted_the_next_is_refused_and_a_finished_one_frees_its_slot(settings):
    settings.VOUCH_COMPANY_AT_ONCE = 2
    with ExitStack() as stack:
        _hold(stack, "export", "company-a", 2)
        with pytest.raises(admission.Busy) as busy, admission.admitted("export", "company-a"):
            pass
        assert busy.value.retry_after == admission.RETRY_AFTER
        assert "2 data exports" in busy.value.message
        with admission.admitted("export", "company-b"):  # another company has its own slots
            pass
        with admission.admitted("pdf", "company-a"):  # and another kind of work its own
            pass
    with admission.admitted("export", "company-a"), admission.admitted("export", "company-a"):
        pass


def test_searches_get_twice_the_slots(settings):
    settings.VOUCH_COMPANY_AT_ONCE = 2
    with ExitStack() as stack:
        _hold(stack, "search", "company-a", 4)
        with pytest.raises(admission.Busy), admission.admitted("search", "company-a"):
            pass


def test_work_that_fails_frees_its_slot(settings):
    settings.VOUCH_COMPANY_AT_ONCE = 1
    with pytest.raises(RuntimeError), admission.admitted("import", "company-a"):
        raise RuntimeError("the import broke")
    with admission.admitted("import", "company-a"):
        pass


def test_a_slot_whose_holder_died_frees_itself_when_its_lease_ends(settings):
    settings.VOUCH_COMPANY_AT_ONCE = 1
    dead = admission.admitted("pdf", "company-a", lease=1)
    dead.__enter__()  # the process holding it is killed: it never leaves
    with pytest.raises(admission.Busy), admission.admitted("pdf", "company-a"):
        pass
    time.sleep(2.1)  # the database cache keeps whole seconds
    with admission.admitted("pdf", "company-a"):
        pass


def test_off_with_the_benchmark_switch_or_zero(settings):
    settings.VOUCH_PROTECTIONS_OFF = True
    with ExitStack() as stack:
        _hold(stack, "pdf", "company-a", 3)
    settings.VOUCH_PROTECTIONS_OFF = False
    settings.VOUCH_COMPANY_AT_ONCE = 0
    with admission.admitted("pdf", "company-a"), admission.admitted("pdf", "company-a"):
        pass


def test_a_busy_companys_search_gets_429_with_retry_after_and_another_company_searches(client, settings, owner):
    settings.VOUCH_COMPANY_AT_ONCE = 1
    other_user = make_user()
    make_company(name="Other Company", owner=other_user)
    client.force_login(owner.user)
    with ExitStack() as stack:
        _hold(stack, "search", owner.company_id, 2)
        busy = client.get("/requests/?q=smith")
        assert busy.status_code == 429
        assert busy["Retry-After"] == str(admission.RETRY_AFTER)
        assert "Busy: try again in a moment" in busy.content.decode()
        assert client.get("/candidates/?q=smith").status_code == 429
        assert client.get("/requests/").status_code == 200  # no search: no slot needed
        client.force_login(other_user)
        assert client.get("/requests/?q=smith").status_code == 200
    client.force_login(owner.user)
    assert client.get("/requests/?q=smith").status_code == 200


def test_a_csv_import_waits_for_a_free_slot(client, settings, members, company):
    settings.VOUCH_COMPANY_AT_ONCE = 1
    client.force_login(members[Role.RECRUITER].user)
    with ExitStack() as stack:
        _hold(stack, "import", company.pk, 1)
        busy = client.post(reverse("request_bulk"), {})
        assert busy.status_code == 429
        assert "1 CSV import running" in busy.content.decode()
        assert client.get(reverse("request_bulk")).status_code == 200  # the page itself is cheap
    assert client.post(reverse("request_bulk"), {}).status_code == 400  # the form's own answer


def test_a_pdf_is_drawn_only_in_a_free_slot(client, settings, members, company, monkeypatch):
    settings.VOUCH_COMPANY_AT_ONCE = 1
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    client.force_login(members[Role.VIEWER].user)
    url = reverse("request_report_pdf", args=[reference_request.pk])
    with ExitStack() as stack:
        _hold(stack, "pdf", company.pk, 1)
        busy = client.get(url)
        assert busy.status_code == 429
        assert busy["Retry-After"] == str(admission.RETRY_AFTER)
        assert "1 report PDF being prepared" in busy.content.decode()
    drawn = []
    original = report_pdf.render_pdf
    monkeypatch.setattr(report_pdf, "render_pdf", lambda data: drawn.append(1) or original(data))
    assert client.get(url).status_code == 200
    assert drawn == [1]
