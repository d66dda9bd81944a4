"""Key rotation: master keys re-wrapped and retired, company data re-encrypted, both
online (a bystander thread keeps using the data throughout) and resumable."""

from __future__ import annotations

import random
import time

import pytest
from django.core.files.base import ContentFile

from tests.conftest import make_company
from tests.vault.helpers import bulk_companies, bystander
from vouch.activity.models import Entry
from vouch.audit.models import EventAction, SecurityEvent
from vouch.core.context import company_context
from vouch.tenancy import provisioning
from vouch.vault import keyring, providers, sealing
from vouch.vault.files import CHUNK_BYTES, encrypted_storage, header_version
from vouch.vault.models import DataKey, KeyPurpose, KeyState
from vouch.vault.rotation import encrypted_models, rotate_company, rotate_master
from vouch.vault.rotation import status as master_status

# Each test has a master key directory of its own (rotation creates and retires versions)
# and a one-second key cache, so waiting for other processes' caches stays short.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("keys_dir")]


class Stop(Exception):
    """Stands in for a rotation killed part-way."""


def stop_after_first_batch(done: int, total: int, stage: str) -> None:
    if done:
        raise Stop


def raw_keys(company_ids) -> dict:
    """Each company's unwrapped keys, read from the key rows (not the cache)."""
    found = {}
    for company_id in company_ids:
        keyring.forget(company_id)
        keys = keyring.keys_for(company_id)
        found[company_id] = (dict(keys.data), keys.index)
    return found


def data_versions(company) -> list[tuple[int, str]]:
    return list(
        DataKey.objects.filter(company=company, purpose=KeyPurpose.DATA)
        .order_by("version")
        .values_list("version", "state")
    )


# --- Master key rotation ----------------------------------------------------------------


def test_master_rotation_rewraps_every_key_and_retires_the_old_file(company, keys_dir):
    other = make_company("Other Hiring")
    with company_context(company):
        entry = Entry.objects.create(action="x", summary="Alice Example", details={"phone": "07700 900123"})
    ids = bulk_companies(7) + [company.pk, other.pk]
    before = raw_keys(ids)
    wrapped_before = dict(DataKey.objects.values_list("pk", "wrapped"))
    assert set(DataKey.objects.values_list("master_version", flat=True)) == {1}

    result = rotate_master(batch_size=5)

    assert (result["master_version"], result["created"], result["retired"]) == (2, True, [1])
    assert result["rewrapped"] == DataKey.objects.count() == 2 * len(ids)
    assert result["still_used"] == {}
    assert not (keys_dir / "master-000001.key").exists()
    assert (keys_dir / "master-000001.key.retired").exists()
    assert providers.get_provider().versions() == [2]
    rows = list(DataKey.objects.values_list("pk", "master_version", "wrapped", "rewrapped_at"))
    assert all(master == 2 and at is not None for _, master, _, at in rows)
    assert all(bytes(wrapped) != bytes(wrapped_before[pk]) for pk, _, wrapped, _ in rows)
    # The same keys come out (data still readable) with version 1 gone for good.
    providers.reset()
    assert raw_keys(ids) == before
    with company_context(company):
        fresh = Entry.objects.get(pk=entry.pk)
        assert (fresh.summary, fresh.details) == ("Alice Example", {"phone": "07700 900123"})
    event = SecurityEvent.objects.filter(action=EventAction.KEYS_MASTER_ROTATED).latest("seq")
    assert event.details["master_version"] == 2 and event.details["rewrapped"] == 2 * len(ids)

    # Run again: a rotation of its own, to version 3.
    again = rotate_master()
    assert (again["master_version"], again["created"], again["retired"]) == (3, True, [2])
    assert set(DataKey.objects.values_list("master_version", flat=True)) == {3}


def test_interrupted_master_rotation_resumes_without_a_third_version(keys_dir):
    ids = bulk_companies(10)
    before = raw_keys(ids)
    with pytest.raises(Stop):
        rotate_master(batch_size=6, progress=stop_after_first_batch)
    # Killed after one batch: that batch is kept, the rest still on version 1, both
    # versions present, and every company's keys still unwrap.
    assert sorted(DataKey.objects.values_list("master_version", flat=True)) == [1] * 14 + [2] * 6
    assert providers.get_provider().versions() == [1, 2]
    assert raw_keys(ids) == before

    result = rotate_master(batch_size=6)

    assert (result["master_version"], result["created"], result["rewrapped"], result["retired"]) == (2, False, 14, [1])
    assert set(DataKey.objects.values_list("master_version", flat=True)) == {2}
    assert not (keys_dir / "master-000003.key").exists()
    assert providers.get_provider().versions() == [2]
    assert raw_keys(ids) == before


