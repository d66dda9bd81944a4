"""What the name-search tests share: requests made for a set of names, the dashboard's
search, and the terms and migrations a company database holds."""

from __future__ import annotations

from django.db import connections as django_connections
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from tests.references.workflow import make_request
from vouch.accounts.policy import Role
from vouch.references.request_models import SearchTerm

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
