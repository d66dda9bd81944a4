"""Database triggers that make the security event table append-only in SQL too, and
keep the chain head from moving back.

Events: UPDATE and DELETE are refused. The one UPDATE allowed is the database nulling
``actor_id`` when a user is deleted (ON DELETE SET NULL, done by Django): the hash
covers ``actor_label``, not the foreign key.

Head: an UPDATE must move it forward (a higher seq) or leave its seq and hash as they
are (its MAC alone may change); its id may not change. DELETE is not refused: a flush
(``vouch manage flush``, the tests) deletes every table, and a head that is missing
while events exist is reported by ``vouch audit verify`` and not re-authenticated by
the next append.

An attacker who can drop triggers can get past these, which is why the rows are
hash-chained and the head carries a MAC as well.

Used by migrations 0001 (events) and 0002 (head), and by tests that simulate such an
attacker (``create``/``drop`` with both parts)."""

from __future__ import annotations

TABLE = "audit_securityevent"
# Every column except actor_id: no UPDATE may name one of these.
PROTECTED_COLUMNS = (
    "id, seq, occurred_at, actor_label, company_id, action, target, ip, user_agent, outcome, details, prev_hash, hash"
)
MESSAGE = "audit_securityevent is append-only"
HEAD_TABLE = "audit_chainhead"
HEAD_MESSAGE = "audit_chainhead only moves forward"
HEAD_BACKWARDS = "NEW.id <> OLD.id OR NEW.seq < OLD.seq OR (NEW.seq = OLD.seq AND NEW.hash <> OLD.hash)"
EVENTS = "events"
HEAD = "head"
PARTS = (EVENTS, HEAD)

SQLITE_CREATE = [
    f"""CREATE TRIGGER audit_securityevent_no_update BEFORE UPDATE OF {PROTECTED_COLUMNS} ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER audit_securityevent_no_reassign BEFORE UPDATE OF actor_id ON {TABLE}
    WHEN NEW.actor_id IS NOT NULL BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER audit_securityevent_no_delete BEFORE DELETE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS audit_securityevent_no_update",
    "DROP TRIGGER IF EXISTS audit_securityevent_no_reassign",
    "DROP TRIGGER IF EXISTS audit_securityevent_no_delete",
]

SQLITE_HEAD_CREATE = [
    f"""CREATE TRIGGER audit_chainhead_no_rewind BEFORE UPDATE ON {HEAD_TABLE}
    WHEN {HEAD_BACKWARDS} BEGIN SELECT RAISE(ABORT, '{HEAD_MESSAGE}'); END""",
]
SQLITE_HEAD_DROP = ["DROP TRIGGER IF EXISTS audit_chainhead_no_rewind"]

POSTGRESQL_CREATE = [
    f"""CREATE OR REPLACE FUNCTION audit_securityevent_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{MESSAGE} (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
    END
    $$""",
    f"""CREATE TRIGGER audit_securityevent_no_update BEFORE UPDATE OF {PROTECTED_COLUMNS} ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION audit_securityevent_refuse()""",
    f"""CREATE TRIGGER audit_securityevent_no_reassign BEFORE UPDATE OF actor_id ON {TABLE}
    FOR EACH ROW WHEN (NEW.actor_id IS NOT NULL) EXECUTE FUNCTION audit_securityevent_refuse()""",
    f"""CREATE TRIGGER audit_securityevent_no_delete BEFORE DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION audit_securityevent_refuse()""",
]
POSTGRESQL_DROP = [
    f"DROP TRIGGER IF EXISTS audit_securityevent_no_update ON {TABLE}",
    f"DROP TRIGGER IF EXISTS audit_securityevent_no_reassign ON {TABLE}",
    f"DROP TRIGGER IF EXISTS audit_securityevent_no_delete ON {TABLE}",
    "DROP FUNCTION IF EXISTS audit_securityevent_refuse()",
]


POSTGRESQL_HEAD_CREATE = [
    f"""CREATE OR REPLACE FUNCTION audit_chainhead_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{HEAD_MESSAGE}' USING ERRCODE = 'insufficient_privilege';
    END
    $$""",
    f"""CREATE TRIGGER audit_chainhead_no_rewind BEFORE UPDATE ON {HEAD_TABLE}
    FOR EACH ROW WHEN ({HEAD_BACKWARDS}) EXECUTE FUNCTION audit_chainhead_refuse()""",
]
POSTGRESQL_HEAD_DROP = [
    f"DROP TRIGGER IF EXISTS audit_chainhead_no_rewind ON {HEAD_TABLE}",
    "DROP FUNCTION IF EXISTS audit_chainhead_refuse()",
]

_STATEMENTS = {
    ("sqlite", EVENTS): (SQLITE_CREATE, SQLITE_DROP),
    ("sqlite", HEAD): (SQLITE_HEAD_CREATE, SQLITE_HEAD_DROP),
    ("postgresql", EVENTS): (POSTGRESQL_CREATE, POSTGRESQL_DROP),
    ("postgresql", HEAD): (POSTGRESQL_HEAD_CREATE, POSTGRESQL_HEAD_DROP),
}


def statements(vendor: str, *, create: bool, parts: tuple[str, ...] = PARTS) -> list[str]:
    if vendor not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"no append-only triggers for {vendor}")
    return [sql for part in parts for sql in _STATEMENTS[vendor, part][0 if create else 1]]


def create(connection, parts: tuple[str, ...] = PARTS) -> None:
    with connection.cursor() as cursor:
        for sql in statements(connection.vendor, create=True, parts=parts):
            cursor.execute(sql)


def drop(connection, parts: tuple[str, ...] = PARTS) -> None:
    with connection.cursor() as cursor:
        for sql in statements(connection.vendor, create=False, parts=parts):
            cursor.execute(sql)
