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
vouch shield report|lift     intrusion detection: blocks in force, detections, lifting a block
vouch manage ARGS...        any Django management command

Each command group is a :class:`~vouch.cli.groups.Group` in ``GROUPS``: the commands it adds
to the parser, the handler that runs them, and whether they need a prepared control
database. Groups of this package have a module each (serve, setup, outbox, operator, audit,
manage); the others live in their apps. docs/operations/cli.md is generated from the parser
(:mod:`vouch.cli.reference`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vouch.backups import commands as backup_commands
from vouch.cli import audit, keys, manage, operator, outbox, serve, setup
from vouch.cli.groups import Group
from vouch.cli.setup import adopt_company_keks
from vouch.references import commands as references_commands
from vouch.shield import commands as shield_commands
from vouch.tenancy.operations import commands as tenants_commands

__all__ = ["GROUPS", "adopt_company_keks", "build_parser", "main", "unprepared_database_problem"]


def _keys_need_database(args: argparse.Namespace) -> bool:
    return args.keys_command != "generate"  # it only prints a new master key


# In the order `vouch --help` lists them.
GROUPS: list[Group] = [
    serve.GROUP,
    setup.SETUP,
    setup.MIGRATE,
    outbox.GROUP,
    operator.GROUP,
    setup.CHECK,
    audit.GROUP,
    Group(("tenants",), tenants_commands.add_parser, tenants_commands.run),
    Group(("keys",), keys.add_parser, keys.run, needs_database=_keys_need_database),
    Group(("worker", "references"), references_commands.add_parser, references_commands.run),
    Group(("mirror", "backup"), backup_commands.add_parser, backup_commands.run),
    Group(("shield",), shield_commands.add_parser, shield_commands.run),
    manage.GROUP,
]


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vouch.settings")
    import django  # after the settings module is named

    django.setup()


def unprepared_database_problem() -> str | None:
    """Why the control database cannot serve a command yet, or None. A missing SQLite
    file is not opened (that would create an empty one); otherwise the migrations the
    code has and the database lacks are counted from Django's own record of them."""
    # Imported when run: they need Django, set up by main after this module is imported.
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.executor import MigrationExecutor
    from django.db.utils import OperationalError

    connection = connections[DEFAULT_DB_ALIAS]
    where = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite" and not connection.is_in_memory_db() and not Path(where).exists():  # type: ignore[attr-defined]  # SQLite's connection has it (vendor checked first)
        return f"the control database {where} does not exist"
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except OperationalError as exc:
        return f"the control database cannot be opened ({str(exc).strip()})"
    if pending:
        return f"the control database lacks {len(pending)} of Vouch's migrations"
    return None


def build_parser() -> argparse.ArgumentParser:
    """The whole ``vouch`` command line; built before Django is set up."""
    parser = argparse.ArgumentParser(prog="vouch", description="Vouch reference checks")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Databases, keys, certificates and mail hold personal data: owner-only files.
    os.umask(0o077)
    _django()
    group = next(group for group in GROUPS if args.command in group.commands)
    if group.needs_database(args):
        problem = unprepared_database_problem()
        if problem:
            print(
                f"Vouch is not set up here: {problem}.\n"
                "Run `vouch setup` (the embedded default) or `vouch migrate` first, then try again.",
                file=sys.stderr,
            )
            return 2
    return group.run(args)
