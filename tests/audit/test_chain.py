"""The chain itself: what a row holds, append-only enforcement, and tamper detection (P1)."""

from __future__ import annotations

import uuid

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory

from tests.accounts.helpers import fast_company, fast_user
from tests.audit.helpers import all_rows_text, attacker
from vouch.audit import chain, record
from vouch.audit.events import email_hash
from vouch.audit.models import ChainHead, EventAction, Outcome, SecurityEvent
from vouch.audit.verify import verify_chain

pytestmark = pytest.mark.django_db


def _fill(n: int = 6) -> list[SecurityEvent]:
    return [record(EventAction.AUTHZ_FAIL, target=f"route:t{i}", outcome=Outcome.BLOCKED) for i in range(n)]


def test_record_takes_what_it_needs_from_the_request():
    company = fast_company()
    user = fast_user()
    request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT="Mozilla/5.0 " + "x" * 1000)
    request.user = user
    request.company = company
    event = record(EventAction.AUTHZ_CHANGE, request=request, target="membership:1", details={"n": 1})
    event.refresh_from_db()
    assert event.actor_id == user.pk
    assert event.actor_label == f"user:{user.pk}"
    assert event.company_id == company.pk
    assert event.ip == "203.0.113.7"
    assert event.user_agent.startswith("Mozilla/5.0") and len(event.user_agent) == 256
    assert event.outcome == "success"
    assert event.occurred_at is not None
    assert event.details == {"n": 1}
    assert chain.is_valid(event)


def test_explicit_company_wins_and_platform_means_none():
    company = fast_company()
    request = RequestFactory().get("/")
    request.company = company
    assert record(EventAction.AUTHN_LOGOUT, request=request, company="platform").company_id is None
    assert record(EventAction.AUTHN_LOGOUT, company=str(company.pk).upper()).company_id == company.pk


def test_rows_link_into_one_chain():
    rows = _fill(5)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == chain.GENESIS
    for before, after in zip(rows, rows[1:], strict=False):
        assert after.prev_hash == before.hash
    head = ChainHead.objects.get(pk=1)
    assert (head.seq, head.hash) == (5, rows[-1].hash)
    result = verify_chain()
    assert result.ok and result.checked == 5


def test_empty_log_verifies():
    assert verify_chain().ok


def test_unknown_outcome_is_refused():
    with pytest.raises(ValueError):
        record(EventAction.AUTHZ_FAIL, outcome="maybe")


def test_the_hash_is_keyed_and_survives_a_key_rotation(settings):
    """Without SECRET_KEY nobody can recompute a row's hash; after a rotation the old
    key stays in SECRET_KEY_FALLBACKS and old rows still verify."""
    (event,) = _fill(1)
    event.refresh_from_db()
    assert chain.is_valid(event)
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "another key " * 8
    assert not chain.is_valid(event)
    settings.SECRET_KEY_FALLBACKS = [old]
    assert chain.is_valid(event)


def test_details_never_hold_secrets_or_addresses():
    event = record(
        EventAction.USER_UPDATED,
        details={
            "password": "hunter2 hunter2",
            "new_password1": "x",
            "token": "tok-Zq9xv7Yw",
            "email": "someone@example.com",
            "note": "contact someone@example.com",
            "nested": {"a": 1},
            "ok": "fine",
        },
    )
    event.refresh_from_db()
    text = all_rows_text()
    for secret in ("hunter2", "someone@example.com", "tok-Zq9xv7Yw"):
        assert secret not in text
    assert event.details["password"] == "[redacted]"
    assert event.details["note"].startswith("email:")
    assert event.details["ok"] == "fine"
    assert chain.is_valid(event)


def test_email_hash_is_short_stable_and_keyed(settings):
    assert email_hash("A@Example.com") == email_hash(" a@example.com")
    assert len(email_hash("a@example.com")) == 16
    before = email_hash("a@example.com")
    settings.SECRET_KEY = "rotated " * 10
    assert email_hash("a@example.com") != before


# Append-only ------------------------------------------------------------------------------


