"""``vouch serve``: prepare the embedded default, then serve HTTPS (and the HTTP redirect)
with Granian, beside the background worker, the mirror and the periodic purge, drills
and backups, and stop them all together.

Django is set up after the parser is built (:func:`vouch.cli.main`): what needs it is
imported inside the functions that run the command."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from vouch import config
from vouch.cli.groups import Group, never
from vouch.cli.setup import setup

HEADER_READ_TIMEOUT_MS = 10_000
HEADER_BYTES = 65_536


def _wait_for_port(host: str, port: int, stopping: threading.Event, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping.is_set():
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            stopping.wait(0.1)
    return False


def serve(args: argparse.Namespace) -> int:
    # Imported when run: they need Django, set up by main after this module is imported.
    from django.conf import settings
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    from vouch.outbox import status as outbox_status

    try:
        call_command("check", deploy=settings.PRODUCTION, fail_level="ERROR")
    except SystemCheckError as exc:
        print(f"Vouch refuses to start:\n{exc}", file=sys.stderr)
        return 1
    from vouch.web import instance

    bind = config.env("VOUCH_BIND", "127.0.0.1")
    https_port = int(config.env("VOUCH_HTTPS_PORT", "8443"))
    http_port = config.env("VOUCH_HTTP_PORT", "8080")
    # Before setup: a second server must not even migrate or write the certificate.
    try:
        lock_fd = instance.acquire(config.data_dir(), bind=bind, https_port=https_port, http_port=http_port)
    except instance.AlreadyRunning as exc:
        print(f"Vouch refuses to start: {exc}", file=sys.stderr)
        return 1
    cert, key = setup(quiet=True)
    # Every process started below (server workers, background worker) writes its metrics
    # to files here and /metrics sums them (prometheus-client's multiprocess mode); the
    # files of an earlier run would be counted again, so the directory starts empty.
    metrics_dir = config.metrics_dir()
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(mode=0o700, parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    workers = config.env_int("VOUCH_WORKERS", 2)
    granian = str(Path(sys.executable).with_name("granian"))
    common = [
        *("--host", bind, "--no-ws", "--log-level", "warning", "--backlog", "2048"),
        # Slow and oversized headers (P3, docs/security/limits.md): a client has 10 s to send
        # a request's headers, and they fit in 64 KiB (HTTP/1.1 read buffer, HTTP/2 header
        # list); granian's defaults are 30 s and 408 KiB / 16 MiB. Headers are read by
        # granian's own event loop: a slow client holds a connection, never a Python thread.
        *("--http1-header-read-timeout", str(HEADER_READ_TIMEOUT_MS), "--http1-buffer-size", str(HEADER_BYTES)),
        *("--http2-max-headers-size", str(HEADER_BYTES)),
    ]
    app_cmd = [
        granian,
        "--interface",
        "wsgi",
        *common,
        "--port",
        str(https_port),
        "--workers",
        str(workers),
        "--ssl-certificate",
        str(cert),
        "--ssl-keyfile",
        str(key),
        "--ssl-protocol-min",
        config.env("VOUCH_TLS_MIN", "tls1.2"),
        # Few Python threads per worker: granian's default (up to backpressure = backlog/workers,
        # here 1024) lets dozens of requests fight for the GIL, which roughly doubled p99 latency
        # in `make bench`; 4 still lets a worker serve others while one request waits on I/O.
        "--blocking-threads",
        str(config.env_int("VOUCH_THREADS", 4)),
        "vouch.wsgi:application",
    ]
    stopping = threading.Event()
    processes: list[subprocess.Popen] = []

    def signal_group(process: subprocess.Popen, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)

    def stop(*_):
        stopping.set()
        for process in processes:
            signal_group(process, sig=signal.SIGTERM)

    # Handlers first: a stop that arrives while the servers start must still reach them.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # Each server runs in its own process group so stopping it also stops its workers,
    # even when it is stopped before it has installed its own signal handlers.
    if not stopping.is_set():
        processes.append(subprocess.Popen(app_cmd, start_new_session=True))
    if http_port and not stopping.is_set():
        redirect_cmd = [
            granian,
            "--interface",
            "asgi",
            *common,
            "--port",
            http_port,
            "--workers",
            "1",
            "vouch.web.redirect:app",
        ]
        processes.append(subprocess.Popen(redirect_cmd, start_new_session=True))

    # The background worker (reminders, expiry at the deadline, retention): its own process
    # group too; restarted if it stops, so the site never depends on it staying up.
    worker_cmd = [sys.executable, "-m", "vouch.cli", "worker", "--quiet"]
    run_worker = config.env_bool("VOUCH_SERVE_WORKER", True)
    workers_started: list[subprocess.Popen] = []

    def start_worker() -> None:
        if run_worker and not stopping.is_set():
            # Only the live one is kept: a reaped worker's process group id may be reused.
            workers_started[:] = [subprocess.Popen(worker_cmd, start_new_session=True)]

    start_worker()

    # The constant mirror of the SQLite databases (Litestream): its own process group,
    # restarted if it dies, stopped last so it uploads what the servers wrote.
    from vouch.backups.mirror.process import start_for_serve

    mirror = start_for_serve() if not stopping.is_set() else None

    host_for_people = "localhost" if bind in ("127.0.0.1", "0.0.0.0", "::", "::1") else bind
    if _wait_for_port(bind if bind not in ("0.0.0.0", "::") else "127.0.0.1", https_port, stopping):
        print(
            f"\nVouch is running at https://{host_for_people}:{https_port}/"
            + (f"  (http://{host_for_people}:{http_port}/ redirects there)" if http_port else "")
            + "\nFirst: open it, choose 'Create a company account', then confirm your email."
            + (
                "\nMail goes to the local outbox: `vouch outbox --latest` or "
                f"https://localhost:{https_port}/outbox/ from this machine."
                if outbox_status.in_use()
                else ""
            )
            + "\nThe development certificate is self-signed: your browser will ask you to accept it."
            + "\nStop with Ctrl-C.\n",
            flush=True,
        )
    # Company deletions whose grace period has passed: once now, then hourly, in this
    # supervisor process. A failure is logged and retried; it never stops the server.
    from vouch.tenancy.deletion import purge_periodically

    threading.Thread(target=purge_periodically, args=(stopping,), name="vouch-purge", daemon=True).start()
    # The daily restore drill of a sample of companies, and the operators' alerts about
    # failed drills and late backups (vouch.backups.drills, vouch.backups.alerts).
    from vouch.backups.drills import drill_periodically

    threading.Thread(target=drill_periodically, args=(stopping,), name="vouch-drills", daemon=True).start()
    # Encrypted backups (docs/backups.md): a round when due, pending sets retried meanwhile.
    from vouch.backups.sets.schedule import backup_periodically

    threading.Thread(target=backup_periodically, args=(stopping,), name="vouch-backups", daemon=True).start()
    exit_code = 0
    worker_restart_at = 0.0
    try:
        while not stopping.wait(0.5) and all(p.poll() is None for p in processes):
            if workers_started and workers_started[-1].poll() is not None:
                if not worker_restart_at:
                    print("The background worker stopped; restarting it in 5 seconds.", file=sys.stderr, flush=True)
                    worker_restart_at = time.monotonic() + 5
                elif time.monotonic() >= worker_restart_at:
                    worker_restart_at = 0.0
                    start_worker()
            if mirror is not None:
                mirror.poll()
    finally:
        processes.extend(workers_started)
        if mirror is not None:
            mirror.stop_live()  # its calls to Litestream end before Litestream does
            processes.extend(mirror.live())
        stop()
        # One deadline for all: a server still holding a client's keep-alive connection is
        # killed in time, before whoever stops this command loses patience and kills it
        # (which would orphan the servers).
        deadline = time.monotonic() + 10
        for process in processes:
            try:
                code = process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(process, signal.SIGKILL)
                code = process.wait()
            # Workers outliving their parent (it died before reaping them) go too.
            signal_group(process, signal.SIGKILL)
            exit_code = exit_code or (code if code and code > 0 else 0)
        if mirror is not None:
            mirror.stopped()
        # Only once every process it started is gone may another server take the directory.
        os.close(lock_fd)
    return exit_code


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("serve", help="prepare and serve over HTTPS")


# It prepares the control database itself.
GROUP = Group(("serve",), add_parser, serve, needs_database=never)
