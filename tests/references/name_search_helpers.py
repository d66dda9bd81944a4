"""What the name-search tests share: requests made for a set of names, the dashboard's
search, and the terms and migrations a company database holds."""

from __future__ import annotations

import pytest
from django.db import connections as django_connections
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from tests.references.workflow import make_request
from vouch.accounts.policy import Role
from vouch.core.context import alias_for, company_context, current_or_none
from vouch.references.request_models import SearchTerm
from vouch.tenancy import connections, schema

from .test_request_pages import listed


def requests_named(company, members, names: dict[str, str]) -> dict[str, str]:
    """One request for each of ``names``, made through the workflow: key -> request id."""
    recruiter = members[Role.RECRUITER].user
    return {
        key: str(make_request(company, recruiter, name=name, email=f"{key}@example.org")[0].pk)
        for key, name in names.items()
    }


def found(client, query: str) -> set[str]:
    """The ids of the requests the dashboard lists for a typed search."""
    return set(listed(client.get(reverse("requests"), {"q": query})))


def stored_terms(candidate_id) -> set[str]:
    return set(SearchTerm.objects.filter(candidate_id=candidate_id).values_list("term", flat=True))


def applied(alias: str) -> set[str]:
    """The references migrations a company database has applied."""
    executor = MigrationExecutor(django_connections[alias])
    return {f"{app}.{name}" for app, name in executor.loader.applied_migrations if app == "references"}


def run_again(company, node: tuple[str, str], forwards) -> None:
    """Run the data migration ``forwards`` (its state at ``node``) twice more on the
    company's database, inside its context, as a rerun of ``vouch tenants migrate`` would."""
    with company_context(company) as context:
        alias = connections.ensure_alias(context, admin=True)
        state = MigrationExecutor(django_connections[alias]).loader.project_state(node)
        with django_connections[alias].schema_editor() as editor:
            forwards(state.apps, editor)
            forwards(state.apps, editor)


def refused_outside_a_company_context(company, refusal: str, node: str) -> None:
    """Migrating the company's database without its company context stops with
    ``refusal`` before migration ``node`` (app.name) is recorded."""
    alias = alias_for(company.pk)
    connections.add_alias(alias, connections.database_settings(company.pk, company.region, admin=True))
    try:
        assert current_or_none() is None
        with pytest.raises(RuntimeError) as refused:
            schema.migrate(alias)
        assert str(refused.value) == refusal
        assert node not in applied(alias)
    finally:
        connections.release(alias)
