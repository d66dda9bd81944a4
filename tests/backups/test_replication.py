"""PostgreSQL's mirroring, with real servers: WAL archived by pgBackRest into the test S3
server, a streaming standby made with pg_basebackup, a point-in-time restore from the
archive, and what Vouch reads of it all (vouch.backups.replication, `vouch backup status`).

A private cluster of its own (never the machine's PostgreSQL): archive_mode on, its
archive_command pgBackRest's archive-push into a bucket on SeaweedFS over HTTPS."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
import uuid
from dataclasses import dataclass

import boto3
import pytest
from psycopg import sql

from tests.backups import pgbackrest
from tests.live import free_port
from tests.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedFS
from tests.server.private_postgres import (
    PrivatePostgres,
    binaries,
    private_root,
    remove,
    start_private_postgres,
    start_standby,
)
from vouch.backups import replication
from vouch.config import parse_database_url

pytestmark = pytest.mark.skipif(binaries() is None, reason="needs PostgreSQL's server binaries (/usr/lib/postgresql)")


def wait_for(predicate, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Archived:
    primary: PrivatePostgres
    backrest: pgbackrest.PgBackRest
    s3: SeaweedFS
    bucket: str

    @property
    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.s3.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def objects(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def switch_wal(self) -> str:
        """Write something, finish the WAL segment holding it; that segment's name."""
        self.primary.execute("CREATE TABLE IF NOT EXISTS activity (at timestamptz DEFAULT clock_timestamp())")
        self.primary.execute("INSERT INTO activity DEFAULT VALUES")
        segment = self.primary.execute("SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0]
        self.primary.execute("SELECT pg_switch_wal()")
        return segment


@pytest.fixture(scope="module")
def archived(s3_server):
    if shutil.which("pgbackrest") is None:
        pytest.fail("pgBackRest is missing: `make pgbackrest` (or apt-get install -y pgbackrest)")
    bucket = f"pgbackrest-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    s3_server.create_bucket(bucket)
    backrest = pgbackrest.new()
    primary = start_private_postgres(
        {
            "wal_level": "replica",
            "archive_mode": "on",
            "archive_command": f"'{backrest.command('archive-push', '%p')}'",
        }
    )
    try:
        pgbackrest.configure(backrest, s3_server, bucket, primary)
        backrest.run("stanza-create")
        backrest.run("check")  # pushes a WAL segment and waits until it is in the repository
        yield Archived(primary=primary, backrest=backrest, s3=s3_server, bucket=bucket)
    finally:
        remove(primary)
        shutil.rmtree(backrest.root, ignore_errors=True)


@pytest.fixture
def watched(archived, settings, tmp_path):
    """Vouch's control database and its one region are on the private primary."""
    settings.VOUCH_DATABASE_URL = archived.primary.url
    settings.VOUCH_REGIONS = ["eu"]
    settings.VOUCH_REGION_CONFIG = {"eu": {"database_url": archived.primary.url, "dir": str(tmp_path), "label": "EU"}}
    settings.VOUCH_PG_STANDBYS = 0
    settings.VOUCH_PG_ARCHIVING = "required"
    settings.VOUCH_PG_MAX_LAG_SECONDS = 60
    return archived


def fresh() -> replication.Reading:
    (reading,) = replication.readings(max_age=0)
    return reading


def test_wal_is_archived_into_the_bucket_and_vouch_reads_it(watched):
    before = fresh().archiver
    assert before.mode == "on"
    assert before.archived_count >= 1  # `pgbackrest check` archived one

    segment = watched.switch_wal()
    started = time.monotonic()
    reading = wait_for(lambda: (r := fresh()).archiver.last_archived_wal == segment and r, f"{segment} archived")
    print(f"\nWAL segment archived {time.monotonic() - started:.2f} s after the switch")

    assert reading.server.labels == ("control", "region eu")  # one server, read once
    assert reading.archiver.archived_count > before.archived_count
    assert reading.archiver.failed_count == before.failed_count
    assert reading.archiver.waiting == 0
    # It is in the bucket, where pgBackRest put it (compressed, named with its checksum).
    keys = watched.objects("pgbackrest/archive/vouch/")
    (key,) = [key for key in keys if key.rsplit("/", 1)[-1].startswith(segment + "-")]
    # Encrypted by pgBackRest before upload (OpenSSL's salted format), not a readable WAL file.
    body = watched.client.get_object(Bucket=watched.bucket, Key=key)["Body"].read()
    assert body.startswith(b"Salted__") and key.endswith(".zst")
    items = replication.assess([reading])
    assert items["archiving"]["state"] == "ok"
    assert items["archiving"]["detail"].startswith("last WAL archived")
    assert items["replication"] == {"state": "off", "detail": "no standby"}


def test_archiving_that_fails_is_degraded_and_recovers(watched):
    primary = watched.primary
    # The wrong bucket: every archive-push fails, as when the store refuses the account.
    broken = watched.backrest.command("--repo1-s3-bucket=no-such-bucket", "archive-push", "%p")
    primary.execute(sql.SQL("ALTER SYSTEM SET archive_command = {}").format(sql.Literal(broken)).as_string())
    primary.execute("SELECT pg_reload_conf()")
    try:
        segment = watched.switch_wal()
        reading = wait_for(lambda: (r := fresh()).archiver.last_failed_wal == segment and r, "the failure")
        assert reading.archiver.failing
        items = replication.assess([reading])
        assert items["archiving"]["state"] == "degraded"
        assert f"archiving {segment} failed" in items["archiving"]["detail"]
        assert reading.archiver.waiting >= 1
    finally:
        primary.execute("ALTER SYSTEM RESET archive_command")
        primary.execute("SELECT pg_reload_conf()")
    # Repaired: the waiting segment goes out (PostgreSQL retries it), and it is ok again.
    reading = wait_for(lambda: (r := fresh()).archiver.last_archived_wal == segment and r, "the retry", timeout=90)
    assert not reading.archiver.failing
    assert replication.assess([reading])["archiving"]["state"] == "ok"


def test_a_segment_waiting_too_long_is_degraded(watched, settings):
    """Not failing, only slow (an archive_command that hangs on a store that stopped
    answering): the oldest finished segment waits longer than the limit."""
    primary = watched.primary
    hold = watched.backrest.root / "hold"
    hold.touch()
    # Hangs while the file is there, then fails: PostgreSQL keeps the segment and retries.
    hanging = f"while test -e {hold}; do sleep 0.1; done; exit 1"
    primary.execute(sql.SQL("ALTER SYSTEM SET archive_command = {}").format(sql.Literal(hanging)).as_string())
    primary.execute("SELECT pg_reload_conf()")
    settings.VOUCH_PG_MAX_LAG_SECONDS = 1
    try:
        segment = watched.switch_wal()
        items = wait_for(
            lambda: (i := replication.assess([fresh()]))["archiving"]["state"] == "degraded" and i, "degraded"
        )
        assert "1 WAL segments waiting, the oldest for" in items["archiving"]["detail"]
        assert not fresh().archiver.failing
    finally:
        primary.execute("ALTER SYSTEM RESET archive_command")
        primary.execute("SELECT pg_reload_conf()")
        hold.unlink()
    reading = wait_for(lambda: (r := fresh()).archiver.last_archived_wal == segment and r, "the retry", timeout=90)
    assert reading.archiver.waiting == 0
    assert replication.assess([reading])["archiving"]["state"] == "ok"


def test_standby_lag_is_read_and_a_stopped_standby_is_degraded(watched, settings):
    settings.VOUCH_PG_STANDBYS = 1
    primary = watched.primary
    standby = start_standby(primary, name="standby-eu-1")
    try:
        wait_for(lambda: any(s.state == "streaming" for s in fresh().standbys), "the standby streaming")
        primary.execute("CREATE TABLE IF NOT EXISTS replicated (n int)")
        primary.execute("INSERT INTO replicated SELECT generate_series(1, 20000)")
        # The primary measures lag from the standby's replies to new WAL.
        reading = wait_for(lambda: (r := fresh()).standbys[0].replay_lag is not None and r, "a lag measurement")
        (seen,) = reading.standbys
        assert (seen.name, seen.client, seen.state, seen.sync_state) == (
            "standby-eu-1",
            "127.0.0.1",
            "streaming",
            "async",
        )
        assert seen.write_lag is not None and seen.flush_lag is not None and seen.bytes_behind >= 0
        print(
            f"\nstandby lag: write {seen.write_lag * 1000:.1f} ms, flush {seen.flush_lag * 1000:.1f} ms,"
            f" replay {seen.replay_lag * 1000:.1f} ms, {seen.bytes_behind} bytes behind"
        )
        wait_for(lambda: fresh().standbys[0].bytes_behind == 0, "the standby caught up")
        assert standby.execute("SELECT count(*) FROM replicated")[0][0] >= 20000
        items = replication.health()
        assert items["replication"]["state"] == "ok"
        # Pointed at the standby by mistake: it is read (no error), and said to be one.
        on_standby = replication.read(replication.Server(("region eu",), parse_database_url(standby.url)))
        assert on_standby.error is None and on_standby.in_recovery
        assert replication.replication_state(on_standby, 1, 60)[0] == "degraded"
        assert items["replication"]["detail"].startswith("1 standby streaming (1 expected), standby-eu-1: replay lag")

        # Replay paused: the standby receives WAL but falls behind, in bytes and in time.
        standby.execute("SELECT pg_wal_replay_pause()")
        primary.execute("INSERT INTO replicated SELECT generate_series(1, 20000)")
        behind = wait_for(lambda: (r := fresh()).standbys[0].bytes_behind and r, "bytes behind")
        assert behind.standbys[0].bytes_behind > 0
        settings.VOUCH_PG_MAX_LAG_SECONDS = 1
        items = wait_for(
            lambda: (i := replication.assess([fresh()]))["replication"]["state"] == "degraded" and i,
            "degraded by lag",
        )
        assert "more than 1 s behind: standby-eu-1" in items["replication"]["detail"]
        standby.execute("SELECT pg_wal_replay_resume()")
        settings.VOUCH_PG_MAX_LAG_SECONDS = 60

        standby.stop()
        items = wait_for(
            lambda: (i := replication.assess([fresh()]))["replication"]["state"] == "degraded" and i,
            "degraded without the standby",
        )
        assert items["replication"]["detail"] == "0 standbys streaming (1 expected)"
    finally:
        remove(standby)


def test_healthz_never_waits_for_a_server_that_stopped_answering(watched, settings, monkeypatch):
    """A region whose server accepts connections but never answers (hung, or a network
    that drops packets): /healthz answers from the last readings while a background
    thread waits for it."""
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)  # connections complete in the kernel; nobody ever answers them
    settings.VOUCH_REGIONS = ["eu", "us"]
    us_url = f"postgres://postgres@127.0.0.1:{hung.getsockname()[1]}/postgres"
    us = {"database_url": us_url, "dir": "/nonexistent"}
    settings.VOUCH_REGION_CONFIG = {**settings.VOUCH_REGION_CONFIG, "us": us}
    try:
        started = time.monotonic()
        items = replication.health()  # the first answer has to read
        first = time.monotonic() - started
        assert first >= replication.CONNECT_TIMEOUT_SECONDS - 0.5
        assert items["archiving"]["state"] == "degraded"
        assert "region us: cannot connect" in items["archiving"]["detail"]
        assert str(hung.getsockname()[1]) not in str(items)  # /healthz is public: no addresses
        last = replication.recent_readings()
        assert replication.recent_readings() is last  # within CACHE_SECONDS: not read again

        monkeypatch.setattr(replication, "CACHE_SECONDS", 0.0)
        started = time.monotonic()
        assert replication.health() == items  # expired: the old answer, at once, and a refresh starts
        assert time.monotonic() - started < 1.0
        wait_for(lambda: replication.recent_readings() is not last, "the background refresh", timeout=30)
    finally:
        hung.close()


