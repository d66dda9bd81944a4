"""An in-place restore on SQLite keeps the live state aside and swaps in the restored one
under one write lock: a write that a process still holding the company open makes just
before the swap is in the kept copy (the rollback), never lost between the two."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from tests.accounts.helpers import fast_company
from tests.references.helpers import add_candidate
from vouch import regions
from vouch.backups import restore
from vouch.backups.sets import write_company_set
from vouch.tenancy import connections

pytestmark = pytest.mark.django_db

STALE_WRITER = textwrap.dedent(
    """
    import pathlib, sqlite3, sys, time
    database, flag = sys.argv[1], pathlib.Path(sys.argv[2])
    reached = flag.with_name(flag.name + ".reached")
    deadline = time.monotonic() + 60
    while not reached.exists():
        assert time.monotonic() < deadline, "the restore never reached the swap"
        time.sleep(0.01)
    db = sqlite3.connect(database, timeout=30, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    db.execute("CREATE TABLE stale_write (note TEXT)")
    db.execute("INSERT INTO stale_write VALUES ('written while the company was offline')")
    db.execute("COMMIT")
    db.close()
    flag.unlink()
    """
)


def test_a_write_just_before_the_swap_is_kept_aside_not_lost(backup_dir, settings, tmp_path):
    company = fast_company("Locked Swap Ltd")
    region = regions.get(company.region)
    if region.uses_postgresql:
        pytest.skip("SQLite's write lock; on PostgreSQL the live database is renamed aside, its sessions ended")
    add_candidate(company, "Before Backup")
    row = write_company_set(company)
    live = connections.sqlite_path(company.pk, region)
    flag = tmp_path / "pause"
    flag.touch()
    settings.VOUCH_TEST_PAUSE_AT, settings.VOUCH_TEST_PAUSE_FILE = "restore_before_swap", str(flag)
    writer = subprocess.Popen([sys.executable, "-c", STALE_WRITER, str(live), str(flag)], env=os.environ.copy())
    try:
        _, rollback = restore.restore_in_place(company, set_id=str(row.pk))
    finally:
        flag.unlink(missing_ok=True)
        assert writer.wait(timeout=60) == 0

    kept = sqlite3.connect(rollback / "database.sqlite3")
    assert kept.execute("SELECT note FROM stale_write").fetchall() == [("written while the company was offline",)]
    restored = sqlite3.connect(live)
    assert not restored.execute("SELECT name FROM sqlite_master WHERE name = 'stale_write'").fetchall()
    assert restored.execute("SELECT count(*) FROM references_candidate").fetchone() == (1,)
    assert restored.execute("PRAGMA integrity_check").fetchone() == ("ok",)
