"""Faults, for real: everything killed in the middle of a burst of committed writes, and
a mirror target with no room left.

The kill: `vouch mirror run` (the supervisor and Litestream, each its own process
group) gets SIGKILL while a writer commits to a company database as fast as autosaves
come; then the database is restored from the mirror as if the disk had died with the
processes. Every write committed more than the recovery point before the kill must be
there, in order, with nothing after a gap; and once the mirror runs again, every write.

The full target: the mirror on a small tmpfs of its own, filled while `vouch serve`
runs and writes go on. /healthz says the mirror is degraded, the server keeps serving,
and once there is room again the mirror catches up with nothing lost."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.backups.mirroring import (
    Writer,
    company_database,
    kill_group,
    mirror_health,
    mirror_state,
    probe_rows,
    restore,
    restored_rows,
    start_mirror_run,
    wait_for,
)
from tests.live import cleanup, make_server
from tests.server import helpers
from tests.server.test_disk_full import _fill, _mount_tmpfs

pytestmark = pytest.mark.server

# bench/mirror.py measures the recovery point's p99 (target 1 s; 0.4-0.6 s measured on a
# loaded machine, largest single sample 0.99 s). This test bounds every write, not the
# 99th percentile, while the whole suite loads both cores: 2 s keeps it from failing on
# the machine's noise, and a mirror that waits 3 s between uploads still fails it.
RECOVERY_POINT_SECONDS = 2.0


@pytest.fixture
def embedded():
    if os.environ.get("VOUCH_TEST_SERVICES") == "1":
        pytest.skip("the mirror is the embedded default's (SQLite); PostgreSQL replicates itself")


def test_killed_mid_burst_loses_nothing_older_than_the_recovery_point(embedded, tmp_path):
    server = make_server(services=False)  # its environment and data directory; not started
    try:
        server.vouch("setup")
        database = company_database(server.data_dir, str(uuid.uuid4()))
        database.parent.mkdir(parents=True, exist_ok=True)
        writer = Writer(database)
        mirror = start_mirror_run(server.env, tmp_path / "mirror.log")
        wait_for(lambda: mirror_state(server.data_dir).get("running"), 30, "the mirror to start")
        # Warm up until the database is taken up and mirrored.
        first = writer.write()
        wait_for(lambda: first in restored_rows(server.env, database, tmp_path), 60, "the first write mirrored")
        # The burst: a commit every few milliseconds for 3 s, killed in the middle.
        litestream = mirror_state(server.data_dir)["pid"]
        stop_at = time.monotonic() + 3.0
        kill_at = time.monotonic() + 1.5
        killed = 0.0
        while time.monotonic() < stop_at:
            writer.write()
            if not killed and time.monotonic() >= kill_at:
                kill_group(mirror.pid)
                kill_group(litestream)
                killed = time.time()
            time.sleep(0.003)
        mirror.wait(timeout=10)
        writer.close()
        assert killed
        # The disk is gone with the processes: what does the mirror hold?
        restored = tmp_path / "after-kill.sqlite3"
        assert restore(server.env, database, restored) == {"ok": str(restored)}
        rows = probe_rows(restored)
        assert rows == list(range(1, len(rows) + 1)), "a gap: a later write is there and an earlier one is not"
        required = [n for n, at in writer.committed.items() if at <= killed - RECOVERY_POINT_SECONDS]
        assert required, "the burst did not run long enough before the kill"
        missing = sorted(set(required) - set(rows))
        assert not missing, f"{len(missing)} writes committed over {RECOVERY_POINT_SECONDS} s before the kill are lost"
        assert len(rows) < max(writer.committed), "writes after the kill cannot be in the mirror"
        # The mirror started again catches up: every committed write, nothing lost.
        again = start_mirror_run(server.env, tmp_path / "mirror-again.log")
        try:
            everything = sorted(writer.committed)
            wait_for(lambda: restored_rows(server.env, database, tmp_path) == everything, 60, "the mirror to catch up")
        finally:
            again.terminate()
            again.wait(timeout=20)
    finally:
        cleanup(server)


@pytest.fixture
def small_disk(embedded):
    mount_point = Path(tempfile.mkdtemp(prefix="vouch-mirror-disk-"))
    reason = _mount_tmpfs(mount_point, size_mb=8)
    if reason:
        mount_point.rmdir()
        message = f"the full-target test needs a filesystem of its own: {reason}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)
    shutil.rmtree(mount_point, ignore_errors=True)


def _mirror_health(server) -> dict:
    return mirror_health(server)


def test_a_full_mirror_target_degrades_health_and_catches_up_when_there_is_room(small_disk, tmp_path):
    server = make_server(extra_env={"VOUCH_MIRROR_URL": str(small_disk / "mirror")}, services=False).start()
    try:
        assert "same disk" not in server.log()  # the mirror is on a filesystem of its own
        member = helpers.create_member(server, f"full-{uuid.uuid4().hex[:8]}@example.com", "Full Mirror")
        database = company_database(server.data_dir, member["company_id"])
        writer = Writer(database)
        first = writer.write()
        wait_for(lambda: first in restored_rows(server.env, database, tmp_path), 60, "the first write mirrored")
        filler = small_disk / "filler"
        _fill(filler)
        # Writes go on (the databases are on another disk); the mirror cannot store them.
        stop = threading.Event()

        def keep_writing() -> None:
            while not stop.is_set():
                writer.write(payload_bytes=4000)
                stop.wait(0.02)

        thread = threading.Thread(target=keep_writing)
        thread.start()
        try:
            degraded = wait_for(
                lambda: (h := _mirror_health(server))["state"] == "degraded" and h, 60, "health to say degraded"
            )
            assert "not copied" in degraded["detail"]
            wait_for(lambda: len(writer.committed) > 50, 30, "writes to go on while the mirror target is full")
            assert helpers.request(server, "GET", "/livez").status == 200
            assert helpers.request(server, "GET", "/accounts/login/").status == 200
        finally:
            stop.set()
            thread.join()
        writer.close()
        filler.unlink()
        # Room again: every write committed meanwhile reaches the mirror, and health recovers.
        everything = sorted(writer.committed)
        wait_for(
            lambda: restored_rows(server.env, database, tmp_path) == everything, 120, "the mirror to catch up", 1.0
        )
        wait_for(lambda: _mirror_health(server)["state"] == "ok", 60, "health to say ok again")
    finally:
        cleanup(server)
