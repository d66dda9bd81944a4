"""`vouch` commands on a data directory or database that was never prepared say what to
run instead (exit 2), never print a traceback, and create nothing."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid

import pytest

COMMANDS = [
    ["tenants", "list"],
    ["tenants", "check"],
    ["tenants", "show", "acme"],
    ["tenants", "purge"],
    ["keys", "status"],
    ["keys", "rotate-master"],
    ["audit", "verify"],
    ["operator", "create", "ops@example.com"],
    ["references", "maintenance"],
]


def _vouch(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vouch.cli", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _env(data_dir, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_") and k != "DJANGO_SETTINGS_MODULE"}
    return env | {"VOUCH_DATA_DIR": str(data_dir), "VOUCH_LOG_LEVEL": "WARNING"} | extra


def _assert_told_to_set_up(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "vouch setup" in result.stderr and "vouch migrate" in result.stderr


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_commands_on_a_data_directory_never_set_up(tmp_path, args):
    result = _vouch(args, _env(tmp_path))
    _assert_told_to_set_up(result)
    assert "does not exist" in result.stderr
    # Nothing was created in its place: no empty control database.
    assert not (tmp_path / "control.sqlite3").exists()


def test_a_control_database_with_missing_migrations_is_named(tmp_path):
    # An empty file (a copy interrupted, a database made by hand): it opens, but has no tables.
    sqlite3.connect(tmp_path / "control.sqlite3").close()
    result = _vouch(["tenants", "list"], _env(tmp_path))
    _assert_told_to_set_up(result)
    assert "lacks" in result.stderr and "migrations" in result.stderr


def test_the_same_command_works_once_set_up(tmp_path):
    env = _env(tmp_path)
    assert _vouch(["setup"], env).returncode == 0
    result = _vouch(["tenants", "list"], env)
    assert result.returncode == 0, result.stderr
    assert "not set up" not in result.stderr


def test_keys_generate_needs_no_database(tmp_path):
    result = _vouch(["keys", "generate"], _env(tmp_path))
    assert result.returncode == 0
    assert not (tmp_path / "control.sqlite3").exists()


@pytest.mark.skipif(os.environ.get("VOUCH_TEST_SERVICES") != "1", reason="PostgreSQL path (VOUCH_TEST_SERVICES=1)")
def test_an_empty_postgresql_database(tmp_path):
    from tests.live import _drop_pg_database, _pg_admin

    name = f"vouch_unprepared_{uuid.uuid4().hex[:10]}"
    conn, db = _pg_admin()
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        auth = f"{db.user}:{db.password}@" if db.password else f"{db.user}@"
        url = f"postgres://{auth}{db.host}:{db.port or 5432}/{name}"
        result = _vouch(["tenants", "list"], _env(tmp_path, VOUCH_DATABASE_URL=url))
        _assert_told_to_set_up(result)
        assert "lacks" in result.stderr
    finally:
        _drop_pg_database(name)
