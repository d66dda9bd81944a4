"""Outbox fixtures: the outbox backend writing to a directory of the test's own, and a
master key directory of the test's own (the outbox key is wrapped by it; rotation tests
create and retire versions, which must not reach other tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import override_settings

from tests.vault.conftest import keys_dir  # noqa: F401 - the fixture master_keys builds on
from vouch.vault import providers

OUTBOX = "vouch.outbox.backends.OutboxBackend"


@pytest.fixture(autouse=True)
def master_keys(keys_dir) -> Path:  # noqa: F811 - pytest passes the imported fixture
    providers.get_provider().create_version()
    return keys_dir


@pytest.fixture
def outbox_dir(tmp_path) -> Path:
    directory = tmp_path / "data" / "outbox"  # not there yet: the backend makes it
    with override_settings(EMAIL_BACKEND=OUTBOX, OUTBOX_DIR=directory):
        yield directory
