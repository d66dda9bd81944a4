"""The mirror's cost as companies grow: only recently written company databases are live
in Litestream.

Measured (bench/mirror_scale.py, docs/mirroring.md "Cost as companies grow"): each
database Litestream replicates costs about 0.55 MB resident, 6 open files and, at its
1 s polling, 0.07% of a core, whether or not anybody writes to it. With directory
replication over 10,000 companies that is 5.5 GB, 60,000 open files (more than a
typical limit: Litestream then fails) and several cores, all spent watching databases
that do not change. Sharding into more processes divides the open files but not the
memory or the polling.

So a region's company databases are not given to Litestream as a directory. Instead
:class:`LiveSet` keeps in Litestream only those written in the last ``idle_after``
seconds, through Litestream's control socket (``register`` / ``unregister``), and:

- learns of every write from one inotify watch per companies directory (SQLite appends
  to ``<id>.sqlite3-wal`` on each commit), so an idle company costs nothing at all;
- on the first write to a database not live, registers it and has it copied at once
  (``sync`` with wait), so that write is in the mirror within milliseconds;
- on every later write, asks for a sync at once too, rather than waiting for
  Litestream's next look: the recovery point follows the writes, not a polling period;
- after ``idle_after`` seconds without a write, unregisters it: Litestream uploads what
  it has and lets go (its files, memory and polling). The mirror then holds everything
  the database holds, and nothing changes until the next write brings it back;
- records, for each database let go, its files' sizes and times (a signature) in a
  state file, so that after a restart only databases changed since are copied again
  (the first start copies each once, ``max_live`` at a time);
- looks at every file again every ``sweep_every`` seconds and after an inotify queue
  overflow, in case an event was missed; without inotify (not Linux) that look is
  every ``POLL_EVERY`` seconds and is the only way writes are found;
- never holds more than ``max_live`` databases: the one written longest ago goes first
  (after its upload), so a burst over every company (``vouch tenants migrate``) costs
  time, not memory or open files beyond the limit;
- re-registers its live databases when Litestream was restarted (it compares with
  Litestream's own list every ``RECONCILE_EVERY`` seconds).
- checks each database's copy when it lets it go, in a thread of its own: the copy
  restored and compared table by table with the database (vouch.backups.mirror_verify);
  a copy found different is logged, counted, removed and uploaded whole again.

The control database, and anything else given to Litestream by path, stays in the
configuration as it is. :func:`live_config` turns the directory-replication
configuration of vouch.backups.mirror.plan into this one; :func:`live_set` makes the
LiveSet for it. The supervisor runs ``LiveSet.run(stop)`` in a thread beside the
Litestream process."""

from __future__ import annotations

import contextlib
import fnmatch
import http.client
import itertools
import json
import os
import queue
import resource
import select
import socket
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from vouch.backups import inotify, mirror_verify
from vouch.backups.mirror.plan import litestream_url
from vouch.objectstore import join

log = structlog.get_logger(__name__)

# A database not written for this long leaves Litestream (5 min: its checkpoint, 1 min
# after the last write, and its first compaction, at 30 s, happen before).
IDLE_AFTER = 300.0
SWEEP_EVERY = 300.0  # every file looked at again, in case an event was missed
POLL_EVERY = 2.0  # the same when inotify is not available: the only way writes are found
RECONCILE_EVERY = 5.0  # Litestream's list compared with ours (a restarted Litestream has none)
SYNC_DELAY = 0.02  # writes within this of each other share one sync
# A live database is synced at most this often. Each sync is a Litestream upload (an LTX
# file, then its compaction): at one per commit burst a busy company's autosaves kept
# Litestream at about 30% of a core and cost the server a quarter of its throughput
# (bench/mirror.py). Spaced like this the recovery point grows by at most this much.
SYNC_EVERY = 0.25
# inotify events are read at most this often. SQLite writes a commit's WAL frames in
# several writes, each an event; unread, the kernel merges an event with the identical
# one before it, so a pause between reads turns a burst of commits into a few events.
# Read at once, they cost the live set's thread about 10% of a core under one busy
# company's autosaves (bench/mirror.py).
EVENT_BATCH = 0.05
NEW_FILE_DELAY = 0.25  # a file just created may not be a whole database yet (as Litestream's own watcher waits)
RETRY_DELAY = 2.0
WORKERS = 4  # control-socket calls at once (a sync waits for its upload)
FILES_PER_DATABASE = 8  # measured: 6 (the database three times, its WAL and shared memory, an LTX file)
MAX_LIVE = 1500  # about 0.55 MB each: 1,500 live stay under 1 GB
STATE_VERSION = 2
STATE_FILE = "mirror-live.json"  # in VOUCH_DATA_DIR: the databases let go, as they were then
_LOOK_AHEAD = 256  # queued databases looked at per turn (a start-up queue may hold every one)