@pytest.mark.django_db
def test_backup_status_prints_each_server_and_exits_1_when_degraded(watched, settings, capsys):
    from vouch.cli import main

    settings.VOUCH_PG_STANDBYS = 0
    assert main(["backup", "status"]) == 0
    out = capsys.readouterr().out
    assert f"control, region eu (127.0.0.1:{watched.primary.port})" in out
    assert "standbys: none" in out
    assert "archive_mode: on" in out
    assert "Status: ok" in out

    settings.VOUCH_PG_STANDBYS = 1  # one is expected, none is there
    assert main(["backup", "status"]) == 1
    out = capsys.readouterr().out
    assert "replication  degraded  0 standbys streaming (1 expected)" in out
    assert "Status: degraded (replication)" in out


def test_point_in_time_restore_from_the_archive(watched):
    """The archive is usable: a full backup plus WAL restores to a moment between two
    commits, the first there, the second not."""
    primary, backrest = watched.primary, watched.backrest
    started = time.monotonic()
    backrest.run("--type=full", "backup")
    backup_seconds = time.monotonic() - started
    # pgBackRest picks the backup that stopped before the target, its stop time in whole
    # seconds: the target must be in a later second than that.
    (info,) = json.loads(backrest.run("info", "--output=json"))
    stopped = max(backup["timestamp"]["stop"] for backup in info["backup"])
    wait_for(
        lambda: primary.execute("SELECT extract(epoch FROM clock_timestamp())")[0][0] > stopped + 1, "a later second"
    )
    primary.execute("CREATE TABLE notes (note text)")
    primary.execute("INSERT INTO notes VALUES ('before')")
    target = primary.execute("SELECT clock_timestamp()::text")[0][0]
    primary.execute("INSERT INTO notes VALUES ('after')")
    # Recovery must read past the target: the segment with the second commit is archived.
    segment = watched.switch_wal()
    wait_for(lambda: fresh().archiver.last_archived_wal >= segment, f"{segment} archived")

    restored = PrivatePostgres(root=private_root("vouch-pg-restore-"), bin=primary.bin, port=free_port())
    try:
        started = time.monotonic()
        backrest.run(
            f"--pg1-path={restored.data}", "--type=time", f"--target={target}", "--target-action=promote", "restore"
        )
        restored.configure({"archive_mode": "off"})  # a copy: it must not archive into the primary's stanza
        restored.start()
        wait_for(lambda: restored.execute("SELECT NOT pg_is_in_recovery()")[0][0], "the restored copy promoted")
        print(
            f"\nfull backup {backup_seconds:.1f} s; restore to {target} and recovery {time.monotonic() - started:.1f} s"
        )
        assert restored.execute("SELECT note FROM notes") == [("before",)]
    finally:
        with contextlib.suppress(Exception):
            remove(restored)
        shutil.rmtree(restored.root, ignore_errors=True)
