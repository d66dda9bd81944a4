"""Running Litestream: started, watched, restarted when it dies, stopped on shutdown.

``vouch serve`` runs one beside its worker (unless ``VOUCH_SERVE_MIRROR=0``); ``vouch
mirror run`` runs one in the foreground, for installations that run the mirror as its
own service. Either way one lock file in VOUCH_DATA_DIR lets only one Litestream copy
these databases: two writing the same replica would spoil it.

Company databases are not given to Litestream as directories: the live set
(vouch.backups.mirror_scale) keeps only those written in the last few minutes registered
through Litestream's control socket, in a thread beside it, so the mirror's cost follows
the active companies, not all of them. The control database stays in the configuration.

Litestream logs JSON lines; the supervisor reads them to record which databases it
cannot copy (a full or unreachable target) and when that recovers, in the state file
that ``health()`` reads (vouch.backups.mirror.state), with the live set's counts."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from django.conf import settings

from vouch import config
from vouch.backups import mirror_scale
from vouch.backups.mirror import plan, state

LOCK_NAME = "mirror.lock"
# A Litestream that dies is started again after RESTART_DELAY, doubling (up to
# RESTART_DELAY_MAX) while it keeps dying within a minute of its start.
RESTART_DELAY = 1.0
RESTART_DELAY_MAX = 30.0
# Litestream's messages when a database's copying works again after errors.
_RECOVERED = {"sync recovered", "replica sync recovered"}
# Litestream logs this when it lets go of a database whose file was removed (a purge, a
# lost file). Not a failure of the copy: the live set unregistered it, and registers a
# new file at that path (a restore) again itself.
_LET_GO = "unregister database from store"
# How long a stop waits for the live set's calls under way before stopping Litestream.
LIVE_STOP_SECONDS = 5.0
# How long the live set waits for Litestream's control socket before its first calls.
SOCKET_WAIT_SECONDS = 10.0


class MirrorBusy(RuntimeError):
    """Another process already runs the mirror of this data directory."""


def _first_pairs(pairs: list[tuple[str, object]]) -> dict:
    # Litestream's JSON lines may repeat a key ("level": the log level, then a
    # compaction level): the first is the logger's own.
    result: dict = {}
    for key, value in pairs:
        result.setdefault(key, value)
    return result


class MirrorProcess:
    """One supervised ``litestream replicate``; call :meth:`poll` every second or so."""

    def __init__(self, echo: IO[str] | None = None) -> None:
        self.echo = echo or sys.stderr
        self.items = plan.mirrored()
        self.binary = plan.litestream_binary()
        self._lock_fd = self._acquire_lock()
        try:
            # Directory replication's configuration, turned into the live set's: the
            # control database by path, the companies directories watched by the live set.
            litestream_config, self.live_set = mirror_scale.live_set(plan.config(), Path(settings.DATA_DIR))
            self.config_path = plan.write_config(litestream_config)
        except BaseException:
            self.release()
            raise
        self.socket = Path(self.live_set.control.path)
        self._live_stop = threading.Event()
        self._live_thread: threading.Thread | None = None
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.restart_at = 0.0
        self.delay = RESTART_DELAY
        self._mutex = threading.Lock()
        self._written_at = 0.0
        self.state: dict = {
            "supervisor_pid": os.getpid(),
            "config": str(self.config_path),
            "targets": [f"{item.name}: {item.source} -> {item.url}" for item in self.items],
            "restarts": 0,
            "running": False,
            "failing": {},
        }

    # --- lock ------------------------------------------------------------------------

    def _acquire_lock(self) -> int:
        path = Path(settings.DATA_DIR) / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = (state.read() or {}).get("supervisor_pid", "another process")
            raise MirrorBusy(f"the mirror of {settings.DATA_DIR} already runs (process {holder})") from None
        return fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None  # type: ignore[assignment]  # typing debt: an Optional not narrowed here

    # --- the process -----------------------------------------------------------------

    def start(self) -> None:
        # A Litestream killed leaves its socket behind; only this process (holding the
        # lock) runs one for this data directory, so it is stale.
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        command = [str(self.binary), "replicate", "-no-expand-env", "-config", str(self.config_path)]
        # Its own process group: stopping it stops only it, and a signal sent to the
        # supervisor's group (Ctrl-C) does not cut its last upload short.
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=plan.litestream_environment(),
            text=True,
            errors="replace",
        )
        self.started_at = time.time()
        threading.Thread(target=self._read_log, args=(self.process,), name="vouch-mirror-log", daemon=True).start()
        with self._mutex:
            self.state.update(pid=self.process.pid, running=True, started_at=self.started_at, problem="")
            self.state.pop("stopped_at", None)
        self._write()
        if self._live_thread is None:
            # Once: a restarted Litestream gets the live databases back from the live
            # set's comparison with Litestream's own list (every few seconds).
            self._live_thread = threading.Thread(target=self._run_live, name="vouch-mirror-live-set", daemon=True)
            self._live_thread.start()

    def _run_live(self) -> None:
        deadline = time.monotonic() + SOCKET_WAIT_SECONDS
        while not self.socket.exists() and time.monotonic() < deadline and not self._live_stop.wait(0.05):
            pass  # its first calls would only fail and wait to be retried
        try:
            self.live_set.run(self._live_stop)
        except Exception as exc:  # noqa: BLE001  (said, and in health: company databases are not copied)
            print(f"mirror: the live set stopped: {exc!r}", file=self.echo, flush=True)
            with self._mutex:
                self.state["problem"] = f"the live set stopped: {exc!r}"
                self.state["failing"]["live set"] = {"since": time.time(), "last": time.time(), "error": repr(exc)}
            self._write()

    def stop_live(self, timeout: float = LIVE_STOP_SECONDS) -> None:
        """Stop the live set (before Litestream: its last uploads are Litestream's)."""
        self._live_stop.set()
        if self._live_thread is not None:
            self._live_thread.join(timeout)

    def poll(self) -> None:
        """Restart a Litestream that died (after a delay); keep the state file fresh."""
        now = time.time()
        if self.process is not None and self.process.poll() is not None:
            code = self.process.returncode
            self.process = None
            # Dying again soon after a start waits twice as long each time; else 1 s again.
            delay = self.delay if now - self.started_at < 60 else RESTART_DELAY
            self.restart_at = now + delay
            self.delay = min(delay * 2, RESTART_DELAY_MAX)
            print(
                f"The mirror (Litestream) stopped (exit {code}); restarting it in {delay:.0f} s.",
                file=self.echo,
                flush=True,
            )
            with self._mutex:
                self.state.update(running=False, last_exit=code, last_exit_at=now)
                self.state["problem"] = self.state.get("problem") or f"the mirror process stopped (exit {code})"
            self._write()
        elif self.process is None and self.restart_at and now >= self.restart_at:
            self.restart_at = 0.0
            with self._mutex:
                self.state["restarts"] = self.state.get("restarts", 0) + 1
            self.start()
        elif now - self._written_at >= state.HEARTBEAT_SECONDS:
            self._write()

    def live(self) -> list[subprocess.Popen]:
        return [self.process] if self.process is not None else []

    def signal(self, sig: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Litestream (it uploads what it has first, for at most 5 s)."""
        self.stop_live()
        process = self.process
        if process is not None:
            self.signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                process.wait()
        self.stopped()

    def stopped(self) -> None:
        """Record a deliberate stop (health says "off", not "degraded")."""
        self.process = None
        # Litestream is gone: the live set's calls under way fail at once; it records
        # which databases it let go (copied whole) for the next start.
        self.stop_live(timeout=2.0)
        with self._mutex:
            self.state.update(running=False, stopped_at=time.time())
        self._write()
        self.release()

    # --- what Litestream says --------------------------------------------------------

    def _read_log(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._note(line.strip())

    def _note(self, line: str) -> None:
        if not line:
            return
        try:
            entry = json.loads(line, object_pairs_hook=_first_pairs)
        except ValueError:
            # Not a log line: Litestream refusing its configuration, or a crash.
            print(f"mirror: {line}", file=self.echo, flush=True)
            with self._mutex:
                self.state["problem"] = line[:500]
            return
        level, message = str(entry.get("level", "")), str(entry.get("msg", ""))
        database = str(entry.get("db") or Path(str(entry.get("path", ""))).name or "litestream")
        now = time.time()
        changed = False
        with self._mutex:
            failing = self.state["failing"]
            if message == _LET_GO:
                pass
            elif level in ("ERROR", "WARN"):
                error = str(entry.get("error") or message)
                previous = failing.get(database)
                failing[database] = {"since": previous["since"] if previous else now, "last": now, "error": error}
                changed = True
            elif message in _RECOVERED or message == "removed database from replication":
                changed = failing.pop(database, None) is not None
        if level in ("ERROR", "WARN") and message != _LET_GO:
            print(f"mirror: {message} ({database}): {entry.get('error', '')}".rstrip(": "), file=self.echo, flush=True)
        if changed:
            self._write()

    def _write(self) -> None:
        live = self._live_summary()
        with self._mutex:
            self.state["confirmed_at"] = time.time()
            if live is not None:
                self.state["live"] = live
            snapshot = json.loads(json.dumps(self.state))
        state.write(snapshot)
        self._written_at = snapshot["confirmed_at"]

    def _live_summary(self) -> dict | None:
        try:
            return self.live_set.summary()
        except RuntimeError:  # its counters changed under us (another thread): next time
            return None


def describe(items: list[plan.Mirrored]) -> str:
    return "\n".join(f"  {item.name}: {item.source} -> {item.url}" for item in items)


def start_for_serve(echo: IO[str] | None = None) -> MirrorProcess | None:
    """The mirror for ``vouch serve``, started; None (having said why) when there is none."""
    echo = echo or sys.stderr
    if not plan.mirrored():
        print(
            "Nothing is mirrored by Vouch: the databases are PostgreSQL, whose own replication keeps "
            "their copies (docs/mirroring.md).",
            file=echo,
            flush=True,
        )
        return None
    if not config.env_bool("VOUCH_SERVE_MIRROR", True):
        return None
    try:
        mirror = MirrorProcess(echo=echo)
    except MirrorBusy as exc:  # `vouch mirror run` has it: its state file says how it is
        print(f"The mirror is not started here: {exc}.", file=echo, flush=True)
        return None
    except plan.MirrorConfigError as exc:
        print(f"The mirror is not started: {exc}.", file=echo, flush=True)
        # Health says so (degraded) until a start with a usable configuration.
        state.write({"running": False, "refused": str(exc), "confirmed_at": time.time()})
        return None
    warning = plan.same_disk_warning()
    if warning:
        print(f"Warning: {warning}", file=echo, flush=True)
    mirror.start()
    return mirror


def cli_run(args) -> int:
    """``vouch mirror run``: the mirror in the foreground until SIGTERM or Ctrl-C."""
    items = plan.mirrored()
    if not items:
        print(
            "Nothing to mirror: the databases are PostgreSQL, whose own replication keeps their copies "
            "(docs/mirroring.md)."
        )
        return 0
    try:
        mirror = MirrorProcess()
    except MirrorBusy as exc:
        print(f"vouch mirror run: {exc}.", file=sys.stderr)
        return 1
    except plan.MirrorConfigError as exc:
        print(f"vouch mirror run: {exc}", file=sys.stderr)
        return 2
    warning = plan.same_disk_warning()
    if warning:
        print(f"Warning: {warning}", file=sys.stderr, flush=True)
    print(f"Mirroring (Litestream, config {mirror.config_path}):\n{describe(items)}", flush=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    mirror.start()
    try:
        while not stopping.wait(0.5):
            mirror.poll()
    finally:
        mirror.stop()
    return 0
