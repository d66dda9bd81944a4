"""Running Litestream: started, watched, restarted when it dies, stopped on shutdown.

``vouch serve`` runs one beside its worker (unless ``VOUCH_SERVE_MIRROR=0``); ``vouch
mirror run`` runs one in the foreground, for installations that run the mirror as its
own service. Either way one lock file in VOUCH_DATA_DIR lets only one Litestream copy
these databases: two writing the same replica would spoil it.

Litestream logs JSON lines; the supervisor reads them to record which databases it
cannot copy (a full or unreachable target) and when that recovers, in the state file
that ``health()`` reads (vouch.backups.mirror.state)."""

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

from vouch.backups.mirror import plan, state

LOCK_NAME = "mirror.lock"
# A Litestream that dies is started again after RESTART_DELAY, doubling (up to
# RESTART_DELAY_MAX) while it keeps dying within a minute of its start.
RESTART_DELAY = 1.0
RESTART_DELAY_MAX = 30.0
# Litestream's messages when a database's copying works again after errors.
_RECOVERED = {"sync recovered", "replica sync recovered"}
# Litestream 0.5 could not let go of a database whose file was removed under it (a
# purge, or a lost file): it then ignores a new file at that path (a restore) until it
# is restarted. The supervisor restarts it when it says so, after REOPEN_DELAY.
_STUCK = "unregister database from store"
REOPEN_DELAY = 0.5


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
        self.config_path = plan.write_config()
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.restart_at = 0.0
        self.delay = RESTART_DELAY
        self._mutex = threading.Lock()
        self._written_at = 0.0
        self.reopen_wanted = False
        self._reopening = self._reopened = False
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
            self._lock_fd = None

    # --- the process -----------------------------------------------------------------

    def start(self) -> None:
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

    def poll(self) -> None:
        """Restart a Litestream that died (after a delay); keep the state file fresh."""
        now = time.time()
        if self.reopen_wanted and self.process is not None and self.process.poll() is None:
            self.reopen_wanted = False
            self._reopening = True
            self.signal(signal.SIGTERM)
        if self.process is not None and self.process.poll() is not None and self._reopening:
            self._reopening = False
            self._reopened = True
            self.process = None
            self.restart_at = now + REOPEN_DELAY
            with self._mutex:
                self.state.update(running=False, reopened_at=now)
            self._write()
        elif self.process is not None and self.process.poll() is not None:
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
                counter = "reopens" if self._reopened else "restarts"
                self.state[counter] = self.state.get(counter, 0) + 1
            self._reopened = False
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
            if message == _STUCK:
                self.reopen_wanted = True  # not a failure of the copy: Litestream is restarted
            elif level in ("ERROR", "WARN"):
                error = str(entry.get("error") or message)
                previous = failing.get(database)
                failing[database] = {"since": previous["since"] if previous else now, "last": now, "error": error}
                changed = True
            elif message in _RECOVERED or message == "removed database from replication":
                changed = failing.pop(database, None) is not None
        if level in ("ERROR", "WARN") and message != _STUCK:
            print(f"mirror: {message} ({database}): {entry.get('error', '')}".rstrip(": "), file=self.echo, flush=True)
        if changed:
            self._write()

    def _write(self) -> None:
        with self._mutex:
            self.state["confirmed_at"] = time.time()
            snapshot = json.loads(json.dumps(self.state))
        state.write(snapshot)
        self._written_at = snapshot["confirmed_at"]


def describe(items: list[plan.Mirrored]) -> str:
    return "\n".join(f"  {item.name}: {item.source} -> {item.url}" for item in items)


def start_for_serve(echo: IO[str] | None = None) -> MirrorProcess | None:
    """The mirror for ``vouch serve``, started; None (having said why) when there is none."""
    echo = echo or sys.stderr
    from vouch import config

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
