"""The chain head: verify walks to the end, the head is authenticated, and operators can
anchor it outside the database (P4).

The attacker here can write to the database (triggers dropped) but does not hold
VOUCH_SECRET_KEY: they can move the head, copy an old head row back, and edit, delete or
insert events, but cannot compute a row's hash or the head's MAC."""

from __future__ import annotations

import io

import pytest
from django.db import DatabaseError, connection, transaction

from tests.audit.helpers import attacker
from vouch.audit import chain, record
from vouch.audit.models import ChainHead, EventAction, Outcome, SecurityEvent
from vouch.audit.verify import run_cli, run_head, verify_chain

pytestmark = pytest.mark.django_db


def _fill(n: int) -> list[SecurityEvent]:
    return [record(EventAction.AUTHZ_FAIL, target=f"route:t{i}", outcome=Outcome.BLOCKED) for i in range(n)]


def _set_head(cursor, row: SecurityEvent, mac: str | None = None) -> None:
    """Point the head at ``row``; with ``mac``, also write that MAC (a copy of an old one)."""
    if mac is None:
        cursor.execute("UPDATE audit_chainhead SET seq = %s, hash = %s", [row.seq, row.hash])
    else:
        cursor.execute("UPDATE audit_chainhead SET seq = %s, hash = %s, mac = %s", [row.seq, row.hash, mac])


def _cli(*args, **kwargs) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_cli(*args, progress=False, out=out, err=err, **kwargs)
    return code, out.getvalue(), err.getvalue()


def _kinds(result) -> list[tuple[str, int | None]]:
    return [(p.kind, p.seq) for p in result.problems]


def test_the_reported_attack_is_not_ok():
    """10 events; the head set back to event 3; event 6 changed, event 7 deleted, event 9's
    hash zeroed. Verify used to stop at event 4 and print OK."""
    rows = _fill(10)
    with attacker() as cursor:
        _set_head(cursor, rows[2])
        cursor.execute("UPDATE audit_securityevent SET outcome = 'success' WHERE id = %s", [rows[5].pk])
        cursor.execute("DELETE FROM audit_securityevent WHERE id = %s", [rows[6].pk])
        cursor.execute("UPDATE audit_securityevent SET hash = %s WHERE id = %s", ["0" * 64, rows[8].pk])
    result = verify_chain()
    assert not result.ok
    # Every event was judged, and every problem is named, the head's too.
    assert result.checked == 9
    assert _kinds(result) == [("modified", 6), ("deleted", 8), ("modified", 9), ("head", 3), ("head", 3)]
    assert (result.kind, result.seq, result.event_id) == ("modified", 6, rows[5].pk)
    text = str(result)
    assert "seq 7" in text
    assert "MAC" in text and "behind the last event (seq 10)" in text

    code, out, err = _cli()
    assert code == 1 and out == ""
    assert "BROKEN (modified): event id" in err and "OK:" not in err


def test_a_head_only_rewind_is_reported():
    rows = _fill(10)
    with attacker() as cursor:
        _set_head(cursor, rows[2])
    result = verify_chain()
    assert not result.ok and result.checked == 10
    assert {p.kind for p in result.problems} == {"head"}
    assert "does not verify" in str(result) and "behind the last event (seq 10)" in str(result)


def test_a_rewind_to_a_genuine_old_head_is_reported_while_later_events_exist():
    """The head row copied when it was at event 3 (MAC and all) and put back later: its MAC
    is genuine, but it is not the last event's."""
    rows = _fill(3)
    old = ChainHead.objects.get(pk=1)
    rows += _fill(7)
    with attacker() as cursor:
        _set_head(cursor, rows[2], mac=old.mac)
    result = verify_chain()
    assert not result.ok
    assert _kinds(result) == [("head", 3)]
    assert "behind the last event (seq 10)" in result.message


