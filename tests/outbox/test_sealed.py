"""P10 for the local outbox: messages are sealed at rest under an outbox key wrapped by
the master key; the three readers (the list, one message, `vouch outbox`) still show
them; an altered, renamed, swapped or foreign file is refused cleanly (skipped, logged,
404); master key rotation keeps them readable; purge still works."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import secrets
import shutil
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.mail import send_mail
from django.test import TestCase, override_settings
from django.utils import timezone

from vouch.outbox import sealing, store
from vouch.vault import providers

ADDRESS = "casey.candidate@example.org"
SUBJECT = "Nominate your referees for Head of Finance"


def _send(subject: str = SUBJECT, to: str = ADDRESS, body: str = "Hello.") -> None:
    assert send_mail(subject, body, None, [to]) == 1


def _sealed(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.sealed"))


def _all_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    from vouch.cli import main

    code = main(["outbox", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- nothing readable on disk -----------------------------------------------------------


def test_the_bytes_on_disk_hold_no_address_subject_body_or_token(outbox_dir, capsys):
    token = secrets.token_urlsafe(32)
    link = f"https://localhost:8443/c/{token}/"
    _send(body=f"Dear Casey Candidate,\n\nNominate your referees: {link}\n")
    on_disk = _all_bytes(outbox_dir)
    for secret in (ADDRESS, "casey.candidate", SUBJECT, "Nominate", "Casey Candidate", token, token[:16]):
        assert secret.encode() not in on_disk, secret
    # Not merely another encoding of it (quoted-printable, base64 of the message).
    assert b"To:" not in on_disk and b"Subject:" not in on_disk and b"MIME-Version" not in on_disk
    (path,) = _sealed(outbox_dir)
    assert path.read_bytes()[:5] == b"VCHM\x01"
    # ... and every reader still shows it, link included.
    (listed,) = store.list_messages()
    assert (listed.to, listed.subject) == (ADDRESS, SUBJECT)
    assert link in store.get_message(path.name).body
    code, out, _ = _cli(capsys, "--latest")
    assert code == 0 and f"To: {ADDRESS}" in out and f"Subject: {SUBJECT}" in out and link in out


def test_the_outbox_key_is_stored_only_wrapped(outbox_dir, master_keys):
    _send()
    fields = json.loads((outbox_dir / "outbox.key").read_text())
    assert set(fields) == {"format", "key_id", "master_version", "wrapped"}
    assert fields["master_version"] == 1
    # Without the master key the wrapped key opens nothing: another provider refuses it.
    other = providers.FileKeyProvider(master_keys.parent / "other-keys")
    other.create_version()
    assert store.list_messages(provider=other) == []
    (path,) = _sealed(outbox_dir)
    assert store.get_message(path.name, provider=other) is None
    # With the right one, passed explicitly (as the browser tests read a server's outbox).
    same = providers.FileKeyProvider(master_keys)
    assert [m.subject for m in store.list_messages(directory=outbox_dir, provider=same)] == [SUBJECT]


@pytest.mark.django_db
def test_a_real_invitation_link_is_sealed_and_still_works_from_the_outbox(client, company, members, outbox_dir):
    from vouch.accounts.policy import Role
    from vouch.core.context import company_context
    from vouch.references import workflow

    values = {
        "name": "Casey Candidate",
        "email": ADDRESS,
        "phone": "07700 900456",
        "role": "Head of Finance",
        "questionnaire": "builtin:general-professional",
        "referees_required": 2,
        "guidance": "",
        "deadline": timezone.now() + timedelta(days=14),
    }
    with TestCase.captureOnCommitCallbacks(execute=True), company_context(company):
        workflow.create_request(actor=members[Role.RECRUITER].user, **values)
    (message,) = store.list_messages()
    match = re.search(r"https?://[^\s\"<>]+(/c/([A-Za-z0-9_-]{20,128})/)", message.body)
    assert match, message.body
    path, token = match.group(1), match.group(2)
    on_disk = _all_bytes(outbox_dir)
    for secret in (token, ADDRESS, message.subject, "Casey Candidate"):
        assert secret.encode() not in on_disk, secret
    assert client.get(path).status_code == 200  # the link read from the sealed outbox opens the page


# --- the /outbox/ page and the command ---------------------------------------------------


@pytest.mark.django_db
def test_page_and_detail_show_a_sealed_message(client, outbox_dir):
    _send(body="Confirm here: https://localhost:8443/confirm/abc/")
    index = client.get("/outbox/", REMOTE_ADDR="127.0.0.1")
    assert index.status_code == 200
    html = index.content.decode()
    assert ADDRESS in html and SUBJECT in html
    (path,) = _sealed(outbox_dir)
    assert f"/outbox/{path.name}" in html
    detail = client.get(f"/outbox/{path.name}", REMOTE_ADDR="127.0.0.1")
    assert detail.status_code == 200
    assert "https://localhost:8443/confirm/abc/" in detail.content.decode()


# --- files that do not open ----------------------------------------------------------------


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "offset",
    [0, 4, 5, 20, 21, 32, 33, -17, -1],
    ids=["magic", "format", "key-id", "key-id-end", "nonce", "nonce-end", "ciphertext", "last-byte", "tag"],
)
@pytest.mark.django_db
def test_an_altered_message_is_refused_cleanly(client, outbox_dir, capsys, caplog, offset):
    _send("Good one", body="good")
    _send("Altered one", body="altered")
    good, altered = _sealed(outbox_dir)
    _flip(altered, offset)
    with caplog.at_level(logging.WARNING, logger="vouch.outbox"):
        assert [m.subject for m in store.list_messages()] == ["Good one"]
    assert any(altered.name in r.getMessage() for r in caplog.records)
    assert store.get_message(altered.name) is None
    client.raise_request_exception = False
    assert client.get(f"/outbox/{altered.name}", REMOTE_ADDR="127.0.0.1").status_code == 404
    index = client.get("/outbox/", REMOTE_ADDR="127.0.0.1")
    assert index.status_code == 200 and "Good one" in index.content.decode()
    assert "Altered one" not in index.content.decode()
    assert _cli(capsys, altered.name)[0] == 1
    code, out, _ = _cli(capsys, "--latest")  # the newest that opens
    assert code == 0 and "Subject: Good one" in out


@pytest.mark.parametrize("cut", [0, 3, 21, 33, 48])
def test_a_truncated_message_is_refused(outbox_dir, cut):
    _send(body="some body long enough to cut")
    (path,) = _sealed(outbox_dir)
    path.write_bytes(path.read_bytes()[:cut])
    assert store.list_messages() == []
    assert store.get_message(path.name) is None


@pytest.mark.django_db
def test_a_renamed_or_swapped_message_does_not_open(client, outbox_dir, capsys):
    _send("First", body="first")
    _send("Second", body="second")
    first, second = _sealed(outbox_dir)
    # Renamed to a newer name (to be shown first), or to another valid-looking name.
    moved = first.with_name("29991231T235959999999-deadbeef.sealed")
    first.rename(moved)
    assert [m.subject for m in store.list_messages()] == ["Second"]
    assert store.get_message(moved.name) is None
    client.raise_request_exception = False
    assert client.get(f"/outbox/{moved.name}", REMOTE_ADDR="127.0.0.1").status_code == 404
    # Two messages swapping names: neither opens.
    moved.rename(first)
    temp = outbox_dir / "swap"
    first.rename(temp)
    second.rename(first)
    temp.rename(second)
    assert store.list_messages() == []
    assert store.get_message(first.name) is None and store.get_message(second.name) is None
    assert _cli(capsys, first.name)[0] == 1


def test_a_sealed_message_renamed_as_an_old_plain_one_is_not_shown_as_mail(outbox_dir):
    _send()
    (path,) = _sealed(outbox_dir)
    plain_name = path.with_suffix(".eml")
    path.rename(plain_name)
    assert store.list_messages() == []
    assert store.get_message(plain_name.name) is None


def test_a_message_from_another_outbox_does_not_open_here(tmp_path, outbox_dir):
    _send("Mine")
    other = tmp_path / "other-outbox"
    with override_settings(OUTBOX_DIR=other):
        _send("Theirs")
        (theirs,) = _sealed(other)
    # Copied into this outbox: sealed under another outbox key, so it is not shown.
    shutil.copy2(theirs, outbox_dir / theirs.name)
    assert [m.subject for m in store.list_messages()] == ["Mine"]
    assert store.get_message(theirs.name) is None


# --- the outbox key -----------------------------------------------------------------------


def test_an_altered_key_file_hides_sealed_messages_then_is_replaced(outbox_dir, caplog):
    _send("Before", body="before")
    key_file = outbox_dir / "outbox.key"
    fields = json.loads(key_file.read_text())
    wrapped = bytearray(base64.b64decode(fields["wrapped"]))
    wrapped[-1] ^= 0x01
    fields["wrapped"] = base64.b64encode(bytes(wrapped)).decode()
    key_file.write_text(json.dumps(fields))
    # Reading never changes anything: nothing shown, the key left where it is.
    with caplog.at_level(logging.WARNING, logger="vouch.outbox"):
        assert store.list_messages() == []
    assert any("does not open" in r.getMessage() for r in caplog.records)
    assert json.loads(key_file.read_text()) == fields
    # Mail keeps flowing: the next message sets the key aside and makes a new one.
    _send("After", body="after")
    assert [m.subject for m in store.list_messages()] == ["After"]
    aside = list(outbox_dir.glob("outbox.key.unreadable-*"))
    assert len(aside) == 1 and json.loads(aside[0].read_text()) == fields
    assert json.loads(key_file.read_text())["key_id"] != fields["key_id"]


@pytest.mark.parametrize("content", ["", "not json", '{"format": 1}', '{"format": 9, "key_id": "00"}'])
def test_a_malformed_key_file_is_no_error(outbox_dir, content):
    _send("Before")
    (outbox_dir / "outbox.key").write_text(content)
    assert store.list_messages() == []
    _send("After")
    assert [m.subject for m in store.list_messages()] == ["After"]


def test_a_key_whose_master_version_is_gone_is_replaced(outbox_dir, master_keys):
    _send("Before")
    provider = providers.get_provider()
    provider.create_version()
    (master_keys / "master-000001.key").unlink()  # lost, not rotated
    provider.reload()
    assert store.list_messages() == []
    _send("After")
    assert [m.subject for m in store.list_messages()] == ["After"]
    assert json.loads((outbox_dir / "outbox.key").read_text())["master_version"] == 2


def test_a_symlinked_key_file_is_not_followed(outbox_dir, tmp_path):
    _send()
    elsewhere = tmp_path / "elsewhere.key"
    (outbox_dir / "outbox.key").rename(elsewhere)
    (outbox_dir / "outbox.key").symlink_to(elsewhere)
    assert store.list_messages() == []
    _send("After")  # set aside, replaced by a file of the outbox's own
    assert [m.subject for m in store.list_messages()] == ["After"]
    assert not (outbox_dir / "outbox.key").is_symlink()
    assert elsewhere.exists()


def test_two_senders_share_one_key(outbox_dir):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: _send(f"Parallel {i}"), range(16)))
    assert len(store.list_messages()) == 16
    assert [p.name for p in outbox_dir.iterdir() if not p.name.endswith(".sealed")] == ["outbox.key"]


# --- master key rotation --------------------------------------------------------------------


@pytest.mark.django_db
def test_master_rotation_rewraps_the_outbox_key_and_messages_stay_readable(outbox_dir, master_keys, company):
    from vouch.vault.rotation import rotate_master

    _send("Before rotation", body="before")
    key_file = outbox_dir / "outbox.key"
    before = json.loads(key_file.read_text())
    sealed_before = {p.name: p.read_bytes() for p in _sealed(outbox_dir)}

    result = rotate_master()

    assert (result["master_version"], result["retired"], result["outbox"]) == (2, [1], "rewrapped")
    assert not (master_keys / "master-000001.key").exists()  # version 1 is gone for good
    after = json.loads(key_file.read_text())
    assert after["master_version"] == 2 and after["key_id"] == before["key_id"]
    assert after["wrapped"] != before["wrapped"]
    assert {p.name: p.read_bytes() for p in _sealed(outbox_dir)} == sealed_before  # messages untouched
    providers.reset()
    _send("After rotation", body="after")
    assert [m.subject for m in store.list_messages()] == ["After rotation", "Before rotation"]
    # A second rotation finds it current after re-wrapping it again.
    assert rotate_master()["outbox"] == "rewrapped"
    assert json.loads(key_file.read_text())["master_version"] == 3
    assert [m.subject for m in store.list_messages()] == ["After rotation", "Before rotation"]


@pytest.mark.django_db
def test_master_rotation_without_an_outbox_key(outbox_dir, company):
    from vouch.vault.rotation import rotate_master

    assert rotate_master()["outbox"] == "absent"


def test_rewrap_leaves_a_current_or_unreadable_key_alone(outbox_dir):
    _send()
    provider = providers.get_provider()
    key_file = outbox_dir / "outbox.key"
    text = key_file.read_text()
    assert sealing.rewrap(outbox_dir, provider, 1) == "current"
    key_file.write_text("garbage")
    assert sealing.rewrap(outbox_dir, provider, 2) == "unreadable"
    assert key_file.read_text() == "garbage"
    assert text != "garbage"


# --- plain messages from before sealing, and purging ---------------------------------------


LEGACY = (
    "To: old.reader@example.com\nSubject: Written before sealing\nDate: Mon, 02 Nov 2026 10:00:00 +0000\n\nold body\n"
)


def test_old_plain_messages_are_still_listed_and_read(outbox_dir):
    _send("Sealed", body="new")
    legacy = outbox_dir / "20200101T000000000000-00000000.eml"
    legacy.write_text(LEGACY)
    assert [m.subject for m in store.list_messages()] == ["Sealed", "Written before sealing"]
    old = store.get_message(legacy.name)
    assert old.to == "old.reader@example.com" and "old body" in old.body


@pytest.mark.django_db
def test_purge_removes_old_sealed_and_plain_messages_and_set_aside_keys(outbox_dir):
    _send("Old sealed")
    _send("New sealed")
    old, new = _sealed(outbox_dir)
    legacy = outbox_dir / "20200101T000000000000-00000000.eml"
    legacy.write_text(LEGACY)
    aside = outbox_dir / f"{sealing.UNREADABLE_KEY_PREFIX}20200101T000000-abcd"
    aside.write_text("{}")
    week_ago = time.time() - 8 * 24 * 3600
    for path in (old, legacy, aside):
        os.utime(path, (week_ago, week_ago))
    assert store.purge_older_than() == 2  # messages counted; the set-aside key goes too
    assert _sealed(outbox_dir) == [new]
    assert not legacy.exists() and not aside.exists()
    assert (outbox_dir / "outbox.key").exists()
    assert [m.subject for m in store.list_messages()] == ["New sealed"]
