"""``vouch worker`` and ``vouch references maintenance``: the background side of the
reference workflow on the command line.

``vouch worker`` runs the queued tasks (reminders, expiry at the deadline, the daily
maintenance) with the configured backend: django-tasks-db's worker on the database
backend, an RQ worker with its scheduler on Redis. Beside it a scheduler thread
queues each company's daily maintenance once a day, and every half minute sends the
outgoing mail left unsent and queues again the tasks of a worker that died
(``jobs.background_round``). Run as many workers as you like:
a task is claimed by one worker, and the daily plan is claimed per company and day.

``vouch references maintenance`` runs the daily maintenance at once, in this process."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time


def add_parser(sub) -> None:
    p_worker = sub.add_parser("worker", help="run background tasks: reminders, expiry, retention")
    p_worker.add_argument(
        "--batch", action="store_true", help="run the tasks that are due, then exit (database backend: the queue)"
    )
    p_worker.add_argument("--quiet", action="store_true", help="log warnings and errors only")
    p_worker.add_argument(
        "--interval", type=float, default=1.0, help="seconds between looks at an empty queue (database backend)"
    )
    p_references = sub.add_parser("references", help="the reference workflow's housekeeping")
    references_sub = p_references.add_subparsers(dest="references_command", required=True)
    p_maintenance = references_sub.add_parser(
        "maintenance",
        help="now: expire overdue requests, send missed reminders, apply retention, purge old links and task results",
    )
    p_maintenance.add_argument("--company", nargs="+", metavar="ID", help="only these companies")
    p_maintenance.add_argument("--json", action="store_true", help="machine-readable output")


def _database_answers() -> bool:
    from django.db import connection
    from django.db.utils import InterfaceError, OperationalError

    connection.close()
    try:
        connection.ensure_connection()
    except (OperationalError, InterfaceError):
        return False
    return True


def worker(args: argparse.Namespace) -> int:
    """Run the queue. A database error (the server restarting, a failover) does not end
    the worker: it waits, backing off, until the database answers, then goes on."""
    from django.db.utils import InterfaceError, OperationalError

    # imported here: the command's parser is built before Django is set up (jobs imports models)
    from vouch.references import jobs

    stopping = threading.Event()
    if args.batch:
        jobs.background_round()
    else:
        threading.Thread(target=jobs.run_scheduler, args=(stopping,), name="vouch-scheduler", daemon=True).start()
    try:
        while True:
            try:
                _run_queue(args)
                if args.batch:
                    jobs.background_round()  # the mail of the tasks just run, if any was left
                return 0
            except (OperationalError, InterfaceError) as exc:
                if args.batch:
                    raise
                jobs.database_outage.failed(exc)
            # A stop signal during the wait ends the worker: the queue's own handlers
            # (still installed) exit at once when no task runs.
            delay = jobs.BACKOFF_FIRST_SECONDS
            while not _database_answers():
                time.sleep(delay)
                delay = min(delay * 2, jobs.BACKOFF_MAX_SECONDS)
            jobs.database_outage.recovered()
    finally:
        stopping.set()


def _run_queue(args: argparse.Namespace) -> None:
    from django.conf import settings
    from django.core.management import call_command

    verbosity = 0 if args.quiet else 1
    if settings.VOUCH_TASKS_BACKEND == "redis":
        call_command(
            "rqworker",
            "default",
            job_class="django_tasks_rq.Job",
            with_scheduler=True,
            burst=args.batch,
            verbosity=verbosity,
        )
    else:
        call_command(
            "db_worker",
            queue_name="default",
            batch=args.batch,
            reload=False,
            interval=args.interval,
            startup_delay=not args.batch,
            verbosity=verbosity,
        )


def maintenance(args: argparse.Namespace, out=None) -> int:
    # imported here: the command's parser is built before Django is set up (jobs imports models)
    from vouch.references import jobs

    out = out or sys.stdout
    results = jobs.run_maintenance(company_ids=args.company)
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True), file=out)
    else:
        links = results.pop("links", {})
        for company_id, counts in results.items():
            summary = ", ".join(f"{name} {value}" for name, value in sorted(counts.items())) or "nothing to do"
            print(f"{company_id}  {summary}", file=out)
        print(
            f"installation  links purged {links.get('purged', 0)}, task results pruned {links.get('task_results', 0)}",
            file=out,
        )
    failed = any("error" in counts for counts in results.values())
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    if args.command == "worker":
        return worker(args)
    if args.command == "references" and args.references_command == "maintenance":
        return maintenance(args)
    return 2