_WATCH_MASK = inotify.IN_MODIFY | inotify.IN_CREATE | inotify.IN_MOVED_TO | inotify.IN_DELETE | inotify.IN_MOVED_FROM


class LitestreamUnavailable(ConnectionError):
    """Litestream's control socket does not answer (not started yet, or restarting)."""


class ControlError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


def default_max_live() -> int:
    """MAX_LIVE, or fewer when the open-files limit would not hold that many."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        return MAX_LIVE
    return max(1, min(MAX_LIVE, (hard - 256) // FILES_PER_DATABASE))


def socket_path(data_dir: Path) -> Path:
    """Where Litestream's control socket goes: in the data directory, unless that path is
    too long for a Unix socket (about 100 bytes); then in a private temporary directory."""
    path = Path(data_dir) / "litestream.sock"
    if len(os.fsencode(path)) < 100:
        return path
    return Path(tempfile.mkdtemp(prefix="vouch-ls-")) / "litestream.sock"


# --- Litestream's control socket ------------------------------------------------------------


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("litestream", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


class Control:
    """Litestream's control socket (``socket: {enabled: true}`` in its configuration)."""

    def __init__(self, path: Path, timeout: float = 60.0) -> None:
        self.path = str(path)
        self.timeout = timeout

    def call(self, method: str, route: str, body: dict | None = None) -> dict:
        connection = _UnixConnection(self.path, self.timeout)
        try:
            try:
                payload = json.dumps(body) if body is not None else None
                connection.request(method, route, body=payload, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                data = response.read()
            except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, BrokenPipeError) as exc:
                raise LitestreamUnavailable(f"Litestream's control socket {self.path}: {exc}") from exc
        finally:
            connection.close()
        try:
            answer = json.loads(data or b"{}")
        except ValueError:
            answer = {"error": data[:200].decode(errors="replace")}
        if response.status >= 400:
            raise ControlError(response.status, str(answer.get("error") or answer))
        return answer

    def register(self, database: Path, replica_url: str) -> dict:
        return self.call("POST", "/register", {"path": str(database), "replica_url": replica_url})

    def unregister(self, database: Path) -> dict:
        return self.call("POST", "/unregister", {"path": str(database), "timeout": int(self.timeout)})

    def sync(self, database: Path) -> dict:
        """Copy what the WAL has now into the mirror, and wait for the upload."""
        return self.call("POST", "/sync", {"path": str(database), "wait": True, "timeout": int(self.timeout)})

    def registered(self) -> set[str]:
        return {entry["path"] for entry in self.call("GET", "/list").get("databases", [])}


# --- what is watched ------------------------------------------------------------------------


@dataclass(frozen=True)
class Watched:
    """A directory of databases, each copied to ``replica(path)`` (a Litestream replica URL)."""

    directory: Path
    replica_base: str  # a store URL (directory or s3://); database X goes to join(base, X)
    pattern: str = "*.sqlite3"

    def replica(self, database: Path) -> str:
        return litestream_url(self.store_url(database))

    def store_url(self, database: Path) -> str:
        """Where ``database``'s copy is, as a store URL (vouch.objectstore)."""
        # The same place directory replication would use (<base>/<file name>/), so
        # restore, lag and purge find a company's copy wherever it was made.
        return join(self.replica_base, database.name)

    def matches(self, name: str) -> bool:
        return not name.startswith(".") and fnmatch.fnmatchcase(name, self.pattern)


