"""Schema state of company databases: which company-app migrations are missing."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.core.management import call_command
from django.db import connections
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
    """Bring one company (or template) database to the current schema."""
    for app_label in settings.VOUCH_COMPANY_APPS:
        call_command("migrate", app_label, database=alias, interactive=False, verbosity=0)