def test_master_rotation_killed_before_retiring_finishes_without_a_new_version(keys_dir):
    bulk_companies(3)
    with pytest.raises(Stop):  # one batch holds every key: stopped after re-wrapping, before retiring
        rotate_master(batch_size=100, progress=stop_after_first_batch)
    assert set(DataKey.objects.values_list("master_version", flat=True)) == {2}
    assert providers.get_provider().versions() == [1, 2]

    result = rotate_master()

    assert (result["master_version"], result["created"], result["rewrapped"], result["retired"]) == (2, False, 0, [1])
    assert providers.get_provider().versions() == [2]


def test_a_key_wrapped_with_the_old_version_during_rotation_is_rewrapped_before_retiring(keys_dir):
    """A worker that has not yet re-read the key directory wraps a new company's keys
    with version 1 while the rotation runs: they must not be left needing a retired key."""
    bulk_companies(4)
    only_version_1 = providers.EnvironmentKeyProvider("1:" + (keys_dir / "master-000001.key").read_text().strip())
    from vouch.tenancy.models import Company

    newcomer = Company.objects.create(name="Newcomer", region="eu")
    raw = b"k" * 32
    injected = []

    def stale_worker_creates_keys(done: int, total: int, stage: str) -> None:
        if done and not injected:
            master, wrapped = only_version_1.wrap(raw, keyring.wrap_aad(newcomer.pk, KeyPurpose.DATA, 1))
            injected.append(
                DataKey.objects.create(
                    company=newcomer, purpose=KeyPurpose.DATA, version=1, master_version=master, wrapped=wrapped
                )
            )

    result = rotate_master(batch_size=3, progress=stale_worker_creates_keys)

    assert injected and injected[0].master_version == 1
    assert result["retired"] == [1]
    row = DataKey.objects.get(pk=injected[0].pk)
    assert row.master_version == 2
    providers.reset()
    aad = keyring.wrap_aad(newcomer.pk, KeyPurpose.DATA, 1)
    assert providers.get_provider().unwrap(2, bytes(row.wrapped), aad) == raw


def test_a_key_that_does_not_unwrap_is_reported_and_keeps_its_master_version(keys_dir):
    ids = bulk_companies(4)
    damaged = DataKey.objects.filter(company_id=ids[1], purpose=KeyPurpose.DATA).get()
    wrapped = bytearray(damaged.wrapped)
    wrapped[-1] ^= 1
    DataKey.objects.filter(pk=damaged.pk).update(wrapped=bytes(wrapped))

    result = rotate_master(batch_size=3)

    assert result["broken"] == [str(ids[1])]
    assert result["rewrapped"] == 7
    assert result["retired"] == [] and result["still_used"] == {1: 1}
    assert (keys_dir / "master-000001.key").exists()
    assert SecurityEvent.objects.filter(action=EventAction.DATA_INTEGRITY_FAIL, company_id=ids[1]).exists()
    # Running again does not make a third version while the damaged key is there.
    assert rotate_master()["master_version"] == 2


def test_master_rotation_under_concurrent_use(company):
    """A bystander keeps reading company keys (from the rows, not the cache) and writing
    and reading values while every key is re-wrapped and version 1 retired."""
    ids = bulk_companies(300)
    before = raw_keys(ids)
    written: dict = {}

    def use(step: int) -> None:
        keyring.forget(company.pk)  # unwrap from the row, whichever version wraps it now
        entry = Entry.objects.create(action="x", summary=f"value {step}")
        written[entry.pk] = f"value {step}"
        assert Entry.objects.get(pk=entry.pk).summary == f"value {step}"
        company_id = ids[step % len(ids)]
        keyring.forget(company_id)
        assert keyring.keys_for(company_id).data == before[company_id][0]

    with bystander(use, within=lambda: company_context(company)) as thread:
        steps_before = thread.steps
        result = rotate_master(batch_size=50)
        steps_during = thread.steps - steps_before
    assert steps_during > 0
    assert result["retired"] == [1] and result["still_used"] == {}
    assert set(DataKey.objects.values_list("master_version", flat=True)) == {2}
    providers.reset()
    assert raw_keys(ids) == before
    with company_context(company):
        assert {e.pk: e.summary for e in Entry.objects.filter(pk__in=list(written))} == written


