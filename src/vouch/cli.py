"""``vouch``: the one command-line entry point.

vouch serve                 prepare the embedded default and serve HTTPS (+ HTTP redirect)
vouch setup                 prepare data directory, keys, certificate, database, static files
vouch migrate               apply database migrations
vouch outbox [NAME|--latest] read mail sent on the embedded default
vouch operator create EMAIL create an operator account (a password-set link is emailed)
vouch check [--deploy]      run the configuration checks
vouch audit verify [--expect-head HASH]  check the security event log's hash chain and head (exit 1 if broken)
vouch audit head            print the chain head's hash, to keep outside the database
vouch tenants migrate|list|show|check  company databases: schema, size, health, orphans
vouch keys rotate-master|rotate-company|status|generate  encryption keys: rotation, versions, ages
vouch worker [--batch]      run background tasks (reminders, expiry, retention)
vouch references maintenance  expire overdue requests, send missed reminders, apply retention now
vouch mirror run|status     the continuous mirror of the embedded default's databases
vouch backup run|list|status|restore|drill  encrypted backups, restores and restore drills
vouch manage ARGS...        any Django management command
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from vouch import config


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vouch.settings")
    import django

    django.setup()


# Commands that work without a prepared control database: they prepare it, or need none.
_NO_DATABASE_NEEDED = {"serve", "setup", "migrate", "check", "manage", "outbox"}


def unprepared_database_problem() -> str | None:
    """Why the control database cannot serve a command yet, or None. A missing SQLite
    file is not opened (that would create an empty one); otherwise the migrations the
    code has and the database lacks are counted from Django's own record of them."""
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.executor import MigrationExecutor
    from django.db.utils import OperationalError

    connection = connections[DEFAULT_DB_ALIAS]
    where = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite" and not connection.is_in_memory_db() and not Path(where).exists():
        return f"the control database {where} does not exist"
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except OperationalError as exc:
        return f"the control database cannot be opened ({str(exc).strip()})"
    if pending:
        return f"the control database lacks {len(pending)} of Vouch's migrations"
    return None


def _manage(*args: str) -> None:
    from django.core.management import call_command

    call_command(*args)


def adopt_company_keks() -> None:
    """Companies from before key-encryption keys get theirs (idempotent; says what it did)."""
    from vouch.vault import kek_adoption

    for line in kek_adoption.describe(kek_adoption.adopt_company_keks()):
        print(line, file=sys.stderr)


def setup(quiet: bool = False) -> tuple[Path, Path]:
    """Idempotent: safe to run on every start."""
    from django.conf import settings

    data = config.data_dir()
    for sub in ("keys", "outbox", "tls"):
        (data / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data / "keys", 0o700)
    verbosity = 0 if quiet else 1
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=verbosity)
    call_command("createcachetable", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    from vouch.vault.keyring import ensure_master_key

    ensure_master_key()  # the first run creates the master key (VOUCH_KEYS_DIR)
    adopt_company_keks()
    if settings.VOUCH_TLS_CERT and settings.VOUCH_TLS_KEY:
        return Path(settings.VOUCH_TLS_CERT), Path(settings.VOUCH_TLS_KEY)
    from vouch.web.tls import ensure_dev_certificate

    return ensure_dev_certificate(data / "tls")


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
    workers = config.env_int("VOUCH_WORKERS", 2)
    granian = str(Path(sys.executable).with_name("granian"))
    common = ["--host", bind, "--no-ws", "--log-level", "warning", "--backlog", "2048"]
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


def outbox(args: argparse.Namespace) -> int:
    from vouch.outbox import store

    if args.name or args.latest:
        message = store.get_message(args.name) if args.name else next(iter(store.list_messages(limit=1)), None)
        if message is None:
            print("No such message.", file=sys.stderr)
            return 1
        print(f"To: {message.to}\nSubject: {message.subject}\nDate: {message.date}\n\n{message.body}")
        return 0
    messages = store.list_messages(limit=args.limit)
    if not messages:
        print("The outbox is empty.")
        return 0
    for message in messages:
        print(f"{message.name}  {message.to}  {message.subject}")
    return 0


def operator(args: argparse.Namespace) -> int:
    from allauth.account.forms import default_token_generator
    from allauth.account.models import EmailAddress
    from allauth.account.utils import user_pk_to_url_str
    from django.conf import settings
    from django.core.mail import send_mail
    from django.urls import reverse

    from vouch.accounts.models import User

    email = args.email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        print("An account with that email already exists.", file=sys.stderr)
        return 1
    user = User.objects.create_operator(email, full_name=args.name or "")
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
    # Never print a password: the operator sets one through a reset link (P11).
    path = reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": user_pk_to_url_str(user), "key": default_token_generator.make_token(user)},
    )
    send_mail(
        "[Vouch] Set your operator password",
        f"An operator account was created for you.\n\nSet your password: {settings.PUBLIC_URL}{path}\n",
        None,
        [email],
    )
    print(f"Operator {email} created; a link to set the password was emailed.")
    return 0


