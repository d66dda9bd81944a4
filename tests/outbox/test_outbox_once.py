"""A mail sent again by a sender that died before marking it sent (same Message-ID,
same outbox name) is kept once in the local outbox; over SMTP the Vouch header that
fixes the name never leaves."""

from __future__ import annotations

from django.core.mail import EmailMessage

from vouch.outbox import store
from vouch.outbox.backends import ONCE_HEADER, OutboxBackend, company_headers

COMPANY = "6f1c1f5e-8d52-4a4a-9b6e-3f1d2c4b5a69"


def _message(once: str) -> EmailMessage:
    headers = {**company_headers(COMPANY), "Message-ID": "<abc@vouch.example>", ONCE_HEADER: once}
    return EmailMessage("Reminder", "Your link", "vouch@example.com", ["casey@example.org"], headers=headers)


def test_the_same_mail_sent_twice_is_kept_once(outbox_dir):
    once = "20261206T101010123456-0123abcd"
    assert OutboxBackend().send_messages([_message(once)]) == 1
    assert OutboxBackend().send_messages([_message(once)]) == 1  # counted sent: it is there
    (name,) = [path.name for path in outbox_dir.iterdir() if path.name != "outbox.key"]
    assert name == f"{once}-{COMPANY.replace('-', '')}.sealed"
    (message,) = store.list_messages(directory=outbox_dir)
    assert message.subject == "Reminder"


def test_a_half_written_copy_of_a_killed_sender_does_not_block_the_next(outbox_dir):
    once = "20261206T101010123456-0123abcd"
    outbox_dir.mkdir(parents=True)
    (outbox_dir / f".{once}-{COMPANY.replace('-', '')}.sealed.tmp").write_bytes(b"half")
    assert OutboxBackend().send_messages([_message(once)]) == 1
    names = {path.name for path in outbox_dir.iterdir()} - {"outbox.key"}
    assert names == {f"{once}-{COMPANY.replace('-', '')}.sealed"}
    assert len(store.list_messages(directory=outbox_dir)) == 1


def test_different_mails_are_all_kept(outbox_dir):
    OutboxBackend().send_messages([_message("20261206T101010123456-0123abcd")])
    OutboxBackend().send_messages([_message("20261206T101010123456-0123abce")])
    OutboxBackend().send_messages([_message("")])  # no fixed name: a name of its own
    assert len(store.list_messages(directory=outbox_dir)) == 3
