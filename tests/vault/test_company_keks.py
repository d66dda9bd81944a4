"""Company key-encryption keys (KEKs), kept only in the key store: made at provisioning,
the inner wrapping of every company key row, the root of the company's backup key;
re-wrapped by master rotation; given to companies from before them by `vouch setup`."""

from __future__ import annotations

import base64
import json
import shutil
import stat
from itertools import pairwise

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tests.conftest import make_company
from tests.vault.helpers import bulk_companies
from vouch import cli
from vouch.activity.models import Entry
from vouch.activity.services import log
from vouch.core.context import company_context
from vouch.vault import backup_keys, kek_adoption, keyblobs, keyring, keystore, providers
from vouch.vault.errors import DecryptionError, KeyConfigurationError, KeyUnavailable
from vouch.vault.models import DataKey, InstallationKey, KeyPurpose, KeyScheme
from vouch.vault.rotation import rotate_master

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("keys_dir")]


def kek_path(company_id):
    """The company's KEK file in the key store's directory (the default key store)."""
    return keystore.store().path(keystore.kek_name(company_id))


def fresh() -> None:
    providers.reset()
    keyring.forget()


def outer_layer(row: DataKey) -> bytes:
    """What the master key alone opens of a key row."""
    aad = keyring.wrap_aad(row.company_id, row.purpose, row.version)
    return providers.get_provider().unwrap(row.master_version, bytes(row.wrapped), aad)


def read_summary(company, entry_id) -> str:
    with company_context(company):
        return Entry.objects.get(pk=entry_id).summary


def to_old_scheme(company_id) -> None:
    """Rewrite a company's key rows as Vouch wrote them before KEKs (the master key
    only), and remove its KEK: a company from an earlier release."""
    provider = providers.get_provider()
    kek = keystore.load_kek(company_id)
    for row in DataKey.objects.filter(company_id=company_id):
        raw = keyring.open_inner(kek, outer_layer(row), company_id, row.purpose, row.version)
        row.master_version, row.wrapped = provider.wrap(raw, keyring.wrap_aad(company_id, row.purpose, row.version))
        row.scheme = KeyScheme.MASTER
        row.save()
    assert keystore.store().delete(keystore.kek_name(company_id))
    keyring.forget(company_id)


# --- Provisioning ------------------------------------------------------------------------------


def test_a_company_provisioned_now_has_a_kek_kept_only_in_the_key_store(company, keys_dir):
    path = keys_dir / "companies" / f"{company.pk}.kek"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    kek = keystore.load_kek(company.pk)
    assert len(kek) == 32
    # The file holds it wrapped by the master key, not in any readable form.
    text = path.read_text()
    for form in (kek, kek.hex().encode(), base64.b64encode(kek), base64.urlsafe_b64encode(kek).rstrip(b"=")):
        assert form not in text.encode()
    assert json.loads(text)["company"] == str(company.pk)

    keys = keyring.keys_for(company.pk)
    rows = list(DataKey.objects.filter(company=company))
    assert {r.scheme for r in rows} == {KeyScheme.COMPANY_KEK} and len(rows) == 2
    for row in rows:
        # The master key opens the outer layer only: the key is inside, under the KEK.
        outer = outer_layer(row)
        key = keys.index if row.purpose == KeyPurpose.INDEX else keys.data[row.version]
        assert key not in outer
        assert keyring.open_inner(kek, outer, company.pk, row.purpose, row.version) == key

    # The control database and the master key without the KEK: nothing.
    aside = keys_dir / "aside.kek"
    path.rename(aside)
    fresh()
    with pytest.raises(KeyUnavailable):
        keyring.keys_for(company.pk)
    with pytest.raises(KeyUnavailable):
        backup_keys.company_backup_key(company.pk)
    aside.rename(path)
    fresh()
    assert keyring.keys_for(company.pk).data == keys.data

    # A data key rotation's new version is under the KEK too.
    version = keyring.add_data_key_version(company.pk)
    assert DataKey.objects.get(company=company, purpose=KeyPurpose.DATA, version=version).scheme == (
        KeyScheme.COMPANY_KEK
    )