def test_python_refuses_update_and_delete():
    (event,) = _fill(1)
    event.outcome = "success"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        SecurityEvent.objects.filter(pk=event.pk).update(outcome="success")
    with pytest.raises(PermissionError):
        SecurityEvent.objects.all().delete()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_securityevent SET outcome = 'success'",
        "UPDATE audit_securityevent SET action = 'authn_login_success'",
        "UPDATE audit_securityevent SET seq = seq + 100",
        "UPDATE audit_securityevent SET hash = prev_hash",
        "DELETE FROM audit_securityevent",
    ],
)
def test_database_triggers_refuse_update_and_delete(sql):
    _fill(2)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert SecurityEvent.objects.count() == 2
    assert verify_chain().ok


def test_triggers_refuse_pointing_an_event_at_another_user():
    user, other = fast_user(), fast_user()
    record(EventAction.AUTHN_LOGOUT, actor=user)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_securityevent SET actor_id = %s", [other.pk])


def test_deleting_a_user_keeps_their_events_and_the_chain():
    user = fast_user()
    user_id = user.pk
    event = record(EventAction.AUTHN_LOGIN_SUCCESS, actor=user)
    user.delete()
    event = SecurityEvent.objects.get(pk=event.pk)
    assert event.actor_id is None
    assert event.actor_label == f"user:{user_id}"
    assert verify_chain().ok


def test_a_company_id_is_not_a_foreign_key():
    ghost = uuid.uuid4()  # a company that was deleted long ago
    event = record(EventAction.MEMBER_DEACTIVATED, company=ghost)
    assert SecurityEvent.objects.get(pk=event.pk).company_id == ghost


def test_failing_outer_transaction_rolls_back_its_event_but_keeps_the_chain_sound():
    _fill(2)
    with pytest.raises(RuntimeError), transaction.atomic():
        record(EventAction.PRIVILEGE_PERMISSIONS_CHANGED)
        raise RuntimeError("the change failed")
    after = record(EventAction.AUTHZ_FAIL)
    assert after.seq == 3
    assert verify_chain().ok


def test_record_inside_a_callers_atomic_block_does_not_break_it():
    user = fast_user()
    with transaction.atomic():
        record(EventAction.USER_UPDATED, actor=user)
        user.full_name = "Renamed"
        user.save()
    user.refresh_from_db()
    assert user.full_name == "Renamed"
    assert verify_chain().ok


def test_sqlite_writes_serialize(settings):
    """On SQLite the chain relies on BEGIN IMMEDIATE: check the settings keep it."""
    database = settings.DATABASES["default"]
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL uses an advisory lock")
    assert database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


# Tampering --------------------------------------------------------------------------------


def test_detects_a_modified_row():
    rows = _fill(6)
    with attacker() as cursor:
        cursor.execute("UPDATE audit_securityevent SET outcome = 'success' WHERE id = %s", [rows[2].pk])
    result = verify_chain()
    assert not result.ok
    assert result.kind == "modified"
    assert result.event_id == rows[2].pk and result.seq == 3
    assert result.checked == 6  # the walk goes on to the end
    assert len(result.problems) == 1


def test_detects_a_modified_row_even_with_a_recomputed_unkeyed_hash():
    import hashlib

    rows = _fill(4)
    with attacker() as cursor:
        cursor.execute("UPDATE audit_securityevent SET target = 'route:innocent' WHERE id = %s", [rows[1].pk])
        fake = hashlib.sha256(b"anything an attacker can compute").hexdigest()
        cursor.execute("UPDATE audit_securityevent SET hash = %s WHERE id = %s", [fake, rows[1].pk])
        cursor.execute("UPDATE audit_securityevent SET prev_hash = %s WHERE id = %s", [fake, rows[2].pk])
    result = verify_chain()
    assert (result.ok, result.kind, result.event_id) == (False, "modified", rows[1].pk)


