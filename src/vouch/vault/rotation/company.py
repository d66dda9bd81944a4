"""Company data key rotation: a new data key version, then every value and file re-encrypted.

The company keeps working throughout. The new version encrypts from the moment it is
added; older ones become "retiring" and still decrypt, so every value stays readable
whichever key it is under. Values are rewritten with compare-and-set (only if the
stored ciphertext is still the one that was read), so a concurrent write by the app is
never overwritten; a file is replaced only if it was not saved again or deleted
meanwhile.

Other processes may hold the company's keys in their cache from before the new version
was added, and keep encrypting with the old one until it expires
(``VOUCH_KEY_CACHE_SECONDS``). So the old version is destroyed only after a pass that
started once every such cache had expired (plus a margin for writes under way) found
nothing left under it. Running again resumes an interrupted rotation: a retiring
version means one is under way.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.db import connections, models, transaction
from django.utils import timezone

from vouch.core.context import CompanyContext, company_context
from vouch.vault import keyring, sealing
from vouch.vault.errors import DecryptionError, KeyUnavailable
from vouch.vault.fields import EncryptedField
from vouch.vault.files import encrypted_storage
from vouch.vault.models import DataKey, KeyPurpose, KeyState
from vouch.vault.rotation.progress import Progress, report

# Time allowed for a write sealed just before a cache expired to reach the database.
SETTLE_SECONDS = 2.0
FILE_BATCH = 20


def encrypted_models() -> list[tuple[type[models.Model], list[EncryptedField]]]:
    """Every company model with encrypted fields, with those fields (found, not listed:
    a new model in a ``VOUCH_COMPANY_APPS`` app is rotated without changes here)."""
    found = []
    for label in settings.VOUCH_COMPANY_APPS:
        config = apps.get_app_config(label.rsplit(".", 1)[-1])
        for model in config.get_models():
            if model._meta.proxy or not model._meta.managed:
                continue
            fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedField)]
            if fields:
                found.append((model, fields))
    return found


@dataclass
class _Pass:
    """What one pass over the company's data found and did."""

    old: int = 0  # rows and files found under a retiring version (and readable)
    rows: int = 0  # rows re-encrypted
    values: int = 0  # field values re-encrypted
    files: int = 0  # files re-encrypted
    raced: int = 0  # changed by the app meanwhile: looked at again in the next pass
    unreadable: list[str] = field(default_factory=list)  # failed to decrypt (security event recorded)


def rotate_company(
    company,
    *,
    batch_size: int = 200,
    progress: Progress | None = None,
    settle_seconds: float = SETTLE_SECONDS,
) -> dict:
    """Rotate ``company``'s data key (a ``tenancy.Company``), or finish a rotation under way.

    Returns ``data_version`` (the new version), ``resumed``, ``destroyed`` (versions),
    ``rows``, ``values``, ``files`` re-encrypted, ``raced``, ``unreadable`` (what could
    not be decrypted: already unreadable, left as it is), ``passes``, ``waited`` and
    ``seconds``."""
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    started = time.monotonic()
    company_id = uuid.UUID(str(company.pk))
    totals = _Pass()
    passes = 0
    waited = 0.0
    with company_context(company) as context:
        # Its database must open (and be the company's own) before a key version is added.
        connections[context.alias].ensure_connection()
        version, retiring, resumed, created_at = _start(company_id)
        deadline = created_at + timedelta(seconds=settings.VOUCH_KEY_CACHE_SECONDS + settle_seconds)
        while True:
            final = timezone.now() >= deadline
            passes += 1
            found = _one_pass(context, set(retiring), batch_size, progress, f"pass {passes}")
            for name in ("rows", "values", "files", "raced"):
                setattr(totals, name, getattr(totals, name) + getattr(found, name))
            totals.unreadable = found.unreadable  # the same ones each pass: keep the last
            if final and not found.old:
                break
            wait = (deadline - timezone.now()).total_seconds()
            if wait > 0:
                report(progress, 0, 0, f"waiting {wait:.0f} s")
                time.sleep(wait)
                waited += wait
    from vouch.references.faults import pause

    pause("rotation_before_destroy")  # fault tests kill it here: every value re-encrypted, old keys kept
    destroyed = sorted(retiring) if keyring.destroy_data_key_versions(company_id, retiring) else []
    result = {
        "company": str(company_id),
        "data_version": version,
        "resumed": resumed,
        "destroyed": destroyed,
        "rows": totals.rows,
        "values": totals.values,
        "files": totals.files,
        "raced": totals.raced,
        "unreadable": totals.unreadable,
        "passes": passes,
        "waited": round(waited, 3),
        "seconds": round(time.monotonic() - started, 3),
    }
    from vouch.audit import record
    from vouch.audit.models import EventAction

    record(
        EventAction.KEYS_COMPANY_ROTATED,
        company=company_id,
        target=f"data:{version}",
        details={
            "data_version": version,
            "resumed": resumed,
            "destroyed": ",".join(map(str, destroyed)),
            "rows": totals.rows,
            "values": totals.values,
            "files": totals.files,
            "unreadable": len(totals.unreadable),
            "passes": passes,
        },
    )
    return result