# --- Company data key rotation ------------------------------------------------------------


def test_encrypted_models_are_found_in_the_company_apps():
    found = {model._meta.label_lower: {f.name for f in fields} for model, fields in encrypted_models()}
    assert found["activity.entry"] == {"actor_name", "summary", "details"}
    from django.apps import apps
    from django.conf import settings

    from vouch.vault.fields import EncryptedField

    for label in settings.VOUCH_COMPANY_APPS:
        for model in apps.get_app_config(label).get_models():
            if any(isinstance(f, EncryptedField) for f in model._meta.concrete_fields):
                assert model._meta.label_lower in found


def _versions_in_use(context) -> set[int]:
    versions = set()
    for model, fields in encrypted_models():
        for row in model.objects.values_list(*(f.attname for f in fields)):
            versions |= {sealing.key_version(v.data) for v in row if v is not None}
    root = provisioning.files_dir(context.company_id, context.region)
    for name in encrypted_storage.walk():
        with open(root / name, "rb") as handle:
            versions.add(header_version(handle))
    return versions


def _seed(count: int = 60, files: int = 6) -> tuple[dict, dict]:
    entries = {}
    for i in range(count):
        entry = Entry.objects.create(
            action="seed", actor_name=f"Person {i}", summary=f"Summary {i}", details={"i": i, "note": "é" * (i % 5)}
        )
        entries[entry.pk] = (f"Person {i}", f"Summary {i}", {"i": i, "note": "é" * (i % 5)})
    stored = {}
    for i in range(files):
        payload = random.randbytes(CHUNK_BYTES * (i % 3) + 1000 + i)
        stored[encrypted_storage.save(f"seed/{i}.bin", ContentFile(payload))] = payload
    return entries, stored


def _read_entry(pk) -> tuple:
    entry = Entry.objects.get(pk=pk)
    return entry.actor_name, entry.summary, entry.details


def _read_file(name: str) -> bytes:
    with encrypted_storage.open(name) as handle:
        return handle.read()


def test_company_rotation_under_concurrent_reads_and_writes(company):
    with company_context(company):
        entries, stored = _seed()
    deleted: set[str] = set()
    rng = random.Random(4)
    batch = 10
    # Rows are re-encrypted in primary key order; changing the ones just ahead of where
    # the rotation has got to makes a write between its read and its write-back likely.
    in_order = sorted(entries)
    reached = {"done": 0}

    def follow(done: int, total: int, stage: str) -> None:
        reached["done"] = done

    def use(step: int) -> None:
        kind = step % 6
        if kind == 0:
            entry = Entry.objects.create(action="new", summary=f"new {step}", details={"step": step})
            entries[entry.pk] = ("", f"new {step}", {"step": step})
        elif kind in (1, 5):
            pk = in_order[min(reached["done"] + rng.randrange(batch), len(in_order) - 1)]
            entry = Entry.objects.get(pk=pk)
            entry.summary, entry.details = f"changed {step}", {"changed": step}
            entry.save()
            entries[pk] = (entry.actor_name, f"changed {step}", {"changed": step})
        elif kind == 2:
            pk = rng.choice(list(entries))
            assert _read_entry(pk) == entries[pk]
        elif kind == 3:
            payload = random.randbytes(1000 + step)
            stored[encrypted_storage.save(f"new/{step}.bin", ContentFile(payload))] = payload
        elif kind == 4:
            name = rng.choice(list(stored))
            assert _read_file(name) == stored[name]
        if step % 30 == 5:
            name = rng.choice(list(stored))
            encrypted_storage.delete(name)
            deleted.add(name)
            del stored[name]

    with bystander(use, within=lambda: company_context(company)) as thread:
        steps_before = thread.steps
        result = rotate_company(company, batch_size=batch, progress=follow)
        steps_during = thread.steps - steps_before

    assert steps_during > 20
    assert (result["data_version"], result["resumed"], result["destroyed"]) == (2, False, [1])
    assert result["unreadable"] == []
    assert result["passes"] >= 2
    assert data_versions(company) == [(2, KeyState.ACTIVE)]
    keyring.forget()
    with company_context(company) as context:
        assert _versions_in_use(context) == {2}
        for pk, values in entries.items():
            assert _read_entry(pk) == values
        assert Entry.objects.count() == len(entries)
        for name, payload in stored.items():
            assert _read_file(name) == payload
        assert not any(encrypted_storage.exists(name) for name in deleted)
        assert set(encrypted_storage.walk()) == set(stored)
    event = SecurityEvent.objects.filter(action=EventAction.KEYS_COMPANY_ROTATED).latest("seq")
    assert event.company_id == company.pk and event.details["data_version"] == 2


