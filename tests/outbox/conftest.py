"""Outbox fixtures: the outbox backend writing to a directory of the test's own, and a
master key directory of the test's own (the outbox key is wrapped by it; rotation tests
create and retire versions, which must not reach other tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import override_settings

from vouch.vault import keyring, providers

OUTBOX = "vouch.outbox.backends.OutboxBackend"


@pytest.fixture(autouse=True)
def master_keys(settings, tmp_path) -> Path:
    directory = tmp_path / "keys"
    directory.mkdir(mode=0o700)
    settings.VOUCH_KEY_PROVIDER = "file"
    settings.VOUCH_KEYS_DIR = str(directory)
    settings.VOUCH_KEY_CACHE_SECONDS = 1
    providers.reset()
    keyring.forget()
    providers.get_provider().create_version()
    yield directory
    providers.reset()
    keyring.forget()


@pytest.fixture
def outbox_dir(tmp_path) -> Path:
    directory = tmp_path / "data" / "outbox"  # not there yet: the backend makes it
    with override_settings(EMAIL_BACKEND=OUTBOX, OUTBOX_DIR=directory):
        yield directory
