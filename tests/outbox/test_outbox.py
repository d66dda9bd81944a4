"""The outbox: one private, sealed file per message, read newest first, never outside
its directory, shown on a page only to the local machine. (Encryption at rest, tampering
and key rotation: test_sealed.py.)"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail
from django.core.mail import EmailMessage, send_mail
from django.test import override_settings

from tests.outbox.conftest import OUTBOX


@pytest.fixture
def keep_umask():
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


def _send(subject: str, to: str = "reader@example.com", body: str = "Hello there.") -> None:
    assert send_mail(subject, body, None, [to]) == 1


def messages_in(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.sealed"))


def test_each_message_is_one_private_file(outbox_dir):
    _send("First")
    _send("Second")
    files = sorted(outbox_dir.iterdir())
    assert [f.name for f in files if f.suffix != ".sealed"] == ["outbox.key"]
    assert len(messages_in(outbox_dir)) == 2
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(outbox_dir.stat().st_mode) & 0o077 == 0
    assert mail.outbox == []  # really went through the outbox backend, not locmem


def test_files_are_private_even_with_a_permissive_umask(outbox_dir, keep_umask):
    os.umask(0o000)
    _send("Umask")
    (path,) = messages_in(outbox_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((outbox_dir / "outbox.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(outbox_dir.stat().st_mode) == 0o700


def test_no_temporary_files_are_left(outbox_dir):
    for i in range(5):
        _send(f"Message {i}")
    assert len(messages_in(outbox_dir)) == 5
    assert not [p for p in outbox_dir.iterdir() if p.suffix != ".sealed" and p.name != "outbox.key"]


def test_one_send_with_several_messages_writes_several_files(outbox_dir):
    from django.core.mail import get_connection

    connection = get_connection()
    messages = [EmailMessage(f"Batch {i}", "b", None, [f"r{i}@example.com"]) for i in range(3)]
    assert connection.send_messages(messages) == 3
    assert len(messages_in(outbox_dir)) == 3
    assert connection.send_messages([]) == 0


def test_messages_are_read_newest_first(outbox_dir):
    from vouch.outbox import store

    for subject in ("one", "two", "three"):
        _send(subject, body=f"body of {subject}")
    listed = store.list_messages()
    assert [m.subject for m in listed] == ["three", "two", "one"]
    assert [m.subject for m in store.list_messages(limit=1)] == ["three"]
    newest = store.get_message(listed[0].name)
    assert newest.subject == "three"
    assert newest.to == "reader@example.com"
    assert "body of three" in newest.body


def test_an_empty_or_missing_outbox_is_empty(outbox_dir):
    from vouch.outbox import store

    assert store.list_messages() == []
    assert store.get_message("anything.eml") is None


@pytest.fixture
def secret_outside(outbox_dir):
    _send("inside")
    secret = outbox_dir.parent / "secret.eml"
    secret.write_text("To: x@example.com\nSubject: SECRET\n\nnot for you\n")
    return secret


@pytest.mark.parametrize(
    "name",
    [
        "../secret.eml",
        "../../data/secret.eml",
        "./../secret.eml",
        "..",
        ".",
        "",
        "x.txt",
        "secret.eml\x00",
        "\x00",
        "%2e%2e/secret.eml",
    ],
)
def test_get_message_stays_inside_the_outbox(secret_outside, name):
    from vouch.outbox import store

    assert store.get_message(name) is None


def test_get_message_refuses_absolute_paths(secret_outside):
    from vouch.outbox import store

    assert secret_outside.is_file()
    assert store.get_message(str(secret_outside)) is None
    assert store.get_message(str(secret_outside.resolve())) is None


def test_get_message_refuses_symlinks_out_of_the_outbox(secret_outside, outbox_dir):
    from vouch.outbox import store

    (outbox_dir / "link.eml").symlink_to(secret_outside)
    assert store.get_message("link.eml") is None
    assert "SECRET" not in [m.subject for m in store.list_messages()]


def test_cli_prints_the_latest_message(outbox_dir, capsys, keep_umask):
    from vouch.cli import main

    _send("Older", body="older body")
    _send("Welcome to Vouch", to="new.person@example.com", body="Confirm: https://localhost:8443/x/")
    assert main(["outbox", "--latest"]) == 0
    out = capsys.readouterr().out
    assert "Subject: Welcome to Vouch" in out
    assert "To: new.person@example.com" in out
    assert "https://localhost:8443/x/" in out
    assert "older body" not in out


def test_cli_lists_reads_by_name_and_refuses_traversal(secret_outside, capsys, keep_umask):
    from vouch.cli import main
    from vouch.outbox import store

    assert main(["outbox"]) == 0
    listing = capsys.readouterr().out
    name = store.list_messages()[0].name
    assert name in listing and "inside" in listing
    assert main(["outbox", name]) == 0
    assert "Subject: inside" in capsys.readouterr().out
    assert main(["outbox", "../secret.eml"]) == 1
    captured = capsys.readouterr()
    assert "SECRET" not in captured.out + captured.err
    assert "No such message" in captured.err


def test_cli_on_an_empty_outbox(outbox_dir, capsys, keep_umask):
    from vouch.cli import main

    assert main(["outbox"]) == 0
    assert "empty" in capsys.readouterr().out
    assert main(["outbox", "--latest"]) == 1


def test_cli_in_a_separate_process_reads_the_data_dir(tmp_path, master_keys):
    data = tmp_path / "vouchdata"
    with override_settings(EMAIL_BACKEND=OUTBOX, OUTBOX_DIR=data / "outbox"):
        _send("From another process", body="sub-process body")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_") and k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        {"VOUCH_DATA_DIR": str(data), "VOUCH_KEYS_DIR": str(master_keys), "PYTHONPATH": os.pathsep.join(sys.path)}
    )
    result = subprocess.run(
        [sys.executable, "-m", "vouch.cli", "outbox", "--latest"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Subject: From another process" in result.stdout
    assert "sub-process body" in result.stdout


# -- the /outbox/ page -------------------------------------------------------------


@pytest.mark.django_db
def test_page_answers_the_local_machine(client, outbox_dir):
    _send("<script>alert(1)</script>", body="page body https://localhost:8443/confirm/")
    response = client.get("/outbox/", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    html = response.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    from vouch.outbox import store

    name = store.list_messages()[0].name
    detail = client.get(f"/outbox/{name}", REMOTE_ADDR="127.0.0.1")
    assert detail.status_code == 200
    assert "page body" in detail.content.decode()
    assert client.get("/outbox/", REMOTE_ADDR="::1").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "extra",
    [
        {"REMOTE_ADDR": "10.0.0.5"},
        {"REMOTE_ADDR": "192.168.1.20"},
        {"REMOTE_ADDR": "2001:db8::1"},
        {"REMOTE_ADDR": "not-an-ip"},
        {"REMOTE_ADDR": ""},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "127.0.0.1"},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "for=203.0.113.9"},
    ],
)
def test_page_is_404_for_anyone_else(client, outbox_dir, extra):
    _send("private")
    from vouch.outbox import store

    name = store.list_messages()[0].name
    assert client.get("/outbox/", **extra).status_code == 404
    response = client.get(f"/outbox/{name}", **extra)
    assert response.status_code == 404
    assert "private" not in response.content.decode()


@pytest.mark.django_db
def test_page_is_404_when_mail_goes_to_smtp(client, outbox_dir):
    _send("private")
    with override_settings(EMAIL_BACKEND="vouch.outbox.backends.SMTPBackend"):
        assert client.get("/outbox/", REMOTE_ADDR="127.0.0.1").status_code == 404
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend"):
        assert client.get("/outbox/", REMOTE_ADDR="127.0.0.1").status_code == 404


@pytest.mark.django_db
def test_page_is_404_behind_a_proxy(client, outbox_dir):
    with override_settings(VOUCH_TRUSTED_PROXIES=["127.0.0.1"]):
        assert client.get("/outbox/", REMOTE_ADDR="127.0.0.1").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["..%2Fsecret.eml", "%2E%2E%2Fsecret.eml", "secret.eml%00", "%00", "nope.eml"])
def test_page_refuses_traversal(client, secret_outside, name):
    client.raise_request_exception = False
    response = client.get(f"/outbox/{name}", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 404
    assert "not for you" not in response.content.decode()


@pytest.mark.django_db
def test_the_daily_maintenance_drops_outbox_messages_older_than_a_week(outbox_dir):
    import time

    from vouch.outbox import store
    from vouch.references import jobs

    with override_settings(EMAIL_BACKEND="vouch.outbox.backends.OutboxBackend", OUTBOX_DIR=str(outbox_dir)):
        send_mail("Old", "A private link", "from@example.com", ["old@example.com"])
        send_mail("New", "Another", "from@example.com", ["new@example.com"])
        old, new = messages_in(outbox_dir)
        eight_days_ago = time.time() - 8 * 24 * 3600
        os.utime(old, (eight_days_ago, eight_days_ago))
        assert jobs.maintain_installation()["outbox"] == 1
        assert messages_in(outbox_dir) == [new]
        assert (outbox_dir / "outbox.key").exists()  # the key stays: it opens the newer ones
        assert [message.subject for message in store.list_messages()] == ["New"]