def test_a_forged_head_mac_is_reported():
    import hashlib
    import hmac

    rows = _fill(4)
    head = ChainHead.objects.get(pk=1)
    assert chain.head_is_authentic(head)
    # Right position and hash, but a MAC made without the key (a plain hash, another key).
    for mac in (
        hashlib.sha256(f"{head.seq}:{head.hash}".encode()).hexdigest(),
        hmac.new(b"a key the attacker made up", f"{head.seq}:{head.hash}".encode(), hashlib.sha256).hexdigest(),
        "",
    ):
        with attacker() as cursor:
            cursor.execute("UPDATE audit_chainhead SET mac = %s", [mac])
        result = verify_chain()
        assert not result.ok and _kinds(result) == [("head", 4)], mac
        assert "MAC does not verify" in result.message
    assert result.checked == len(rows)


def test_the_head_mac_is_keyed_and_survives_a_key_rotation(settings):
    _fill(2)
    head = ChainHead.objects.get(pk=1)
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "another key " * 8
    assert not chain.head_is_authentic(head)
    settings.SECRET_KEY_FALLBACKS = [old]
    assert chain.head_is_authentic(head)
    assert verify_chain().ok
    # The next event moves the head under the current key.
    record(EventAction.AUTHZ_FAIL, outcome=Outcome.BLOCKED)
    settings.SECRET_KEY_FALLBACKS = []
    assert chain.head_is_authentic(ChainHead.objects.get(pk=1))


def test_a_truncated_tail_with_a_made_up_head_fails_its_mac():
    rows = _fill(10)
    with attacker() as cursor:
        cursor.execute("DELETE FROM audit_securityevent WHERE id > %s", [rows[6].pk])
        _set_head(cursor, rows[6])
    result = verify_chain()
    assert not result.ok and result.checked == 7
    assert _kinds(result) == [("head", 7)]
    assert "MAC does not verify" in result.message


def test_a_truncated_tail_with_a_replayed_head_is_caught_by_the_anchor():
    """The one thing the database alone cannot tell: the last events deleted and the head
    row put back as it was then (copied by someone who could read the database). Only a
    head kept outside the database tells it."""
    rows = _fill(7)
    then = ChainHead.objects.get(pk=1)
    rows += _fill(3)
    code, anchor, _ = _cli_head()
    assert code == 0 and anchor.strip() == rows[-1].hash
    with attacker() as cursor:
        cursor.execute("DELETE FROM audit_securityevent WHERE id > %s", [rows[6].pk])
        _set_head(cursor, rows[6], mac=then.mac)
    assert verify_chain().ok  # indistinguishable from the log as it was at event 7
    result = verify_chain(expect_head=anchor.strip())
    assert not result.ok and result.kind == "anchor"
    assert rows[-1].hash[:16] in result.message
    code, out, err = _cli(expect_head=anchor.strip())
    assert code == 1 and "BROKEN (anchor)" in err


def test_an_anchor_stays_valid_as_the_log_grows():
    rows = _fill(5)
    anchor = rows[-1].hash
    _fill(5)
    result = verify_chain(expect_head=anchor)
    assert result.ok and result.anchor_seq == 5
    code, out, _ = _cli(expect_head=anchor.upper())
    assert code == 0 and "expected head found at seq 5" in out
    assert verify_chain(expect_head=chain.GENESIS).ok  # anchored before the first event


def test_an_anchor_not_in_the_chain_is_reported():
    _fill(3)
    result = verify_chain(expect_head="ab" * 32)
    assert not result.ok and result.kind == "anchor"


def test_cli_refuses_a_malformed_anchor(capsys):
    from vouch.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "verify", "--expect-head", "not-a-hash"])
    assert exit_info.value.code == 2
    assert "64 hexadecimal characters" in capsys.readouterr().err