def _head_hash(value: str) -> str:
    """An ``--expect-head`` value: a whole head hash, as ``vouch audit head`` prints it."""
    text = value.strip().lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise argparse.ArgumentTypeError(
            "expected a head hash as `vouch audit head` prints it: 64 hexadecimal characters"
        )
    return text


def audit(args: argparse.Namespace) -> int:
    from vouch.audit.verify import run_cli, run_head

    if args.audit_command == "head":
        return run_head()
    return run_cli(progress=args.progress, expect_head=args.expect_head)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vouch", description="Vouch reference checks")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="prepare and serve over HTTPS")
    sub.add_parser("setup", help="prepare the data directory, database and certificate")
    sub.add_parser("migrate", help="apply database migrations")
    p_outbox = sub.add_parser("outbox", help="read mail in the local outbox")
    p_outbox.add_argument("name", nargs="?", help="a message's file name")
    p_outbox.add_argument("--latest", action="store_true", help="show the newest message")
    p_outbox.add_argument("--limit", type=int, default=50)
    p_operator = sub.add_parser("operator", help="operator accounts")
    op_sub = p_operator.add_subparsers(dest="operator_command", required=True)
    p_create = op_sub.add_parser("create", help="create an operator account")
    p_create.add_argument("email")
    p_create.add_argument("--name", default="")
    p_check = sub.add_parser("check", help="run the configuration checks")
    p_check.add_argument("--deploy", action="store_true")
    p_audit = sub.add_parser("audit", help="the security event log")
    audit_sub = p_audit.add_subparsers(dest="audit_command", required=True)
    p_verify = audit_sub.add_parser("verify", help="check the hash chain and its head; exit 1 if either was changed")
    p_verify.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar (default: on a terminal)"
    )
    p_verify.add_argument(
        "--expect-head",
        metavar="HASH",
        type=_head_hash,
        help="a head hash kept outside the database (`vouch audit head`): it must be in the chain",
    )
    audit_sub.add_parser("head", help="print the chain head's hash, to keep outside the database")
    from vouch.tenancy.operations import commands as tenants_commands

    tenants_commands.add_parser(sub)
    from vouch.vault import commands as keys_commands

    keys_commands.add_parser(sub)
    from vouch.references import commands as references_commands

    references_commands.add_parser(sub)
    from vouch.backups import commands as backup_commands

    backup_commands.add_parser(sub)
    p_manage = sub.add_parser("manage", help="run a Django management command")
    p_manage.add_argument("args", nargs=argparse.REMAINDER)

    args = parser.parse_args(argv)
    # Databases, keys, certificates and mail hold personal data: owner-only files.
    os.umask(0o077)
    _django()
    needs_keys_only = args.command == "keys" and getattr(args, "keys_command", None) == "generate"
    if args.command not in _NO_DATABASE_NEEDED and not needs_keys_only:
        problem = unprepared_database_problem()
        if problem:
            print(
                f"Vouch is not set up here: {problem}.\n"
                "Run `vouch setup` (the embedded default) or `vouch migrate` first, then try again.",
                file=sys.stderr,
            )
            return 2
    if args.command == "serve":
        return serve(args)
    if args.command == "setup":
        from vouch.vault.errors import KeyConfigurationError

        try:
            setup()
        except KeyConfigurationError as exc:  # e.g. company keys without their master key
            print(f"Vouch setup stopped: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "migrate":
        from vouch.vault.errors import KeyConfigurationError

        _manage("migrate")
        try:
            adopt_company_keks()
        except KeyConfigurationError as exc:
            print(f"Migrated, but company keys were not moved to key-encryption keys: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "outbox":
        return outbox(args)
    if args.command == "operator":
        return operator(args)
    if args.command == "check":
        from django.core.management import call_command
        from django.core.management.base import SystemCheckError

        try:
            call_command("check", deploy=args.deploy, fail_level="ERROR")
        except SystemCheckError as exc:
            print(exc, file=sys.stderr)
            return 1
        return 0
    if args.command == "audit":
        return audit(args)
    if args.command == "tenants":
        return tenants_commands.run(args)
    if args.command == "keys":
        return keys_commands.run(args)
    if args.command in ("backup", "mirror"):
        return backup_commands.run(args)
    if args.command in ("worker", "references"):
        return references_commands.run(args)
    if args.command == "manage":
        from django.core.management import execute_from_command_line

        execute_from_command_line(["vouch", *args.args])
        return 0
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
