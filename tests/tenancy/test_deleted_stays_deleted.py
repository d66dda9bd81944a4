"""Deleted companies stay deleted: a control database restored from a backup taken
before a purge does not bring the purged company's keys back.

The whole control database is copied (SQLite: its backup API into a file; PostgreSQL:
pg_dump), the company is purged through the real deletion flow, the old control
database is put back (SQLite: the backup API the other way; PostgreSQL: pg_restore
--clean), while the key store stays as the purge left it. The restore is shown to have
worked (the purged company's key rows are back), then every way to its keys fails.

Every test here runs twice: with the key store in its directory (the default), and in
an S3 bucket (``VOUCH_KEY_STORE_URL``, as app servers share it), on a real SeaweedFS."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import connection
from django.utils import timezone

from tests.audit.conftest import committed_chain  # noqa: F401 - the fixture, used below
from tests.conftest import make_company
from tests.vault.attack import read_raw
from vouch.accounts.policy import Role
from vouch.activity.models import Entry
from vouch.activity.services import log
from vouch.core.context import company_context
from vouch.tenancy import deletion
from vouch.tenancy.models import Company, CompanyStatus
from vouch.vault import backup_keys, keyring, keystore, providers, sealing
from vouch.vault.errors import DecryptionError, KeyUnavailable
from vouch.vault.models import DataKey, KeyScheme

# Committed rows (a dump sees only those); the security log's append-only triggers are
# lifted at the end so the flush can empty it (tests/audit/conftest.py).
pytestmark = pytest.mark.usefixtures("committed_chain", "key_store")


@pytest.fixture(params=["directory", "bucket"], autouse=True)
def key_store(request, settings):
    """Where the key store is: ``VOUCH_KEYS_DIR`` (the default), or a bucket of its own."""
    if request.param == "bucket":
        server, bucket = request.getfixturevalue("s3_server"), request.getfixturevalue("s3_bucket")
        settings.VOUCH_KEY_STORE_URL = server.url(bucket, "keys")
    fresh_process_view()
    yield request.param
    fresh_process_view()


def has(name: str) -> bool:
    return keystore.store().exists(name)


# --- The whole control database, copied and put back --------------------------------------


def _pg_args() -> tuple[list[str], dict]:
    conf = connection.settings_dict
    args = ["-h", conf["HOST"] or "127.0.0.1", "-p", str(conf["PORT"] or 5432), "-U", conf["USER"], "-d", conf["NAME"]]
    env = os.environ | ({"PGPASSWORD": conf["PASSWORD"]} if conf["PASSWORD"] else {})
    return args, env


def copy_control_database(into: Path) -> Path:
    if connection.vendor == "postgresql":
        target = into / "control.dump"
        args, env = _pg_args()
        subprocess.run(["pg_dump", "-Fc", "-f", str(target), *args], check=True, env=env, timeout=120)
        return target
    target = into / "control.sqlite3"
    connection.ensure_connection()
    copy = sqlite3.connect(target)
    try:
        connection.connection.backup(copy)
    finally:
        copy.close()
    return target


def put_control_database_back(copy: Path) -> None:
    if connection.vendor == "postgresql":
        connection.close()
        args, env = _pg_args()
        subprocess.run(
            ["pg_restore", "--clean", "--if-exists", "--single-transaction", "--no-owner", *args, str(copy)],
            check=True,
            env=env,
            timeout=120,
        )
        return
    connection.ensure_connection()
    source = sqlite3.connect(copy)
    try:
        source.backup(connection.connection)
    finally:
        source.close()


def fresh_process_view() -> None:
    """What a process started now would see: no cached keys, the key store read anew."""
    providers.reset()
    keyring.forget()


def purge(company) -> None:
    now = timezone.now()
    owner = company.memberships.get(role=Role.OWNER)
    deletion.schedule_deletion(company, owner, now=now)
    assert deletion.delete_now(company.pk, now=now + deletion.grace_period() + timedelta(seconds=1)) is not None


# --- The scenario ----------------------------------------------------------------------------


def test_a_control_database_restored_from_before_a_purge_opens_nothing_of_the_purged_company(
    tmp_path, key_store, settings
):
    doomed, survivor = make_company("Doomed Hiring"), make_company("Surviving Hiring")
    assert has(keystore.kek_name(doomed.pk))
    if key_store == "bucket":  # there, and not on this server's disk
        assert keystore.describe().startswith("bucket ")
        assert not (Path(settings.VOUCH_KEYS_DIR) / keystore.kek_name(doomed.pk)).exists()
    secret = "Ulrika Underhill, left because of her manager"
    with company_context(doomed) as ctx:
        entry = log("x", secret)
        sealed = read_raw(ctx.alias, Entry, "summary", entry.pk)  # as a copy of its database holds it
    bound_to = sealing.binding(doomed.pk, Entry._meta.get_field("summary").location, entry.pk)
    assert sealing.open_sealed(doomed.pk, sealed, bound_to, what="before") == secret.encode()
    # A backup of the company, encrypted under its backup key before the purge.
    nonce = os.urandom(12)
    backup_blob = AESGCM(backup_keys.company_backup_key(doomed.pk)).encrypt(nonce, secret.encode(), b"set")
    survivor_backup_key = backup_keys.company_backup_key(survivor.pk)
    control_key = backup_keys.control_backup_key()
    rows_before = sorted(DataKey.objects.filter(company_id=doomed.pk).values_list("purpose", "version", "wrapped"))
    assert len(rows_before) == 2

    copy = copy_control_database(tmp_path)
    purge(doomed)
    assert not DataKey.objects.filter(company_id=doomed.pk).exists()
    assert not has(keystore.kek_name(doomed.pk)) and keystore.is_purged(doomed.pk)

    put_control_database_back(copy)
    fresh_process_view()

    # The restore worked: the purged company is alive again in the control database,
    # with exactly the key rows it had.
    restored = Company.objects.get(pk=doomed.pk)
    assert restored.status == CompanyStatus.ACTIVE and restored.deleted_at is None
    rows_after = DataKey.objects.filter(company_id=doomed.pk)
    assert sorted((p, v, bytes(w)) for p, v, w in rows_after.values_list("purpose", "version", "wrapped")) == [
        (p, v, bytes(w)) for p, v, w in rows_before
    ]

    # Vouch gets none of its keys, and opens nothing encrypted before.
    with pytest.raises(KeyUnavailable):
        keyring.keys_for(doomed.pk)
    with pytest.raises(KeyUnavailable):
        backup_keys.company_backup_key(doomed.pk)
    with pytest.raises(KeyUnavailable):
        sealing.open_sealed(doomed.pk, sealed, bound_to, what="after")

    # Not only because Vouch remembers the purge: with the tombstone deleted too (someone
    # with the key store), the KEK is still gone and the rows still open nothing.
    assert keystore.store().delete(keystore.tombstone_name(doomed.pk))
    fresh_process_view()
    with pytest.raises(KeyUnavailable):
        keyring.keys_for(doomed.pk)
    with pytest.raises(KeyUnavailable):
        backup_keys.company_backup_key(doomed.pk)
    # Every key left in the installation: the master key opens the outer layer of the
    # rows, and no company KEK left opens the inner one, nor the backup.
    provider = providers.get_provider()
    keks_left = [keystore.open_wrapped(keystore.kek_name(c), keystore.kek_aad(c))[1] for c in keystore.kek_companies()]
    assert survivor.pk in keystore.kek_companies() and doomed.pk not in keystore.kek_companies()
    for row in rows_after:
        outer = provider.unwrap(row.master_version, bytes(row.wrapped), keyring.wrap_aad(doomed.pk, row.purpose, 1))
        assert row.scheme == KeyScheme.COMPANY_KEK and len(outer) != 32
        for kek in keks_left:
            with pytest.raises(DecryptionError):
                keyring.open_inner(kek, outer, doomed.pk, row.purpose, row.version)
    for candidate in [*keks_left, survivor_backup_key, control_key]:
        with pytest.raises(InvalidTag):
            AESGCM(candidate).decrypt(nonce, backup_blob, b"set")
    assert keystore.store().create(keystore.tombstone_name(doomed.pk), b"{}\n")  # as the purge left it

    # The others are untouched: the survivor's data and backup key, the control backup key.
    assert backup_keys.company_backup_key(survivor.pk) == survivor_backup_key
    assert backup_keys.control_backup_key() == control_key
    with company_context(survivor):
        assert log("x", "Wanda Wolstenholme").summary == "Wanda Wolstenholme"

    # The next purge sees the key store's tombstone and deletes the company again.
    purged = deletion.purge_due()
    assert [c.pk for c in purged] == [doomed.pk]
    gone = Company.objects.get(pk=doomed.pk)
    assert gone.status == CompanyStatus.DELETED and gone.deleted_at is not None
    assert not DataKey.objects.filter(company_id=doomed.pk).exists()
    assert not gone.memberships.exists()
    assert Company.objects.get(pk=survivor.pk).status == CompanyStatus.ACTIVE


# --- Purges interrupted ----------------------------------------------------------------------


class Crash(BaseException):
    """The process dying at this point."""


def test_a_purge_that_dies_before_destroying_the_kek_is_finished_by_the_next(monkeypatch):
    doomed = make_company("Doomed Hiring")
    real = keyring.destroy_kek

    def dies(company_id):
        raise Crash

    monkeypatch.setattr(keyring, "destroy_kek", dies)
    with pytest.raises(Crash):
        purge(doomed)
    # The rows are gone (committed), the KEK not yet: the company is left for the next purge.
    assert not DataKey.objects.filter(company_id=doomed.pk).exists()
    assert has(keystore.kek_name(doomed.pk))
    assert Company.objects.get(pk=doomed.pk).deleted_at is None
    assert doomed.pk in set(deletion.due().values_list("pk", flat=True))

    monkeypatch.setattr(keyring, "destroy_kek", real)
    assert [c.pk for c in deletion.purge_due()] == [doomed.pk]
    assert not has(keystore.kek_name(doomed.pk)) and keystore.is_purged(doomed.pk)
    assert Company.objects.get(pk=doomed.pk).deleted_at is not None


def test_a_purge_that_dies_between_tombstone_and_kek_refuses_the_keys_and_is_finished(monkeypatch):
    doomed = make_company("Doomed Hiring")
    real = keystore.StoredCompanyKeyStore.destroy_company_kek

    def dies(self, company_id):
        raise Crash

    monkeypatch.setattr(keystore.StoredCompanyKeyStore, "destroy_company_kek", dies)
    with pytest.raises(Crash):
        purge(doomed)
    assert keystore.is_purged(doomed.pk) and has(keystore.kek_name(doomed.pk))
    fresh_process_view()
    with pytest.raises(KeyUnavailable):
        backup_keys.company_backup_key(doomed.pk)

    monkeypatch.setattr(keystore.StoredCompanyKeyStore, "destroy_company_kek", real)
    assert [c.pk for c in deletion.purge_due()] == [doomed.pk]
    assert not has(keystore.kek_name(doomed.pk))
    assert Company.objects.get(pk=doomed.pk).deleted_at is not None
