"""The mirror into an S3-compatible bucket (a real SeaweedFS server), per region, and a
purged company's mirror removed from its target (the bucket, and a local directory)."""

from __future__ import annotations

import os
import sqlite3
import uuid

import pytest

from tests.backups.mirroring import Writer, company_database, restore, restored_rows, wait_for
from tests.live import cleanup, make_server
from tests.seaweed import SECRET_KEY
from tests.server import helpers
from vouch.objectstore import open_store

pytestmark = pytest.mark.server


@pytest.fixture
def server(s3_server, s3_bucket):
    if os.environ.get("VOUCH_TEST_SERVICES") == "1":
        pytest.skip("the mirror is the embedded default's (SQLite); PostgreSQL replicates itself")
    # eu's company databases go to the bucket; us keeps the default (a local directory).
    extra = {"VOUCH_REGION_EU_MIRROR_URL": s3_server.url(s3_bucket, "mirror/eu"), "VOUCH_DELETION_GRACE_DAYS": "0"}
    live = make_server(extra_env=extra, services=False).start()  # AWS_* come from s3_server's environment
    yield live
    cleanup(live)


def _company(server, region: str) -> tuple[str, object]:
    tag = uuid.uuid4().hex[:8]
    member = helpers.create_member(server, f"s3-{tag}@example.com", f"S3 {tag}", region=region)
    return member["company_id"], company_database(server.data_dir, member["company_id"], region)


def test_a_company_database_is_mirrored_into_the_bucket_and_restored_from_it(server, s3_server, s3_bucket, tmp_path):
    company_id, database = _company(server, "eu")
    writer = Writer(database)
    written = [writer.write() for _ in range(10)]
    writer.close()
    wait_for(lambda: restored_rows(server.env, database, tmp_path) == written, 60, "the rows restored from S3")
    keys = [info.key for info in open_store(s3_server.url(s3_bucket, "mirror/eu")).list(f"{database.name}/")]
    assert any(key.startswith(f"{database.name}/") and key.endswith(".ltx") for key in keys), keys
    # Nothing of it went to the local default.
    assert not (server.data_dir / "mirror" / "regions" / "eu").exists()
    restored = tmp_path / "from-s3.sqlite3"
    assert restore(server.env, database, restored) == {"ok": str(restored)}
    assert (
        sqlite3.connect(restored).execute("SELECT company_id FROM vouch_company_identity").fetchone()[0] == company_id
    )
    # The credentials stay in the environment, never in the configuration file (which,
    # with the live set, holds the control database and the control socket: company
    # databases are registered through the socket, with the replica URL of their bucket).
    config = (server.data_dir / "litestream.yml").read_text()
    assert SECRET_KEY not in config and '"socket"' in config


def test_purge_removes_the_company_mirror_from_bucket_and_directory(server, s3_server, s3_bucket, tmp_path):
    bucket_store = open_store(s3_server.url(s3_bucket, "mirror/eu"))
    companies = {region: _company(server, region) for region in ("eu", "us")}
    for _, database in companies.values():
        writer = Writer(database)
        written = [writer.write()]
        writer.close()
        wait_for(lambda db=database, w=written: restored_rows(server.env, db, tmp_path) == w, 60, "mirrored")
    eu_db, us_db = companies["eu"][1], companies["us"][1]
    assert list(bucket_store.list(f"{eu_db.name}/"))
    local_copy = server.data_dir / "mirror" / "regions" / "us" / us_db.name
    assert local_copy.is_dir()
    # A third company, kept: the purge removes only what it must.
    kept_id, kept_db = _company(server, "eu")
    writer = Writer(kept_db)
    kept = [writer.write()]
    writer.close()
    wait_for(lambda: restored_rows(server.env, kept_db, tmp_path) == kept, 60, "the kept company mirrored")
    ids = [company_id for company_id, _ in companies.values()]
    helpers.run_django(
        server,
        f"""
        from vouch.accounts.models import Membership
        from vouch.tenancy.deletion import schedule_deletion
        from vouch.tenancy.models import Company
        for company in Company.objects.filter(pk__in={ids!r}):
            schedule_deletion(company, Membership.objects.filter(company=company).first())
        """,
    )
    result = server.vouch("tenants", "purge")
    assert result.stdout.count("Deleted company") == 2, result.stdout
    assert not list(bucket_store.list(f"{eu_db.name}/")), "the eu company's mirror is still in the bucket"
    assert not local_copy.exists(), "the us company's mirror is still in the directory"
    for database in (eu_db, us_db):
        assert not database.with_name(f".{database.name}-litestream").exists()
    assert list(bucket_store.list(f"{kept_db.name}/")), "the kept company's mirror went too"
