"""Fixtures of the backup tests: backup targets and a spool of the test's own."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from tests.audit.conftest import committed_chain  # noqa: F401  (a fixture, for tests that commit events)
from vouch.objectstore import join


def point_targets(settings, base: str) -> None:
    """Every region's backup target, and the control database's, under ``base``."""
    settings.VOUCH_BACKUP_URL = base
    config = settings.VOUCH_REGION_CONFIG
    settings.VOUCH_REGION_CONFIG = {
        name: entry | {"backup_url": join(base, "regions", name)} for name, entry in config.items()
    }


@pytest.fixture
def backup_dir(settings, tmp_path):
    """Backups into a directory of this test's own; the spool too."""
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()
    point_targets(settings, str(tmp_path / "backups"))
    return tmp_path / "backups"


def add_files(company, contents: dict[str, bytes]) -> None:
    """Save files into the company's encrypted storage, as uploads are saved."""
    from vouch.tenancy.context import company_context
    from vouch.vault.files import encrypted_storage

    with company_context(company):
        for name, data in contents.items():
            encrypted_storage.save(name, ContentFile(data))
