"""``vouch keys ...``: what it prints and its exit codes."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.mail import send_mail

from tests.vault.helpers import bulk_companies
from vouch.activity.models import Entry
from vouch.cli import main
from vouch.core.context import company_context
from vouch.outbox import sealing
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
    # 4 companies: 8 key rows, and 4 company KEK files in the key store.
    assert master_row.split()[:3] == ["1", "current", "12"]
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


# --- the outbox key in `keys status` ----------------------------------------------------------


def _send(*subjects: str) -> None:
    for subject in subjects:
        assert send_mail(subject, "Your private link: https://localhost/c/token/", None, ["casey@example.org"]) == 1


def _outbox_section(out: str) -> dict[str, str]:
    """The outbox section's "label  value" lines, by label."""
    lines = out.split("Outbox key (", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    return {line[2:15].strip(): line[15:] for line in lines}


@pytest.fixture
def outbox(settings, tmp_path) -> Path:
    """Mail goes to the local outbox (the embedded default), in a directory of the test's own."""
    settings.EMAIL_BACKEND = "vouch.outbox.backends.OutboxBackend"
    settings.OUTBOX_DIR = tmp_path / "outbox"
    return settings.OUTBOX_DIR


def _key_file(outbox: Path) -> dict:
    return json.loads((outbox / sealing.KEY_FILE).read_text())


def test_status_says_when_the_outbox_is_not_used(settings, tmp_path, capsys):
    settings.OUTBOX_DIR = tmp_path / "outbox"
    settings.EMAIL_BACKEND = "vouch.outbox.backends.SMTPBackend"
    code, out, _ = run(capsys, "status")
    assert code == 0
    assert "Outbox: not used (mail is sent by SMTP (VOUCH_SMTP_URL))." in out
    assert "Outbox key (" not in out and "PROBLEM" not in out
    # A key left from earlier use is mentioned, and nothing about it counts as a problem.
    settings.OUTBOX_DIR.mkdir()
    (settings.OUTBOX_DIR / sealing.KEY_FILE).write_text("not a key")
    code, out, _ = run(capsys, "status")
    assert code == 0 and f"An outbox key from earlier use is still in {settings.OUTBOX_DIR}." in out


def test_status_before_the_first_email(outbox, capsys):
    code, out, err = run(capsys, "status")
    assert code == 0, err
    section = _outbox_section(out)
    assert section["key"] == "none yet: it is made with the first email (normal until then)"
    assert section["messages"].startswith("0 plain (.eml, from before sealing), 0 unreadable")
    assert "PROBLEM" not in out


def test_status_of_sealed_messages_whose_key_was_removed(outbox, capsys):
    _send("One")
    (outbox / sealing.KEY_FILE).unlink()
    code, out, err = run(capsys, "status")
    assert code == 0, err  # the next email makes a key; nothing a master key could restore
    section = _outbox_section(out)
    assert section["key"] == "none (the next email makes one)"
    assert section["messages"].startswith("0 plain (.eml, from before sealing), 1 unreadable")


def test_status_of_a_fresh_outbox_key(outbox, capsys):
    _send("One", "Two")
    code, out, err = run(capsys, "status")
    assert code == 0, err
    section = _outbox_section(out)
    assert section["key id"] == _key_file(outbox)["key_id"][:8]
    assert section["wrapped by"] == "master key version 1 (current)"
    assert section["wrapped"] == "0 s ago"
    assert section["opens"] == "yes"
    assert section["messages"].startswith("2 sealed under it, 0 plain (.eml, from before sealing), 0 unreadable")
    assert "set aside" not in section and "PROBLEM" not in out


def test_status_of_an_outbox_key_behind_the_current_master_version_then_rotated(outbox, keys_dir, capsys):
    _send("Before")
    providers.get_provider().create_version()  # a new master version, not yet rotated to
    code, out, err = run(capsys, "status")
    assert code == 0, err  # version 1 is still there: nothing is lost, it only needs re-wrapping
    section = _outbox_section(out)
    assert section["wrapped by"] == (
        "master key version 1, not the current one: run `vouch keys rotate-master` to re-wrap it "
        "(keep version 1 until then)"
    )
    assert section["opens"] == "yes"

    code, out, err = run(capsys, "rotate-master", "--no-progress")
    assert code == 0, err
    assert "re-wrapped 0 company keys and the outbox key" in out
    assert not (keys_dir / "master-000001.key").exists()
    code, out, err = run(capsys, "status")
    assert code == 0, err
    section = _outbox_section(out)
    assert _key_file(outbox)["master_version"] == 2
    assert section["wrapped by"] == "master key version 2 (current)"
    assert section["opens"] == "yes"
    assert section["messages"].startswith("1 sealed under it,")


def test_status_after_rotate_master_made_a_new_version(company, outbox, capsys):
    _send("Before")
    key_id = _key_file(outbox)["key_id"]
    code, out, err = run(capsys, "rotate-master", "--no-progress")
    assert code == 0, err
    assert "re-wrapped 2 company keys, the outbox key and 1 key store file (company KEKs" in out
    code, out, err = run(capsys, "status")
    assert code == 0, err
    section = _outbox_section(out)
    assert section["key id"] == key_id[:8]  # the same key, wrapped anew
    assert section["wrapped by"] == "master key version 2 (current)"
    assert section["opens"] == "yes"
    assert section["messages"].startswith("1 sealed under it,")


def test_status_reports_an_outbox_key_wrapped_by_a_missing_master_version(outbox, keys_dir, capsys):
    _send("One", "Two")
    providers.get_provider().create_version()
    (keys_dir / "master-000001.key").rename(keys_dir / "elsewhere")  # lost, not rotated
    providers.reset()
    code, out, _ = run(capsys, "status")
    assert code == 1
    section = _outbox_section(out)
    assert section["wrapped by"] == "master key version 1, which is MISSING"
    assert section["opens"].startswith("NO: ")
    assert "PROBLEM: the outbox key is wrapped by master key version 1, which is missing from key directory " in out
    assert "restore it from the key backup (the 2 message(s) sealed under it cannot be read until then;" in out
    # Restored: no problem any more, and reading changed nothing on the way.
    (keys_dir / "elsewhere").rename(keys_dir / "master-000001.key")
    providers.reset()
    code, out, _ = run(capsys, "status")
    assert code == 0 and "PROBLEM" not in out
    assert _outbox_section(out)["opens"] == "yes"


def test_status_reports_an_outbox_key_that_does_not_open(outbox, capsys):
    _send("One")
    fields = _key_file(outbox)
    wrapped = bytearray(base64.b64decode(fields["wrapped"]))
    wrapped[-1] ^= 0x01
    (outbox / sealing.KEY_FILE).write_text(json.dumps({**fields, "wrapped": base64.b64encode(wrapped).decode()}))
    code, out, _ = run(capsys, "status")
    assert code == 1
    section = _outbox_section(out)
    assert section["key id"] == fields["key_id"][:8]
    assert section["wrapped by"] == "master key version 1 (current)"
    assert section["opens"].startswith("NO: ")
    assert "PROBLEM: the outbox key does not open (" in out
    assert "the 1 message(s) sealed under it cannot be read; the next email sets it aside" in out
    # Status only reads: the key stays where it is for the operator to look at.
    assert (outbox / sealing.KEY_FILE).read_text() != "" and not list(outbox.glob("outbox.key.unreadable-*"))

    # Unparsable: its id is unknown, so no message counts as sealed under it.
    (outbox / sealing.KEY_FILE).write_text("not json")
    code, out, _ = run(capsys, "status")
    assert code == 1
    section = _outbox_section(out)
    assert section["key id"] == "unknown"
    assert section["wrapped by"] == "unknown (the key file cannot be read)"
    assert section["messages"].startswith("0 sealed under it, 0 plain (.eml, from before sealing), 1 unreadable")
    assert "PROBLEM: the outbox key does not open (outbox key file is malformed" in out


def test_status_counts_sealed_plain_and_unreadable_messages_from_their_headers(outbox, tmp_path, capsys, monkeypatch):
    _send("One", "Two", "Three")
    sealed = sorted(outbox.glob("*.sealed"))
    # Plain messages from before sealing.
    for i in range(2):
        (outbox / f"2020010{i}T000000000000-0000000{i}.eml").write_text("To: a@example.org\nSubject: Old\n\nold\n")
    # Sealed under another outbox key (one replaced and set aside since).
    other = sealing.OutboxKey(secrets.token_bytes(sealing.KEY_ID_BYTES), AESGCM(secrets.token_bytes(32)))
    name = "20260101T000000000000-aaaaaaaa.sealed"
    (outbox / name).write_bytes(sealing.seal(other, name, b"Subject: elsewhere\n\nbody\n"))
    (outbox / f"{sealing.UNREADABLE_KEY_PREFIX}20260101T000000-abcd").write_text("{}")
    # A sealed message renamed to look plain, and one cut short inside its header.
    (outbox / "20260102T000000000000-bbbbbbbb.eml").write_bytes(sealed[0].read_bytes())
    (outbox / "20260103T000000000000-cccccccc.sealed").write_bytes(sealed[1].read_bytes()[:10])
    # Not messages: a symlink (never followed), a half-written one, another file.
    (outbox / "20260104T000000000000-dddddddd.sealed").symlink_to(sealed[2])
    (outbox / ".20260105T000000000000-eeeeeeee.sealed.tmp").write_bytes(sealed[2].read_bytes())
    (outbox / "notes.txt").write_text("not mail")

    # Only the headers are read: no message is opened, no more than the header of any file.
    reads: list[int] = []
    real_read = os.read

    def counting_read(fd: int, n: int) -> bytes:
        reads.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", counting_read)
    monkeypatch.setattr(sealing, "open_message", lambda *a: pytest.fail("a message was decrypted"))
    code, out, err = run(capsys, "status")
    monkeypatch.undo()
    assert code == 0, err
    section = _outbox_section(out)
    assert section["messages"] == (
        "3 sealed under it, 2 plain (.eml, from before sealing), "
        "3 unreadable (sealed under another outbox key, or damaged)"
    )
    assert section["set aside"].startswith("1 outbox key(s) that did not open")
    assert len(reads) == 8 and max(reads) == sealing.HEADER_BYTES  # one header read per message file


def test_status_of_an_outbox_it_may_not_read_is_a_clear_error(outbox, capsys, monkeypatch):
    _send("One")

    real_scandir = os.scandir

    def refused(path="."):
        if str(path).startswith(str(outbox)):  # the outbox only; the key store stays readable
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", refused)
    code, out, err = run(capsys, "status")
    assert code == 1
    assert f"The outbox cannot be read: [Errno 13] Permission denied: '{outbox}'" in err
