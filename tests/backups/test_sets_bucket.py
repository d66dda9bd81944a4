"""A company whose files live in its region's bucket: the backup set holds them too."""

from __future__ import annotations

import pytest

from tests.accounts.helpers import fast_company
from tests.backups.conftest import add_files
from vouch import regions
from vouch.backups.models import BackupStatus
from vouch.backups.sets import company_prefix, company_target, list_sets, open_set, write_company_set
from vouch.objectstore import open_store
from vouch.vault import files

pytestmark = pytest.mark.django_db


@pytest.fixture
def files_in_bucket(settings, s3_server, s3_bucket):
    config = settings.VOUCH_REGION_CONFIG
    settings.VOUCH_REGION_CONFIG = {**config, "eu": {**config["eu"], "files_url": s3_server.url(s3_bucket)}}
    assert regions.get("eu").files_in_bucket


def test_files_in_the_bucket_are_in_the_set_as_stored(backup_dir, files_in_bucket, tmp_path):
    company = fast_company("Bucketed Ltd", region="eu")
    contents = {"attachments/cv.pdf": b"%PDF-1.4 " + b"y" * 150_000, "reports/r.txt": b"report text"}
    add_files(company, contents)
    where = files.backend(company.pk, company.region)
    assert isinstance(where, files._Bucket)

    row = write_company_set(company)

    assert row.status == BackupStatus.COMPLETE, row.error
    store = open_store(company_target(company.region))
    [info] = list_sets(store, company_prefix(company.pk))
    extracted = open_set(store, info.location, region=company.region).extract(tmp_path / "restored")
    for name, plain in contents.items():
        with where.ciphertext(name) as stored:
            assert (extracted.files_dir / name).read_bytes() == stored.read()
        assert plain not in (extracted.files_dir / name).read_bytes()