def live_config(config: dict, socket: Path) -> tuple[dict, list[Watched]]:
    """From a directory-replication configuration (vouch.backups.mirror.plan.config()):
    the configuration for a live set (every ``dir`` entry out, the control socket on)
    and what the LiveSet must watch in their place."""
    kept, watched = [], []
    for entry in config.get("dbs", []):
        if "dir" not in entry:
            kept.append(entry)
            continue
        replica = entry["replica"]
        if replica.get("type") == "s3":
            base = f"s3://{replica['bucket']}/{replica.get('path', '')}".rstrip("/")
            query = {key: replica[key] for key in ("endpoint", "region") if replica.get(key)}
            if query:
                base += "?" + "&".join(f"{key}={value}" for key, value in query.items())
        else:
            base = replica["path"]
        litestream_url(base)  # refuses what Litestream could not take
        watched.append(Watched(Path(entry["dir"]), base, entry.get("pattern", "*.sqlite3")))
    # 0600: the socket can stop the copying of any database.
    live = dict(config) | {"dbs": kept, "socket": {"enabled": True, "path": str(socket), "permissions": 0o600}}
    return live, watched


def signature(database: Path) -> list | None:
    """What changes when a database is written: its file's identity and size, and its
    WAL's size and time (every commit writes to the WAL). Not the database file's time:
    a checkpoint changes it (Litestream's own, even after letting go) without changing
    what the database holds. None when it is gone."""
    try:
        db = os.stat(database)
    except FileNotFoundError:
        return None
    try:
        wal = os.stat(f"{database}-wal")
        wal_part = [wal.st_size, wal.st_mtime_ns]
    except FileNotFoundError:
        wal_part = None
    return [db.st_ino, db.st_size, wal_part]


# --- the live set -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Database:
    path: Path
    watched: Watched
    live: bool = False
    busy: bool = False  # a call to Litestream for it is under way
    action: str = ""  # which
    dirty: bool = False  # written since its last copy began
    gone: bool = False  # its file was removed
    replaced: bool = False  # a new file under its name (a restore): Litestream must open it again
    catch_up: bool = False  # copied once at start-up because it changed while nobody watched
    first_write: float = 0.0  # monotonic: the first write not yet copied
    synced_at: float = -float("inf")  # monotonic: when its last sync was asked for
    joined_at: float = -float("inf")  # monotonic: when Litestream last took it up
    last_write: float = 0.0  # monotonic
    not_before: float = 0.0  # no call before this (a new file settling, a retry)
    signature: list | None = None  # when let go: its files as they were then
    heal: bool = False  # its copy was found wrong: to be removed and made again
    seen: list | None = None  # polling only: its files at the last look


@dataclass
class Counters:
    registered: int = 0
    unregistered: int = 0
    syncs: int = 0
    evicted: int = 0
    errors: int = 0
    sweeps: int = 0
    overflows: int = 0
    last_error: str = ""
    # From the first write to a database that was not live to that write in the mirror.
    wake_ms: deque = field(default_factory=lambda: deque(maxlen=1000))
    # Checks of a copy against its database on let-go (vouch.backups.mirror_verify).
    verified: int = 0  # found equal
    diverged: int = 0  # found different (and healed)
    unsure: int = 0  # written during the check: checked at its next let-go
    healed: int = 0
    verify_ms: deque = field(default_factory=lambda: deque(maxlen=1000))


