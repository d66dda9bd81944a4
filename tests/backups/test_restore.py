"""``vouch backup restore``: to a directory, in place (the company offline meanwhile, the
old state kept aside, events in both logs), an interrupted restore finished by running it
again, a rollback, and each error with its message and exit code."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.accounts.helpers import fast_company
from tests.backups.conftest import add_files, admin_sql, count_rows, kept_rows
from tests.references.helpers import add_candidate
from vouch.activity.models import Entry
from vouch.audit.models import EventAction, SecurityEvent
from vouch.backups import checks, restore
from vouch.backups.sets import company_target, write_company_set
from vouch.cli import main
from vouch.core.context import alias_for, company_context
from vouch.objectstore import open_store
from vouch.references.models import Candidate
from vouch.tenancy import connections, provisioning, regions
from vouch.tenancy.models import Company
from vouch.vault import keyring

pytestmark = pytest.mark.django_db

FILES = {"attachments/cv.pdf": b"%PDF-1.4 " + b"x" * 150_000}


def candidates(company) -> list[str]:
    with company_context(Company.objects.get(pk=company.pk)):
        return sorted(c.name for c in Candidate.objects.all())


def backed_up(name="Restored Ltd"):
    company = fast_company(name)
    add_candidate(company, "Before Backup")
    add_files(company, FILES)
    row = write_company_set(company)
    assert row.status == "complete", row.error
    return company, row


def rollback_dirs(company) -> list:
    root = regions.get(company.region).root / "restores"
    return [p for p in root.iterdir() if p.name.startswith(str(company.pk))] if root.exists() else []


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["backup", "restore", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_restore_to_a_directory_writes_the_database_and_files(backup_dir, tmp_path, capsys):
    company, row = backed_up()
    add_candidate(company, "After Backup")

    code, out, err = run(capsys, "--company", str(company.pk), "--to", str(tmp_path / "out"), "--progress")

    assert code == 0, err
    assert "Restoring" in err  # the progress bar
    region = regions.get(company.region)
    database = tmp_path / "out" / ("database.pgdump" if region.uses_postgresql else "database.sqlite3")
    with checks.opened(database, region) as (cursor, _):
        cursor.execute("SELECT company_id FROM vouch_company_identity")
        assert [tuple(r) for r in cursor.fetchall()] == [(str(company.pk),)]
    assert count_rows(database, "references_candidate", region) == 1  # the backup's state
    assert (tmp_path / "out" / "files" / "attachments" / "cv.pdf").exists()
    state = json.loads((tmp_path / "out" / "restore.json").read_text())
    assert state["set_id"] == str(row.pk)
    assert candidates(company) == ["After Backup", "Before Backup"]  # nothing live changed


def test_in_place_restore_replaces_only_that_company_keeps_the_old_state_and_records_it(backup_dir, capsys):
    company, row = backed_up()
    other = fast_company("Untouched Co")
    add_candidate(other, "Other Person")
    add_candidate(company, "After Backup")
    provisioning.files_dir(company.pk, company.region).joinpath("attachments", "late.pdf").write_bytes(b"late")

    code, out, err = run(capsys, "--company", str(company.pk), "--set", str(row.pk), "--in-place")

    assert code == 0, err
    assert candidates(company) == ["Before Backup"]
    assert candidates(other) == ["Other Person"]
    files = provisioning.files_dir(company.pk, company.region)
    assert sorted(p.name for p in files.rglob("*") if p.is_file()) == ["cv.pdf"]
    assert not Company.objects.get(pk=company.pk).is_offline
    # The replaced state is kept aside, and the path printed.
    rollback = next(
        p for p in (regions.get(company.region).root / "restores").iterdir() if p.name.startswith(str(company.pk))
    )
    assert str(rollback) in out
    assert kept_rows(company, rollback, "references_candidate") == 2
    assert (rollback / "files" / "attachments" / "late.pdf").read_bytes() == b"late"
    # A security event in the control database, an entry in the company's own log.
    actions = list(SecurityEvent.objects.filter(company_id=company.pk).values_list("action", flat=True))
    assert EventAction.DATA_RESTORE_STARTED in actions and EventAction.DATA_RESTORED in actions
    with company_context(Company.objects.get(pk=company.pk)):
        assert Entry.objects.filter(action="data_restored").count() == 1

    # The rollback puts the replaced state back.
    code, out, err = run(capsys, "--company", str(company.pk), "--rollback", str(rollback))
    assert code == 0, err
    assert candidates(company) == ["After Backup", "Before Backup"]
    assert (files / "attachments" / "late.pdf").exists()
    assert SecurityEvent.objects.filter(company_id=company.pk, action=EventAction.DATA_RESTORE_ROLLED_BACK).exists()


def test_an_interrupted_restore_leaves_the_company_offline_saying_how_to_finish(backup_dir, capsys, monkeypatch):
    company, row = backed_up()
    add_candidate(company, "After Backup")

    def crash(*args, **kwargs):  # the process dies between the database and the files
        raise KeyboardInterrupt

    monkeypatch.setattr(restore, "_put_files", crash)
    with pytest.raises(KeyboardInterrupt):
        main(["backup", "restore", "--company", str(company.pk), "--set", str(row.pk), "--in-place"])
    capsys.readouterr()
    stuck = Company.objects.get(pk=company.pk)
    assert stuck.is_offline
    assert f"vouch backup restore --company {company.pk} --set {row.pk} --in-place" in stuck.offline_reason
    assert "--rollback" in stuck.offline_reason

    monkeypatch.undo()
    code, out, err = run(capsys, "--company", str(company.pk), "--set", str(row.pk), "--in-place")
    assert code == 0, err
    assert not Company.objects.get(pk=company.pk).is_offline
    assert candidates(company) == ["Before Backup"]
    # What was kept aside is the state before the first attempt, not the half-restored one.
    [rollback] = [
        p for p in (regions.get(company.region).root / "restores").iterdir() if p.name.startswith(str(company.pk))
    ]
    assert kept_rows(company, rollback, "references_candidate") == 2


def test_a_damaged_set_is_refused_naming_the_object(backup_dir, tmp_path, capsys):
    company, row = backed_up()
    path = open_store(company_target(company.region)).root / row.location / "objects" / "1"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    code, out, err = run(capsys, "--company", str(company.pk), "--to", str(tmp_path / "out"))

    assert code == 1
    assert "object 1 (file attachments/cv.pdf)" in err and "damaged" in err
    assert not (tmp_path / "out").exists()


def test_a_set_of_another_company_is_refused(backup_dir, tmp_path, capsys):
    company, _ = backed_up()
    _, other_row = backed_up("Other Ltd")
    code, out, err = run(capsys, "--company", str(company.pk), "--set", str(other_row.pk), "--to", str(tmp_path / "o"))
    assert code == 2
    assert f"belongs to company {other_row.company_id}" in err


def test_no_backup_at_that_time(backup_dir, tmp_path, capsys):
    company, _ = backed_up()
    before = (timezone.now() - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, out, err = run(capsys, "--company", str(company.pk), "--at", before, "--to", str(tmp_path / "o"))
    assert code == 2
    assert "no backup of company" in err and "at or before" in err


def test_a_missing_key_is_a_clear_error(backup_dir, tmp_path, capsys):
    company, _ = backed_up()
    keyring.shred(company.pk)
    keyring.forget(company.pk)
    code, out, err = run(capsys, "--company", str(company.pk), "--to", str(tmp_path / "o"))
    assert code == 1
    assert "backup key" in err and "not in this installation" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--company", str(uuid.uuid4()), "--to", "/tmp/x"], "no company with id or name"),
        (["--company", "{company}", "--at", "yesterday", "--to", "/tmp/x"], "is not a time"),
        (["--company", "{company}", "--set", "not-an-id", "--to", "/tmp/x"], "is not a backup set id"),
    ],
)
def test_bad_input_is_exit_code_2(backup_dir, capsys, argv, message):
    company, _ = backed_up()
    code, out, err = run(capsys, *[a.replace("{company}", str(company.pk)) for a in argv])
    assert code == 2
    assert message in err and "Traceback" not in err


def test_a_restored_database_of_another_company_is_refused_in_place(backup_dir, capsys):
    """A set whose database records another company (swapped inside) never goes live."""
    company, row = backed_up()
    other = fast_company("Imposter Ltd")
    add_candidate(company, "After Backup")
    connections.release(alias_for(company.pk))
    admin_sql(company, "UPDATE vouch_company_identity SET company_id = %s", [str(other.pk)])
    swapped = write_company_set(company)  # a set of company's name holding other's identity
    admin_sql(company, "UPDATE vouch_company_identity SET company_id = %s", [str(company.pk)])

    code, out, err = run(capsys, "--company", str(company.pk), "--set", str(swapped.pk), "--in-place")

    assert code == 1
    assert "wrong company" in err
    assert not Company.objects.get(pk=company.pk).is_offline
    assert candidates(company) == ["After Backup", "Before Backup"]  # nothing live changed


def test_an_in_place_restore_that_finds_no_backup_changes_nothing(backup_dir, capsys):
    company = fast_company("Never Backed Up")
    add_candidate(company, "Still Here")
    code, out, err = run(capsys, "--company", str(company.pk), "--in-place")
    assert code == 2 and "no backup of company" in err
    assert not Company.objects.get(pk=company.pk).is_offline
    assert candidates(company) == ["Still Here"]
    assert not rollback_dirs(company)  # nothing kept aside: nothing was replaced