def test_a_write_between_reading_and_rewriting_a_row_is_kept(company, monkeypatch):
    """The app saves a row after the rotation read it and before it writes it back:
    the compare-and-set refuses the stale write, and the next pass finds nothing old."""
    from vouch.vault.rotation import company as rotation

    with company_context(company):
        entries, _ = _seed(count=5, files=0)
    target = sorted(entries)[2]
    real = rotation._reencrypt_row

    def app_writes_first(model, fields, pk, stored, retiring, found):
        if pk == target and not found.raced:
            entry = Entry.objects.get(pk=pk)
            entry.summary = "saved by the app meanwhile"
            entry.save()
        return real(model, fields, pk, stored, retiring, found)

    monkeypatch.setattr(rotation, "_reencrypt_row", app_writes_first)
    result = rotate_company(company, settle_seconds=0)

    assert result["raced"] >= 1
    keyring.forget()
    with company_context(company) as context:
        assert Entry.objects.get(pk=target).summary == "saved by the app meanwhile"
        assert _versions_in_use(context) == {2}


def test_a_file_deleted_while_it_is_reencrypted_stays_deleted(company, monkeypatch):
    from vouch.vault import files

    with company_context(company):
        _, stored = _seed(count=0, files=2)
    doomed = sorted(stored)[0]
    real = files.encrypt_stream

    def deleted_meanwhile(company_id, name, chunks, out):
        if name == doomed and encrypted_storage.exists(name):
            encrypted_storage.delete(name)
        return real(company_id, name, chunks, out)

    monkeypatch.setattr(files, "encrypt_stream", deleted_meanwhile)
    result = rotate_company(company, settle_seconds=0)

    assert result["destroyed"] == [1]
    keyring.forget()
    with company_context(company):
        assert not encrypted_storage.exists(doomed)
        assert list(encrypted_storage.walk()) == [name for name in sorted(stored) if name != doomed]


@pytest.mark.parametrize("seeded", [0, 5], ids=["nothing-to-do-at-first", "data"])
def test_values_written_with_a_stale_cached_key_during_rotation_are_caught(company, seeded):
    """Another worker loaded the keys before the rotation and keeps encrypting with
    version 1 until its cache expires: the rotation waits for that, then finds them,
    even when its first pass found nothing to do."""
    with company_context(company):
        entries, stored = _seed(count=seeded, files=min(seeded, 1))
    stale: dict = {}
    stages = []

    def worker_with_stale_cache(done: int, total: int, stage: str) -> None:
        stages.append(stage)
        if stage.startswith("waiting") and not stale:
            keys = keyring.keys_for(company.pk)
            # This process's cache as another worker's still has it: version 1 current.
            keyring._cache[company.pk] = keyring.CompanyKeys(
                company_id=company.pk,
                current_version=1,
                data={1: keys.data[1]},
                index=keys.index,
                loaded_at=time.monotonic(),
            )
            entry = Entry.objects.create(action="late", summary="written with version 1")
            name = encrypted_storage.save("late.bin", ContentFile(b"late file"))
            keyring.forget(company.pk)
            stale.update(entry=entry.pk, name=name)

    started = time.monotonic()
    result = rotate_company(company, progress=worker_with_stale_cache)
    elapsed = time.monotonic() - started

    assert stale, f"the rotation never waited for other processes' caches: {stages}"
    from django.conf import settings

    assert elapsed >= settings.VOUCH_KEY_CACHE_SECONDS
    assert result["destroyed"] == [1]
    keyring.forget()
    with company_context(company) as context:
        assert _versions_in_use(context) == {2}
        assert Entry.objects.get(pk=stale["entry"]).summary == "written with version 1"
        assert _read_file(stale["name"]) == b"late file"
        for pk, values in entries.items():
            assert _read_entry(pk) == values