def _cli_head() -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_head(out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_head_prints_the_hash_to_anchor():
    rows = _fill(3)
    code, out, err = _cli_head()
    assert (code, out, err) == (0, rows[-1].hash + "\n", "")


def test_head_refuses_to_print_a_head_that_is_not_authentic_or_not_the_last_event():
    rows = _fill(4)
    with attacker() as cursor:
        _set_head(cursor, rows[1])
    code, out, err = _cli_head()
    assert code == 1 and out == ""
    assert "vouch audit verify" in err


def test_events_appended_during_the_walk_are_verified_too():
    """Appends during the walk extend it: a valid one is checked, and a forged row after it
    is caught (the walk used to stop at the first valid append and miss it)."""
    _fill(4)
    appended: list[SecurityEvent] = []

    def append_then_forge(n: int) -> None:
        if appended:
            return
        appended.append(record(EventAction.AUTHZ_FAIL, outcome=Outcome.BLOCKED))
        last = appended[-1]
        with connection.cursor() as cursor:  # INSERT is allowed: no trigger needs dropping
            cursor.execute(
                "INSERT INTO audit_securityevent (seq, occurred_at, actor_label, action, target, user_agent, outcome,"
                " details, prev_hash, hash) VALUES (%s, %s, '', 'authn_login_success', '', '', 'success', '{}', %s,"
                " %s)",
                [last.seq + 1, last.occurred_at, last.hash, "e" * 64],
            )

    result = verify_chain(progress=append_then_forge, chunk_size=2)
    assert not result.ok
    assert [(p.kind, p.seq) for p in result.problems] == [("inserted", 6)]
    assert result.checked == 6


def test_record_does_not_seal_a_tampered_head():
    """The next event must not make a rewound head authentic again."""
    rows = _fill(10)
    with attacker() as cursor:
        cursor.execute("DELETE FROM audit_securityevent WHERE id > %s", [rows[6].pk])
        _set_head(cursor, rows[6])
    after = record(EventAction.AUTHZ_FAIL, outcome=Outcome.BLOCKED)
    assert after.seq == 8 and after.prev_hash == rows[6].hash
    assert not chain.head_is_authentic(ChainHead.objects.get(pk=1))
    result = verify_chain()
    assert not result.ok and result.kind == "head"
    record(EventAction.AUTHZ_FAIL, outcome=Outcome.BLOCKED)
    assert not verify_chain().ok  # stays reported


def test_record_after_a_head_rewind_keeps_recording():
    """A head set back below the last event must not make appends collide (events lost)."""
    rows = _fill(6)
    with attacker() as cursor:
        _set_head(cursor, rows[1])
    after = record(EventAction.AUTHZ_FAIL, outcome=Outcome.BLOCKED)
    assert after.seq == 7 and after.prev_hash == rows[-1].hash
    result = verify_chain()
    assert not result.ok and _kinds(result) == [("head", 7)]


def test_a_deleted_head_is_not_recreated_as_authentic():
    _fill(3)
    with attacker() as cursor:
        cursor.execute("DELETE FROM audit_chainhead")
    assert verify_chain().kind == "head"
    record(EventAction.AUTHZ_FAIL, outcome=Outcome.BLOCKED)
    result = verify_chain()
    assert not result.ok and "MAC does not verify" in result.message


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_chainhead SET seq = 1",
        "UPDATE audit_chainhead SET hash = prev_hash_of_nothing",
        "UPDATE audit_chainhead SET id = 2",
    ],
)
def test_database_triggers_refuse_moving_the_head_back(sql):
    rows = _fill(3)
    sql = sql.replace("prev_hash_of_nothing", f"'{rows[0].hash}'")
    with pytest.raises(DatabaseError, match="only moves forward"), transaction.atomic(), connection.cursor() as c:
        c.execute(sql)
    assert verify_chain().ok


@pytest.mark.parametrize("tampered", [False, True])
def test_migrating_seals_the_head_the_log_ends_with_and_only_that(committed_chain, tampered):
    """Migration 0002 adds the MAC: an existing head that matches the last event gets one;
    a head already moved away from it does not (sealing it would hide the tampering)."""
    from django.db.migrations.executor import MigrationExecutor

    rows = _fill(4)
    MigrationExecutor(connection).migrate([("audit", "0001_initial")])
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq, hash FROM audit_chainhead")
        assert cursor.fetchall() == [(4, rows[-1].hash)]
        if tampered:
            cursor.execute("UPDATE audit_chainhead SET seq = 2, hash = %s", [rows[1].hash])
    MigrationExecutor(connection).migrate([("audit", "0002_chainhead_mac")])
    head = ChainHead.objects.get(pk=1)
    assert chain.head_is_authentic(head) is not tampered
    assert verify_chain().ok is not tampered
