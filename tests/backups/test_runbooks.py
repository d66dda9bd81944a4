"""The runbooks of docs/backups.md ("Restore"), exercised on a copy: the control database
restored from its set into a directory, a `vouch` command pointed at it, and its security
log verified up to the head the set's manifest recorded."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest
from django.conf import settings

from tests.accounts.helpers import fast_company
from tests.audit.conftest import committed_chain  # noqa: F401
from tests.backups.conftest import lose_database
from vouch.audit import record
from vouch.audit.models import EventAction, SecurityEvent
from vouch.backups.sets import write_company_set, write_control_set
from vouch.cli import main


def vouch(data_dir, *argv, **extra_env):
    """`vouch ...` in a process of its own, on the restored copy (as the runbook says)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_") and k != "DJANGO_SETTINGS_MODULE"}
    env |= {"VOUCH_DATA_DIR": str(data_dir), "VOUCH_SECRET_KEY": settings.SECRET_KEY, "VOUCH_LOG_LEVEL": "ERROR"}
    env |= extra_env
    return subprocess.run(
        [sys.executable, "-m", "vouch.cli", *argv], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_control_database_runbook(committed_chain, backup_dir, tmp_path, capsys):  # noqa: F811
    company = fast_company("Runbook Co")
    for _ in range(3):
        record(EventAction.SYS_STARTUP)
    row = write_control_set()
    assert row.status == "complete", row.error

    # 1. Restore the control database's latest set into a new directory.
    assert main(["backup", "restore", "--control", "--to", str(tmp_path / "restored")]) == 0
    out = capsys.readouterr().out
    state = json.loads((tmp_path / "restored" / "restore.json").read_text())
    assert state["set_id"] == str(row.pk)
    head = out.split("Its security log head: ")[1].split(" ")[0]
    assert head == SecurityEvent.objects.order_by("-seq").first().hash

    # 2. Put it where a data directory keeps it (SQLite), or pg_restore it into a new
    # database (PostgreSQL); 3. verify the log up to the manifest's head.
    data = tmp_path / "data-copy"
    data.mkdir()
    with restored_control(tmp_path / "restored", data) as env:
        verified = vouch(data, "audit", "verify", "--no-progress", "--expect-head", head, **env)
        assert verified.returncode == 0, verified.stderr
        assert "chain intact" in verified.stdout and "expected head found" in verified.stdout
        listed = vouch(data, "tenants", "list", "--json", **env)
        assert str(company.pk) in listed.stdout

        # A head that is not in the restored log (a later one, or another installation's) fails.
        wrong = vouch(data, "audit", "verify", "--no-progress", "--expect-head", "ab" * 32, **env)
        assert wrong.returncode == 1


@contextlib.contextmanager
def restored_control(restored, data):
    """The runbook's step 3: the restored control database where a `vouch` can use it;
    the environment that `vouch` needs."""
    if (restored / "database.sqlite3").exists():
        shutil.copy(restored / "database.sqlite3", data / "control.sqlite3")
        yield {}
        return
    from vouch.backups import checks
    from vouch.backups.restore import pg_restore_into
    from vouch.tenancy import provisioning

    server = checks.control_server()
    name = f"vouch_restored_{uuid.uuid4().hex[:12]}"
    pg_restore_into(server, restored / "database.pgdump", name)
    try:
        yield {"VOUCH_DATABASE_URL": checks._database_url(server.server, name)}
    finally:
        with provisioning._admin(server) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.django_db
def test_the_region_runbook_brings_back_a_company_whose_database_and_files_are_lost(backup_dir, capsys):
    from tests.references.helpers import add_candidate
    from vouch.core.context import company_context
    from vouch.references.models import Candidate
    from vouch.tenancy import provisioning
    from vouch.tenancy.models import Company

    company = fast_company("Lost Disk Ltd")
    add_candidate(company, "Kept Person")
    assert write_company_set(company).status == "complete"
    # The region's disk is lost: the database and the files are gone.
    lose_database(company)
    shutil.rmtree(provisioning.files_dir(company.pk, company.region))

    assert main(["backup", "restore", "--company", str(company.pk), "--in-place"]) == 0, capsys.readouterr().err
    with company_context(Company.objects.get(pk=company.pk)):
        assert [c.name for c in Candidate.objects.all()] == ["Kept Person"]
    assert provisioning.files_dir(company.pk, company.region).is_dir()
