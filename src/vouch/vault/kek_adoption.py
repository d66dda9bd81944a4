"""Moving existing companies to key-encryption keys (run by ``vouch setup`` and
``vouch migrate``; idempotent).

A company whose key rows are still wrapped by the master key only (scheme ``MASTER``)
gets a KEK in the key store, and each of its rows is re-wrapped: the same data key,
now inside the KEK, then the master key. The keys themselves do not change, so values,
files and keys cached in running processes stay valid, and a process reading a row
mid-way copes with either scheme (each row says its own). One transaction per company,
its rows locked: a run interrupted half-way leaves every company in one scheme or the
other, and the next run finishes.

A company with a tombstone in the key store (purged) is never given a KEK: its rows
(a control database restored from before the purge) stay unreadable.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from vouch.audit import record
from vouch.audit.models import EventAction, Outcome
from vouch.vault import keyring, keystore, providers
from vouch.vault.errors import DecryptionError, KeyConfigurationError, KeyUnavailable
from vouch.vault.models import DataKey, KeyScheme

log = logging.getLogger(__name__)


def companies_to_adopt() -> list:
    return list(
        DataKey.objects.filter(scheme=KeyScheme.MASTER)
        .order_by("company_id")
        .values_list("company_id", flat=True)
        .distinct()
    )


def adopt_company_keks() -> dict:
    """Give every company still on the old scheme its KEK and re-wrap its rows.

    Returns ``companies`` (moved now), ``rows`` (re-wrapped), ``kek_created`` (KEKs made
    now; a company interrupted earlier already has one), ``purged`` (company ids with a
    tombstone, left as they are) and ``broken`` (company ids whose keys did not unwrap:
    left, recorded as security events)."""
    result: dict = {"companies": 0, "rows": 0, "kek_created": 0, "purged": [], "broken": []}
    pending = companies_to_adopt()
    if not pending:
        return result
    keyring.ensure_master_key()
    provider = providers.get_provider()
    purged = keystore.purged_companies()
    for company_id in pending:
        if company_id in purged:
            result["purged"].append(str(company_id))
            continue
        try:
            moved, created = _adopt(provider, company_id)
        except (DecryptionError, KeyConfigurationError, KeyUnavailable) as exc:
            result["broken"].append(str(company_id))
            _record_broken(company_id, exc)
            continue
        finally:
            keyring.forget(company_id)
        if moved:
            result["companies"] += 1
            result["rows"] += moved
        result["kek_created"] += created
    return result


def _adopt(provider, company_id) -> tuple[int, bool]:
    with transaction.atomic():
        rows = list(DataKey.objects.select_for_update().filter(company_id=company_id, scheme=KeyScheme.MASTER))
        if not rows:
            return 0, False  # moved by another run meanwhile
        kek, created = keystore.load_or_create_kek(company_id)
        now = timezone.now()
        for row in rows:
            raw = keyring.unwrap_row(
                provider, company_id, row.purpose, row.version, row.scheme, row.master_version, bytes(row.wrapped), None
            )
            inner = keyring.seal_inner(kek, raw, company_id, row.purpose, row.version)
            row.master_version, row.wrapped = provider.wrap(
                inner, keyring.wrap_aad(company_id, row.purpose, row.version)
            )
            row.scheme = KeyScheme.COMPANY_KEK
            row.rewrapped_at = now
            row.save(update_fields=["master_version", "wrapped", "scheme", "rewrapped_at"])
    return len(rows), created


def _record_broken(company_id, exc: Exception) -> None:
    log.error("company %s: its keys could not be moved to a key-encryption key: %s", company_id, exc)
    record(
        EventAction.DATA_INTEGRITY_FAIL,
        company=company_id,
        target="datakey:kek-adoption",
        outcome=Outcome.FAILURE,
        details={"reason": str(exc)[:200]},
    )


def describe(result: dict) -> list[str]:
    """What ``vouch setup`` / ``vouch migrate`` print about it (nothing when there was nothing to do)."""
    lines = []
    if result["companies"]:
        lines.append(
            f"Moved {result['companies']} compan{'y to its' if result['companies'] == 1 else 'ies to their'} own "
            f"key-encryption keys ({result['rows']} key rows re-wrapped; the KEKs are in "
            f"{keystore.describe(keystore.COMPANIES)}). "
            "Back up the key store now, and see docs/backups.md, 'Deleted companies stay deleted'."
        )
    if result["purged"]:
        lines.append(
            f"{len(result['purged'])} compan{'y' if len(result['purged']) == 1 else 'ies'} in the control database "
            "were purged (tombstone in the key store) and keep no usable keys: the control database was restored "
            "from before their purge. Run `vouch tenants purge` to finish their deletion."
        )
    if result["broken"]:
        lines.append(
            f"{len(result['broken'])} compan{'y' if len(result['broken']) == 1 else 'ies'} could not be moved (their "
            f"keys do not unwrap; recorded as security events): {', '.join(result['broken'][:10])}."
        )
    return lines
