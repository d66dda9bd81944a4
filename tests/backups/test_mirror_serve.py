"""The mirror under a real `vouch serve`: Litestream started and supervised beside the
worker, a new company's database taken up without a restart, a database file lost
while the server runs and brought back from the mirror, Litestream killed and
restarted, /healthz saying so, and VOUCH_SERVE_MIRROR=0 leaving it off."""

from __future__ import annotations

import json
import os
import signal
import uuid

import pytest

from tests.backups.mirroring import (
    Writer,
    company_database,
    mirror_health,
    mirror_state,
    probe_rows,
    restore,
    restored_rows,
    wait_for,
)
from tests.live import cleanup, make_server
from tests.server import helpers

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server():
    if os.environ.get("VOUCH_TEST_SERVICES") == "1":
        pytest.skip("the mirror is the embedded default's (SQLite); PostgreSQL replicates itself")
    live = make_server(services=False).start()
    yield live
    cleanup(live)


def _health(server) -> dict:
    response = helpers.request(server, "GET", "/healthz")
    assert response.status == 200
    return json.loads(response.body)


def _new_company(server) -> tuple[str, object]:
    tag = uuid.uuid4().hex[:8]
    member = helpers.create_member(server, f"mirror-{tag}@example.com", f"Mirror {tag}")
    return member["company_id"], company_database(server.data_dir, member["company_id"])


def test_serve_mirrors_a_company_created_after_it_started(server, tmp_path):
    # The server is already running: the company's database did not exist when Litestream started.
    company_id, database = _new_company(server)
    writer = Writer(database)
    written = [writer.write() for _ in range(5)]
    writer.close()
    rows = wait_for(
        lambda: restored_rows(server.env, database, tmp_path) == written, 60, "the new company's rows in the mirror"
    )
    assert rows
    # The copy is the company's own database: its identity row says so.
    restored = tmp_path / "identity.sqlite3"
    assert restore(server.env, database, restored) == {"ok": str(restored)}
    import sqlite3

    identity = sqlite3.connect(restored).execute("SELECT company_id FROM vouch_company_identity").fetchone()[0]
    assert identity == company_id
    # Where the docs say: the region's mirror, one directory per database file.
    assert (server.data_dir / "mirror" / "regions" / "eu" / database.name / "ltx").is_dir()
    assert (server.data_dir / "mirror" / "control" / "ltx").is_dir()


def test_health_reports_the_running_mirror(server):
    wait_for(lambda: mirror_state(server.data_dir).get("running"), 30, "the mirror to run")
    mirror = mirror_health(server)
    assert mirror["state"] == "ok", mirror
    config = (server.data_dir / "litestream.yml").stat()
    assert config.st_mode & 0o777 == 0o600


def test_the_control_database_is_restored_from_the_mirror(server, tmp_path):
    email = f"control-{uuid.uuid4().hex[:8]}@example.com"
    helpers.create_member(server, email, "Control Mirror")
    control = server.data_dir / "control.sqlite3"

    def restored_has_user() -> bool:
        target = tmp_path / f"control-{uuid.uuid4().hex}.sqlite3"
        if "ok" not in restore(server.env, control, target):
            return False
        import sqlite3

        connection = sqlite3.connect(target)
        try:
            return connection.execute("SELECT count(*) FROM accounts_user WHERE email = ?", [email]).fetchone()[0] == 1
        finally:
            connection.close()

    wait_for(restored_has_user, 60, "the new account in the control database's mirror")


@pytest.mark.parametrize("order", [("", "-wal", "-shm"), ("-wal", "-shm", "")], ids=["database-first", "wal-first"])
def test_a_deleted_database_is_restored_from_the_mirror_while_the_server_runs(server, tmp_path, order):
    company_id, database = _new_company(server)
    writer = Writer(database)
    written = [writer.write() for _ in range(20)]
    writer.close()
    wait_for(lambda: restored_rows(server.env, database, tmp_path) == written, 60, "the rows in the mirror")
    # The file is lost (a mistaken rm, a bad deploy) while the server keeps running. With
    # its WAL gone first, Litestream 0.5 cannot let go of the database and would ignore a
    # new file at its path: the supervisor restarts it (a "reopen").
    for suffix in order:
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    assert not database.exists()
    assert helpers.request(server, "GET", "/livez").status == 200
    # Back at its own path from the mirror, with everything committed before the loss.
    assert restore(server.env, database, database) == {"ok": str(database)}
    assert probe_rows(database) == written
    # ... and mirrored again from there: new writes reach the mirror too.
    writer = Writer(database)
    more = [writer.write() for _ in range(3)]
    writer.close()
    wait_for(
        lambda: restored_rows(server.env, database, tmp_path) == written + more, 60, "writes after the restore mirrored"
    )


def test_litestream_killed_is_restarted_and_nothing_is_lost(server, tmp_path):
    company_id, database = _new_company(server)
    first = wait_for(lambda: mirror_state(server.data_dir).get("pid") and mirror_state(server.data_dir), 30, "a pid")
    restarts = first.get("restarts", 0)
    os.killpg(first["pid"], signal.SIGKILL)
    # Written while no Litestream runs: copied once the new one has started.
    writer = Writer(database)
    written = [writer.write() for _ in range(10)]
    writer.close()
    state = wait_for(
        lambda: (s := mirror_state(server.data_dir)).get("restarts", 0) > restarts and s.get("running") and s,
        30,
        "the supervisor to restart Litestream",
    )
    assert state["pid"] != first["pid"]
    wait_for(lambda: restored_rows(server.env, database, tmp_path) == written, 60, "the writes in the mirror")
    assert mirror_health(server)["state"] == "ok"


