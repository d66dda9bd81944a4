"""`vouch audit verify` as an operator runs it, on its own data directory, and appends
from several processes at once."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

VOUCH = Path(sys.executable).with_name("vouch")
WRITER = """
import sys
from vouch.audit import record
for i in range(int(sys.argv[1])):
    record("authz_fail", target=f"route:p{sys.argv[2]}-{i}", outcome="blocked")
"""


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """A fresh embedded (SQLite) installation, whatever the test run's own database."""
    data = tmp_path_factory.mktemp("vouch-audit")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_") and k != "DJANGO_SETTINGS_MODULE"}
    env.update(VOUCH_DATA_DIR=str(data), VOUCH_LOG_LEVEL="WARNING")
    subprocess.run([str(VOUCH), "migrate"], env=env, check=True, capture_output=True, timeout=120)
    return data, env


def vouch(env, *args, timeout=120):
    return subprocess.run([str(VOUCH), *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_concurrent_processes_keep_one_chain_and_verify_catches_an_edit(embedded):
    data, env = embedded
    python = str(Path(sys.executable))
    writers = [
        subprocess.Popen(
            [
                python,
                "-c",
                f"import django, os; os.environ['DJANGO_SETTINGS_MODULE']='vouch.settings'; django.setup()\n{WRITER}",
                "25",
                str(n),
            ],
            env=env,
            stderr=subprocess.PIPE,
        )
        for n in range(4)
    ]
    # verify while they append: the rows that come in extend its walk, and the head it
    # reads at the end is the last row's (no false alarm).
    during = [vouch(env, "audit", "verify") for _ in range(2)]
    for writer in writers:
        assert writer.wait(timeout=120) == 0, writer.stderr.read()
    for result in during:
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("OK: ")

    result = vouch(env, "audit", "verify")
    assert result.returncode == 0, result.stderr
    assert "OK: 100 security events" in result.stdout

    db = sqlite3.connect(data / "control.sqlite3")
    with db:
        assert [r[0] for r in db.execute("SELECT seq FROM audit_securityevent ORDER BY id")] == list(range(1, 101))
        # The triggers hold outside Django too.
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit_securityevent SET outcome = 'success' WHERE seq = 50")
    with db:
        db.execute("DROP TRIGGER audit_securityevent_no_update")
        db.execute("UPDATE audit_securityevent SET outcome = 'success' WHERE seq = 50")
    db.close()

    result = vouch(env, "audit", "verify", "--progress")
    assert result.returncode == 1
    assert "BROKEN (modified)" in result.stderr
    assert "seq 50" in result.stderr


def test_a_head_kept_outside_the_database_catches_a_replayed_head(tmp_path):
    """As an operator runs it: `vouch audit head` to anchor, then someone with the database
    (not the secret key) deletes the newest events and puts the head row back as it was."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_") and k != "DJANGO_SETTINGS_MODULE"}
    env.update(VOUCH_DATA_DIR=str(tmp_path), VOUCH_LOG_LEVEL="WARNING")
    assert vouch(env, "migrate").returncode == 0
    python = str(Path(sys.executable))
    write = f"import django, os; os.environ['DJANGO_SETTINGS_MODULE']='vouch.settings'; django.setup()\n{WRITER}"
    db_path = tmp_path / "control.sqlite3"

    subprocess.run([python, "-c", write, "7", "a"], env=env, check=True, timeout=120)
    with sqlite3.connect(db_path) as db:
        then = db.execute("SELECT seq, hash, mac FROM audit_chainhead").fetchone()
    db.close()
    subprocess.run([python, "-c", write, "3", "b"], env=env, check=True, timeout=120)
    head = vouch(env, "audit", "head")
    assert head.returncode == 0 and head.stderr == ""
    anchor = head.stdout.strip()
    assert len(anchor) == 64
    assert vouch(env, "audit", "verify", "--expect-head", anchor).returncode == 0

    db = sqlite3.connect(db_path)
    with db, pytest.raises(sqlite3.DatabaseError, match="only moves forward"):
        db.execute("UPDATE audit_chainhead SET seq = ?, hash = ?, mac = ?", then)
    with db:
        db.execute("DROP TRIGGER audit_securityevent_no_delete")
        db.execute("DROP TRIGGER audit_chainhead_no_rewind")
        db.execute("DELETE FROM audit_securityevent WHERE seq > 7")
        db.execute("UPDATE audit_chainhead SET seq = ?, hash = ?, mac = ?", then)
    db.close()

    alone = vouch(env, "audit", "verify")
    assert alone.returncode == 0 and "OK: 7 security events" in alone.stdout  # what the database alone says
    anchored = vouch(env, "audit", "verify", "--expect-head", anchor)
    assert anchored.returncode == 1
    assert f"BROKEN (anchor): the expected head {anchor} is not in the chain" in anchored.stderr

    malformed = vouch(env, "audit", "verify", "--expect-head", anchor[:16])
    assert malformed.returncode == 2 and "64 hexadecimal characters" in malformed.stderr