def test_interrupted_company_rotation_resumes(company):
    with company_context(company):
        entries, stored = _seed(count=30, files=3)
    with pytest.raises(Stop):
        rotate_company(company, batch_size=10, progress=stop_after_first_batch)
    # Stopped after one batch: the new version encrypts, the old one still decrypts.
    assert data_versions(company) == [(1, KeyState.RETIRING), (2, KeyState.ACTIVE)]
    keyring.forget()
    with company_context(company) as context:
        assert _versions_in_use(context) == {1, 2}
        for pk, values in entries.items():
            assert _read_entry(pk) == values
        entry = Entry.objects.create(action="x", summary="between the runs")
        assert sealing.key_version(Entry.objects.values_list("summary", flat=True).get(pk=entry.pk).data) == 2

    result = rotate_company(company, batch_size=10)

    assert (result["data_version"], result["resumed"], result["destroyed"]) == (2, True, [1])
    assert data_versions(company) == [(2, KeyState.ACTIVE)]
    keyring.forget()
    with company_context(company) as context:
        assert _versions_in_use(context) == {2}
        for pk, values in entries.items():
            assert _read_entry(pk) == values
        for name, payload in stored.items():
            assert _read_file(name) == payload


def test_a_value_that_does_not_decrypt_is_reported_and_left_alone(company):
    with company_context(company):
        a = Entry.objects.create(action="x", summary="first")
        b = Entry.objects.create(action="x", summary="second")
        moved = Entry.objects.values_list("summary", flat=True).get(pk=a.pk)
        Entry.objects.filter(pk=b.pk).update(summary=moved)  # a's ciphertext on b's row: never opens

    result = rotate_company(company)

    assert result["unreadable"] == [f"activity.entry:{b.pk}"]
    assert result["destroyed"] == [1]
    keyring.forget()
    with company_context(company):
        assert Entry.objects.get(pk=a.pk).summary == "first"
    assert SecurityEvent.objects.filter(action=EventAction.DATA_INTEGRITY_FAIL, company_id=company.pk).exists()


def test_candidates_and_their_attachments_are_rotated_too(company):
    """Models of every company app are found, not listed: candidates and attachments
    (another app than the activity log) are re-encrypted, and their blind indexes,
    under the index key that rotation keeps, still find them."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.references.helpers import pdf_with
    from vouch.references.services import add_attachment, create_candidate, find_candidates

    with company_context(company):
        candidate = create_candidate("Fenella Example", "fenella@example.com", "07700 900123", "Good notes")
        cv = pdf_with(b"cv " * 9000)
        attachment = add_attachment(candidate, SimpleUploadedFile("cv.pdf", cv))
        stored_name = attachment.file.name

    result = rotate_company(company, settle_seconds=0)

    assert result["destroyed"] == [1] and result["files"] >= 1
    keyring.forget()
    with company_context(company) as context:
        assert _versions_in_use(context) == {2}
        fresh = type(candidate).objects.get(pk=candidate.pk)
        assert (fresh.name, fresh.email, fresh.phone, fresh.notes) == (
            "Fenella Example",
            "fenella@example.com",
            "07700 900123",
            "Good notes",
        )
        assert [c.pk for c in find_candidates("FENELLA@example.com")] == [candidate.pk]
        assert [c.pk for c in find_candidates("+44 7700 900123")] == [candidate.pk]
        assert type(attachment).objects.get(pk=attachment.pk).original_name == "cv.pdf"
        assert _read_file(stored_name) == cv


def test_two_rotations_in_a_row(company):
    with company_context(company):
        entries, _ = _seed(count=5, files=0)
    rotate_company(company, settle_seconds=0)
    result = rotate_company(company, settle_seconds=0)
    assert (result["data_version"], result["destroyed"]) == (3, [2])
    keyring.forget()
    with company_context(company):
        for pk, values in entries.items():
            assert _read_entry(pk) == values


# --- Another process's cache predates the new version ------------------------------------


def _stale_cache(company, keys: keyring.CompanyKeys) -> None:
    """This process's cache as another worker's still is: loaded before the rotation
    (only the old version, and it encrypts), and not expired."""
    keyring._cache[company.pk] = keyring.CompanyKeys(
        company_id=company.pk,
        current_version=keys.current_version,
        data=dict(keys.data),
        index=keys.index,
        loaded_at=time.monotonic(),
    )


@pytest.fixture
def key_loads(monkeypatch) -> list:
    """Each time this process unwraps a company's keys from the key rows."""
    loads = []
    real = keyring._load

    def counted(company_id):
        loads.append(company_id)
        return real(company_id)

    monkeypatch.setattr(keyring, "_load", counted)
    return loads


def _integrity_events(company) -> int:
    return SecurityEvent.objects.filter(action=EventAction.DATA_INTEGRITY_FAIL, company_id=company.pk).count()