def test_a_kek_file_swapped_for_another_companys_fails_closed(company, keys_dir):
    other = make_company("Other Hiring")
    with company_context(company):
        entry = log("x", "Alice Example")
    mine, theirs = kek_path(company.pk), kek_path(other.pk)
    original = mine.read_bytes()
    other_backup_key = backup_keys.company_backup_key(other.pk)

    shutil.copyfile(theirs, mine)  # the other company's KEK file, under this company's name
    fresh()
    with pytest.raises(DecryptionError):
        keyring.keys_for(company.pk)
    with pytest.raises(DecryptionError):
        backup_keys.company_backup_key(company.pk)
    with pytest.raises(DecryptionError):
        read_summary(company, entry.pk)

    fields = json.loads(theirs.read_text())  # ... and relabelled as this company's
    fields["company"] = str(company.pk)
    keyblobs.write_file(mine, json.dumps(fields), replace=True)
    fresh()
    with pytest.raises(DecryptionError):
        keyring.keys_for(company.pk)

    mine.unlink()
    mine.symlink_to(theirs)  # a link to it: not followed
    fresh()
    with pytest.raises(KeyConfigurationError):
        keyring.keys_for(company.pk)

    mine.unlink()
    keyblobs.write_file(mine, original.decode(), replace=False)
    fresh()
    assert read_summary(company, entry.pk) == "Alice Example"
    assert backup_keys.company_backup_key(other.pk) == other_backup_key  # the other is untouched


def test_a_key_row_relabelled_as_old_format_fails_closed(company):
    DataKey.objects.filter(company=company).update(scheme=KeyScheme.MASTER)
    fresh()
    with pytest.raises(DecryptionError):
        keyring.keys_for(company.pk)


# --- Backup keys ---------------------------------------------------------------------------


def test_company_backup_keys_come_from_the_kek(company):
    other = make_company("Other Hiring")
    key = backup_keys.company_backup_key(company.pk)
    assert len(key) == 32
    assert key != backup_keys.company_backup_key(other.pk)
    keys = keyring.keys_for(company.pk)
    assert key not in (keystore.load_kek(company.pk), keys.index, *keys.data.values())
    fresh()
    assert backup_keys.company_backup_key(str(company.pk)) == key
    # Rotating the company's data key changes nothing: backups made before still open.
    keyring.add_data_key_version(company.pk)
    assert backup_keys.company_backup_key(company.pk) == key


def test_the_control_backup_key_lives_in_the_key_store_wrapped(keys_dir):
    installation_keys = InstallationKey.objects.count()
    key = backup_keys.control_backup_key()
    path = keys_dir / "backup-control.key"
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    fields = json.loads(path.read_text())
    assert fields["master_version"] == 1 and set(fields) >= {"wrapped", "format"}
    assert InstallationKey.objects.count() == installation_keys  # nothing in the control database
    fresh()
    assert backup_keys.control_backup_key() == key
    # Without the master key the file opens nothing.
    (keys_dir / "master-000001.key").rename(keys_dir / "elsewhere")
    fresh()
    with pytest.raises(KeyConfigurationError):
        backup_keys.control_backup_key()


def test_an_interim_raw_control_backup_key_is_wrapped_in_place_and_keeps_its_value(keys_dir):
    raw = bytes(range(32))
    path = keys_dir / "backup-control.key"
    path.write_bytes(raw)
    path.chmod(0o600)
    keyring.ensure_master_key()
    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"vouch/backup/v1", info=b"control").derive(raw)
    assert backup_keys.control_backup_key() == expected
    assert raw not in path.read_bytes() and json.loads(path.read_text())["master_version"] == 1
    assert backup_keys.control_backup_key() == expected


# --- Master rotation -----------------------------------------------------------------------


def test_master_rotation_rewraps_the_key_store_and_keeps_everything_readable(company, keys_dir):
    with company_context(company):
        entry = log("x", "Alice Example")
    company_key, control_key = backup_keys.company_backup_key(company.pk), backup_keys.control_backup_key()
    inner_before = {r.pk: outer_layer(r) for r in DataKey.objects.filter(company=company)}

    result = rotate_master(batch_size=5)

    assert result["retired"] == [1] and result["key_files"] == {"rewrapped": 2}
    assert json.loads(kek_path(company.pk).read_text())["master_version"] == 2
    assert json.loads((keys_dir / "backup-control.key").read_text())["master_version"] == 2
    assert not (keys_dir / "master-000001.key").exists()
    fresh()
    # Only the outer layer changed: the inner one, under the KEK, is the same bytes.
    assert {r.pk: outer_layer(r) for r in DataKey.objects.filter(company=company)} == inner_before
    assert read_summary(company, entry.pk) == "Alice Example"
    assert backup_keys.company_backup_key(company.pk) == company_key
    assert backup_keys.control_backup_key() == control_key


