"""One `vouch serve` per data directory.

Two servers on one data directory would run two workers and two purge schedules
over the same files. `vouch serve` takes an exclusive OS advisory lock
(``fcntl.flock``) on ``<data dir>/serve.lock`` and holds it for its whole life.
A lock, not a pid file alone: the kernel drops the lock when its holder dies, even
by SIGKILL, so a dead server never blocks a restart, and a reused pid can never be
mistaken for a running server. The file's text (pid, ports, start time) only tells
a refused second server who holds the lock.

The lock is about the local data directory (keys, outbox, certificate, SQLite
files). Several app servers sharing one PostgreSQL each have their own data
directory and are not affected."""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path

LOCK_NAME = "serve.lock"


class AlreadyRunning(Exception):
    """Another `vouch serve` holds the data directory."""


def _describe(path: Path) -> str:
    try:
        holder = json.loads(path.read_text())
        ports = f"HTTPS port {holder['https_port']}" + (
            f", HTTP port {holder['http_port']}" if holder.get("http_port") else ""
        )
        return f"pid {holder['pid']} ({ports}), started at {holder['started_at']}"
    except (OSError, ValueError, KeyError, TypeError):
        # The holder may be between taking the lock and writing its details.
        return "another process (its details are not written yet)"


def acquire(data_dir: Path, *, bind: str, https_port: int, http_port: str) -> int:
    """Take the data directory's lock; return the open file descriptor that holds it
    (keep it open until the server stops). Raises AlreadyRunning, naming the holder."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / LOCK_NAME
    # O_CLOEXEC: the servers and worker this process starts must not hold the lock
    # after it dies; it stops them itself (each in its own process group).
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AlreadyRunning(
            f"Vouch is already running on the data directory {data_dir}: {_describe(path)}.\n"
            "Stop that server first, or give this one another VOUCH_DATA_DIR."
        ) from None
    details = {
        "pid": os.getpid(),
        "bind": bind,
        "https_port": https_port,
        "http_port": int(http_port) if http_port else None,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(details) + "\n").encode(), 0)
    return fd
