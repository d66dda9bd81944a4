"""Master key rotation: a new master key version re-wraps every company's keys, the
installation's keys (``InstallationKey``: the account secrets key), the outbox key and
the key store's files (company KEKs, the control backup key). Only the outer layer of
a company key row changes: the inner one, under the company's KEK, stays.

Online: data keys stay the same (only their wrapping changes), so values and files
are untouched and the keys cached unwrapped in running processes stay valid; a row
not yet re-wrapped still unwraps with its old master version, which is retired only
once no row uses it. Resumable: each batch commits on its own, and a run that finds
rows behind the newest master version continues with that version instead of making
another one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.db import connection, transaction
from django.utils import timezone

from vouch.audit import record
from vouch.audit.models import EventAction, Outcome
from vouch.core.db import ComposedSQL
from vouch.vault import account_secrets, keyring, keystore, providers
from vouch.vault.errors import DecryptionError, KeyConfigurationError
from vouch.vault.models import DataKey, InstallationKey
from vouch.vault.rotation.progress import Progress, report

# Before retiring a version, every running process must have re-read the key directory
# and so wrap new keys with the new version: a key wrapped by a process that had not
# yet seen it, and stored after the last check, would need the retired version.
SETTLE_SECONDS = providers.RELOAD_SECONDS + 0.5
_FIELDS = ["master_version", "wrapped", "rewrapped_at"]


def rotate_master(*, batch_size: int = 500, progress: Progress | None = None) -> dict:
    """Re-wrap every company key with the newest master key version (created here,
    unless a rotation to it is already under way), then retire versions no key uses.

    Returns what happened: ``master_version``, ``created``, ``rewrapped``, ``retired``
    (versions), ``still_used`` (older versions some key still needs: {version: keys}),
    ``broken`` (companies with a key that does not unwrap: left as they are, recorded as
    security events; their master version is not retired), ``outbox`` (the local mail
    outbox's key: "absent", "current", "rewrapped" or "unreadable"), ``account_key``
    (the account secrets key, the same four words), ``key_files`` (the key store's
    company KEKs and control backup key: counts of "current", "rewrapped",
    "unreadable"), ``provider`` and ``seconds``.
    ``KeyConfigurationError`` when no version can be made (environment provider: its
    message says how to add one)."""
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    started = time.monotonic()
    provider = providers.get_provider()
    if not provider.versions():
        raise KeyConfigurationError(f"No master key in {provider.describe()}: run `vouch setup` first.")
    newest = provider.current_version()
    behind = _behind(newest)
    older = [v for v in provider.versions() if v < newest]
    created = False
    if not behind and not older:
        # Everything is on the newest version and nothing is left over from an earlier
        # run: this run starts a rotation.
        newest = provider.create_version()
        created = True
        behind = _behind(newest)
    # Otherwise an earlier run (or the operator, adding a version to VOUCH_MASTER_KEYS)
    # made ``newest``: finish moving to it, never a third version.
    if provider.current_version() != newest:
        raise KeyConfigurationError(
            f"Master key version {provider.current_version()} appeared in {provider.describe()} during the "
            "rotation (another rotate-master running?); run it again once that one has finished."
        )

    skip_locked = connection.features.has_select_for_update_skip_locked
    rewrapped = seen = 0
    broken: dict[int, str] = {}  # key row -> company id
    report(progress, 0, behind, "re-wrapping")
    # Keys locked by a change under way are skipped here and done in the final step.
    while batch := _rewrap_batch(provider, newest, batch_size, broken, skip_locked=skip_locked):
        seen, rewrapped = seen + batch[0], rewrapped + batch[1]
        report(progress, seen, max(behind, seen), "re-wrapping")

    wait = started + SETTLE_SECONDS - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    with transaction.atomic():
        # No key can be added or changed from here to the commit: what is in use below is final.
        _lock_key_table()
        while batch := _rewrap_batch(provider, newest, batch_size, broken, skip_locked=False):
            seen, rewrapped = seen + batch[0], rewrapped + batch[1]
            report(progress, seen, max(behind, seen), "re-wrapping")
        # The installation's keys are a handful of rows: re-wrapped here, under the lock.
        account_key = _rewrap_installation_keys(provider, newest)
        in_use = dict(_counts_by_master_version())
    # The local mail outbox's key is wrapped by the master key too (a file, not a row):
    # re-wrapped here, after the wait, so that one made by a process that had not yet
    # seen the new version is caught before that version's predecessor is retired.
    outbox = _rewrap_outbox_key(provider, newest)
    # So are the key store's files (company KEKs, the control backup key): after the
    # wait for the same reason; a version one of them still needs is not retired.
    key_files = keystore.rewrap_all(provider, newest)
    for version, count in keystore.master_versions_in_use().items():
        in_use[version] = in_use.get(version, 0) + count
    retired: list[int] = []
    for version in provider.versions():
        if version < newest and version not in in_use:
            provider.retire_version(version)
            retired.append(version)
    still_used = {v: n for v, n in in_use.items() if v < newest}
    result = {
        "master_version": newest,
        "created": created,
        "rewrapped": rewrapped,
        "retired": retired,
        "still_used": still_used,
        "broken": sorted(set(broken.values())),
        "outbox": outbox,
        "account_key": account_key,
        "key_files": key_files,
        "provider": provider.describe(),
        "seconds": round(time.monotonic() - started, 3),
    }

    record(
        EventAction.KEYS_MASTER_ROTATED,
        target=f"master:{newest}",
        details={
            "master_version": newest,
            "created": created,
            "rewrapped": rewrapped,
            "retired": ",".join(map(str, retired)),
            "still_used": ",".join(map(str, still_used)),
            "broken": len(set(broken.values())),
            "outbox": outbox,
            "store_files_rewrapped": key_files.get("rewrapped", 0),
            "store_files_unreadable": key_files.get("unreadable", 0),
            # Not "account_key": detail names holding "key" are redacted from the log.
            "accounts": account_key,
        },
    )
    return result


def _behind(target: int) -> int:
    return (
        DataKey.objects.filter(master_version__lt=target).count()
        + InstallationKey.objects.filter(master_version__lt=target).count()
    )


def _rewrap_installation_keys(provider: providers.MasterKeyProvider, target: int) -> str:
    """Re-wrap the installation's keys (the account secrets key) with ``target``.
    Returns "absent", "current", "rewrapped" or "unreadable" (left as it is, recorded
    as a security event; its master version then stays)."""
    rows = list(InstallationKey.objects.select_for_update().order_by("pk"))
    if not rows:
        return "absent"
    outcome = "current"
    for row in rows:
        if row.master_version >= target:
            continue
        aad = account_secrets.wrap_aad(row.purpose, row.version)
        try:
            raw = provider.unwrap(row.master_version, bytes(row.wrapped), aad)
        except (DecryptionError, KeyConfigurationError) as exc:
            _record_broken(None, row.purpose, row.version, exc, kind="installation-key")
            outcome = "unreadable"
            continue
        row.master_version, row.wrapped = provider.wrap(raw, aad)
        row.rewrapped_at = timezone.now()
        row.save(update_fields=["master_version", "wrapped", "rewrapped_at"])
        if outcome == "current":
            outcome = "rewrapped"
    return outcome


def _rewrap_batch(
    provider: providers.MasterKeyProvider, target: int, batch_size: int, broken: dict[int, str], *, skip_locked: bool
) -> tuple[int, int] | None:
    """Re-wrap up to ``batch_size`` keys still on an older master version; one
    transaction, so an interruption keeps every finished batch. Returns (keys looked
    at, keys re-wrapped), None when none is left. A key that does not unwrap goes into
    ``broken`` (and is not tried again)."""
    with transaction.atomic():
        rows = list(
            DataKey.objects.filter(master_version__lt=target)
            .exclude(pk__in=list(broken))
            .order_by("pk")
            .select_for_update(skip_locked=skip_locked)
            .values_list("pk", "company_id", "purpose", "version", "master_version", "wrapped")[:batch_size]
        )
        if not rows:
            return None
        fields = DataKey._meta
        now = fields.get_field("rewrapped_at").get_db_prep_value(timezone.now(), connection)
        binary = fields.get_field("wrapped")
        params = []
        for pk, company_id, purpose, version, master_version, wrapped in rows:
            aad = keyring.wrap_aad(company_id, purpose, version)
            try:
                raw = provider.unwrap(master_version, bytes(wrapped), aad)
            except (DecryptionError, KeyConfigurationError) as exc:
                broken[pk] = str(company_id)
                _record_broken(company_id, purpose, version, exc)
                continue
            new_version, new_wrapped = provider.wrap(raw, aad)
            params.append((new_version, binary.get_db_prep_value(new_wrapped, connection), now, pk))
        # One statement run for each row: Django's bulk_update builds a CASE expression
        # per row and field in Python, which took most of a rotation's time.
        if params:
            REWRAP.executemany(params, using=connection.alias)
    return len(rows), len(params)


# Keys kept outside vault and wrapped by the master key, each re-wrapped by its owner:
# name -> rewrap(provider, target version), returning "absent", "current", "rewrapped" or
# "unreadable". Filled in the owning app's AppConfig.ready() (the local mail outbox's key:
# vouch.outbox.apps), because vault sits below those apps in the layers and must not
# import them (docs/development/architecture.md, Layers).
external_keys: dict[str, Callable[[providers.MasterKeyProvider, int], str]] = {}


def register_external_key(name: str, rewrap: Callable[[providers.MasterKeyProvider, int], str]) -> None:
    external_keys[name] = rewrap


def _rewrap_outbox_key(provider: providers.MasterKeyProvider, target: int) -> str:
    """Re-wrap the embedded default's outbox key, if there is one (see vouch.outbox.sealing)."""
    rewrap = external_keys.get("outbox")
    return rewrap(provider, target) if rewrap is not None else "absent"


def _record_broken(company_id, purpose: str, version: int, exc: Exception, *, kind: str = "datakey") -> None:
    record(
        EventAction.DATA_INTEGRITY_FAIL,
        company=company_id,
        target=f"{kind}:{purpose}:{version}",
        outcome=Outcome.FAILURE,
        details={"reason": str(exc)[:200]},
    )


# A re-wrapped key's new master version, wrapped key and time, by its id: run once per
# row in one executemany (vouch.core.db.ComposedSQL).
REWRAP = ComposedSQL(
    lambda n: (
        f"UPDATE {n.table(DataKey)} SET {', '.join(f'{n.column(DataKey, name)} = %s' for name in _FIELDS)} "  # noqa: S608 (names from the model)
        f"WHERE {n.column(DataKey, DataKey._meta.pk.name)} = %s"
    )
)


def _lock_key_table() -> None:
    """Hold off new and changed keys until the transaction ends. SQLite needs nothing:
    the transaction began with BEGIN IMMEDIATE (settings), the database's one write lock."""
    if connection.vendor == "postgresql":
        tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in (DataKey, InstallationKey))
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE")


def _counts_by_master_version() -> list[tuple[int, int]]:
    from collections import Counter

    from django.db.models import Count

    counts: Counter = Counter()
    for model in (DataKey, InstallationKey):
        rows = model.objects.order_by().values("master_version").annotate(n=Count("pk"))
        counts.update(dict(rows.values_list("master_version", "n")))
    return list(counts.items())
