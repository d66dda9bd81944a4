"""Helpers for the mirror's tests: real `vouch serve` / `vouch mirror run` processes,
real Litestream, direct writes to the SQLite files, restores through
vouch.backups.mirror.restore_database in the server's own environment."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.live import VOUCH


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def company_database(data_dir: Path, company_id: str, region: str = "eu") -> Path:
    return data_dir / "regions" / region / "companies" / f"{company_id}.sqlite3"


def django(env: dict[str, str], code: str, timeout: float = 120) -> str:
    """Run Python with Django set up in ``env``; its stdout."""
    script = "import django\ndjango.setup()\n" + textwrap.dedent(code)
    full = {**env, "DJANGO_SETTINGS_MODULE": "vouch.settings", "VOUCH_LOG_LEVEL": "WARNING"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=full, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"Django snippet failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def restore(env: dict[str, str], source: Path, to: Path, at: str | None = None) -> dict:
    """restore_database(source, to, at) in ``env``: {"ok": path} or {"error": class, "message": text}."""
    output = django(
        env,
        f"""
        import json
        from datetime import datetime
        from pathlib import Path
        from vouch.backups.mirror import RestoreError, restore_database
        at = datetime.fromisoformat({at!r}) if {at!r} else None
        try:
            done = restore_database(Path({str(source)!r}), Path({str(to)!r}), at)
            print(json.dumps({{"ok": str(done)}}))
        except RestoreError as exc:
            print(json.dumps({{"error": type(exc).__name__, "message": str(exc)}}))
        """,
    )
    return json.loads(output.strip().splitlines()[-1])


def probe_rows(database: Path) -> list[int]:
    connection = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)
    try:
        return [row[0] for row in connection.execute("SELECT n FROM mirror_probe ORDER BY n")]
    except sqlite3.OperationalError:
        return []
    finally:
        connection.close()


class Writer:
    """Committed writes straight into an SQLite database, each one's commit time kept."""

    def __init__(self, database: Path) -> None:
        self.connection = sqlite3.connect(database, timeout=20, isolation_level=None, check_same_thread=False)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.execute("CREATE TABLE IF NOT EXISTS mirror_probe (n INTEGER PRIMARY KEY, payload BLOB)")
        self.committed: dict[int, float] = {}
        row = self.connection.execute("SELECT max(n) FROM mirror_probe").fetchone()
        self.next = (row[0] or 0) + 1

    def write(self, payload_bytes: int = 200) -> int:
        n = self.next
        self.connection.execute("BEGIN IMMEDIATE")
        self.connection.execute("INSERT INTO mirror_probe VALUES (?, ?)", (n, os.urandom(payload_bytes)))
        self.connection.execute("COMMIT")
        self.committed[n] = time.time()  # returned from COMMIT: the write is durable in the WAL
        self.next += 1
        return n

    def close(self) -> None:
        self.connection.close()


def restored_rows(env: dict[str, str], source: Path, scratch: Path) -> list[int]:
    """The probe rows in a fresh restore of ``source`` from its mirror ([] if none yet)."""
    target = scratch / f"restore-{time.monotonic_ns()}.sqlite3"
    outcome = restore(env, source, target)
    if "ok" not in outcome:
        return []
    return probe_rows(target)


def mirror_state(data_dir: Path) -> dict:
    try:
        return json.loads((data_dir / "mirror-state.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def start_mirror_run(env: dict[str, str], log: Path) -> subprocess.Popen:
    """`vouch mirror run` in its own process group."""
    return subprocess.Popen(
        [str(VOUCH), "mirror", "run"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def mirror_health(server) -> dict:
    """The mirror's health: its state as /healthz shows it (states only: the page is
    public) and its detail as `vouch backup status` reads it, in the server's environment."""
    from tests.server import helpers

    response = helpers.request(server, "GET", "/healthz")
    assert response.status == 200, "the app server must keep answering whatever the mirror's state"
    state = json.loads(response.body)["data_safety"]["mirror"]
    output = django(server.env, "import json\nfrom vouch.backups import health\nprint(json.dumps(health.report()))")
    detail = json.loads(output.strip().splitlines()[-1])["mirror"]
    return {"state": state, "detail": detail["detail"], "reported": detail["state"]}
