"""PostgreSQL restarts under a running `vouch serve`: no request fails because of a
connection kept from before, and the background worker rides out the outage.

The server's control and company databases are on a private PostgreSQL cluster
that these tests restart and stop (never the machine's own server)."""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

import pytest

from tests.live import _drop_pg_database, _drop_redis_keys, cleanup, make_server
from tests.server import helpers
from tests.server.private_postgres import binaries, remove, start_private_postgres
from tests.server.test_stop import _descendants

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(binaries() is None, reason="needs PostgreSQL's server binaries (/usr/lib/postgresql)"),
]


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def cluster():
    cluster = start_private_postgres()
    yield cluster
    remove(cluster)


@pytest.fixture(scope="module")
def server(cluster):
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=cluster.port, user="postgres", dbname="postgres") as admin:
        admin.autocommit = True
        admin.execute("CREATE DATABASE vouch")
    url = f"postgres://postgres@127.0.0.1:{cluster.port}/vouch"
    # One server thread: the connection it keeps is the one the next request gets.
    server = make_server(
        {
            "VOUCH_DATABASE_URL": url,
            "VOUCH_COMPANY_DATABASE_URL": url,
            "VOUCH_COMPANY_DATABASE_PREFIX": "vouch_c",
            "VOUCH_THREADS": "1",
        }
    )
    if server.pg_database:  # the service path made a database on the shared server: not used here
        _drop_pg_database(server.pg_database)
        redis_prefix, server.pg_database = server.pg_database, None
    else:
        redis_prefix = None
    server.start()
    yield server
    cleanup(server)
    if redis_prefix:
        _drop_redis_keys(server.env["VOUCH_REDIS_URL"], redis_prefix)


@pytest.fixture(scope="module")
def session(server) -> dict[str, str]:
    email = f"restart-{uuid.uuid4().hex[:8]}@example.com"
    helpers.create_member(server, email, "Restart Company")
    return {"__Host-vouch_session": helpers.session_cookie(server, email)}


def test_no_request_fails_after_postgresql_restarts(server, cluster, session):
    first = helpers.request(server, "GET", "/candidates/", cookies=session)
    assert first.status == 200, first.text[:500]
    assert "Restart Company" in first.text
    cluster.restart()  # -m fast: every connection is ended; returns once it accepts connections again
    statuses = [helpers.request(server, "GET", "/candidates/", cookies=session).status for _ in range(10)]
    assert statuses == [200] * 10, statuses
    assert "terminating connection" not in server.log()


def _worker_pid(server) -> int | None:
    for pid in _descendants(server.process.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"worker" in cmdline and b"vouch.cli" in cmdline:
            return pid
    return None


def test_worker_stays_up_through_a_postgresql_outage(server, cluster):
    worker = _wait_for(lambda: _worker_pid(server), 30, "the background worker")
    # An outage the worker saw during the restart above must be over first: an outage
    # still open is not reported again (it is said once, at its start).
    _wait_for(
        lambda: server.log().count("database is unavailable") == server.log().count("database is back"),
        30,
        "the worker to be done with the restart",
    )
    log_before = len(server.log())
    cluster.stop()
    try:
        # The worker looks at its queue every second: it sees the outage (or, before the
        # fix, died of it and `vouch serve` says so).
        _wait_for(
            lambda: re.search(r"database is unavailable|background worker stopped", server.log()[log_before:]),
            30,
            "the worker to notice the outage",
        )
        # The fault itself lasts a few seconds (this is not a wait for a result): the
        # worker must keep looking, backing off, without dying or logging each look.
        time.sleep(3)
    finally:
        cluster.start()
    _wait_for(lambda: "database is back" in server.log()[log_before:], 30, "the worker to see the database back")
    during = server.log()[log_before:]
    assert "background worker stopped" not in during, during
    assert _worker_pid(server) == worker
    assert os.path.exists(f"/proc/{worker}")
    assert during.count("database is unavailable") == 1, during
    assert "could not plan the daily maintenance" not in during, during
