"""`vouch backup restore` from the continuous mirror, end to end: a real `vouch serve` with
Litestream, two writes at different times, and a restore as of a moment between them,
into a directory and in place."""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from datetime import UTC, datetime

import pytest

from tests.backups.mirroring import Writer, company_database, probe_rows, restored_rows, wait_for
from tests.live import cleanup, make_server
from tests.server import helpers

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server():
    if os.environ.get("VOUCH_TEST_SERVICES") == "1":
        pytest.skip("the mirror (Litestream) copies SQLite databases only; on PostgreSQL a restore uses a backup set")
    live = make_server(services=False, extra_env={"VOUCH_BACKUP_EVERY_MINUTES": "0"}).start()
    yield live
    cleanup(live)


def two_writes(server, tmp_path) -> tuple[str, object, str]:
    """A company with one write, a moment, then a second write; both in the mirror."""
    company_id = helpers.create_member(server, f"m-{uuid.uuid4().hex[:8]}@example.com", "Mirror Restore")["company_id"]
    database = company_database(server.data_dir, company_id)
    writer = Writer(database)
    first = writer.write()
    wait_for(lambda: restored_rows(server.env, database, tmp_path) == [first], 60, "the first write mirrored")
    moment = datetime.now(UTC)
    wait_for(lambda: (datetime.now(UTC) - moment).total_seconds() > 0.05, 5, "the clock to move on")
    second = writer.write()
    writer.close()
    wait_for(lambda: restored_rows(server.env, database, tmp_path) == [first, second], 60, "the second write mirrored")
    return company_id, database, moment.isoformat().replace("+00:00", "Z")


def test_restore_to_a_directory_from_the_mirror_as_of_a_moment(server, tmp_path):
    company_id, database, at = two_writes(server, tmp_path)
    to = tmp_path / "restored"

    result = server.vouch("backup", "restore", "--company", company_id, "--at", at, "--to", str(to), check=False)

    assert result.returncode == 0, result.stderr
    assert "from mirror at" in result.stdout
    assert json.loads((to / "restore.json").read_text())["kind"] == "mirror"
    assert probe_rows(to / "database.sqlite3") == [1]  # only the first write
    identity = sqlite3.connect(to / "database.sqlite3").execute("SELECT company_id FROM vouch_company_identity")
    assert identity.fetchone()[0] == company_id
    assert probe_rows(database) == [1, 2]  # nothing live changed


def test_restore_in_place_from_the_mirror_as_of_a_moment(server, tmp_path):
    company_id, database, at = two_writes(server, tmp_path)

    result = server.vouch("backup", "restore", "--company", company_id, "--at", at, "--in-place", check=False)

    assert result.returncode == 0, result.stderr
    assert "in place from mirror at" in result.stdout
    assert probe_rows(database) == [1]
    rollback = next(p for p in (server.data_dir / "regions" / "eu" / "restores").iterdir() if str(p) in result.stdout)
    assert json.loads((rollback / "restore.json").read_text())["kind"] == "mirror"
    assert probe_rows(rollback / "database.sqlite3") == [1, 2]  # the replaced state, kept aside
    # The company is online again and its database is mirrored from its restored state on.
    assert (
        helpers.run_django(
            server,
            f"from vouch.tenancy.models import Company\nprint(Company.objects.get(pk={company_id!r}).is_offline)",
        ).strip()
        == "False"
    )
    writer = Writer(database)
    third = writer.write()
    writer.close()
    wait_for(
        lambda: restored_rows(server.env, database, tmp_path) == [1, third], 60, "writes after the restore mirrored"
    )