def test_master_rotation_keeps_a_version_a_kek_file_still_needs(company, keys_dir):
    other = make_company("Other Hiring")
    broken = kek_path(other.pk)
    fields = json.loads(broken.read_text())
    fields["wrapped"] = base64.b64encode(b"\0" * 60).decode()  # altered: does not unwrap
    keyblobs.write_file(broken, json.dumps(fields), replace=True)

    result = rotate_master()

    assert result["key_files"] == {"rewrapped": 1, "unreadable": 1}
    assert result["retired"] == [] and result["still_used"] == {1: 1}
    assert (keys_dir / "master-000001.key").exists()
    fresh()
    assert keyring.keys_for(company.pk)


# --- Companies from before KEKs -------------------------------------------------------------


def test_existing_companies_are_moved_to_keks_by_setup(company, keys_dir, capsys):
    with company_context(company):
        entry = log("x", "Alice Example")
    keys_before = keyring.keys_for(company.pk)
    to_old_scheme(company.pk)
    old = bulk_companies(2, old_scheme=True)
    fresh()
    # Old-format rows still work, and `keys status` says they need moving.
    assert read_summary(company, entry.pk) == "Alice Example"
    assert cli.main(["keys", "status"]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM: 3 companies have keys wrapped by the master key only" in out
    assert not kek_path(company.pk).exists()

    cli.adopt_company_keks()  # what `vouch setup` and `vouch migrate` run

    err = capsys.readouterr().err
    assert "Moved 3 companies to their own key-encryption keys (6 key rows re-wrapped" in err
    assert set(DataKey.objects.values_list("scheme", flat=True)) == {KeyScheme.COMPANY_KEK}
    for company_id in [company.pk, *old]:
        assert kek_path(company_id).exists()
    fresh()
    keys_after = keyring.keys_for(company.pk)
    assert (keys_after.data, keys_after.index) == (keys_before.data, keys_before.index)
    assert read_summary(company, entry.pk) == "Alice Example"
    assert cli.main(["keys", "status"]) == 0
    assert "PROBLEM" not in capsys.readouterr().out
    # Idempotent: nothing to do, nothing said.
    cli.adopt_company_keks()
    assert capsys.readouterr().err == ""


def test_a_purged_company_from_before_keks_is_not_given_one(keys_dir):
    """A control database restored from before both the move to KEKs and a purge: the
    company's rows open with the master key alone, and Vouch still refuses them."""
    (purged,) = bulk_companies(1, old_scheme=True)
    keyring.destroy_kek(purged)  # what the purge left in the key store: its tombstone
    assert keystore.is_purged(purged)

    result = kek_adoption.adopt_company_keks()

    assert result["purged"] == [str(purged)] and result["companies"] == 0
    assert not kek_path(purged).exists()
    assert "Run `vouch tenants purge`" in " ".join(kek_adoption.describe(result))
    fresh()
    with pytest.raises(KeyUnavailable):
        keyring.keys_for(purged)
    with pytest.raises(KeyUnavailable):
        backup_keys.company_backup_key(purged)


# --- Status --------------------------------------------------------------------------------


def test_keys_status_shows_each_companys_kek(company, capsys):
    assert cli.main(["keys", "status", "--company", str(company.pk)]) == 0
    out = capsys.readouterr().out
    header, row = next((h, r) for h, r in pairwise(out.splitlines()) if r.startswith(str(company.pk)))
    assert header.split()[-1] == "KEK" and row.split()[-1] == "present"
    assert cli.main(["keys", "status"]) == 0
    assert "0 missing" in capsys.readouterr().out

    kek_path(company.pk).unlink()
    assert cli.main(["keys", "status", "--company", str(company.pk)]) == 1
    out = capsys.readouterr().out
    assert next(r for r in out.splitlines() if r.startswith(str(company.pk))).split()[-1] == "MISSING"
    assert f"PROBLEM: no key-encryption key in the key store for {company.pk}" in out
    assert cli.main(["keys", "status"]) == 1
    out = capsys.readouterr().out
    assert "1 missing" in out and f"key-encryption key in the key store ({company.pk})" in out