def _start(company_id: uuid.UUID):
    """The version to move to, the versions to retire, whether a rotation was already
    under way, and when the new version was added."""
    with transaction.atomic():
        # One start at a time per company (two would add two versions).
        rows = list(
            DataKey.objects.select_for_update()
            .filter(company_id=company_id, purpose=KeyPurpose.DATA)
            .order_by("version")
            .only("version", "state", "created_at")
        )
        if not rows:
            raise KeyUnavailable(f"company {company_id} has no data key (deleted, or never provisioned)")
        retiring = [r.version for r in rows if r.state == KeyState.RETIRING]
        resumed = bool(retiring)
        if resumed:
            active = [r for r in rows if r.state == KeyState.ACTIVE]
            if not active:
                raise KeyUnavailable(f"company {company_id} has no active data key")
            version, created_at = active[-1].version, active[-1].created_at
        else:
            retiring = [r.version for r in rows]
            version = keyring.add_data_key_version(company_id)
            created_at = DataKey.objects.get(company_id=company_id, purpose=KeyPurpose.DATA, version=version).created_at
    # Also after the commit: a reload inside the transaction could have cached the old state.
    keyring.forget(company_id)
    return version, retiring, resumed, created_at


def _one_pass(
    context: CompanyContext, retiring: set[int], batch_size: int, progress: Progress | None, stage: str
) -> _Pass:
    found = _Pass()
    targets = encrypted_models()
    files = list(encrypted_storage.walk())
    total = sum(model.objects.count() for model, _ in targets) + len(files)  # type: ignore[attr-defined]  # typing debt
    done = 0
    report(progress, 0, total, stage)
    for model, fields in targets:
        last = None
        while True:
            query = model.objects.order_by("pk").values_list("pk", *(f.attname for f in fields))  # type: ignore[attr-defined]  # typing debt
            if last is not None:
                query = query.filter(pk__gt=last)
            batch = list(query[:batch_size])
            if not batch:
                break
            last = batch[-1][0]
            with transaction.atomic(using=context.alias):
                for pk, *stored in batch:
                    _reencrypt_row(model, fields, pk, stored, retiring, found)
            done += len(batch)
            report(progress, done, max(total, done), stage)
    for start in range(0, len(files), FILE_BATCH):
        for name in files[start : start + FILE_BATCH]:
            _reencrypt_file(name, retiring, found)
        done += len(files[start : start + FILE_BATCH])
        report(progress, done, max(total, done), stage)
    return found


def _reencrypt_row(model, fields: list[EncryptedField], pk, stored: list, retiring: set[int], found: _Pass) -> None:
    old = {
        f: sealed
        for f, sealed in zip(fields, stored, strict=True)
        if sealed is not None and sealing.key_version(sealed.data) in retiring
    }
    if not old:
        return
    instance = model(pk=pk)  # only its primary key matters: the ciphertext is bound to it
    try:
        new = {f.name: f.seal_for(instance, f.unseal(instance, sealed)) for f, sealed in old.items()}
    except DecryptionError:
        found.unreadable.append(f"{model._meta.label_lower}:{pk}")
        return
    found.old += 1
    # Compare-and-set: written only if every value re-encrypted here is still the one read.
    unchanged = {f"{f.name}__sealed": sealed for f, sealed in old.items()}
    if model.objects.filter(pk=pk, **unchanged).update(**new):
        found.rows += 1
        found.values += len(new)
    else:
        found.raced += 1


def _reencrypt_file(name: str, retiring: set[int], found: _Pass) -> None:
    try:
        version = encrypted_storage.stored_version(name)
    except FileNotFoundError:  # deleted since the listing
        return
    # 0: not a Vouch encrypted file at all; reencrypt reports it (security event).
    if version not in retiring and version != 0:
        return
    try:
        changed = encrypted_storage.reencrypt(name)
    except FileNotFoundError:
        return
    except DecryptionError:
        found.unreadable.append(f"file:{name}")
        return
    found.old += 1
    if changed:
        found.files += 1
    else:
        found.raced += 1