def test_detects_a_deleted_row():
    rows = _fill(6)
    with attacker() as cursor:
        cursor.execute("DELETE FROM audit_securityevent WHERE id = %s", [rows[3].pk])
    result = verify_chain()
    assert not result.ok
    assert result.kind == "deleted"
    assert result.event_id == rows[4].pk  # the first row after the gap
    assert "seq 4" in result.message


def test_detects_rows_deleted_from_the_end():
    rows = _fill(6)
    with attacker() as cursor:
        cursor.execute("DELETE FROM audit_securityevent WHERE id >= %s", [rows[4].pk])
    result = verify_chain()
    assert (result.ok, result.kind) == (False, "deleted")
    assert "seq 5-6" in result.message


def test_detects_reordered_rows():
    rows = _fill(6)
    a, b = rows[2].pk, rows[3].pk
    with attacker() as cursor:
        cursor.execute("UPDATE audit_securityevent SET id = %s WHERE id = %s", [-1, a])
        cursor.execute("UPDATE audit_securityevent SET id = %s WHERE id = %s", [a, b])
        cursor.execute("UPDATE audit_securityevent SET id = %s WHERE id = %s", [b, -1])
    result = verify_chain()
    assert not result.ok
    assert result.kind == "reordered"
    assert result.event_id == a and result.seq == 4


def test_detects_renumbered_rows():
    """Swapping the positions (seq) as well: the hashes cover seq, so the rows read as modified."""
    rows = _fill(6)
    with attacker() as cursor:
        cursor.execute("UPDATE audit_securityevent SET seq = -1 WHERE id = %s", [rows[2].pk])
        cursor.execute("UPDATE audit_securityevent SET seq = 3 WHERE id = %s", [rows[3].pk])
        cursor.execute("UPDATE audit_securityevent SET seq = 4 WHERE id = %s", [rows[2].pk])
    result = verify_chain()
    assert not result.ok and result.kind == "modified" and result.seq == 4


def test_detects_an_inserted_row():
    rows = _fill(4)
    forged = rows[1]
    with attacker() as cursor:
        # A copy of a real row slipped in between 2 and 3 with a made-up hash.
        cursor.execute("UPDATE audit_securityevent SET id = id + 100 WHERE id > %s", [forged.pk])
        cursor.execute(
            "INSERT INTO audit_securityevent (id, seq, occurred_at, actor_label, action, target, user_agent, outcome,"
            " details, prev_hash, hash)"
            " VALUES (%s, 1000, %s, '', 'authn_login_success', '', '', 'success', '{}', %s, %s)",
            [forged.pk + 1, forged.occurred_at, forged.hash, "f" * 64],
        )
    result = verify_chain()
    assert (result.ok, result.kind, result.event_id) == (False, "inserted", forged.pk + 1)


def test_detects_a_row_appended_without_the_key():
    rows = _fill(3)
    with attacker() as cursor:
        cursor.execute(
            "INSERT INTO audit_securityevent (seq, occurred_at, actor_label, action, target, user_agent, outcome,"
            " details, prev_hash, hash) VALUES (4, %s, '', 'authn_login_success', '', '', 'success', '{}', %s, %s)",
            [rows[-1].occurred_at, rows[-1].hash, "e" * 64],
        )
    result = verify_chain()
    assert (result.ok, result.kind, result.seq) == (False, "inserted", 4)


def test_progress_is_reported_in_chunks():
    _fill(7)
    seen: list[int] = []
    result = verify_chain(progress=seen.append, chunk_size=3)
    assert result.ok
    assert seen == [3, 3, 1]


def test_events_appended_while_verifying_are_not_a_break():
    """A live installation keeps appending while verify walks: those rows extend the walk
    and are verified too."""
    _fill(5)

    def append(n: int) -> None:
        if n == 2:  # a whole chunk: the walk goes on (the last, partial one is reported after it)
            record(EventAction.AUTHZ_FAIL, outcome=Outcome.BLOCKED)

    result = verify_chain(progress=append, chunk_size=2)
    assert result.ok, result
    assert result.checked == SecurityEvent.objects.count() > 5
    assert result.head_seq == result.checked
