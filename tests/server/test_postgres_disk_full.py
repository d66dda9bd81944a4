"""A full disk under PostgreSQL, for real: a private server whose tablespace is a tiny
tmpfs, filled. Its ``disk_full`` (SQLSTATE 53100) reaches Vouch as ``StorageFull`` (so no
``except DatabaseError``, such as Django's database cache, takes it for a lost race), and
/healthz names the storage for a while after."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db.utils import load_backend

from tests.live import free_port
from tests.server.test_disk_full import _fill, _mount_tmpfs
from vouch.core import diskfull

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)


def _unavailable(reason: str):
    message = f"the PostgreSQL full-disk test needs {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _as_postgres(*args: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def postgres_on_a_small_disk():
    if PG_BIN is None:
        _unavailable("PostgreSQL's binaries (/usr/lib/postgresql/*/bin)")
    mount_point = Path(tempfile.mkdtemp(prefix="vouch-pgdisk-"))
    reason = _mount_tmpfs(mount_point, size_mb=4)
    if reason:
        mount_point.rmdir()
        _unavailable(f"a filesystem of its own: {reason}")
    cluster = Path(tempfile.mkdtemp(prefix="vouch-pgdisk-cluster-"))
    port = free_port()
    try:
        shutil.chown(cluster, "postgres", "postgres")
        shutil.chown(mount_point, "postgres", "postgres")
        _as_postgres(str(PG_BIN / "initdb"), "-D", str(cluster / "data"), "-A", "trust", "-U", "postgres")
        options = f"-p {port} -k {cluster} -c listen_addresses=127.0.0.1 -c fsync=off"
        pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(cluster / "data")]
        _as_postgres(*pg_ctl, "-o", options, "-l", str(cluster / "log"), "-w", "start")
        yield port, mount_point
    finally:
        stop = [str(PG_BIN / "pg_ctl"), "-D", str(cluster / "data"), "-m", "immediate", "stop"]
        subprocess.run(["runuser", "-u", "postgres", "--", *stop], check=False, capture_output=True, timeout=60)
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        shutil.rmtree(mount_point, ignore_errors=True)
        shutil.rmtree(cluster, ignore_errors=True)


def _connection(port: int, name: str):
    settings = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": "127.0.0.1",
        "PORT": port,
        "OPTIONS": {},
        "ATOMIC_REQUESTS": False,
        "AUTOCOMMIT": True,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
        "TIME_ZONE": None,
        "TEST": {},
    }
    return load_backend(settings["ENGINE"]).DatabaseWrapper(settings, f"diskfull_{name}")


def test_postgres_disk_full_is_storage_full(postgres_on_a_small_disk, django_db_blocker):
    port, mount_point = postgres_on_a_small_disk

    def run() -> None:
        _fill_and_write(_connection(port, "postgres"), mount_point)

    # In a thread of its own, as a server's request thread: a browser test earlier in this
    # process leaves Playwright's event loop marked running in the main thread, where
    # Django refuses synchronous database calls. Failures are raised here by result().
    with django_db_blocker.unblock(), ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(run).result(timeout=120)


def _fill_and_write(admin, mount_point: Path) -> None:
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE TABLESPACE small LOCATION '{mount_point}'")
            cursor.execute("CREATE TABLE t (value text) TABLESPACE small")
            cursor.execute("ALTER TABLE t ALTER COLUMN value SET STORAGE EXTERNAL")
        filler = mount_point / "filler"
        _fill(filler)
        with pytest.raises(diskfull.StorageFull) as raised, admin.cursor() as cursor:
            # Not compressible and stored out of line: it needs new pages in the tablespace.
            cursor.execute("INSERT INTO t SELECT string_agg(md5(g::text), '') FROM generate_series(1, 20000) g")
        assert diskfull.is_storage_full(raised.value)
        assert raised.value.__cause__.__cause__.sqlstate == "53100"
        # PostgreSQL's disk is not one Vouch can measure: /healthz remembers the refusal.
        assert diskfull.storage_state(Path(tempfile.gettempdir())) == "full"
        filler.unlink()
        with admin.cursor() as cursor:
            cursor.execute("INSERT INTO t SELECT string_agg(md5(g::text), '') FROM generate_series(1, 20000) g")
    finally:
        admin.close()
        diskfull._postgres_full_at = 0.0
