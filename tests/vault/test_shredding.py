"""Crypto-shredding: once a company is deleted, a copy of its database or files taken
before (a backup, a stolen disk) can no longer be read, by Vouch or by someone holding
every key left in the installation.

The copy is taken before deletion (SQLite: a backup of the file; PostgreSQL: a
database made from it as template), the company is deleted through the real deletion
flow, and then the copied ciphertext is attacked with every key still present: each
company's data and index keys (unwrapped from the control database with the master
keys) and the master keys themselves, read from the key directory. The attack
routine is first shown to work, on the copy while the keys existed and on a company
that still exists, so its failures afterwards mean something."""

from __future__ import annotations

import base64
import shutil
import sqlite3
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.files.base import ContentFile
from django.utils import timezone

from tests.conftest import make_company
from tests.vault.attack import read_raw
from vouch.accounts.policy import Role
from vouch.activity.models import Entry
from vouch.activity.services import log
from vouch.audit.models import EventAction, SecurityEvent
from vouch.core.context import alias_for, company_context
from vouch.references.models import Candidate
from vouch.references.services import create_candidate
from vouch.tenancy import deletion, provisioning, regions
from vouch.tenancy.connections import postgres_name, release, sqlite_path
from vouch.vault import backup_keys, keyring, keystore, providers, sealing
from vouch.vault.errors import DecryptionError, KeyUnavailable
from vouch.vault.fields import EncryptedField
from vouch.vault.files import HEADER_BYTES, decrypt_stream, encrypted_storage
from vouch.vault.models import DataKey, KeyPurpose, KeyScheme

pytestmark = pytest.mark.django_db


# --- The attacker's side: the documented formats, and cryptography -------------------


def encrypted_columns(model) -> list[str]:
    return [f.column for f in model._meta.concrete_fields if isinstance(f, EncryptedField)]


def try_value(key: bytes, sealed: bytes, company_id: uuid.UUID, model, field: str, row_id: uuid.UUID) -> bytes | None:
    """Open a field value (format in vault.sealing) with ``key``; None if it does not."""
    location = model._meta.get_field(field).location
    aad = sealed[: sealing.HEADER_BYTES] + sealing.binding(company_id, location, row_id)
    body = sealed[sealing.HEADER_BYTES :]
    try:
        return AESGCM(key).decrypt(body[: sealing.NONCE_BYTES], body[sealing.NONCE_BYTES :], aad)
    except InvalidTag:
        return None


def try_file(key: bytes, data: bytes, company_id: uuid.UUID, name: str) -> bytes | None:
    """Open the first chunk of an encrypted file (format in vault.files) with ``key``
    as the company's data key; None if it does not."""
    header = data[:HEADER_BYTES]
    info = b"vouch/file/v1\x00" + company_id.bytes + name.encode()
    file_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=header[9:], info=info).derive(key)
    first_chunk = data[HEADER_BYTES:]
    last = len(first_chunk) <= 64 * 1024 + 16
    nonce = (0).to_bytes(11, "big") + (b"\x01" if last else b"\x00")
    try:
        return AESGCM(file_key).decrypt(nonce, first_chunk[: 64 * 1024 + 16], header)
    except InvalidTag:
        return None


def every_key_left() -> list[bytes]:
    """Every key an attacker with the control database and the key directory has:
    all companies' data and index keys, unwrapped (with their KEKs, where the key
    store still has them), the company KEKs themselves, the master keys (retired ones
    included), and the control backup key."""
    provider = providers.get_provider()
    keys = []
    for row in DataKey.objects.all():
        try:
            kek = keystore.load_kek(row.company_id) if row.scheme == KeyScheme.COMPANY_KEK else None
        except KeyUnavailable:
            continue  # rows whose KEK is gone open nothing
        args = (row.company_id, row.purpose, row.version, row.scheme, row.master_version, bytes(row.wrapped))
        keys.append(keyring.unwrap_row(provider, *args, kek))
    for company_id in keystore.kek_companies():
        keys.append(keystore.open_wrapped(keystore.kek_name(company_id), keystore.kek_aad(company_id))[1])
    for path in Path(settings.VOUCH_KEYS_DIR).glob("master-*.key*"):
        keys.append(base64.urlsafe_b64decode(path.read_text().strip() + "=="))
    keys.append(backup_keys.control_backup_key())
    assert keys and all(len(k) == 32 for k in keys)
    return keys


# --- Copies taken before the deletion -----------------------------------------------


def copy_database(company, into: Path) -> dict[tuple, bytes]:
    """A full copy of the company's database, as a backup would hold it; returns the
    encrypted values of candidates and activity entries read from that copy, by
    (model, row id, column)."""
    region = regions.get(company.region)
    release(alias_for(company.pk))  # the template copy needs no other session on it
    if region.uses_postgresql:
        copy_name = f"{settings.VOUCH_COMPANY_DATABASE_PREFIX}_shredcopy_{uuid.uuid4().hex[:12]}"
        with provisioning._admin(region) as admin:
            admin.execute(f'CREATE DATABASE "{copy_name}" TEMPLATE "{postgres_name(company.pk)}"')
        try:
            with provisioning._admin(region, dbname=copy_name) as conn:
                rows = {model: conn.execute(select(model)).fetchall() for model in (Entry, Candidate)}
        finally:
            with provisioning._admin(region) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{copy_name}" WITH (FORCE)')
            with provisioning._admin(region) as admin:
                left = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [copy_name]).fetchone()
            assert left is None
    else:
        backup = into / "company.sqlite3"
        source = sqlite3.connect(sqlite_path(company.pk, region))
        target = sqlite3.connect(backup)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        with sqlite3.connect(backup) as conn:
            rows = {model: conn.execute(select(model)).fetchall() for model in (Entry, Candidate)}
    found = {}
    for model, model_rows in rows.items():
        for row in model_rows:
            row_id = row[0] if isinstance(row[0], uuid.UUID) else uuid.UUID(row[0])
            for column, value in zip(encrypted_columns(model), row[1:], strict=True):
                if value is not None:
                    found[model, row_id, column] = bytes(value)
    return found


