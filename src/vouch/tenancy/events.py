"""Security events raised by the isolation layers."""

from __future__ import annotations

import structlog

log = structlog.get_logger("vouch.tenancy")


def record_wrong_database(*, expected: str | None, found: str | None, where: str) -> None:
    """A company's data nearly went through the wrong database: always an error, always recorded."""
    log.error("company_database_mismatch", expected=expected, found=found, where=where)
    # imported here: audit's record loads models, and migration workers import this module
    # (through tenancy.connections) before django.setup()
    from vouch.audit import record

    record(
        "tenancy_wrong_database",
        company=expected,
        target=where,
        outcome="blocked",
        details={"found": str(found)[:80]},
    )
