"""Fixtures of the vault tests."""

from __future__ import annotations

import pytest

from vouch.vault import keyring, providers


@pytest.fixture
def keys_dir(settings, tmp_path):
    """A master key directory of the test's own (rotation creates and retires versions,
    which must not reach other tests), and a one-second key cache, so that waiting for
    other processes' caches to expire stays short."""
    directory = tmp_path / "keys"
    directory.mkdir(mode=0o700)
    settings.VOUCH_KEY_PROVIDER = "file"
    settings.VOUCH_KEYS_DIR = str(directory)
    settings.VOUCH_KEY_CACHE_SECONDS = 1
    providers.reset()
    keyring.forget()
    yield directory
    providers.reset()
    keyring.forget()
