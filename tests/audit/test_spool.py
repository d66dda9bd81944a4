"""Issue 15, item 6: security events a full disk refused are counted (a preallocated spool
file, or this process's memory when there is none) and recorded once, with the counts, when
there is room again. The full disk itself is tested live: tests/server/test_disk_full.py."""

from __future__ import annotations

import json

import pytest

from vouch.audit import spool
from vouch.audit.models import EventAction, SecurityEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def spool_dir(settings, tmp_path, monkeypatch):
    settings.DATA_DIR = tmp_path
    monkeypatch.setattr(spool, "_memory", spool.Counter())
    return tmp_path


def _not_recorded() -> list[dict]:
    return [e.details for e in SecurityEvent.objects.filter(action=EventAction.AUDIT_EVENTS_NOT_RECORDED)]


def test_counts_rewrite_the_prepared_file_in_place_and_are_recorded_once(spool_dir):
    spool.prepare()
    size = spool.path().stat().st_size
    assert size == spool.SIZE and not spool.pending()
    spool.count("authz_fail", "blocked")
    spool.count("authz_fail", "blocked")
    spool.count("authn_login_fail", "failure")
    # In place: the file never grows, and another process (or a restart) sees the counts.
    assert spool.path().stat().st_size == size
    assert json.loads(spool.path().read_bytes().strip())["counts"] == {
        "authz_fail:blocked": 2,
        "authn_login_fail:failure": 1,
    }
    assert not spool._memory
    assert spool.pending()
    spool.flush()
    assert not spool.pending()
    assert spool.flush() is None
    (details,) = _not_recorded()
    assert details["not_recorded"] == 3
    assert details["actions"] == "authz_fail:blocked=2, authn_login_fail:failure=1"
    assert details["reason"] == "storage_full"


def test_without_a_prepared_file_counts_are_kept_in_memory(spool_dir):
    assert not spool.path().exists()
    spool.count("authz_fail", "blocked")
    assert spool._memory == {"authz_fail:blocked": 1}
    assert not spool.path().exists()  # never made on a full disk: it would need new blocks
    assert spool.pending()
    spool.flush()
    assert _not_recorded()[0]["not_recorded"] == 1
    assert not spool.pending()


def test_the_next_event_recorded_records_the_counts_too(spool_dir, committed_chain):
    # Committed for real: only an event recorded outside a transaction takes the counts.
    from vouch.audit.events import PLATFORM, record

    spool.prepare()
    spool.count("authz_fail", "blocked")
    record(EventAction.AUTHN_LOGOUT, company=PLATFORM)
    assert _not_recorded()[0]["not_recorded"] == 1
    assert not spool.pending()