def test_restore_errors_are_clear(server, tmp_path):
    company_id, database = _new_company(server)
    outcome = restore(server.env, database, tmp_path / "old.sqlite3", at="2001-01-01T00:00:00+00:00")
    assert outcome["error"] == "TooEarly", outcome
    missing = database.with_name(f"{uuid.uuid4()}.sqlite3")
    assert restore(server.env, missing, tmp_path / "x.sqlite3")["error"] == "NoMirror"
    elsewhere = tmp_path / "not-mirrored.sqlite3"
    assert "not a database the mirror copies" in restore(server.env, elsewhere, tmp_path / "y.sqlite3")["message"]
    occupied = tmp_path / "occupied.sqlite3"
    occupied.write_bytes(b"x")
    assert "already exists" in restore(server.env, database, occupied)["message"]


def test_serve_mirror_off_runs_no_litestream(tmp_path):
    if os.environ.get("VOUCH_TEST_SERVICES") == "1":
        pytest.skip("embedded default only")
    live = make_server(extra_env={"VOUCH_SERVE_MIRROR": "0"}, services=False).start()
    try:
        helpers.request(live, "GET", "/livez")
        assert not (live.data_dir / "mirror-state.json").exists()
        assert not (live.data_dir / "mirror").exists()
        assert mirror_health(live)["state"] == "off"
    finally:
        cleanup(live)


def test_mirror_status_says_what_is_mirrored_where_and_how_far_behind(server, tmp_path):
    company_id, database = _new_company(server)
    writer = Writer(database)
    written = [writer.write() for _ in range(3)]
    writer.close()
    wait_for(lambda: restored_rows(server.env, database, tmp_path) == written, 60, "the rows in the mirror")
    status = wait_for(
        lambda: (r := server.vouch("mirror", "status", check=False)).returncode == 0 and r, 30, "mirror status to say 0"
    )
    assert "Mirror process: ok" in status.stdout
    assert f"region eu: {server.data_dir}/regions/eu/companies -> {server.data_dir}/mirror/regions/eu" in status.stdout
    assert "control database" in status.stdout and "fully copied" in status.stdout
    # A change Litestream has not copied shows as behind: stop it (SIGSTOP), write, look.
    pid = mirror_state(server.data_dir)["pid"]
    os.killpg(pid, signal.SIGSTOP)
    try:
        writer = Writer(database)
        writer.write()
        writer.close()
        behind = server.vouch("mirror", "status", check=False)
        # Litestream has not even read it from the WAL: the database is behind, and named.
        assert "1 behind" in behind.stdout, behind.stdout
        assert f"{database.name}: local txid" in behind.stdout
        assert "newer commits in its WAL not yet taken" in behind.stdout
    finally:
        os.killpg(pid, signal.SIGCONT)


def test_a_second_mirror_of_the_same_data_is_refused(server):
    result = server.vouch("mirror", "run", check=False)
    assert result.returncode == 1
    assert "already runs" in result.stderr


def test_on_postgresql_serve_says_nothing_is_mirrored_by_vouch():
    if os.environ.get("VOUCH_TEST_SERVICES") != "1":
        pytest.skip("the service path (PostgreSQL) only")
    live = make_server(services=True).start()
    try:
        wait_for(lambda: "Nothing is mirrored by Vouch" in live.log(), 30, "serve to say nothing is mirrored")
        assert not (live.data_dir / "litestream.yml").exists()
        assert _health(live)["data_safety"]["mirror"] == "off"  # /healthz shows states only
        status = live.vouch("backup", "status", check=False).stdout
        assert "PostgreSQL" in next(line for line in status.splitlines() if line.strip().startswith("mirror"))
    finally:
        cleanup(live)


def test_restore_as_of_a_moment_between_two_writes(server, tmp_path):
    from datetime import UTC, datetime

    company_id, database = _new_company(server)
    writer = Writer(database)
    before = [writer.write() for _ in range(3)]
    wait_for(lambda: restored_rows(server.env, database, tmp_path) == before, 60, "the first writes mirrored")
    moment = datetime.now(UTC)
    # The next writes are made strictly later than the moment (Litestream stamps in ms).
    wait_for(lambda: (datetime.now(UTC) - moment).total_seconds() > 0.05, 5, "the clock to move on")
    after = [writer.write() for _ in range(3)]
    writer.close()
    wait_for(lambda: restored_rows(server.env, database, tmp_path) == before + after, 60, "the later writes mirrored")
    as_of = tmp_path / "as-of.sqlite3"
    assert restore(server.env, database, as_of, at=moment.isoformat()) == {"ok": str(as_of)}
    assert probe_rows(as_of) == before


def test_a_mirror_url_litestream_cannot_use_is_said_at_start_and_in_health():
    if os.environ.get("VOUCH_TEST_SERVICES") == "1":
        pytest.skip("embedded default only")
    live = make_server(extra_env={"VOUCH_REGION_EU_MIRROR_URL": "ftp://example.com/mirror"}, services=False).start()
    try:
        wait_for(lambda: "The mirror is not started" in live.log(), 30, "serve to say the mirror is not started")
        assert "VOUCH_REGION_EU_MIRROR_URL" in live.log()
        mirror = mirror_health(live)
        assert mirror["state"] == "degraded" and "VOUCH_REGION_EU_MIRROR_URL" in mirror["detail"], mirror
        assert helpers.request(live, "GET", "/livez").status == 200  # the site itself serves
    finally:
        cleanup(live)
