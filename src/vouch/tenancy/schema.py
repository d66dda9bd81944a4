"""Schema state of company databases: which company-app migrations are missing."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.core.management import call_command
from django.db import connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader


@cache
def targets() -> tuple[tuple[str, str], ...]:
    """The latest migration of each company app, as found on disk."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    return tuple(sorted(node for node in graph.leaf_nodes() if node[0] in settings.VOUCH_COMPANY_APPS))


def pending(alias: str) -> list[str]:
    """Company-app migrations not yet applied to the database behind ``alias``."""
    executor = MigrationExecutor(connections[alias])
    plan = executor.migration_plan(list(targets()))
    return [f"{migration.app_label}.{migration.name}" for migration, backwards in plan if not backwards]


def migrate(alias: str) -> None:
    """Bring one company (or template) database to the current schema, in one transaction.

    Django records a migration that has deferred SQL (its indexes, say) only after that
    migration's own transaction has committed: a process killed in between leaves the
    tables made and the migration unrecorded, and every later run fails making them
    again. One transaction around the whole run means a company is either migrated or
    left as it was. Both backends roll back DDL; SQLite cannot change its foreign-key
    setting inside a transaction, so the checks are turned off (as Django's schema editor
    would for each migration) before it begins."""
    connection = connections[alias]
    with connection.constraint_checks_disabled(), transaction.atomic(using=alias):
        for app_label in settings.VOUCH_COMPANY_APPS:
            call_command("migrate", app_label, database=alias, interactive=False, verbosity=0)