@pytest.mark.parametrize("finished", [True, False], ids=["run-through", "stopped-part-way"])
def test_a_process_whose_keys_predate_the_rotation_reads_the_new_version(company, key_loads, finished):
    """A worker that cached the keys before ``rotate-company`` added version 2 reads values
    and files already re-encrypted under it: it loads the keys again, once, and reads
    them; no error, no false tamper alarm."""
    with company_context(company):
        entries, stored = _seed(count=30, files=3)
    before = keyring.keys_for(company.pk)
    if finished:
        rotate_company(company, batch_size=10, settle_seconds=0)
        assert data_versions(company) == [(2, KeyState.ACTIVE)]
    else:
        with pytest.raises(Stop):
            rotate_company(company, batch_size=10, progress=stop_after_first_batch)
        assert data_versions(company) == [(1, KeyState.RETIRING), (2, KeyState.ACTIVE)]
    _stale_cache(company, before)
    assert keyring.keys_for(company.pk).data.keys() == {1}
    del key_loads[:]

    with company_context(company) as context:
        assert 2 in _versions_in_use(context)
        listed = {e.pk: (e.actor_name, e.summary, e.details) for e in Entry.objects.all()}
        assert listed == entries
        for name, payload in stored.items():
            assert _read_file(name) == payload
        # Reloaded: what it writes from now on is under the new version.
        entry = Entry.objects.create(action="x", summary="after the reload")
        assert sealing.key_version(Entry.objects.values_list("summary", flat=True).get(pk=entry.pk).data) == 2

    assert key_loads == [company.pk]
    assert _integrity_events(company) == 0


def test_altered_ciphertext_is_still_refused_and_recorded_once(company, key_loads):
    """Loading the keys again never excuses a value that does not open: one altered in
    its body (under a version that exists) or naming a version that does not exist is
    refused and recorded exactly once, the latter without unwrapping any key again."""
    from vouch.vault.errors import DecryptionError
    from vouch.vault.fields import Sealed

    with company_context(company):
        entries, _ = _seed(count=25, files=0)
    before = keyring.keys_for(company.pk)
    rotate_company(company, settle_seconds=0)
    body, version, *forged, untouched = sorted(entries)

    def alter(pk, change) -> None:
        sealed = bytearray(Entry.objects.values_list("summary", flat=True).get(pk=pk).data)
        change(sealed)
        Entry.objects.filter(pk=pk).update(summary=Sealed(bytes(sealed)))

    def flip_last_byte(sealed: bytearray) -> None:
        sealed[-1] ^= 1

    def version_99(sealed: bytearray) -> None:
        sealed[1:5] = (99).to_bytes(4, "big")

    with company_context(company):
        alter(body, flip_last_byte)
        for pk in [version, *forged]:
            alter(pk, version_99)
        # A cache from before the rotation: the altered version-2 value loads the keys
        # again (version 2 exists), and still fails.
        _stale_cache(company, before)
        del key_loads[:]
        with pytest.raises(DecryptionError, match="authentication failed"):
            Entry.objects.get(pk=body).summary  # noqa: B018
        assert key_loads == [company.pk] and _integrity_events(company) == 1
        with pytest.raises(DecryptionError, match="key version 99"):
            Entry.objects.get(pk=version).summary  # noqa: B018
        assert _integrity_events(company) == 2
        # Many forged versions (a whole list of them): refused one by one, no reload.
        for pk in forged:
            with pytest.raises(DecryptionError, match="key version 99"):
                Entry.objects.get(pk=pk).summary  # noqa: B018
        assert key_loads == [company.pk]
        assert _integrity_events(company) == 2 + len(forged)
        # The untouched one still reads, under the keys loaded once.
        assert _read_entry(untouched) == entries[untouched]
    failures = SecurityEvent.objects.filter(action=EventAction.DATA_INTEGRITY_FAIL, company_id=company.pk)
    expected = sorted(f"activity.entry.summary:{pk}" for pk in (body, version, *forged))
    assert sorted(e.target for e in failures) == expected


# --- Status -----------------------------------------------------------------------------


def test_status_counts_keys_per_master_version():
    bulk_companies(3)
    with pytest.raises(Stop):
        rotate_master(batch_size=5, progress=stop_after_first_batch)
    by_version = {m["version"]: m for m in master_status()}
    # Stopped before the key store's files: version 1 still wraps the 3 company KEKs.
    assert by_version[1]["wraps"] == 1 + 3 and by_version[2]["wraps"] == 5
    assert by_version[2]["current"] and by_version[1]["available"] and not by_version[1]["current"]
    assert by_version[2]["oldest"] is not None
