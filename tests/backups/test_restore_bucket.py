"""An in-place restore of a company whose files live in its region's bucket: the set's
files go back under the company's prefix, objects written since are removed, and the
replaced objects are kept aside in the rollback directory (the rollback puts them back)."""

from __future__ import annotations

import pytest

from tests.accounts.helpers import fast_company
from tests.backups.conftest import add_files
from vouch.backups.models import BackupStatus
from vouch.backups.sets import write_company_set
from vouch.cli import main
from vouch.core.context import company_context
from vouch.tenancy import regions
from vouch.vault import files
from vouch.vault.files import encrypted_storage

pytestmark = pytest.mark.django_db

CV = b"%PDF-1.4 " + b"c" * 150_000


@pytest.fixture
def files_in_bucket(settings, s3_server, s3_bucket):
    config = settings.VOUCH_REGION_CONFIG
    settings.VOUCH_REGION_CONFIG = {**config, "eu": {**config["eu"], "files_url": s3_server.url(s3_bucket)}}
    assert regions.get("eu").files_in_bucket


def stored(company) -> dict[str, bytes]:
    """The company's objects in the bucket, as stored (ciphertext)."""
    where = files.backend(company.pk, company.region)
    assert isinstance(where, files._Bucket)
    result = {}
    for name in sorted(where.walk()):
        with where.ciphertext(name) as handle:
            result[name] = handle.read()
    return result


def plain(company, name: str) -> bytes:
    with company_context(company), encrypted_storage.open(name) as handle:
        return handle.read()


def test_in_place_restore_puts_the_files_back_into_the_bucket_and_keeps_the_replaced_ones(
    backup_dir, files_in_bucket, capsys
):
    company = fast_company("Bucket Restore Ltd", region="eu")
    add_files(company, {"attachments/cv.pdf": CV})
    at_backup = stored(company)
    row = write_company_set(company)
    assert row.status == BackupStatus.COMPLETE, row.error
    # After the backup: a new file, and the old one replaced by other content.
    add_files(company, {"attachments/late.pdf": b"late file"})
    where = files.backend(company.pk, company.region)
    where.delete("attachments/cv.pdf")
    add_files(company, {"attachments/cv.pdf": b"%PDF-1.4 changed"})
    before_restore = stored(company)
    assert before_restore["attachments/cv.pdf"] != at_backup["attachments/cv.pdf"]

    assert main(["backup", "restore", "--company", str(company.pk), "--set", str(row.pk), "--in-place"]) == 0
    out = capsys.readouterr().out

    assert stored(company) == at_backup  # exactly the set's objects, under the company's prefix
    assert plain(company, "attachments/cv.pdf") == CV
    # The replaced objects are kept aside, as stored, in the rollback directory.
    rollback = next(p for p in (regions.get(company.region).root / "restores").iterdir() if str(p) in out)
    kept = {p.relative_to(rollback / "files").as_posix(): p.read_bytes() for p in rollback.rglob("files/**/*.pdf")}
    assert kept == before_restore

    assert main(["backup", "restore", "--company", str(company.pk), "--rollback", str(rollback)]) == 0
    assert stored(company) == before_restore
    assert plain(company, "attachments/late.pdf") == b"late file"
