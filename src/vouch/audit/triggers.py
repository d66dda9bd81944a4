"""Database triggers that make the security event table append-only in SQL too.

UPDATE and DELETE are refused. The one UPDATE allowed is the database nulling
``actor_id`` when a user is deleted (ON DELETE SET NULL, done by Django): the hash
covers ``actor_label``, not the foreign key. An attacker who can drop triggers can get
past these, which is why the rows are hash-chained as well.

Used by migration 0001 and by tests that simulate such an attacker."""

from __future__ import annotations

TABLE = "audit_securityevent"
# Every column except actor_id: no UPDATE may name one of these.
PROTECTED_COLUMNS = (
    "id, seq, occurred_at, actor_label, company_id, action, target, ip, user_agent, outcome, details, prev_hash, hash"
)
MESSAGE = "audit_securityevent is append-only"

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


def statements(vendor: str, *, create: bool) -> list[str]:
    if vendor == "sqlite":
        return SQLITE_CREATE if create else SQLITE_DROP
    if vendor == "postgresql":
        return POSTGRESQL_CREATE if create else POSTGRESQL_DROP
    raise NotImplementedError(f"no append-only triggers for {vendor}")


def create(connection) -> None:
    with connection.cursor() as cursor:
        for sql in statements(connection.vendor, create=True):
            cursor.execute(sql)


def drop(connection) -> None:
    with connection.cursor() as cursor:
        for sql in statements(connection.vendor, create=False):
            cursor.execute(sql)