def select(model) -> str:
    columns = ", ".join(["id", *encrypted_columns(model)])
    return f"SELECT {columns} FROM {model._meta.db_table}"  # noqa: S608


def test_a_deleted_companys_earlier_copies_cannot_be_decrypted_with_any_key_left(tmp_path):
    now = timezone.now()
    doomed, survivor = make_company("Doomed Hiring"), make_company("Surviving Hiring")
    secret = "Ulrika Underhill, 07700 900444, left because of her manager"
    with company_context(doomed):
        create_candidate("Ulrika Underhill", "ulrika@example.org", "07700 900444", notes=secret)
        log("x", secret, details={"referee": "Viggo Vane", "phone": "07700 900555"})
        file_name = encrypted_storage.save(f"reports/{uuid.uuid4()}.txt", ContentFile(secret.encode() * 100))
    with company_context(survivor):
        kept = log("x", "Wanda Wolstenholme")
        kept_file = encrypted_storage.save(f"reports/{uuid.uuid4()}.txt", ContentFile(b"Wanda's reference"))

    values = copy_database(doomed, tmp_path)
    files_copy = shutil.copytree(provisioning.files_dir(doomed.pk, doomed.region), tmp_path / "files")
    file_copy = (files_copy / file_name).read_bytes()
    assert {model for model, _, _ in values} == {Entry, Candidate}
    # The attack routine works: with the key that exists now, the copy opens.
    keys_then = keyring.keys_for(doomed.pk).data[1]
    opened = {try_value(keys_then, v, doomed.pk, model, col, row) for (model, row, col), v in values.items()}
    assert {secret.encode(), b"ulrika@example.org"} <= opened and None not in opened
    assert try_file(keys_then, file_copy, doomed.pk, file_name).startswith(secret.encode())
    del keys_then

    owner = doomed.memberships.get(role=Role.OWNER)
    deletion.schedule_deletion(doomed, owner, now=now)
    assert deletion.delete_now(doomed.pk, now=now + deletion.grace_period() + timedelta(seconds=1)) is not None

    assert not DataKey.objects.filter(company_id=doomed.pk).exists()
    assert DataKey.objects.filter(company_id=survivor.pk).count() == 2
    shredded = SecurityEvent.objects.filter(company_id=doomed.pk, action=EventAction.KEYS_SHREDDED)
    assert shredded.count() == 1
    assert not provisioning.exists(doomed.pk, doomed.region)
    assert not provisioning.files_dir(doomed.pk, doomed.region).exists()

    # Vouch itself: no keys, in this process at once and after every cache is dropped.
    with pytest.raises(KeyUnavailable):
        keyring.keys_for(doomed.pk)
    providers.reset()
    keyring.forget()
    with pytest.raises(KeyUnavailable):
        keyring.keys_for(doomed.pk)

    # The key store remembers the purge: the same company id is never given keys again
    # (a mistaken re-provisioning), and its KEK is gone.
    assert keystore.is_purged(doomed.pk) and not keystore.store().exists(keystore.kek_name(doomed.pk))
    with pytest.raises(KeyUnavailable):
        keyring.create_company_keys(doomed.pk)
    # Someone with every key left in the installation.
    keys = every_key_left()
    assert len(keys) >= 2 * DataKey.objects.filter(purpose=KeyPurpose.DATA).count()
    for key in keys:
        for (model, row, column), sealed in values.items():
            assert try_value(key, sealed, doomed.pk, model, column, row) is None
        assert try_file(key, file_copy, doomed.pk, file_name) is None
    # ... and Vouch refuses the old copy.
    for (model, row, column), sealed in values.items():
        location = model._meta.get_field(column).location
        with pytest.raises((DecryptionError, KeyUnavailable)):
            sealing.open_sealed(doomed.pk, sealed, sealing.binding(doomed.pk, location, row), what=f"copy:{row}")
    restored = provisioning.files_dir(doomed.pk, doomed.region)
    try:
        shutil.copytree(files_copy, restored)  # the backup of the files put back
        with (restored / file_name).open("rb") as source, pytest.raises((DecryptionError, KeyUnavailable)):
            b"".join(decrypt_stream(doomed.pk, file_name, source))
    finally:
        shutil.rmtree(restored, ignore_errors=True)

    # The same attack routine still opens the surviving company's data with its key:
    # the failures above are the shredding, not a broken attack.
    with company_context(survivor) as ctx:
        sealed_kept = read_raw(ctx.alias, Entry, "summary", kept.pk)
        kept_data = (provisioning.files_dir(survivor.pk, survivor.region) / kept_file).read_bytes()
    survivor_key = keyring.keys_for(survivor.pk).data[1]
    assert try_value(survivor_key, sealed_kept, survivor.pk, Entry, "summary", kept.pk) == b"Wanda Wolstenholme"
    assert try_file(survivor_key, kept_data, survivor.pk, kept_file) == b"Wanda's reference"
    assert survivor_key in keys
