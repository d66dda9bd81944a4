"""``vouch keys ...``: what it prints and its exit codes."""

from __future__ import annotations

import base64

import pytest

from tests.vault.helpers import bulk_companies
from vouch.activity.models import Entry
from vouch.cli import main
from vouch.tenancy.context import company_context
from vouch.tenancy.models import Company, CompanyStatus
from vouch.vault import keyring, providers
from vouch.vault.models import DataKey, KeyPurpose

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("keys_dir")]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["keys", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_generate_prints_a_new_256_bit_key(capsys):
    code, out, err = run(capsys, "generate")
    first = out.strip()
    assert code == 0 and len(out.splitlines()) == 1
    assert len(base64.urlsafe_b64decode(first + "==")) == 32
    assert "VOUCH_MASTER_KEYS" in err
    assert run(capsys, "generate")[1].strip() != first


def test_status_summary(company, capsys):
    bulk_companies(3)
    code, out, err = run(capsys, "status")
    assert code == 0, err
    assert "Master keys (key directory" in out
    lines = out.splitlines()
    master_row = next(line for line in lines if line.startswith("1 "))
    assert master_row.split()[:3] == ["1", "current", "8"]
    assert "Company data keys: 4 companies" in out
    assert "Rotation under way: 0 companies" in out
    assert "Oldest data key:" in out
    assert company.name not in out.split("Oldest data key:")[0]  # no per-company lines by default


def test_status_of_one_company_and_of_all(company, capsys):
    bulk_companies(2)
    code, out, _ = run(capsys, "status", "--company", company.name)
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith(str(company.pk)))
    assert row.split()[:4] == [str(company.pk), "Acme", "Hiring", "1"]
    code, out, _ = run(capsys, "status", "--all")
    assert code == 0
    lines = out.splitlines()
    assert sum(" Bulk " in line for line in lines) == 2
    assert any(line.startswith(str(company.pk)) and "Acme Hiring" in line for line in lines)


def test_status_reports_a_missing_master_key(company, keys_dir, capsys):
    (keys_dir / "master-000001.key").rename(keys_dir / "elsewhere")
    providers.reset()
    code, out, _ = run(capsys, "status")
    assert code == 1
    assert "MISSING" in out and "PROBLEM: master key version(s) 1" in out


def test_unknown_or_deleted_company_is_refused_with_exit_2(company, capsys):
    code, out, err = run(capsys, "rotate-company", "No Such Company")
    assert (code, out) == (2, "")
    assert "no company with id or name 'No Such Company'" in err
    code, _, err = run(capsys, "status", "--company", "00000000-0000-0000-0000-000000000000")
    assert code == 2 and "no company" in err
    Company.objects.filter(pk=company.pk).update(status=CompanyStatus.DELETED, is_active=False)
    code, _, err = run(capsys, "rotate-company", str(company.pk))
    assert code == 2 and "has been deleted" in err


def test_bad_batch_size_is_refused(capsys):
    assert run(capsys, "rotate-master", "--batch", "0")[0] == 2
    code, _, err = run(capsys, "rotate-company", "anything", "--batch", "-3")
    assert code == 2 and "--batch must be at least 1" in err
    with pytest.raises(SystemExit) as exited:
        main(["keys", "rotate-master", "--batch", "many"])
    assert exited.value.code == 2


def test_rotate_master(company, keys_dir, capsys):
    code, out, err = run(capsys, "rotate-master", "--no-progress")
    assert code == 0, err
    assert "Master key version 2 (key directory" in out
    assert "created; re-wrapped 2 company keys" in out
    assert "Retired master key version(s) 1" in out
    assert (keys_dir / "master-000001.key.retired").exists()
    assert set(DataKey.objects.values_list("master_version", flat=True)) == {2}


def test_rotate_master_with_keys_from_the_environment(settings, capsys):
    first, second = providers.generate_key_text(), providers.generate_key_text()
    settings.VOUCH_KEY_PROVIDER = "env"
    settings.VOUCH_MASTER_KEYS = f"1:{first}"
    providers.reset()
    keyring.forget()
    bulk_companies(2)
    code, out, err = run(capsys, "rotate-master", "--no-progress")
    assert code == 1
    assert "add a new 'version:key' pair" in err and "vouch keys generate" in err

    settings.VOUCH_MASTER_KEYS = f"1:{first},2:{second}"
    providers.reset()
    code, out, err = run(capsys, "rotate-master", "--no-progress")
    assert code == 0, err
    assert "Master key version 2 (VOUCH_MASTER_KEYS): already there; re-wrapped 4 company keys" in out
    assert "remove them from VOUCH_MASTER_KEYS" in out
    assert set(DataKey.objects.values_list("master_version", flat=True)) == {2}

    settings.VOUCH_MASTER_KEYS = f"2:{second}"
    providers.reset()
    keyring.forget()
    code, out, err = run(capsys, "rotate-master", "--no-progress")
    assert code == 1 and "add a new 'version:key' pair" in err


def test_rotate_company(company, capsys):
    with company_context(company):
        entry = Entry.objects.create(action="x", summary="kept through rotation")
    code, out, err = run(capsys, "rotate-company", company.name, "--no-progress")
    assert code == 0, err
    assert f"Acme Hiring ({company.pk}): data key version 2;" in out
    assert "re-encrypted 3 values in 1 rows" in out
    assert "Destroyed data key version(s) 1." in out
    assert "Waiting" in out and "VOUCH_KEY_CACHE_SECONDS=1" in out
    assert list(DataKey.objects.filter(company=company, purpose=KeyPurpose.DATA).values_list("version", flat=True)) == [
        2
    ]
    keyring.forget()
    with company_context(company):
        assert Entry.objects.get(pk=entry.pk).summary == "kept through rotation"


def test_rotate_company_whose_database_is_missing_adds_no_key(company, capsys):
    from vouch.tenancy import provisioning

    provisioning.discard(company.pk, company.region)
    code, out, err = run(capsys, "rotate-company", str(company.pk), "--no-progress")
    assert code == 1 and out == ""
    assert "its database cannot be used" in err and "Traceback" not in err
    assert list(DataKey.objects.filter(company=company, purpose=KeyPurpose.DATA).values_list("version", flat=True)) == [
        1
    ]


def test_rotate_master_reports_a_key_that_does_not_unwrap(capsys):
    ids = bulk_companies(2)
    DataKey.objects.filter(company_id=ids[0], purpose=KeyPurpose.INDEX).update(wrapped=b"\0" * 60)
    code, out, err = run(capsys, "rotate-master", "--no-progress")
    assert code == 1
    assert "re-wrapped 3 company keys" in out
    assert "1 company has a key that does not unwrap" in err and str(ids[0]) in err
    assert "Older master key versions still in use (version 1: 1 keys)" in err