class LiveSet:
    """Keeps the recently written databases of ``watched`` directories live in one
    Litestream (see the module's description); :meth:`run` until ``stop`` is set. All
    bookkeeping happens in run()'s thread; the calls to Litestream in a few workers."""

    def __init__(
        self,
        control: Control,
        watched: list[Watched],
        *,
        state_file: Path | None = None,
        idle_after: float = IDLE_AFTER,
        sweep_every: float = SWEEP_EVERY,
        sync_every: float = SYNC_EVERY,
        max_live: int | None = None,
        workers: int = WORKERS,
        use_inotify: bool = True,
        verify: bool = True,
        scratch: Path | None = None,
    ) -> None:
        self.control = control
        self._probe = Control(Path(control.path), timeout=5.0)  # for the reconcile, which must not hang run()
        self.watched = list(watched)
        self.state_file = state_file
        self.idle_after = idle_after
        self.sweep_every = sweep_every
        self.sync_every = sync_every
        self.max_live = max_live or default_max_live()
        self.workers = workers
        self.use_inotify = use_inotify
        self.polling = not use_inotify
        self.counters = Counters()
        self.databases: dict[Path, _Database] = {}
        self.live: set[Path] = set()
        self.ready = threading.Event()  # the first look at every file is done
        # Databases that may need a call, in order (dicts as sets that keep order): writes
        # and results first, then the start-up backlog of databases never copied or
        # changed while nobody watched (which must not hold up a live one's sync).
        self._want: dict[Path, None] = {}
        self._backlog: dict[Path, None] = {}
        self._evicting: set[Path] = set()  # let go to make room, not yet asked
        self._results: queue.Queue = queue.Queue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._in_flight = 0
        self._joining = 0  # registrations under way
        self._leaving = 0  # unregistrations under way
        self._by_wd: dict[int, Watched] = {}
        self._verifier = mirror_verify.Verifier(self.counters, scratch, self._wake) if verify else None
        self._state_dirty = False
        self._state_written = 0.0
        self._events_read_at = self._events_since = 0.0  # monotonic: the last two reads of events

    # --- public ---------------------------------------------------------------------------

    def summary(self) -> dict:
        """Counts for the supervisor's state file and ``vouch mirror status``."""
        counters = self.counters
        wake, checks = sorted(counters.wake_ms), sorted(counters.verify_ms)
        return {
            "databases": len(self.databases),
            "live": len(self.live),
            # Databases waiting for a call, and calls under way: 0 and 0 once all is copied.
            "waiting": len(self._want) + len(self._backlog),
            "in_flight": self._in_flight,
            "max_live": self.max_live,
            "idle_after": self.idle_after,
            "watching": "polling" if self.polling else "inotify",
            "registered": counters.registered,
            "unregistered": counters.unregistered,
            "syncs": counters.syncs,
            "evicted": counters.evicted,
            "errors": counters.errors,
            "last_error": counters.last_error,
            "wake_ms_p50": round(wake[len(wake) // 2], 1) if wake else None,
            "verified": counters.verified,
            "diverged": counters.diverged,
            "unsure": counters.unsure,
            "healed": counters.healed,
            "verify_ms_p50": round(checks[len(checks) // 2], 1) if checks else None,
        }

    def run(self, stop: threading.Event) -> None:
        watcher = self._start_watching()
        sweep_every = POLL_EVERY if self.polling else self.sweep_every
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="vouch-mirror-live")
        if self._verifier is not None:
            self._verifier.start()
        try:
            self._sweep(recorded=self._read_state())
            self.ready.set()
            now = time.monotonic()
            next_sweep, next_reconcile, next_idle = now + sweep_every, now + RECONCILE_EVERY, now + 1.0
            events_at = now  # when the inotify queue is read next
            while not stop.is_set():
                deadline = min(next_sweep, next_reconcile, next_idle)
                fds = [self._wake_r]
                if watcher is not None:
                    if time.monotonic() >= events_at:
                        fds.append(watcher.fd)
                    else:
                        deadline = min(deadline, events_at)
                ready, _, _ = select.select(fds, [], [], self._timeout(deadline))
                if self._wake_r in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                if watcher is not None and watcher.fd in ready:
                    events_at = time.monotonic() + EVENT_BATCH
                    if self._on_events(watcher.read(0)):
                        next_sweep = 0.0  # the kernel's queue overflowed: events were lost
                self._collect()
                now = time.monotonic()
                if now >= next_sweep:
                    self._sweep()
                    next_sweep = now + sweep_every
                if now >= next_reconcile:
                    self._reconcile()
                    next_reconcile = now + RECONCILE_EVERY
                if now >= next_idle:
                    for path in self.live:
                        self._want[path] = None  # _next_action says whether it is idle
                    next_idle = now + 1.0
                self._dispatch(pool)
                self._write_state()
        finally:
            if self._verifier is not None:
                self._verifier.stop()
            pool.shutdown(wait=True)
            self._collect()
            self._write_state(force=True)
            if watcher is not None:
                watcher.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    # --- watching ---------------------------------------------------------------------------

    def _start_watching(self) -> inotify.Inotify | None:
        for item in self.watched:
            item.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.use_inotify:
            return None
        try:
            watcher = inotify.Inotify()
            for item in self.watched:
                self._by_wd[watcher.watch(item.directory, _WATCH_MASK)] = item
        except OSError as exc:
            log.warning("mirror: no inotify; looking at every database file instead", every=POLL_EVERY, error=str(exc))
            self.polling = True
            return None
        return watcher

    def _on_events(self, events: list[inotify.Event]) -> bool:
        """Note writes, new and removed files; True on a queue overflow."""
        overflow = False
        now = time.monotonic()
        # Events are read in batches: one read now may hold writes made at any time since
        # the read before (see _written).
        self._events_since, self._events_read_at = self._events_read_at, now
        for event in events:
            if event.mask & inotify.IN_Q_OVERFLOW:
                overflow = True
                self.counters.overflows += 1
                continue
            item = self._by_wd.get(event.wd)
            if item is None or not event.name:
                continue
            if event.name.endswith("-wal"):
                # SQLite appends each commit to the WAL: something to copy.
                path = item.directory / event.name[:-4]
                known = self.databases.get(path)
                if known is not None and known.gone and not path.exists():
                    continue  # Litestream letting go of a removed database touches its WAL
                if event.mask & inotify.IN_MODIFY and item.matches(path.name):
                    self._written(item, path, now, events_since=self._events_since)
            elif item.matches(event.name):
                path = item.directory / event.name
                if event.mask & (inotify.IN_CREATE | inotify.IN_MOVED_TO):
                    # A new company, or a database put back by a restore: copied whole.
                    self._written(item, path, now, settle=NEW_FILE_DELAY, replaced=True)
                elif event.mask & (inotify.IN_DELETE | inotify.IN_MOVED_FROM):
                    self._removed(path)
                # IN_MODIFY of the database file itself is a checkpoint: what the WAL held,
                # copied already (Litestream's own checkpoint on letting go included).
        return overflow

    def _database(self, item: Watched, path: Path) -> _Database:
        db = self.databases.get(path)
        if db is None:
            db = self.databases[path] = _Database(path, item)
        return db

    def _written(
        self,
        item: Watched,
        path: Path,
        now: float,
        *,
        settle: float = 0.0,
        replaced: bool = False,
        backlog: bool = False,
        events_since: float | None = None,
    ) -> None:
        db = self._database(item, path)
        if not db.dirty:
            db.dirty = True
            db.first_write = now
            soonest = now + (settle or SYNC_DELAY)
            if db.live and not replaced:
                soonest = max(soonest, db.synced_at + self.sync_every)
            db.not_before = max(db.not_before, soonest)
        if replaced and db.live:
            db.replaced = True
        db.gone = False
        taken_up = db.busy and db.action in ("register", "reopen")
        if not (taken_up or (events_since is not None and db.joined_at > events_since)):
            # Not while Litestream takes it up, nor for events that may date from then
            # (read after it): its first look writes its own two tables into a database it
            # never had. That is no reason to keep it live (at 10,000 companies, counting
            # it kept the first copy's databases live and cost 6,000 extra registrations).
            # Its write is still copied (dirty); only its idle clock is not reset.
            db.last_write = now
            # Chosen to make room but written since: no longer the one written longest
            # ago, so it is synced and stays; the next turn chooses again. Left in
            # _evicting, it would hold the waiting database out until it went idle.
            self._evicting.discard(path)
        if backlog:
            self._backlog[path] = None
        else:
            self._backlog.pop(path, None)
            self._want[path] = None

    def _removed(self, path: Path) -> None:
        db = self.databases.get(path)
        if db is None or path.exists():
            return
        db.gone, db.dirty = True, False
        self._want[path] = None

    def _sweep(self, recorded: dict | None = None) -> None:
        """Every file looked at: new ones, removed ones, and those changed while not live
        (or, when polling, at all). ``recorded``: at start-up, the state file's signatures."""
        self.counters.sweeps += 1
        now, wall = time.monotonic(), time.time()
        seen: set[Path] = set()
        for item in self.watched:
            try:
                entries = [entry for entry in os.scandir(item.directory) if item.matches(entry.name)]
            except FileNotFoundError:
                continue
            for entry in entries:
                path = item.directory / entry.name
                seen.add(path)
                current = signature(path)
                if current is None:
                    continue
                db = self.databases.get(path)
                if db is None:
                    db = self._database(item, path)
                    db.seen = current
                    if recorded is not None and recorded.get(str(path)) == current:
                        db.signature = current  # in the mirror before, unchanged since
                        continue
                    # Never copied, or changed while nobody watched: copied once, and it
                    # stays live only if it was written within idle_after.
                    db.catch_up = True
                    self._written(item, path, now, backlog=True)
                    db.last_write = now - max(0.0, wall - _modified(path))
                elif db.busy or db.dirty:
                    pass
                elif not db.live and current != db.signature:
                    self._written(item, path, now)
                elif db.live and self.polling and current[2] != (db.seen or [None] * 3)[2]:
                    self._written(item, path, now)  # polling: a commit to a live database
                db.seen = current
        for path, db in list(self.databases.items()):
            if path not in seen and not db.gone:
                self._removed(path)

    def _reconcile(self) -> None:
        """A restarted Litestream has none of our databases: they are registered again."""
        if not self.live:
            return
        try:
            registered = self._probe.registered()
        except (LitestreamUnavailable, ControlError, OSError):
            return
        for path in list(self.live):
            db = self.databases[path]
            if not db.busy and not db.gone and str(path) not in registered:
                self._set_live(db, False)
                self._written(db.watched, path, time.monotonic())

    # --- calls to Litestream -------------------------------------------------------------------

    def _set_live(self, db: _Database, live: bool) -> None:
        db.live = live
        if live:
            self.live.add(db.path)
        else:
            self.live.discard(db.path)
            self._evicting.discard(db.path)  # out already (a restarted Litestream)

    def _timeout(self, deadline: float) -> float:
        now = time.monotonic()
        if (self._want or self._backlog) and self._in_flight < self.workers:
            head = itertools.chain(*(itertools.islice(line, _LOOK_AHEAD) for line in (self._want, self._backlog)))
            waits = [db.not_before for path in head if (db := self.databases.get(path)) and not db.busy]
            deadline = min([deadline, *waits]) if waits else deadline
        return max(0.0, min(deadline - now, 1.0))

    def _next_action(self, db: _Database, now: float) -> str | None:
        if db.gone:
            return "unregister" if db.live else "forget"
        if now < db.not_before and (db.dirty or db.replaced or db.heal):
            return "later"
        if db.heal and not db.live:
            return "heal"
        if db.replaced:
            return "reopen"
        if db.dirty:
            return "sync" if db.live else "register"
        if db.live and now - db.last_write >= self.idle_after:
            return "unregister"
        return None

    def _dispatch(self, pool: ThreadPoolExecutor) -> None:
        now = time.monotonic()
        later: list[tuple[dict, Path]] = []
        turn = [(self._want, path) for path in itertools.islice(self._want, _LOOK_AHEAD)]
        turn += [(self._backlog, path) for path in itertools.islice(self._backlog, _LOOK_AHEAD)]
        for line, path in turn:
            if self._in_flight >= self.workers:
                break
            if path not in line:
                continue  # moved to the other line by an eviction this turn
            del line[path]
            db = self.databases.get(path)
            if db is None or db.busy:
                continue  # its result puts it back if need be
            action = self._next_action(db, now)
            if action is None:
                continue
            if action == "later":
                later.append((line, path))
                continue
            if action == "forget":
                del self.databases[path]
                self._state_dirty = True
                continue
            if action == "register" and not path.exists():
                db.gone = True  # removed before it could be copied: nothing to copy
                self._want[path] = None
                continue
            if action in ("register", "heal"):
                # A database being let go still holds its place in Litestream until the
                # let-go is done: counted, so Litestream never holds more than max_live.
                if len(self.live) + self._joining >= self.max_live:
                    later.append((line, path))
                    if self._leaving or self._evicting:
                        continue  # a place is being freed already
                    if not self._evict():
                        break  # every live one is busy: wait for one to finish
                    continue
                self._joining += 1
            if action == "unregister":
                self._leaving += 1
                self._evicting.discard(path)
            db.busy, db.action = True, action
            if action in ("register", "sync", "reopen", "heal"):
                db.dirty = db.replaced = False
                db.synced_at = now
            self._in_flight += 1
            pool.submit(self._act, db.path, db.watched, action, now, db.first_write)
        for line, path in later:
            line[path] = None

    def _evict(self) -> bool:
        """Let go of the live database written longest ago (it is uploaded first)."""
        candidates = [
            db for path in self.live - self._evicting if not (db := self.databases[path]).busy and not db.dirty
        ]
        if not candidates:
            return False
        oldest = min(candidates, key=lambda db: db.last_write)
        oldest.last_write = -float("inf")  # idle now
        self.counters.evicted += 1
        self._evicting.add(oldest.path)
        self._want[oldest.path] = None
        return True

    def _act(self, path: Path, item: Watched, action: str, started: float, first_write: float) -> None:
        """In a worker thread: the calls to Litestream; the result goes back to run()."""
        error: Exception | None = None
        try:
            if action in ("unregister", "reopen"):
                try:
                    self.control.unregister(path)
                except ControlError:
                    # Litestream takes a database out of its list before closing it; the
                    # close fails when the file was removed or replaced (its last upload
                    # then has nothing more to read). Out of the list is what was wanted.
                    if str(path) in self.control.registered():
                        raise
            if action == "heal":
                # Not registered (only a database let go is healed): its copy and
                # Litestream's state for it can go, and registering makes a new whole copy.
                mirror_verify.heal_files(path, item.replica_base)
            if action in ("register", "reopen", "heal"):
                answer = self.control.register(path, item.replica(path))
                if answer.get("status") not in ("registered", "already_registered"):
                    raise ControlError(500, str(answer))
            if action in ("register", "reopen", "sync", "heal"):
                self.control.sync(path)
        except Exception as exc:  # noqa: BLE001  (counted, logged and retried by run())
            error = exc
        after = signature(path) if action == "unregister" and error is None else None
        self._results.put((path, action, started, first_write, error, after, time.monotonic()))
        self._wake()

    def _wake(self) -> None:
        """From another thread: run() has results to collect."""
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b".")

    def _collect(self) -> None:
        self._collect_verdicts()
        while True:
            try:
                path, action, started, first_write, error, after, finished = self._results.get_nowait()
            except queue.Empty:
                return
            self._in_flight -= 1
            self._joining -= action in ("register", "heal")
            self._leaving -= action == "unregister"
            db = self.databases.get(path)
            if db is None:
                continue
            db.busy = False
            if error is not None:
                self._failed(db, action, error)
            elif action in ("register", "reopen", "heal"):
                self._set_live(db, True)
                db.joined_at = time.monotonic()
                self.counters.registered += 1
                if action == "heal":
                    db.heal = False
                    self.counters.healed += 1
                    log.info("mirror: copy made again", database=str(path))
                if action == "register" and not db.catch_up:
                    self.counters.wake_ms.append((finished - first_write) * 1000)
                db.catch_up = False
            elif action == "sync":
                self.counters.syncs += 1
            elif action == "unregister":
                self._set_live(db, False)
                self.counters.unregistered += 1
                db.signature = after
                self._state_dirty = True
                if db.last_write > started and not db.gone:
                    # Written while being let go: that write may have missed the last
                    # upload, so the database comes straight back.
                    self._written(db.watched, path, time.monotonic())
                elif not db.heal and not db.gone:
                    self._queue_verify(db)
            self._want[path] = None

    def _queue_verify(self, db: _Database) -> None:
        if self._verifier is not None and db.signature is not None:
            self._verifier.submit(db.path, db.watched.store_url(db.path), db.signature)

    def _collect_verdicts(self) -> None:
        if self._verifier is None:
            return
        for path in self._verifier.collect():
            db = self.databases.get(path)
            if db is None or db.gone:
                continue
            db.heal = True
            # Not recorded as copied: after a restart before the heal it is copied (and
            # so checked) again.
            db.signature = None
            self._state_dirty = True
            self._want[path] = None

    def _failed(self, db: _Database, action: str, error: Exception) -> None:
        self.counters.errors += 1
        self.counters.last_error = f"{action} {db.path.name}: {error}"
        if isinstance(error, LitestreamUnavailable) or (isinstance(error, ControlError) and error.status in (404, 409)):
            self._set_live(db, False)  # Litestream (restarted) does not have it: registered again
        if not isinstance(error, LitestreamUnavailable):
            log.warning("mirror: live set call failed", action=action, database=str(db.path), error=str(error))
        if action != "unregister" and not db.gone:
            db.dirty = True
            db.first_write = db.first_write or time.monotonic()
        db.not_before = time.monotonic() + RETRY_DELAY

    # --- state file ---------------------------------------------------------------------------

    def _read_state(self) -> dict:
        if self.state_file is None:
            return {}
        try:
            data = json.loads(self.state_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data.get("copied", {}) if data.get("version") == STATE_VERSION else {}

    def _write_state(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.state_file is None or not (force or (self._state_dirty and now - self._state_written >= 5.0)):
            return
        self._state_written, self._state_dirty = now, False
        # Only databases let go: their copy holds everything their files held then.
        copied = {
            str(path): db.signature
            for path, db in self.databases.items()
            if not db.live and not db.dirty and not db.busy and db.signature is not None
        }
        temporary = self.state_file.with_name(f".{self.state_file.name}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"version": STATE_VERSION, "copied": copied}, handle)
        os.replace(temporary, self.state_file)


def _modified(path: Path) -> float:
    times = []
    for candidate in (path, Path(f"{path}-wal")):
        with contextlib.suppress(FileNotFoundError):
            times.append(candidate.stat().st_mtime)
    return max(times, default=0.0)


def live_set(config: dict, data_dir: Path, **options) -> tuple[dict, LiveSet]:
    """The Litestream configuration and the LiveSet for a directory-replication
    configuration (vouch.backups.mirror.plan.config()): what the supervisor runs."""
    path = socket_path(data_dir)
    litestream_config, watched = live_config(config, path)
    options.setdefault("state_file", Path(data_dir) / STATE_FILE)
    # The checks' restores beside the data, not in a temporary directory that may be small.
    options.setdefault("scratch", Path(data_dir))
    return litestream_config, LiveSet(Control(path), watched, **options)
