"""Security events that could not be written because the storage was full: counted, and
recorded once there is room again (one ``audit_events_not_recorded`` event with the counts).

What can still be written on a full disk: nothing that needs a new block, but the bytes a
file already holds can be overwritten in place. So the counts go to a small spool file in
the data directory whose space is taken when a process starts (written out in full, not
a sparse file), while there is room; a count then rewrites it in place, the same size,
under an exclusive lock (``fcntl.flock``) shared by every process of the installation.
It survives a restart (an operator's first reaction to a full disk may be one), which a
count in memory would not. Each process also counts in memory what it could not put in
the file: the file could not be made (the disk was already full at start) or could not
be rewritten (copy-on-write filesystems such as btrfs and ZFS need new blocks even to
overwrite); those counts are lost if that process ends before space returns, and the
log says so when they are made.

Recorded: by the next security event recorded outside a transaction (in any process),
and by ``/healthz`` while the storage has room. The counts are taken under the lock and
the file cleared before the event is written; if writing it fails they are put back."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

log = logging.getLogger("vouch.audit")

NAME = "audit-unrecorded.json"
SIZE = 16 * 1024  # bytes: every action and outcome Vouch has, with room to spare
ACTIONS_TEXT_MAX = 200  # what a detail value holds (events.DETAIL_VALUE_MAX)

_lock = threading.Lock()
_memory: Counter[str] = Counter()
_memory_since: str | None = None


def path() -> Path:
    return Path(settings.DATA_DIR) / NAME


def prepare() -> None:
    """Make the spool file its full size now, while there is room (every process, at start)."""
    target = path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        log.warning("audit: could not create %s; events unrecorded for lack of space are counted in memory", NAME)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size < SIZE:
            # Real bytes, not ftruncate (a hole would need blocks when first written).
            os.pwrite(fd, b" " * (SIZE - size), size)
            os.fsync(fd)
    except OSError:
        log.warning("audit: could not reserve %s; events unrecorded for lack of space are counted in memory", NAME)
    finally:
        os.close(fd)  # closing releases the lock


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _read(fd: int) -> dict:
    raw = os.pread(fd, SIZE, 0).strip(b" \0")
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        log.error("audit: %s was unreadable and is reset", NAME)
        data = {}
    return data if isinstance(data, dict) else {}


def _write(fd: int, data: dict) -> None:
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode() if data else b""
    if len(blob) > SIZE:
        raise OSError("audit spool is full")
    # In place and the same size: no new block is needed.
    os.pwrite(fd, blob.ljust(SIZE, b" "), 0)
    os.fsync(fd)


def _merge(data: dict, counts: Counter[str], since: str | None) -> dict:
    merged = Counter(data.get("counts") or {})
    merged.update(counts)
    firsts = [value for value in (data.get("since"), since) if value]
    return {"since": min(firsts) if firsts else _now(), "counts": dict(merged)}


def _update(change) -> bool:
    """Apply ``change`` (data -> data) to the file under its lock; False if it cannot be."""
    try:
        fd = os.open(path(), os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_size < SIZE:
            return False  # never prepared: writing it would need new blocks
        before = _read(fd)
        after = change(before)
        if after != before:
            _write(fd, after)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def count(action: str, outcome: str) -> None:
    """One security event could not be written for lack of space: count it."""
    global _memory_since
    key = f"{action}:{outcome}"
    with _lock:
        if _update(lambda data: _merge(data, Counter({key: 1}), _now())):
            return
        if not _memory:
            _memory_since = _now()
        _memory[key] += 1
    log.error("audit: a %s event was not recorded (storage full) and is counted in this process's memory only", key)


def pending() -> bool:
    """Whether counts wait to be recorded: a cheap check (one byte read) for every append.
    An empty spool is all spaces; counts are JSON from its first byte."""
    if _memory:
        return True
    try:
        fd = os.open(_path_text(), os.O_RDONLY)
    except OSError:
        return False
    try:
        return os.pread(fd, 1, 0) == b"{"
    except OSError:
        return False
    finally:
        os.close(fd)


def _path_text() -> str:
    # os.open on a str: a Path built each time cost most of this check.
    return os.path.join(settings.DATA_DIR, NAME)


def _take() -> dict:
    global _memory_since
    taken: dict = {}

    def clear(data: dict) -> dict:
        taken.update(data)
        return {}

    with _lock:
        if not _update(clear):
            taken.clear()
        if _memory:
            taken = _merge(taken, _memory, _memory_since)
            _memory.clear()
            _memory_since = None
    return taken


def _give_back(taken: dict) -> None:
    global _memory_since
    counts = Counter(taken.get("counts") or {})
    with _lock:
        if _update(lambda data: _merge(data, counts, taken.get("since"))):
            return
        _memory.update(counts)
        _memory_since = min(filter(None, (_memory_since, taken.get("since"))), default=_now())


def flush():
    """Record what was counted, as one event; None when nothing was. Raises when it
    cannot be written (the counts are kept for the next try)."""
    if not pending():
        return None
    taken = _take()
    counts = Counter(taken.get("counts") or {})
    total = sum(counts.values())
    if not total:
        return None
    # imported here: audit.events imports this module (cycle inside the app)
    from vouch.audit.events import PLATFORM, record
    from vouch.audit.models import EventAction, Outcome

    actions = ", ".join(f"{key}={n}" for key, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    try:
        return record(
            EventAction.AUDIT_EVENTS_NOT_RECORDED,
            company=PLATFORM,
            outcome=Outcome.FAILURE,
            details={
                "reason": "storage_full",
                "not_recorded": total,
                "since": taken.get("since", ""),
                "until": _now(),
                "actions": actions[:ACTIONS_TEXT_MAX],
            },
        )
    except Exception:
        _give_back(taken)
        raise
