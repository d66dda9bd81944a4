"""Expensive work admitted a few at once per company (P3, vouch.shield.admission): report
PDFs, CSV imports, data exports and searches; one more gets "busy, try again in a moment".
The slots' rules hold both where they are kept: locked files (the embedded default) and
the shared cache (PostgreSQL, Redis)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from django.urls import reverse

from tests.conftest import make_company, make_user
from tests.references.workflow import make_request
from vouch.accounts.policy import Role
from vouch.references.reports import pdf as report_pdf
from vouch.shield import admission

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["files", "cache"])
def slots(request, settings, tmp_path):
    """The slots in locked files under a directory of this test's, or in the cache."""
    settings.VOUCH_SLOTS_DIR = str(tmp_path / "slots") if request.param == "files" else None
    return request.param


def _hold(stack: ExitStack, kind: str, company_id, count: int) -> None:
    for _ in range(count):
        stack.enter_context(admission.admitted(kind, company_id))


def test_n_are_admitted_the_next_is_refused_and_a_finished_one_frees_its_slot(slots, settings):
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


def test_searches_get_twice_the_slots(slots, settings):
    settings.VOUCH_COMPANY_AT_ONCE = 2
    with ExitStack() as stack:
        _hold(stack, "search", "company-a", 4)
        with pytest.raises(admission.Busy), admission.admitted("search", "company-a"):
            pass


def test_work_that_fails_frees_its_slot(slots, settings):
    settings.VOUCH_COMPANY_AT_ONCE = 1
    with pytest.raises(RuntimeError), admission.admitted("import", "company-a"):
        raise RuntimeError("the import broke")
    with admission.admitted("import", "company-a"):
        pass


def test_a_slot_in_the_cache_whose_holder_died_frees_itself_when_its_lease_ends(settings):
    settings.VOUCH_SLOTS_DIR = None
    settings.VOUCH_COMPANY_AT_ONCE = 1
    dead = admission.admitted("pdf", "company-a", lease=1)
    dead.__enter__()  # the process holding it is killed: it never leaves
    with pytest.raises(admission.Busy), admission.admitted("pdf", "company-a"):
        pass
    time.sleep(2.1)  # the database cache keeps whole seconds
    with admission.admitted("pdf", "company-a"):
        pass


HOLDER = textwrap.dedent(
    """
    import os, sys, time
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django
    django.setup()
    from django.conf import settings
    settings.VOUCH_SLOTS_DIR = sys.argv[1]
    settings.VOUCH_COMPANY_AT_ONCE = 1
    from vouch.shield import admission
    held = admission.admitted("pdf", "company-a")  # kept: a collected one would let go
    held.__enter__()
    print("held", flush=True)
    time.sleep(120)
    """
)


def test_a_slot_in_a_file_is_freed_the_moment_its_holders_process_is_killed(settings, tmp_path):
    settings.VOUCH_SLOTS_DIR = str(tmp_path / "slots")
    settings.VOUCH_COMPANY_AT_ONCE = 1
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, settings.VOUCH_SLOTS_DIR],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        # Another process (this one) finds the company's one PDF slot taken.
        with pytest.raises(admission.Busy), admission.admitted("pdf", "company-a"):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)  # no cleanup of its own runs
        holder.wait(timeout=30)
    with admission.admitted("pdf", "company-a"):
        pass


def test_file_slots_stay_in_their_directory_whatever_the_company_id(settings, tmp_path):
    settings.VOUCH_SLOTS_DIR = str(tmp_path / "slots")
    settings.VOUCH_COMPANY_AT_ONCE = 1
    with admission.admitted("export", "../../escaped"):
        pass
    made = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert made == ["slots/______escaped/export.0"]


def test_file_slots_write_nothing_to_the_cache(settings, tmp_path):
    from django.core.cache import caches

    from vouch.shield.limits import CACHE_ALIAS

    settings.VOUCH_SLOTS_DIR = str(tmp_path / "slots")
    settings.VOUCH_COMPANY_AT_ONCE = 1
    cache = caches[CACHE_ALIAS]
    cache.delete("adm:search:company-a:0")
    with admission.admitted("search", "company-a"):
        assert cache.get("adm:search:company-a:0") is None
        assert (tmp_path / "slots" / "company-a" / "search.0").exists()


def test_the_embedded_default_keeps_slots_in_files_and_postgresql_in_the_cache():
    from django.conf import settings as live

    postgresql = live.DATABASES["default"]["ENGINE"].endswith("postgresql")
    assert (live.VOUCH_SLOTS_DIR is None) == postgresql
    if not postgresql:
        assert Path(live.VOUCH_SLOTS_DIR) == Path(live.DATA_DIR) / "slots"


def test_off_with_the_benchmark_switch_or_zero(slots, settings):
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
